// An inference context: one sequence's KV cache, scratch activations, the backend instance (and its
// threads) and the tokens evaluated so far. Used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/arch/llama.h"
#include "model/model.h"
#include "runtime/kv_cache.h"

namespace eurollm {

struct context_options {
    int64_t n_ctx = 0;    // 0: min(n_ctx_train, 4096)
    int64_t n_batch = 512;
    int n_threads = 0;    // 0: one per core
    uint64_t seed = 0;
};

class context {
public:
    context(const model &m, const context_options &options);

    const model &get_model() const { return model_; }
    int64_t n_ctx() const { return cache_.n_ctx(); }
    int64_t n_past() const { return static_cast<int64_t>(history_.size()); }
    uint64_t seed() const { return seed_; }
    const std::vector<int32_t> &history() const { return history_; }

    void reset() { history_.clear(); }
    void set_abort(bool (*cb)(void *), void *data) { abort_ = cb; abort_data_ = data; }

    // Throws INVALID_ARGUMENT for ids outside the vocabulary, CONTEXT_FULL when they do not fit.
    void validate_tokens(const int32_t *tokens, size_t n) const;

    // Evaluates tokens after the cached ones. Returns the logits of the last token ([n_vocab]);
    // with all_logits, every row is copied into `all_out` ([n, n_vocab]).
    const float *decode(const int32_t *tokens, size_t n, float *all_out = nullptr);
    const float *last_logits() const { return has_logits_ ? logits_.data() : nullptr; }

private:
    const model &model_;
    std::unique_ptr<backend> backend_;
    kv_cache cache_;
    llama_scratch scratch_;
    int64_t n_batch_;
    uint64_t seed_;
    std::vector<int32_t> history_;
    std::vector<float> logits_;
    bool has_logits_ = false;
    bool (*abort_)(void *) = nullptr;
    void *abort_data_ = nullptr;
};

}  // namespace eurollm
