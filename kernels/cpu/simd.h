// The x86 SIMD prologue of the CPU kernels' translation units: the intrinsics, the warnings GCC 12
// gets wrong on them, the mask of a vector's tail, a vector exp and the softmax sum built on it.
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

// exp(x) = 2^k * p(r), k = round(x / ln 2), r = x - k ln 2 (ln 2 in two parts), p of degree 6;
// scalef gives 0 / inf past the f32 range. NaN stays NaN.
__attribute__((target("avx512f"))) inline __m512 exp16(__m512 x) {
    const __m512 xc = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-104.0f));
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), xc);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428606765330187045e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512 e = _mm512_scalef_ps(p, k);
    return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// dst[0, n) = exp(src[0, n) - m), 16 at a time (dst may be src, or null when only the sum is
// wanted); returns the sum of the exps, accumulated in double per lane (16 lanes, two vectors).
__attribute__((target("avx512f"))) inline double exp_sum16(const float *src, float *dst, int64_t n, float m) {
    const __m512 mv = _mm512_set1_ps(m);
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (int64_t t = 0; t < n; t += 16) {
        const __mmask16 k = tail_mask16(n - t);
        const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, src + t), mv)));
        if (dst) _mm512_mask_storeu_ps(dst + t, k, e);
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

}  // namespace eurollm::kernels
#endif
