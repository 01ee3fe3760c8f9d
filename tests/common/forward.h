// One sequence through llama_forward directly (below the C API): the runtime's cache placement,
// done here as the context does it, for tests that run the forward pass on a chosen backend.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "model/arch/llama.h"
#include "runtime/kv_cache.h"

namespace eurollm_test {

// Evaluates `tokens` at positions pos0.. of sequence 0 and writes the last row's logits.
inline void forward_last(const eurollm::model &m, eurollm::backend &be, eurollm::kv_cache &cache,
                         eurollm::llama_scratch &s, const std::vector<int32_t> &tokens, int32_t pos0, float *logits) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    std::vector<int32_t> pos(tokens.size()), seq(tokens.size(), 0);
    std::iota(pos.begin(), pos.end(), pos0);
    eurollm::kv_cache::placement pl;
    cache.place(seq.data(), pos.data(), n, m.hp.sliding_window, pl);
    std::vector<uint8_t> output(tokens.size(), 0);
    output.back() = 1;
    eurollm::llama_batch b;
    b.tokens = tokens.data();
    b.pos = pos.data();
    b.cell = pl.cell.data();
    b.visible = pl.visible.data();
    b.visible_begin = pl.visible_begin.data();
    b.output = output.data();
    b.n = n;
    eurollm::llama_forward(m, be, b, cache.layers(), s, eurollm::llama_output::logits, logits);
}

}  // namespace eurollm_test
