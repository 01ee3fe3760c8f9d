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

    explicit operator bool() const { return data != nullptr; }
};

inline const char *wtype_name(wtype t) {
    switch (t) {
        case wtype::f16: return "F16";
        case wtype::bf16: return "BF16";
        default: return "F32";
    }
}

}  // namespace eurollm
