// y = x * w^T for f32 activations and f32/f16/bf16 weights, accumulated in f32.
// Each output row j streams weight row j once and reuses it for up to four activation rows, which
// serves both decode (n = 1, bandwidth bound) and prefill. Cache blocking for large n comes with
// the CPU speed work.
#include <algorithm>

#include "common/math.h"
#include "cpu/isa.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports its own masked-load intrinsics as reading uninitialised values (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace eurollm::kernels {
namespace {

template <typename W>
float load_w(const W *w, int64_t k);
template <>
inline float load_w<float>(const float *w, int64_t k) { return w[k]; }

struct f16_t { uint16_t v; };
struct bf16_t { uint16_t v; };
template <>
inline float load_w<f16_t>(const f16_t *w, int64_t k) { return kmath::f16_to_f32(w[k].v); }
template <>
inline float load_w<bf16_t>(const bf16_t *w, int64_t k) { return kmath::bf16_to_f32(w[k].v); }

template <typename W>
void matmul_scalar(const float *x, int64_t n, int64_t k, const W *w, const float *bias, int64_t j0, int64_t j1,
                   float *y, int64_t ldy) {
    for (int64_t j = j0; j < j1; ++j) {
        const W *wr = w + j * k;
        for (int64_t i = 0; i < n; ++i) {
            const float *xr = x + i * k;
            float acc = 0.0f;
            for (int64_t c = 0; c < k; ++c) acc += xr[c] * load_w(wr, c);
            y[i * ldy + j] = acc + (bias ? bias[j] : 0.0f);
        }
    }
}

#if defined(__x86_64__)

// ---- AVX-512: 16 lanes; the k tail is masked ----
#define EUROLLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

EUROLLM_AVX512 inline __m512 w16(const float *w, __mmask16 m) { return _mm512_maskz_loadu_ps(m, w); }
EUROLLM_AVX512 inline __m512 w16(const f16_t *w, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w));
}
EUROLLM_AVX512 inline __m512 w16(const bf16_t *w, __mmask16 m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

template <typename W, int R>
EUROLLM_AVX512 void dot_rows_avx512(const float *x, int64_t k, const W *wr, float *out) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < k; c += 16) {
        const __mmask16 m = k - c >= 16 ? static_cast<__mmask16>(0xffff)
                                        : static_cast<__mmask16>((1u << (k - c)) - 1u);
        const __m512 wv = w16(wr + c, m);
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + r * k + c), wv, acc[r]);
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

template <typename W>
EUROLLM_AVX512 void matmul_avx512(const float *x, int64_t n, int64_t k, const W *w, const float *bias, int64_t j0,
                                  int64_t j1, float *y, int64_t ldy) {
    float out[4];
    for (int64_t j = j0; j < j1; ++j) {
        const W *wr = w + j * k;
        const float b = bias ? bias[j] : 0.0f;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) {
            dot_rows_avx512<W, 4>(x + i * k, k, wr, out);
            for (int r = 0; r < 4; ++r) y[(i + r) * ldy + j] = out[r] + b;
        }
        for (; i < n; ++i) {
            dot_rows_avx512<W, 1>(x + i * k, k, wr, out);
            y[i * ldy + j] = out[0] + b;
        }
    }
}

// ---- AVX2: 8 lanes; the k tail is scalar ----
#define EUROLLM_AVX2 __attribute__((target("avx2,fma,f16c")))

EUROLLM_AVX2 inline __m256 w8(const float *w) { return _mm256_loadu_ps(w); }
EUROLLM_AVX2 inline __m256 w8(const f16_t *w) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w)));
}
EUROLLM_AVX2 inline __m256 w8(const bf16_t *w) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

EUROLLM_AVX2 inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <typename W, int R>
EUROLLM_AVX2 void dot_rows_avx2(const float *x, int64_t k, const W *wr, float *out) {
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= k; c += 8) {
        const __m256 wv = w8(wr + c);
        for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + c), wv, acc[r]);
    }
    for (int r = 0; r < R; ++r) {
        float s = hsum8(acc[r]);
        for (int64_t t = c; t < k; ++t) s += x[r * k + t] * load_w(wr, t);
        out[r] = s;
    }
}

template <typename W>
EUROLLM_AVX2 void matmul_avx2(const float *x, int64_t n, int64_t k, const W *w, const float *bias, int64_t j0,
                              int64_t j1, float *y, int64_t ldy) {
    float out[4];
    for (int64_t j = j0; j < j1; ++j) {
        const W *wr = w + j * k;
        const float b = bias ? bias[j] : 0.0f;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) {
            dot_rows_avx2<W, 4>(x + i * k, k, wr, out);
            for (int r = 0; r < 4; ++r) y[(i + r) * ldy + j] = out[r] + b;
        }
        for (; i < n; ++i) {
            dot_rows_avx2<W, 1>(x + i * k, k, wr, out);
            y[i * ldy + j] = out[0] + b;
        }
    }
}
#endif  // __x86_64__

template <typename W>
void matmul_typed(const float *x, int64_t n, int64_t k, const void *w, const float *bias, int64_t j0, int64_t j1,
                  float *y, int64_t ldy) {
    const W *wt = static_cast<const W *>(w);
#if defined(__x86_64__)
    switch (cpu_isa()) {
        case isa::avx512: return matmul_avx512<W>(x, n, k, wt, bias, j0, j1, y, ldy);
        case isa::avx2: return matmul_avx2<W>(x, n, k, wt, bias, j0, j1, y, ldy);
        default: break;
    }
#endif
    matmul_scalar<W>(x, n, k, wt, bias, j0, j1, y, ldy);
}

}  // namespace

void matmul_rows(const float *x, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy) {
    switch (wt) {
        case wtype::f32: return matmul_typed<float>(x, n, k, w, bias, j0, j1, y, ldy);
        case wtype::f16: return matmul_typed<f16_t>(x, n, k, w, bias, j0, j1, y, ldy);
        case wtype::bf16: return matmul_typed<bf16_t>(x, n, k, w, bias, j0, j1, y, ldy);
    }
}

}  // namespace eurollm::kernels
