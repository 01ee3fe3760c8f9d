// A non-owning view of a 1-D or 2-D weight tensor, as the backends consume it.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace eurollm {

using kernels::wtype;

struct tensor_ref {
    const void *data = nullptr;
    wtype type = wtype::f32;
    int64_t rows = 0;  // 1 for vectors
    int64_t cols = 0;
    // The same q8_0/q4_0 matrix in the CPU kernels' packed layout (kernels::pack_weight_groups),
    // made at load for the products; null for other types. `data` stays the canonical copy.
    const void *packed = nullptr;

    explicit operator bool() const { return data != nullptr; }
};

inline const char *wtype_name(wtype t) {
    switch (t) {
        case wtype::f16: return "F16";
        case wtype::bf16: return "BF16";
        case wtype::q8_0: return "Q8_0";
        case wtype::q4_0: return "Q4_0";
        case wtype::q4_k: return "Q4_K";
        case wtype::q6_k: return "Q6_K";
        default: return "F32";
    }
}

}  // namespace eurollm
