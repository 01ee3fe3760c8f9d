// The x86 SIMD prologue of the training kernels' translation units: the intrinsics, the warnings
// GCC 12 gets wrong on them, and the mask of a vector's tail.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports its own masked-load intrinsics as reading uninitialised values (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace eurollm::kernels {

// Lanes [0, min(16, rest)) of a 16-lane vector; none when rest <= 0.
inline __mmask16 tail_mask16(int64_t rest) {
    return rest >= 16 ? static_cast<__mmask16>(0xffff)
                      : rest > 0 ? static_cast<__mmask16>((1u << rest) - 1u) : static_cast<__mmask16>(0);
}

}  // namespace eurollm::kernels
#endif
