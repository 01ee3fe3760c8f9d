// The key/value cache of one context: per layer [n_head_kv, n_ctx, head_dim] f32, slot = position.
#pragma once

#include <cstdint>
#include <vector>

#include "model/arch/llama.h"
#include "model/hparams.h"

namespace eurollm {

class kv_cache {
public:
    kv_cache(const hparams &hp, int64_t n_ctx);

    int64_t n_ctx() const { return n_ctx_; }
    kv_layers &layers() { return layers_; }

private:
    int64_t n_ctx_;
    std::vector<float> k_, v_;
    kv_layers layers_;
};

}  // namespace eurollm
