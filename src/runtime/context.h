// An inference context: a KV cache shared by up to 64 sequences, scratch activations, the backend
// instance (and its threads), and per sequence the tokens evaluated so far and the logits of its
// last one. Used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/arch/llama.h"
#include "model/model.h"
#include "runtime/device.h"
#include "runtime/kv_cache.h"

namespace eurollm {

struct context_options {
    int64_t n_ctx = 0;    // 0: min(n_ctx_train, 4096)
    int64_t n_batch = 512;
    int n_threads = 0;    // 0: one per core
    uint64_t seed = 0;
    kernels::act_precision precision = kernels::act_precision::split;  // bf16-weight products
    wtype kv_type = wtype::f32;  // the KV cache's elements: f32 or f16
    device_placement device;     // the model's placement (runtime/device.h); default: the CPU
};

class context {
public:
    context(const model &m, const context_options &options);

    const model &get_model() const { return model_; }
    int64_t n_ctx() const { return cache_.n_ctx(); }
    int64_t n_batch() const { return n_batch_; }
    uint64_t seed() const { return seed_; }

    // ---- sequences (ids 0..63) ----
    void check_seq(int32_t seq) const;
    const std::vector<int32_t> &history(int32_t seq = 0) const;
    int64_t n_past(int32_t seq = 0) const { return static_cast<int64_t>(history(seq).size()); }
    int64_t n_free() const { return cache_.n_ctx() - cache_.n_used(); }
    void reset();
    // Forget positions [p0, end) of a sequence (only tails can be removed: positions stay contiguous).
    void seq_remove(int32_t seq, int32_t p0);
    // Make `dst` (which must be empty) share the first `n` positions of `src` (n < 0: all of them).
    void seq_copy(int32_t src, int32_t dst, int32_t n);
    // Forget every sequence but `seq`.
    void seq_keep(int32_t seq);

    void set_abort(bool (*cb)(void *), void *data) {
        abort_ = cb;
        abort_data_ = data;
    }

    // Throws INVALID_ARGUMENT for ids outside the vocabulary.
    void validate_tokens(const int32_t *tokens, size_t n) const;

    // ---- evaluation ----
    // One run of tokens continuing a sequence.
    struct decode_item {
        int32_t seq;
        const int32_t *tokens;
        size_t n;
    };
    // Evaluates every item in as few forward passes as n_batch allows; afterwards last_logits(seq)
    // holds the logits of each item's last token. Throws CONTEXT_FULL (changing nothing) when the
    // tokens do not fit.
    void decode_batch(const decode_item *items, size_t n_items);
    // A single sequence; with all_out, every row's logits are copied there ([n, n_vocab]).
    const float *decode(const int32_t *tokens, size_t n, float *all_out = nullptr, int32_t seq = 0);
    const float *last_logits(int32_t seq = 0) const;

    // Final hidden states (after the last norm) of each token list evaluated on its own, rows
    // concatenated in order: [sum of lengths, n_embd]. Uses the cache as scratch: clears it.
    void hidden_states(const std::vector<std::vector<int32_t>> &lists, std::vector<float> &rows);

    // ---- state (runtime/context_state.cpp) ----
    std::vector<uint8_t> save_state() const;
    void load_state(const uint8_t *data, size_t size);

private:
    // Evaluates flat arrays in n_batch chunks; output rows go to `out` consecutively.
    void run(const std::vector<int32_t> &tokens, const std::vector<int32_t> &seq, const std::vector<int32_t> &pos,
             const std::vector<uint8_t> &output, llama_output what, float *out);

    const model &model_;
    std::unique_ptr<backend> backend_;
    kv_cache cache_;
    llama_scratch scratch_;
    kv_cache::placement placement_;
    int64_t n_batch_;
    uint64_t seed_;
    std::vector<std::vector<int32_t>> history_;  // per sequence
    std::vector<std::vector<float>> logits_;     // per sequence: the last token's logits (empty: none)
    std::vector<float> out_;
    bool (*abort_)(void *) = nullptr;
    void *abort_data_ = nullptr;
};

}  // namespace eurollm
