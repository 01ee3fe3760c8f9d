// Forward pass of the Llama-family decoder (Llama, Mistral, EuroLLM, Salamandra, ...) over one
// batch of tokens (possibly from several sequences), through the backend interface.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace eurollm {

// Where each layer's keys and values live: [n_head_kv, stride, head_dim] per layer.
struct kv_layers {
    std::vector<void *> k, v;  // per layer: [n_head_kv, stride, head_dim] of `type`
    int64_t stride = 0;
    wtype type = wtype::f32;   // f32 or f16
};

// One batch, placed in the cache by the runtime: token i sits at position pos[i], its key/value go
// to cache cell cell[i], and it attends to cells visible[visible_begin[i] .. visible_begin[i + 1]).
// Rows with output[i] != 0 produce an output row (in batch order).
struct llama_batch {
    const int32_t *tokens = nullptr;
    const int32_t *pos = nullptr;
    const int32_t *cell = nullptr;
    const int32_t *visible = nullptr;
    const int64_t *visible_begin = nullptr;
    const uint8_t *output = nullptr;
    int64_t n = 0;
};

enum class llama_output {
    logits,  // [n_out, n_vocab]
    hidden   // [n_out, n_embd]: the final hidden states after the last norm
};

// Activations of one batch in the backend's memory (device memory on a GPU, so that the forward
// pass does not cross PCIe between ops); grown on demand and reused between calls. The backend
// that last reserved it must outlive it.
class llama_scratch {
public:
    llama_scratch() = default;
    ~llama_scratch();
    llama_scratch(const llama_scratch &) = delete;
    llama_scratch &operator=(const llama_scratch &) = delete;

    void reserve(backend &be, const hparams &hp, int64_t n);

    float *x = nullptr, *h = nullptr, *q = nullptr, *attn = nullptr, *gate = nullptr, *up = nullptr;
    float *k_new = nullptr, *v_new = nullptr;
    std::vector<float> inv_freq;  // host memory (a few floats; staged by a GPU backend)
    std::vector<int64_t> out_rows;  // host: the rows that produce output (reused between calls)

private:
    void release() noexcept;
    backend *be_ = nullptr;
    void *block_ = nullptr;  // every buffer above, in one allocation
    int64_t rows_ = 0;
};

// Evaluates a batch and writes the requested rows into `out`. `abort` (may be null) is polled per
// layer; it returning false throws ABORTED.
void llama_forward(const model &m, backend &be, const llama_batch &batch, kv_layers &cache, llama_scratch &s,
                   llama_output what, float *out, bool (*abort)(void *) = nullptr, void *abort_data = nullptr);

}  // namespace eurollm
