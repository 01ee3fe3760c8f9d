// y = x * w^T for f32 activations and f32/f16/bf16 weights, accumulated in f32.
//
// Both operands are row-major in k, so every output is a dot product of two contiguous rows. The
// product is computed in register tiles of RX activation rows x RW weight rows: each weight vector
// loaded is used RX times and each activation vector RW times, the sums are reduced horizontally
// once per tile. Cache blocking: activation rows are taken in blocks that fit in L2 and, for each
// block, the caller's range of weight rows is streamed once; the RW weight rows of a tile stay in
// L1 while the block's activation rows pass over them. Decode (n = 1) is bandwidth-bound: a tile
// takes one row from each of RW parts of a run of rows (RX = 1). Every output is one chain of
// products in k order, reduced horizontally in one fixed order, so its bits do not depend on the
// tile it was computed in.
//
// Activations are prepared once per product (matmul_prepare): copied into zero-padded rows, and for
// bf16 weights on AVX512-BF16 either rounded to bf16 (act_precision::round) or, for the exact
// product on CPUs where it is faster (Zen 4: twice the rate of f32 FMAs on converted weights),
// split into two bf16 halves x = hi + lo (hi = bf16(x), lo = bf16(x - hi)), so `vdpbf16ps` keeps 16
// mantissa bits of the activations (relative error ~2^-17, within the 1e-4 float32 tolerance the
// model tests use). Elsewhere the exact product is f32 FMAs on the weights converted to f32.
#include <algorithm>
#include <new>
#include <cstring>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports its own masked-load intrinsics as reading uninitialised values (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace eurollm::kernels {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---- prepared activations -----------------------------------------------------------------------
// f32 layout: rows of kpp floats, zero-padded.
// bf16x2 layout (act_precision::split): rows of 2 * kpp uint16: hi[kpp] then lo[kpp], zero-padded.
// bf16x1 layout (act_precision::round): rows of kpp uint16, zero-padded.
// kpp = round_up(k, 32) plus one 64-byte line: rows (and a split row's halves) a multiple of 4 KiB
// apart, as k = 2048 gives in bf16, fall in the same L1 sets, where a 4-row tile's 8 activation
// lines and its 4 weight lines then compete for 8 ways (Zen 4, 512 x 2048 x 5632, bf16 split:
// 121 -> 202 GFLOP/s with the extra line).
// Without AVX512-BF16 both precisions use the f32 layout (exact, and no slower on FMA hardware);
// so does split where f32 FMAs on converted weights are the faster exact product (isa.h).
enum class prep_kind { f32, bf16x2, bf16x1 };

prep_kind prep_for(wtype wt, act_precision p) {
    if (wt != wtype::bf16 || !cpu_features().avx512_bf16) return prep_kind::f32;
    if (p == act_precision::round) return prep_kind::bf16x1;
    return cpu_features().bf16_split_exact ? prep_kind::bf16x2 : prep_kind::f32;
}

// Elements per prepared row (per half for bf16x2).
int64_t padded_k(prep_kind p, int64_t k) { return round_up(k, 32) + (p == prep_kind::f32 ? 16 : 32); }

int64_t prep_row_bytes(prep_kind p, int64_t k) {
    const int64_t kpp = padded_k(p, k);
    return p == prep_kind::bf16x1 ? kpp * 2 : kpp * 4;
}

// ---- scalar reference ----------------------------------------------------------------------------
float w_at(const void *w, wtype wt, int64_t i) {
    switch (wt) {
        case wtype::f16: return kmath::f16_to_f32(static_cast<const uint16_t *>(w)[i]);
        case wtype::bf16: return kmath::bf16_to_f32(static_cast<const uint16_t *>(w)[i]);
        default: return static_cast<const float *>(w)[i];
    }
}

void matmul_scalar(const float *x, int64_t xs, int64_t n, int64_t k, const void *w, wtype wt, const float *bias,
                   int64_t j0, int64_t j1, float *y, int64_t ldy) {
    for (int64_t j = j0; j < j1; ++j) {
        for (int64_t i = 0; i < n; ++i) {
            const float *xr = x + i * xs;
            float acc = 0.0f;
            for (int64_t c = 0; c < k; ++c) acc += xr[c] * w_at(w, wt, j * k + c);
            y[i * ldy + j] = acc + (bias ? bias[j] : 0.0f);
        }
    }
}

using detail::tiled_matmul;

#if defined(__x86_64__)

#define EUROLLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define EUROLLM_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define EUROLLM_AVX2 __attribute__((target("avx2,fma,f16c")))
// The register tiles' loops over rows and columns, unrolled at every optimization level: without
// it -O2 (RelWithDebInfo, bench/ceilings.sh) kept the accumulators in memory (bf16 split GEMM on
// Zen 4: 55 against 190 GFLOP/s at -O3).
#define EUROLLM_UNROLL _Pragma("GCC unroll 8")

// Four vectors -> their four horizontal sums.
EUROLLM_AVX512 inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    const __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    const __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    const __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    const __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

template <int RX, int RW>
EUROLLM_AVX512 inline void store_tile(__m512 (&acc)[RX][RW], float *out) {
    EUROLLM_UNROLL
    for (int r = 0; r < RX; ++r) {
        if constexpr (RW == 4) {
            _mm_storeu_ps(out + r * 4, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        } else {
            // Each sum in reduce4's order, so that a result does not depend on the tile width.
            EUROLLM_UNROLL
            for (int c = 0; c < RW; ++c)
                out[r * RW + c] = _mm_cvtss_f32(reduce4(acc[r][c], acc[r][c], acc[r][c], acc[r][c]));
        }
    }
}


// The rw weight rows' last partial step (k - whole elements each, whole = k rounded down to STEP)
// copied into zero-padded vectors, so that a kernel's loop loads whole vectors everywhere: a masked
// load costs more than a plain one on Zen 4 (bf16 split, 512 x 2048 x 5632: 140 -> 190 GFLOP/s).
// Returns whole.
template <int STEP, int rw, typename W>
inline int64_t copy_last_step(const W *w, int64_t ws, int64_t k, W (&tail)[rw][STEP]) {
    const int64_t whole = k / STEP * STEP;
    for (int c = 0; k > whole && c < rw; ++c)  // (w may be null when there is nothing to copy)
        std::memcpy(tail[c], w + c * ws + whole, static_cast<size_t>(k - whole) * sizeof(W));
    return whole;
}

// ---- AVX512-BF16: bf16 weights against TERMS-term bf16 activations (2: hi, lo; 1: rounded) ----
template <int N_TERMS>
struct bf16_kernel {
    static constexpr int TERMS = N_TERMS;
    using xt = uint16_t;  // rows: hi[kpp] (, lo[kpp])
    using wt = uint16_t;
    // Accumulators + weight vectors within the 32 zmm registers.
    static constexpr int RX = TERMS == 2 ? 4 : 6, RW = 4;

    template <int rx, int rw>
    EUROLLM_AVX512BF16 static void tile(const uint16_t *x, int64_t xs, int64_t k, const uint16_t *w, int64_t ws,
                                       float *out) {
        const int64_t kp = xs / TERMS;
        __m512 acc[rx][rw];
        EUROLLM_UNROLL
        for (int r = 0; r < rx; ++r)
            EUROLLM_UNROLL
            for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_setzero_ps();
        // Plain loads in one branch-free loop (copy_last_step): a branch, lambda or helper around
        // `acc` makes GCC keep the accumulators in memory and store all of them every step.
        alignas(64) uint16_t tail[rw][32] = {};
        const int64_t whole = copy_last_step(w, ws, k, tail);
        for (int64_t e = 0; e < k; e += 32) {
            __m512bh wv[rw];
            EUROLLM_UNROLL
            for (int c = 0; c < rw; ++c)
                wv[c] = (__m512bh)_mm512_loadu_si512(e < whole ? w + c * ws + e : tail[c]);
            EUROLLM_UNROLL
            for (int r = 0; r < rx; ++r) {
                const __m512bh hi = (__m512bh)_mm512_loadu_si512(x + r * xs + e);
                EUROLLM_UNROLL
                for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], hi, wv[c]);
                if constexpr (TERMS == 2) {
                    const __m512bh lo = (__m512bh)_mm512_loadu_si512(x + r * xs + kp + e);
                    EUROLLM_UNROLL
                    for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], lo, wv[c]);
                }
            }
        }
        store_tile<rx, rw>(acc, out);
    }
};

// ---- AVX-512 F: f32 activations against f32 / f16 / bf16 weights converted to f32 ----
template <typename W>
EUROLLM_AVX512 inline __m512 load16(const W *w);
template <>
EUROLLM_AVX512 inline __m512 load16<float>(const float *w) { return _mm512_loadu_ps(w); }
template <>
EUROLLM_AVX512 inline __m512 load16<uint16_t>(const uint16_t *w) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(w)));  // f16
}
struct bf16_tag { uint16_t v; };
template <>
EUROLLM_AVX512 inline __m512 load16<bf16_tag>(const bf16_tag *w) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(w)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

template <typename W>
struct f32x_kernel {
    using xt = float;
    using wt = W;
    static constexpr int RX = 6, RW = 4;

    template <int rx, int rw>
    EUROLLM_AVX512 static void tile(const float *x, int64_t xs, int64_t k, const W *w, int64_t ws, float *out) {
        __m512 acc[rx][rw];
        EUROLLM_UNROLL
        for (int r = 0; r < rx; ++r)
            EUROLLM_UNROLL
            for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_setzero_ps();
        // As in bf16_kernel: one branch-free loop of plain loads.
        alignas(64) W tail[rw][16] = {};
        const int64_t whole = copy_last_step(w, ws, k, tail);
        for (int64_t e = 0; e < k; e += 16) {
            __m512 wv[rw];
            EUROLLM_UNROLL
            for (int c = 0; c < rw; ++c) wv[c] = load16<W>(e < whole ? w + c * ws + e : tail[c]);
            EUROLLM_UNROLL
            for (int r = 0; r < rx; ++r) {
                const __m512 xv = _mm512_loadu_ps(x + r * xs + e);
                EUROLLM_UNROLL
                for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
            }
        }
        store_tile<rx, rw>(acc, out);
    }
};

// ---- AVX2: f32 activations, 8 lanes ----
template <typename W>
EUROLLM_AVX2 inline __m256 load8(const W *w);
template <>
EUROLLM_AVX2 inline __m256 load8<float>(const float *w) { return _mm256_loadu_ps(w); }
template <>
EUROLLM_AVX2 inline __m256 load8<uint16_t>(const uint16_t *w) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w)));
}
template <>
EUROLLM_AVX2 inline __m256 load8<bf16_tag>(const bf16_tag *w) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

EUROLLM_AVX2 inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <typename W>
float w_scalar(const W *w, int64_t i);
template <>
inline float w_scalar<float>(const float *w, int64_t i) { return w[i]; }
template <>
inline float w_scalar<uint16_t>(const uint16_t *w, int64_t i) { return kmath::f16_to_f32(w[i]); }
template <>
inline float w_scalar<bf16_tag>(const bf16_tag *w, int64_t i) { return kmath::bf16_to_f32(w[i].v); }

template <typename W>
struct avx2_kernel {
    using xt = float;
    using wt = W;
    static constexpr int RX = 4, RW = 2;

    template <int rx, int rw>
    EUROLLM_AVX2 static void tile(const float *x, int64_t xs, int64_t k, const W *w, int64_t ws, float *out) {
        __m256 acc[rx][rw];
        for (int r = 0; r < rx; ++r)
            for (int c = 0; c < rw; ++c) acc[r][c] = _mm256_setzero_ps();
        int64_t e = 0;
        for (; e + 8 <= k; e += 8) {
            __m256 wv[rw];
            for (int c = 0; c < rw; ++c) wv[c] = load8<W>(w + c * ws + e);
            for (int r = 0; r < rx; ++r) {
                const __m256 xv = _mm256_loadu_ps(x + r * xs + e);
                for (int c = 0; c < rw; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
            }
        }
        for (int r = 0; r < rx; ++r)
            for (int c = 0; c < rw; ++c) {
                float s = hsum8(acc[r][c]);
                for (int64_t t = e; t < k; ++t) s += x[r * xs + t] * w_scalar<W>(w + c * ws, t);
                out[r * rw + c] = s;
            }
    }
};

#endif  // __x86_64__

template <template <typename> class K>
void float_weights(const float *x, int64_t xs, int64_t n, int64_t k, const void *w, wtype wt, const float *bias,
                   int64_t j0, int64_t j1, float *y, int64_t ldy) {
    switch (wt) {
        case wtype::f32:
            return tiled_matmul<K<float>>(x, xs, n, k, static_cast<const float *>(w), k, bias, j0, j1, y, ldy);
        case wtype::f16:
            return tiled_matmul<K<uint16_t>>(x, xs, n, k, static_cast<const uint16_t *>(w), k, bias, j0, j1, y, ldy);
        case wtype::bf16:
            return tiled_matmul<K<bf16_tag>>(x, xs, n, k, static_cast<const bf16_tag *>(w), k, bias, j0, j1, y, ldy);
        default: break;
    }
}

}  // namespace

// ---- public entry points -------------------------------------------------------------------------

size_t matmul_prep_bytes(wtype wt, int64_t n, int64_t k, act_precision p) {
    if (wtype_is_quantized(wt)) return detail::quant_prep_bytes(wt, n, k);
    return static_cast<size_t>(n * prep_row_bytes(prep_for(wt, p), k));
}

void matmul_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep, act_precision p) {
    if (wtype_is_quantized(wt)) return detail::quant_prepare(x, k, wt, i0, i1, prep);
    const prep_kind kind = prep_for(wt, p);
    const int64_t kpp = padded_k(kind, k);
    if (kind == prep_kind::f32) {
        float *p = static_cast<float *>(prep);
        for (int64_t i = i0; i < i1; ++i) {
            std::memcpy(p + i * kpp, x + i * k, static_cast<size_t>(k) * sizeof(float));
            std::fill(p + i * kpp + k, p + (i + 1) * kpp, 0.0f);
        }
        return;
    }
    uint16_t *rows = static_cast<uint16_t *>(prep);
    if (kind == prep_kind::bf16x1) {
        for (int64_t i = i0; i < i1; ++i) {
            uint16_t *r = rows + i * kpp;
            const float *xr = x + i * k;
            for (int64_t c = 0; c < k; ++c) r[c] = kmath::f32_to_bf16(xr[c]);
            std::fill(r + k, r + kpp, static_cast<uint16_t>(0));
        }
        return;
    }
    for (int64_t i = i0; i < i1; ++i) {
        uint16_t *hi = rows + i * 2 * kpp, *lo = hi + kpp;
        const float *xr = x + i * k;
        for (int64_t c = 0; c < k; ++c) {
            hi[c] = kmath::f32_to_bf16(xr[c]);
            lo[c] = kmath::f32_to_bf16(xr[c] - kmath::bf16_to_f32(hi[c]));
        }
        std::fill(hi + k, hi + kpp, static_cast<uint16_t>(0));
        std::fill(lo + k, lo + kpp, static_cast<uint16_t>(0));
    }
}

void matmul_prepared(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                     int64_t j1, float *y, int64_t ldy, act_precision p) {
    if (wtype_is_quantized(wt)) return detail::quant_matmul(prep, n, k, w, wt, bias, j0, j1, y, ldy);
    const prep_kind kind = prep_for(wt, p);
    const int64_t kpp = padded_k(kind, k);
#if defined(__x86_64__)
    if (kind == prep_kind::bf16x2)
        return tiled_matmul<bf16_kernel<2>>(static_cast<const uint16_t *>(prep), 2 * kpp, n, k,
                                            static_cast<const uint16_t *>(w), k, bias, j0, j1, y, ldy);
    if (kind == prep_kind::bf16x1)
        return tiled_matmul<bf16_kernel<1>>(static_cast<const uint16_t *>(prep), kpp, n, k,
                                            static_cast<const uint16_t *>(w), k, bias, j0, j1, y, ldy);
    const float *x = static_cast<const float *>(prep);
    switch (cpu_isa()) {
        case isa::avx512: return float_weights<f32x_kernel>(x, kpp, n, k, w, wt, bias, j0, j1, y, ldy);
        case isa::avx2: return float_weights<avx2_kernel>(x, kpp, n, k, w, wt, bias, j0, j1, y, ldy);
        default: break;
    }
#endif
    matmul_scalar(static_cast<const float *>(prep), kpp, n, k, w, wt, bias, j0, j1, y, ldy);
}

void matmul_rows(const float *x, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy, act_precision p) {
    thread_local aligned_buffer buf;
    void *prep = buf.get(matmul_prep_bytes(wt, n, k, p));
    if (!prep) throw std::bad_alloc();  // the callers' API boundary turns it into OUT_OF_MEMORY
    matmul_prepare(x, k, wt, 0, n, prep, p);
    matmul_prepared(prep, n, k, w, wt, bias, j0, j1, y, ldy, p);
}

}  // namespace eurollm::kernels
