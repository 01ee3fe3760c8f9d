#include "runtime/kv_cache.h"

#include "core/error.h"

namespace eurollm {

kv_cache::kv_cache(const hparams &hp, int64_t n_ctx) : n_ctx_(n_ctx) {
    const int64_t per_layer = hp.n_head_kv * n_ctx * hp.head_dim;
    const int64_t total = per_layer * hp.n_layer;
    try {
        k_.assign(static_cast<size_t>(total), 0.0f);
        v_.assign(static_cast<size_t>(total), 0.0f);
    } catch (const std::bad_alloc &) {
        fail(EUROLLM_ERR_OUT_OF_MEMORY, "cannot allocate a KV cache of ", n_ctx, " tokens (",
             2 * total * 4 / (1 << 20), " MiB)");
    }
    layers_.stride = n_ctx;
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        layers_.k.push_back(k_.data() + l * per_layer);
        layers_.v.push_back(v_.data() + l * per_layer);
    }
}

}  // namespace eurollm
