#include "runtime/context.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace eurollm {
namespace {

int64_t resolve_n_ctx(const hparams &hp, int64_t requested) {
    if (requested < 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_ctx must not be negative");
    if (requested == 0) return std::min<int64_t>(hp.n_ctx_train, 4096);
    if (requested > (int64_t{1} << 22)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_ctx ", requested, " is too large");
    return requested;
}

}  // namespace

context::context(const model &m, const context_options &o)
    : model_(m),
      backend_(make_cpu_backend(o.n_threads)),
      cache_(m.hp, resolve_n_ctx(m.hp, o.n_ctx)),
      n_batch_(o.n_batch > 0 ? o.n_batch : 512),
      seed_(o.seed) {
    if (o.n_threads < 0 || o.n_threads > 1024) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_threads ", o.n_threads, " is out of range");
    logits_.resize(static_cast<size_t>(m.hp.n_vocab));
}

void context::validate_tokens(const int32_t *tokens, size_t n) const {
    if (n > 0 && !tokens) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tokens is NULL");
    for (size_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= model_.hp.n_vocab)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "token id ", tokens[i], " at index ", i, " is outside the vocabulary [0, ",
                 model_.hp.n_vocab, ")");
    if (static_cast<int64_t>(n) > n_ctx() - n_past())
        fail(EUROLLM_ERR_CONTEXT_FULL, n, " tokens do not fit in the context (", n_past(), " of ", n_ctx(),
             " positions used)");
}

const float *context::decode(const int32_t *tokens, size_t n, float *all_out) {
    validate_tokens(tokens, n);
    if (n == 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "no tokens to evaluate");
    const int64_t n_vocab = model_.hp.n_vocab;
    std::vector<int32_t> pos;
    for (size_t done = 0; done < n;) {
        const size_t chunk = std::min<size_t>(n - done, static_cast<size_t>(n_batch_));
        pos.resize(chunk);
        std::iota(pos.begin(), pos.end(), static_cast<int32_t>(history_.size()));
        float *out = logits_.data();
        if (all_out) out = all_out + done * static_cast<size_t>(n_vocab);
        has_logits_ = false;
        llama_forward(model_, *backend_, tokens + done, pos.data(), static_cast<int64_t>(chunk), cache_.layers(), scratch_,
                      out, all_out != nullptr, abort_, abort_data_);
        history_.insert(history_.end(), tokens + done, tokens + done + chunk);
        if (all_out)
            std::memcpy(logits_.data(), out + (chunk - 1) * static_cast<size_t>(n_vocab),
                        static_cast<size_t>(n_vocab) * sizeof(float));
        has_logits_ = true;
        done += chunk;
    }
    return logits_.data();
}

}  // namespace eurollm
