// y = x * w^T for block-quantized weights.
//
// q8_0 / q4_0: the activations are quantized once per product to 8 bits per 32-element block
// (block_q8x), and each block pair is an integer dot product scaled by d_w * d_x, as in ggml. The
// integer dot is `vpdpbusd` (AVX512-VNNI on 256-bit registers, or AVX-VNNI) or `vpmaddubsw` +
// `vpmaddwd` on plain AVX2; it multiplies unsigned by signed bytes, so q8_0 uses |w| * sign(x, w)
// and q4_0 its unsigned nibbles with the -8 offset folded in through the activation block sums.
// Register tiles of RX activation rows x RW weight rows, as in matmul.cpp: every weight block
// unpacked serves RX rows, which is what makes prefill compute-bound instead of unpack-bound.
//
// q4_k / q6_k: weight rows are dequantized to f32 one tile at a time and multiplied in f32
// (correct, not yet tuned).
#include <algorithm>
#include <cstring>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace eurollm::kernels::detail {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---- scalar reference: the same integer arithmetic as the SIMD kernels ----------------------------
float dot_block_scalar(const block_q8_0 &w, const block_q8x &x) {
    int acc = 0;
    for (int j = 0; j < 32; ++j) acc += w.qs[j] * x.qs[j];
    return kmath::f16_to_f32(w.d) * x.d * static_cast<float>(acc);
}
float dot_block_scalar(const block_q4_0 &w, const block_q8x &x) {
    int acc = 0;
    for (int j = 0; j < 16; ++j) acc += (w.qs[j] & 0x0F) * x.qs[j] + (w.qs[j] >> 4) * x.qs[j + 16];
    return kmath::f16_to_f32(w.d) * (x.d * static_cast<float>(acc) - 8.0f * x.s);
}

template <typename B>
void quant_scalar(const block_q8x *x, int64_t n, int64_t kb, const B *w, const float *bias, int64_t j0, int64_t j1,
                  float *y, int64_t ldy) {
    for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = 0; i < n; ++i) {
            float acc = 0.0f;
            for (int64_t b = 0; b < kb; ++b) acc += dot_block_scalar(w[j * kb + b], x[i * kb + b]);
            y[i * ldy + j] = acc + (bias ? bias[j] : 0.0f);
        }
}

#if defined(__x86_64__)

#define EUROLLM_Q_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EUROLLM_Q_VNNI512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define EUROLLM_Q_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))

enum class idot { maddubs, vnni512, avxvnni };

// Decode streams each weight row once from memory; the integer dot products leave too few loads in
// flight for the hardware prefetcher alone, so each tile asks for its rows this far ahead
// (measured: 512 B gives ~1.25x on q8_0 / q4_0 rows streamed from DRAM; 256 and 1024 less).
constexpr int kPrefetchBytes = 512;

// Unsigned-by-signed byte dot products summed in groups of four into 8 int32 lanes.
template <idot D>
inline __m256i dot_u8s8(__m256i u, __m256i s);
template <>
EUROLLM_Q_AVX2 inline __m256i dot_u8s8<idot::maddubs>(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
template <>
EUROLLM_Q_VNNI512 inline __m256i dot_u8s8<idot::vnni512>(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}
template <>
EUROLLM_Q_AVXVNNI inline __m256i dot_u8s8<idot::avxvnni>(__m256i u, __m256i s) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
}

EUROLLM_Q_AVX2 inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The body, written once and compiled for each instruction choice (a target-specific intrinsic
// cannot be inlined into a function without that target, hence a macro rather than a helper).
#define EUROLLM_Q_TILE(NAME, TARGET, D)                                                                   \
    template <bool Q4, int rx, int rw>                                                                    \
    TARGET void NAME(const block_q8x *x, int64_t kb, const void *w, int64_t ws_blocks, float *out)        \
{                                                                                                                     \
    __m256 acc[rx][rw];                                                                                               \
    float corr[rx][rw];                                                                                               \
    for (int r = 0; r < rx; ++r)                                                                                      \
        for (int c = 0; c < rw; ++c) {                                                                                \
            acc[r][c] = _mm256_setzero_ps();                                                                          \
            corr[r][c] = 0.0f;                                                                                        \
        }                                                                                                             \
    for (int64_t b = 0; b < kb; ++b) {                                                                                \
        __m256i wu[rw], wsgn[rw];                                                                                     \
        float wd[rw];                                                                                                 \
        for (int c = 0; c < rw; ++c) {                                                                                \
            if constexpr (Q4) {                                                                                       \
                const block_q4_0 &blk = static_cast<const block_q4_0 *>(w)[c * ws_blocks + b];                        \
                _mm_prefetch(reinterpret_cast<const char *>(&blk)  + kPrefetchBytes, _MM_HINT_T0);                        \
                const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk.qs));                         \
                const __m128i m = _mm_set1_epi8(0x0F);                                                                \
                wu[c] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));                \
                wd[c] = _cvtsh_ss(blk.d);                                                                             \
            } else {                                                                                                  \
                const block_q8_0 &blk = static_cast<const block_q8_0 *>(w)[c * ws_blocks + b];                        \
                _mm_prefetch(reinterpret_cast<const char *>(&blk)  + kPrefetchBytes, _MM_HINT_T0);                        \
                wsgn[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk.qs));                              \
                wu[c] = _mm256_sign_epi8(wsgn[c], wsgn[c]);                                                         \
                wd[c] = _cvtsh_ss(blk.d);                                                                             \
            }                                                                                                         \
        }                                                                                                             \
        for (int r = 0; r < rx; ++r) {                                                                                \
            const block_q8x &xb = x[r * kb + b];                                                                      \
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xb.qs));                          \
            for (int c = 0; c < rw; ++c) {                                                                            \
                __m256i p;                                                                                            \
                if constexpr (Q4) {                                                                                   \
                    p = dot_u8s8<D>(wu[c], xq);                                                                       \
                    corr[r][c] += wd[c] * xb.s;                                                                       \
                } else {                                                                                              \
                    p = dot_u8s8<D>(wu[c], _mm256_sign_epi8(xq, wsgn[c]));                                            \
                }                                                                                                     \
                acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(wd[c] * xb.d), acc[r][c]);          \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    for (int r = 0; r < rx; ++r)                                                                                      \
        for (int c = 0; c < rw; ++c) out[r * rw + c] = hsum8(acc[r][c]) - (Q4 ? 8.0f * corr[r][c] : 0.0f);            \
}                                                                                                                     

EUROLLM_Q_TILE(tile_maddubs, EUROLLM_Q_AVX2, idot::maddubs)
EUROLLM_Q_TILE(tile_vnni512, EUROLLM_Q_VNNI512, idot::vnni512)
EUROLLM_Q_TILE(tile_avxvnni, EUROLLM_Q_AVXVNNI, idot::avxvnni)

template <idot D, bool Q4, int rx, int rw>
void tile(const block_q8x *x, int64_t kb, const void *w, int64_t ws, float *out) {
    if constexpr (D == idot::vnni512) tile_vnni512<Q4, rx, rw>(x, kb, w, ws, out);
    else if constexpr (D == idot::avxvnni) tile_avxvnni<Q4, rx, rw>(x, kb, w, ws, out);
    else tile_maddubs<Q4, rx, rw>(x, kb, w, ws, out);
}

template <idot D, bool Q4, int RW, int R>
void tile_rows(int rx, const block_q8x *x, int64_t kb, const void *w, int64_t ws, float *out) {
    if constexpr (R >= 1) {
        if (rx == R) return tile<D, Q4, R, RW>(x, kb, w, ws, out);
        tile_rows<D, Q4, RW, R - 1>(rx, x, kb, w, ws, out);
    }
}

template <idot D, bool Q4>
void quant_tiled(const block_q8x *x, int64_t n, int64_t kb, const void *w, const float *bias, int64_t j0, int64_t j1,
                 float *y, int64_t ldy) {
    // 32 vector registers with AVX-512 (VNNI on ymm16-31), 16 without.
    constexpr int RX = D == idot::vnni512 ? 4 : 2;
    constexpr int RW = 4;
    const int64_t wbytes = Q4 ? static_cast<int64_t>(sizeof(block_q4_0)) : static_cast<int64_t>(sizeof(block_q8_0));
    auto wrow = [&](int64_t j) { return static_cast<const uint8_t *>(w) + j * kb * wbytes; };
    const int64_t ib = std::max<int64_t>(RX, (512 * 1024 / (kb * 40)) / RX * RX);
    float out[RX * RW];
    for (int64_t i0 = 0; i0 < n; i0 += ib) {
        const int64_t i1 = std::min(n, i0 + ib);
        for (int64_t j = j0; j < j1; j += RW) {
            const int rw = static_cast<int>(std::min<int64_t>(RW, j1 - j));
            for (int64_t i = i0; i < i1; i += RX) {
                const int rx = static_cast<int>(std::min<int64_t>(RX, i1 - i));
                if (rw == RW) {
                    tile_rows<D, Q4, RW, RX>(rx, x + i * kb, kb, wrow(j), kb, out);
                } else {
                    for (int c = 0; c < rw; ++c) {
                        float one[RX];
                        tile_rows<D, Q4, 1, RX>(rx, x + i * kb, kb, wrow(j + c), kb, one);
                        for (int r = 0; r < rx; ++r) out[r * RW + c] = one[r];
                    }
                }
                for (int r = 0; r < rx; ++r)
                    for (int c = 0; c < rw; ++c)
                        y[(i + r) * ldy + j + c] = out[r * RW + c] + (bias ? bias[j + c] : 0.0f);
            }
        }
    }
}

template <bool Q4>
void quant_dispatch(const block_q8x *x, int64_t n, int64_t kb, const void *w, const float *bias, int64_t j0,
                    int64_t j1, float *y, int64_t ldy) {
    if (cpu_isa() == isa::avx512 && cpu_features().avx512_vnni)
        return quant_tiled<idot::vnni512, Q4>(x, n, kb, w, bias, j0, j1, y, ldy);
    if (cpu_isa() != isa::scalar && cpu_features().avx_vnni)
        return quant_tiled<idot::avxvnni, Q4>(x, n, kb, w, bias, j0, j1, y, ldy);
    if (cpu_isa() != isa::scalar) return quant_tiled<idot::maddubs, Q4>(x, n, kb, w, bias, j0, j1, y, ldy);
    if constexpr (Q4)
        quant_scalar(x, n, kb, static_cast<const block_q4_0 *>(w), bias, j0, j1, y, ldy);
    else
        quant_scalar(x, n, kb, static_cast<const block_q8_0 *>(w), bias, j0, j1, y, ldy);
}

#endif  // __x86_64__

// k-quants: dequantize weight rows into f32 and multiply with the f32 activations (rows of kp).
void kquant_matmul(const float *x, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                   int64_t j1, float *y, int64_t ldy) {
    const int64_t kp = round_up(k, 32);
    thread_local aligned_buffer buf;
    constexpr int64_t JB = 8;
    float *wf = static_cast<float *>(buf.get(static_cast<size_t>(JB * kp) * sizeof(float)));
    const int64_t row_bytes = wtype_row_bytes(wt, k);
    for (int64_t jb = j0; jb < j1; jb += JB) {
        const int64_t je = std::min(j1, jb + JB);
        for (int64_t j = jb; j < je; ++j)
            dequantize_row(static_cast<const uint8_t *>(w) + j * row_bytes, wt, k, wf + (j - jb) * kp);
        // The f32-weight path of matmul.cpp does the multiply (x rows are already padded to kp).
        matmul_prepared(x, n, kp, wf, wtype::f32, nullptr, 0, je - jb, y + jb, ldy);
        if (bias)
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = jb; j < je; ++j) y[i * ldy + j] += bias[j];
    }
}

}  // namespace

size_t quant_prep_bytes(wtype wt, int64_t n, int64_t k) {
    if (wt == wtype::q8_0 || wt == wtype::q4_0) return static_cast<size_t>(n * (k / 32) * 40);
    return static_cast<size_t>(n * round_up(k, 32) * 4);
}

void quant_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep) {
    if (wt == wtype::q8_0 || wt == wtype::q4_0) {
        block_q8x *p = static_cast<block_q8x *>(prep);
        for (int64_t i = i0; i < i1; ++i) quantize_q8x(x + i * k, k, p + i * (k / 32));
        return;
    }
    const int64_t kp = round_up(k, 32);
    float *p = static_cast<float *>(prep);
    for (int64_t i = i0; i < i1; ++i) {
        std::memcpy(p + i * kp, x + i * k, static_cast<size_t>(k) * sizeof(float));
        std::fill(p + i * kp + k, p + (i + 1) * kp, 0.0f);
    }
}

void quant_matmul(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                  int64_t j1, float *y, int64_t ldy) {
    if (wt == wtype::q8_0 || wt == wtype::q4_0) {
        const block_q8x *x = static_cast<const block_q8x *>(prep);
        const bool q4 = wt == wtype::q4_0;
#if defined(__x86_64__)
        if (q4) return quant_dispatch<true>(x, n, k / 32, w, bias, j0, j1, y, ldy);
        return quant_dispatch<false>(x, n, k / 32, w, bias, j0, j1, y, ldy);
#else
        if (q4) return quant_scalar(x, n, k / 32, static_cast<const block_q4_0 *>(w), bias, j0, j1, y, ldy);
        return quant_scalar(x, n, k / 32, static_cast<const block_q8_0 *>(w), bias, j0, j1, y, ldy);
#endif
    }
    kquant_matmul(static_cast<const float *>(prep), n, k, w, wt, bias, j0, j1, y, ldy);
}

}  // namespace eurollm::kernels::detail
