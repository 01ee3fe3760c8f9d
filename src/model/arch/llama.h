// Forward pass of the Llama-family decoder (Llama, Mistral, EuroLLM, Salamandra, ...), one batch of
// consecutive tokens of one sequence, through the backend interface.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace eurollm {

// Where each layer's keys and values live: [n_head_kv, stride, head_dim] f32 per layer.
struct kv_layers {
    std::vector<float *> k, v;
    int64_t stride = 0;
};

// Activations of one batch; grown on demand and reused between calls.
struct llama_scratch {
    std::vector<float> x, h, q, attn, gate, up, inv_freq;
    std::vector<float> k_new, v_new;
    void reserve(const hparams &hp, int64_t n);
};

// Evaluates tokens[0..n) at positions pos[0..n) (consecutive; earlier positions already cached).
// Writes the new keys/values into the cache and the logits of every row (all_logits) or of the
// last row only into `logits` ([n or 1, n_vocab]). `abort` (may be null) is polled per layer.
void llama_forward(const model &m, backend &be, const int32_t *tokens, const int32_t *pos, int64_t n,
                   kv_layers &cache, llama_scratch &s, float *logits, bool all_logits,
                   bool (*abort)(void *) = nullptr, void *abort_data = nullptr);

}  // namespace eurollm
