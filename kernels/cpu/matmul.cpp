// y = x * w^T for f32 activations and f32/f16/bf16 weights (and q4_k/q6_k weights dequantized as
// they load, for matmul_quant.cpp), accumulated in f32.
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
#include <type_traits>

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

using detail::block_q4_k;
using detail::block_q6_k;

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

// ---- the tiled driver, shared by the SIMD kernels -------------------------------------------------
// K provides RX, RW and tile<rx, rw>(x rows, x stride, k, w rows, w stride, out[rx * rw]).
template <class K, int RW, int R = K::RX>
inline void tile_rows(int rx, const typename K::xt *x, int64_t xs, int64_t k, const typename K::wt *w, int64_t ws,
                      float *out) {
    if constexpr (R >= 1) {
        if (rx == R) return K::template tile<R, RW>(x, xs, k, w, ws, out);
        tile_rows<K, RW, R - 1>(rx, x, xs, k, w, ws, out);
    }
}

// Decode takes the range in runs of this many rows, cut into RW parts: parts far apart read slower
// (Zen 4, bf16 GEMV of 5632 x 2048 on 2 threads, parts 704 rows apart: 22 GB/s; runs of 64 or
// 256 rows: 27-29 GB/s, 0.9-1.0 of one stream's read rate; model decode 10.9 -> 12.0 tok/s).
constexpr int64_t kDecodeRows = 256;
template <class K>
void tiled_matmul(const typename K::xt *x, int64_t xs, int64_t n, int64_t k, const typename K::wt *w, int64_t ws,
                  const float *bias, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    constexpr int RX = K::RX, RW = K::RW;
    if (n == 1) {
        // Decode: each run of kDecodeRows rows is cut into RW equal parts and a tile takes one row of
        // each, so every thread reads RW sequential streams, which the hardware prefetchers follow,
        // and the tile has RW independent accumulator chains in flight. Adjacent rows side by side (RW
        // streams hopping over each other's rows) and one row at a time (one chain, two dependent
        // vdpbf16ps per line in the split product) both read slower (Zen 4, 1.7B shapes, bf16
        // split GEMV: adjacent pairs 26 GB/s, one row 32-36, four parts 41-46). Software prefetch
        // made the whole model's decode slower here (bf16 10.0-11.3 -> 11.5-12.5 tok/s without it).
        for (int64_t jb = j0; jb < j1; jb += kDecodeRows) {
            const int64_t je = std::min(j1, jb + kDecodeRows), part = (je - jb) / RW;
            for (int64_t i = 0; i < part; ++i) {
                float out[RW];
                K::template tile<1, RW>(x, xs, k, w + (jb + i) * ws, part * ws, out);
                for (int c = 0; c < RW; ++c) {
                    const int64_t j = jb + c * part + i;
                    y[j] = out[c] + (bias ? bias[j] : 0.0f);
                }
            }
            for (int64_t j = jb + RW * part; j < je; ++j) {
                float one;
                K::template tile<1, 1>(x, xs, k, w + j * ws, ws, &one);
                y[j] = one + (bias ? bias[j] : 0.0f);
            }
        }
        return;
    }
    // Activation rows per block: about 512 KiB of them (half of a Zen 4 / Sapphire Rapids L2).
    const int64_t row_bytes = xs * static_cast<int64_t>(sizeof(typename K::xt));
    const int64_t ib = std::max<int64_t>(RX, (512 * 1024 / std::max<int64_t>(1, row_bytes)) / RX * RX);
    float out[RX * RW];
    for (int64_t i0 = 0; i0 < n; i0 += ib) {
        const int64_t i1 = std::min(n, i0 + ib);
        int64_t j = j0;
        for (; j < j1; j += RW) {
            const int rw = static_cast<int>(std::min<int64_t>(RW, j1 - j));
            for (int64_t i = i0; i < i1; i += RX) {
                const int rx = static_cast<int>(std::min<int64_t>(RX, i1 - i));
                if (rw == RW) tile_rows<K, RW>(rx, x + i * xs, xs, k, w + j * ws, ws, out);
                else
                    for (int c = 0; c < rw; ++c) {
                        float one[RX];
                        tile_rows<K, 1>(rx, x + i * xs, xs, k, w + (j + c) * ws, ws, one);
                        for (int r = 0; r < rx; ++r) out[r * RW + c] = one[r];
                    }
                for (int r = 0; r < rx; ++r)
                    for (int c = 0; c < rw; ++c)
                        y[(i + r) * ldy + j + c] = out[r * RW + c] + (bias ? bias[j + c] : 0.0f);
            }
        }
    }
}

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

// ---- AVX-512 F: q4_k / q6_k weights dequantized to f32 16 at a time, in registers ----
// Each value as dequantize_row computes it: q4_k (d * sc) * q - dmin * m, q6_k (d * sc) * q, one
// rounding per operation. The products then run as f32x_kernel's on the dequantized rows, so they
// have the same bits; decode reads 0.56 (q4_k) or 0.82 (q6_k) bytes per weight instead of
// dequantizing rows into memory first.

// q4_k: the 16 values a 4-bit quant can take in each of the block's 8 sub-blocks of 32 elements,
// so that a step of 16 elements is one vpermps (Zen 4, 1.7B q4_k decode: 1.5x over converting
// and scaling every element).
struct q4k_block_values {
    __m512 v[8];
};
EUROLLM_AVX512 inline void block_values(const block_q4_k &b, q4k_block_values &t) {
    // The 8 six-bit scales and mins (get_scale_min_k4) as bytes [sc 0-7, m 0-7]: sub-blocks 0-3
    // are the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 take their low 4 bits from the
    // nibbles of bytes 8-11 and their top 2 from the top bits of bytes 0-3 / 4-7. (The 16-byte load
    // ends inside qs.)
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
    const __m128i a = _mm_shuffle_epi8(raw, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i top = _mm_and_si128(
        _mm_srli_epi16(_mm_shuffle_epi8(raw, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7)), 2),
        _mm_set1_epi8(0x30));
    const __m128i nib = _mm_set1_epi8(0x0F);
    __m128i bytes = _mm_and_si128(a, _mm_set1_epi8(63));
    bytes = _mm_mask_mov_epi8(bytes, 0x00F0, _mm_or_si128(_mm_and_si128(a, nib), top));
    bytes = _mm_mask_mov_epi8(bytes, 0xF000, _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), nib), top));
    const __m512 dd = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(_cvtsh_ss(b.d)), _mm512_set1_ps(_cvtsh_ss(b.dmin)));
    alignas(64) float dm[16];  // d * sc 0-7, dmin * m 0-7
    _mm512_store_ps(dm, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)), dd));
    const __m512 q = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // d * sc * q is exact (at most 11 + 6 + 4 significant bits), so one fused operation rounds
    // d * sc * q - dmin * m as the scalar multiply-then-subtract does.
    for (int is = 0; is < 8; ++is) t.v[is] = _mm512_fmsub_ps(_mm512_set1_ps(dm[is]), q, _mm512_set1_ps(dm[8 + is]));
}

// Elements 16 s .. 16 s + 15 of the block (s a constant once the caller's loop is unrolled).
EUROLLM_AVX512 inline __m512 kq_load16(const block_q4_k &b, const q4k_block_values &t, int s) {
    // 64-element chunk j: low nibbles of qs[32 j ..] (sub-block 2 j), then their high nibbles.
    const int j = s / 4, high = (s / 2) % 2, l0 = (s % 2) * 16;
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs + 32 * j + l0));
    if (high) v = _mm_srli_epi16(v, 4);
    v = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    return _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(v), t.v[2 * j + high]);
}

// q6_k: d * sc for each 16-element step s (step s of the ggml order uses scale s).
struct q6k_block_values {
    alignas(64) float d[16];
};
EUROLLM_AVX512 inline void block_values(const block_q6_k &b, q6k_block_values &t) {
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
    _mm512_store_ps(t.d, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b.d)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc))));
}

EUROLLM_AVX512 inline __m512 kq_load16(const block_q6_k &b, const q6k_block_values &t, int s) {
    // Low 4 bits from ql (high nibbles for quarters 2, 3), top 2 bits from qh (bits 2 quarter and
    // 2 quarter + 1), minus 32.
    const int h = s / 8, quarter = (s % 8) / 2, l0 = (s % 2) * 16;
    __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.ql + 64 * h + (quarter % 2) * 32 + l0));
    if (quarter >= 2) lo = _mm_srli_epi16(lo, 4);
    lo = _mm_and_si128(lo, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qh + 32 * h + l0));
    hi = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hi, 2 * quarter), _mm_set1_epi8(0x03)), 4);
    const __m128i q = _mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32));
    return _mm512_mul_ps(_mm512_set1_ps(t.d[s]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
}

template <typename B>
struct kquant_values;
template <>
struct kquant_values<block_q4_k> {
    using type = q4k_block_values;
};
template <>
struct kquant_values<block_q6_k> {
    using type = q6k_block_values;
};

template <typename B>
struct kquant_kernel {
    using xt = float;
    using wt = B;  // a row is k / 256 blocks
    static constexpr int RX = 4, RW = 4;

    template <int rx, int rw>
    EUROLLM_AVX512 static void tile(const float *x, int64_t xs, int64_t k, const B *w, int64_t ws, float *out) {
        __m512 acc[rx][rw];
        EUROLLM_UNROLL
        for (int r = 0; r < rx; ++r)
            EUROLLM_UNROLL
            for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_setzero_ps();
        for (int64_t b = 0; b < k / 256; ++b) {
            typename kquant_values<B>::type sc[rw];
            EUROLLM_UNROLL
            for (int c = 0; c < rw; ++c) block_values(w[c * ws + b], sc[c]);
            _Pragma("GCC unroll 16")
            for (int s = 0; s < 16; ++s) {
                __m512 wv[rw];
                EUROLLM_UNROLL
                for (int c = 0; c < rw; ++c) wv[c] = kq_load16(w[c * ws + b], sc[c], s);
                EUROLLM_UNROLL
                for (int r = 0; r < rx; ++r) {
                    const __m512 xv = _mm512_loadu_ps(x + r * xs + b * 256 + s * 16);
                    EUROLLM_UNROLL
                    for (int c = 0; c < rw; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
                }
            }
        }
        store_tile<rx, rw>(acc, out);
    }
};

template <typename B>
EUROLLM_AVX512 void dequantize_blocks(const B *w, int64_t blocks, float *out) {
    for (int64_t b = 0; b < blocks; ++b) {
        typename kquant_values<B>::type sc;
        block_values(w[b], sc);
        _Pragma("GCC unroll 16")
        for (int s = 0; s < 16; ++s) _mm512_storeu_ps(out + b * 256 + s * 16, kq_load16(w[b], sc, s));
    }
}

// ---- AVX2: q4_k / q6_k weights dequantized 8 at a time, as avx2_kernel's products on the
// dequantized rows (8 lanes, hsum8; k is a multiple of 256, so there is no scalar tail) ----
// q4_k: d * sc * q is exact (at most 11 + 6 + 4 significant bits), so the fused d * sc * q - dmin * m
// rounds as dequantize_row's multiply-then-subtract does; q6_k: (d * sc) * q, one rounding each.
struct kq_scales_avx2 {
    float d[16], m[16];  // per 16-element half-sub-block, as kq_load16's steps: q4_k sub-block s / 2
};
EUROLLM_AVX2 inline void block_scales_avx2(const block_q4_k &b, kq_scales_avx2 &t) {
    const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
    for (int is = 0; is < 8; ++is) {
        uint8_t sc, m;
        detail::get_scale_min_k4(is, b.scales, &sc, &m);
        t.d[2 * is] = t.d[2 * is + 1] = d * sc;
        t.m[2 * is] = t.m[2 * is + 1] = dmin * m;
    }
}
EUROLLM_AVX2 inline void block_scales_avx2(const block_q6_k &b, kq_scales_avx2 &t) {
    const float d = _cvtsh_ss(b.d);
    for (int st = 0; st < 16; ++st) t.d[st] = d * b.scales[st], t.m[st] = 0.0f;
}

// Elements 8 e .. 8 e + 7 of the block (e in 0-31; a constant once the caller's loop is unrolled).
EUROLLM_AVX2 inline __m256 kq_load8(const block_q4_k &b, const kq_scales_avx2 &t, int e) {
    const int j = e / 8, high = (e / 4) % 2, l0 = (e % 4) * 8;
    __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(b.qs + 32 * j + l0));
    if (high) v = _mm_srli_epi16(v, 4);
    v = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    return _mm256_fmsub_ps(_mm256_set1_ps(t.d[e / 2]), q, _mm256_set1_ps(t.m[e / 2]));
}
EUROLLM_AVX2 inline __m256 kq_load8(const block_q6_k &b, const kq_scales_avx2 &t, int e) {
    const int h = e / 16, quarter = (e % 16) / 4, l0 = (e % 4) * 8;
    __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(b.ql + 64 * h + (quarter % 2) * 32 + l0));
    if (quarter >= 2) lo = _mm_srli_epi16(lo, 4);
    lo = _mm_and_si128(lo, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(b.qh + 32 * h + l0));
    hi = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hi, 2 * quarter), _mm_set1_epi8(0x03)), 4);
    const __m128i q = _mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32));
    // Scale 8 h + l0 / 16 + 2 quarter: the 16-element step e / 2 of kq_load16.
    return _mm256_mul_ps(_mm256_set1_ps(t.d[e / 2]), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
}

template <typename B>
struct kquant_kernel_avx2 {
    using xt = float;
    using wt = B;
    static constexpr int RX = 4, RW = 2;

    template <int rx, int rw>
    EUROLLM_AVX2 static void tile(const float *x, int64_t xs, int64_t k, const B *w, int64_t ws, float *out) {
        __m256 acc[rx][rw];
        for (int r = 0; r < rx; ++r)
            for (int c = 0; c < rw; ++c) acc[r][c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 256; ++b) {
            kq_scales_avx2 sc[rw];
            for (int c = 0; c < rw; ++c) block_scales_avx2(w[c * ws + b], sc[c]);
            _Pragma("GCC unroll 32")
            for (int e = 0; e < 32; ++e) {
                __m256 wv[rw];
                for (int c = 0; c < rw; ++c) wv[c] = kq_load8(w[c * ws + b], sc[c], e);
                for (int r = 0; r < rx; ++r) {
                    const __m256 xv = _mm256_loadu_ps(x + r * xs + b * 256 + e * 8);
                    for (int c = 0; c < rw; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
                }
            }
        }
        for (int r = 0; r < rx; ++r)
            for (int c = 0; c < rw; ++c) out[r * rw + c] = hsum8(acc[r][c]);
    }
};

template <typename B>
EUROLLM_AVX2 void dequantize_blocks_avx2(const B *w, int64_t blocks, float *out) {
    for (int64_t b = 0; b < blocks; ++b) {
        kq_scales_avx2 sc;
        block_scales_avx2(w[b], sc);
        _Pragma("GCC unroll 32")
        for (int e = 0; e < 32; ++e) _mm256_storeu_ps(out + b * 256 + e * 8, kq_load8(w[b], sc, e));
    }
}

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

namespace detail {

namespace {
// f(block pointer) for q4_k / q6_k weights; false for any other type.
template <class F>
bool with_kquant_blocks(const void *w, wtype wt, F f) {
    if (wt == wtype::q4_k) return f(static_cast<const block_q4_k *>(w));
    if (wt == wtype::q6_k) return f(static_cast<const block_q6_k *>(w));
    return false;
}
}  // namespace

bool kquant_rows(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy) {
#if defined(__x86_64__)
    const float *x = static_cast<const float *>(prep);
    const int64_t kpp = padded_k(prep_kind::f32, k), blocks = k / 256;
    return with_kquant_blocks(w, wt, [&](const auto *wb) {
        using B = std::remove_const_t<std::remove_pointer_t<decltype(wb)>>;
        switch (cpu_isa()) {
            case isa::avx512:
                tiled_matmul<kquant_kernel<B>>(x, kpp, n, k, wb, blocks, bias, j0, j1, y, ldy);
                return true;
            case isa::avx2:
                tiled_matmul<kquant_kernel_avx2<B>>(x, kpp, n, k, wb, blocks, bias, j0, j1, y, ldy);
                return true;
            default: return false;
        }
    });
#else
    (void)prep, (void)n, (void)k, (void)w, (void)wt, (void)bias, (void)j0, (void)j1, (void)y, (void)ldy;
    return false;
#endif
}

bool kquant_dequantize(const void *w, wtype wt, int64_t k, int64_t rows, float *out) {
#if defined(__x86_64__)
    return with_kquant_blocks(w, wt, [&](const auto *wb) {
        switch (cpu_isa()) {
            case isa::avx512: dequantize_blocks(wb, rows * (k / 256), out); return true;
            case isa::avx2: dequantize_blocks_avx2(wb, rows * (k / 256), out); return true;
            default: return false;
        }
    });
#else
    (void)w, (void)wt, (void)k, (void)rows, (void)out;
    return false;
#endif
}

}  // namespace detail

void matmul_rows(const float *x, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy, act_precision p) {
    thread_local aligned_buffer buf;
    void *prep = buf.get(matmul_prep_bytes(wt, n, k, p));
    if (!prep) throw std::bad_alloc();  // the callers' API boundary turns it into OUT_OF_MEMORY
    matmul_prepare(x, k, wt, 0, n, prep, p);
    matmul_prepared(prep, n, k, w, wt, bias, j0, j1, y, ldy, p);
}

}  // namespace eurollm::kernels
