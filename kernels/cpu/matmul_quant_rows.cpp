// q8_0 / q4_0 products read from the canonical ggml rows, in place: decode, and products of fewer
// than 16 activation rows on CPUs without AVX512-VNNI (with it, matmul_quant.cpp's few_rows_vnni512
// transposes 16 rows at a time, which costs less per activation row). The product is matmul_quant.cpp's definition (per 32-element block an
// exact integer sum, then acc = fma(float(isum), d_w * d_x, acc) in block order), so these kernels
// give the same bits as the packed-group kernels and the scalar loop.
//
// A 256-bit register holds one block of one weight row (q4_0: the low nibbles in the lower half,
// the high ones in the upper half, element order); it meets the activation block in one integer dot
// (vpdpbusd, or vpmaddubsw + vpmaddwd), which leaves 8 partial sums. Four weight rows by two blocks
// are reduced together (8 registers -> one register of 8 sums), then each row's two blocks are
// scaled in order. Four weight rows are four streams through tiled_matmul (parts of a run of rows
// for decode), so each thread reads four sequential streams.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "kernels.h"

namespace eurollm::kernels::detail {
namespace {

template <bool Q4>
using qblock = std::conditional_t<Q4, block_q4_0, block_q8_0>;

// The definition for one output: row w (kb blocks) against activation row x.
template <bool Q4>
float dot_canonical(const block_q8x *x, const qblock<Q4> *w, int64_t kb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < kb; ++b) {
        int32_t isum = 0;
        if constexpr (Q4) {
            for (int e = 0; e < 16; ++e)
                isum += x[b].qs[e] * ((w[b].qs[e] & 15) - 8) + x[b].qs[e + 16] * ((w[b].qs[e] >> 4) - 8);
        } else {
            for (int e = 0; e < 32; ++e) isum += x[b].qs[e] * w[b].qs[e];
        }
        acc = std::fma(static_cast<float>(isum), kmath::f16_to_f32(w[b].d) * x[b].d, acc);
    }
    return acc;
}

template <bool Q4>
struct rows_scalar {
    using xt = block_q8x;
    using wt = qblock<Q4>;
    static constexpr int RX = 1, RW = 1;
    template <int rx, int rw>
    static void tile(const block_q8x *x, int64_t, int64_t k, const wt *w, int64_t, float *out) {
        static_assert(rx == 1 && rw == 1, "one output per tile");
        out[0] = dot_canonical<Q4>(x, w, k / 32);
    }
};

#if defined(__x86_64__)
#define EUROLLM_QR_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EUROLLM_QR_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define EUROLLM_QR_VNNI512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define EUROLLM_UNROLL _Pragma("GCC unroll 8")

enum class idot { maddubs, avxvnni, vnni512 };

// Four weight rows' sums of two blocks: s[c] for block b, s[4 + c] for block b + 1 (8 lanes each)
// -> lanes 0-3 the four rows' sums of block b, lanes 4-7 those of block b + 1.
EUROLLM_QR_AVX2 inline __m256i reduce8_i32(const __m256i (&s)[8]) {
    const __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    const __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// Written once per instruction choice (a target's intrinsics inline only into functions of that
// target). DOT: the integer dot of one weight register with one activation block.
#define EUROLLM_Q_ROWS(NAME, TARGET, DOT)                                                                      \
    template <bool Q4>                                                                                         \
    struct NAME {                                                                                              \
        using xt = block_q8x;                                                                                  \
        using wt = qblock<Q4>;                                                                                 \
        static constexpr int RX = 4, RW = 4;                                                                   \
                                                                                                               \
        /* q8_0: block b of a row as 32 bytes (q + 128, or q itself for vpmaddubsw's sign trick). */           \
        TARGET static __m256i values(const wt &blk) {                                                          \
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk.qs));                   \
            if constexpr (DOT == idot::maddubs) return q;                                                      \
            return _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));                             \
        }                                                                                                      \
        TARGET static __m256i dot(__m256i v, const block_q8x &xb) {                                            \
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xb.qs));                   \
            if constexpr (DOT == idot::vnni512) {                                                              \
                return _mm256_dpbusd_epi32(_mm256_setzero_si256(), v, xq);                                     \
            } else if constexpr (DOT == idot::avxvnni) {                                                       \
                return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), v, xq);                                 \
            } else { /* |w| * sign(x, w): products of at most 128 * 127, no saturation */                      \
                const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(xq, v));       \
                return _mm256_madd_epi16(p, _mm256_set1_epi16(1));                                             \
            }                                                                                                  \
        }                                                                                                      \
        /* What the unsigned weights added: block_q8x::bias, except for q8_0 through vpmaddubsw. */            \
        static int32_t offset(const block_q8x &xb) {                                                           \
            return (DOT != idot::maddubs || Q4) ? xb.bias : 0;                                                 \
        }                                                                                                      \
                                                                                                               \
        /* q4_0: one register holds two blocks' nibbles, [b | b + 1] (block b + 1 zero when nb = 1), */          \
        /* and meets the activations as [b: 0-15 | b + 1: 0-15] (low nibbles), then 16-31 (high): */            \
        /* lanes 0-3 sum block b, lanes 4-7 block b + 1. */                                                    \
        TARGET static __m256i dot_pair(__m256i lo, __m256i hi, __m256i xlo, __m256i xhi) {                     \
            if constexpr (DOT == idot::vnni512) {                                                              \
                return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, xlo), hi, xhi);     \
            } else if constexpr (DOT == idot::avxvnni) {                                                       \
                return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), lo, xlo), hi, xhi); \
            } else { /* pairs of at most 2 * 15 * 127, two of them summed: below 2^15 */                       \
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi)); \
                return _mm256_madd_epi16(p, _mm256_set1_epi16(1));                                             \
            }                                                                                                  \
        }                                                                                                      \
                                                                                                               \
        /* Blocks [b, b + nb) (nb = 1 or 2) of rw rows against rx activation rows: the rows' sums of */        \
        /* block b in lanes 0-3 of sums[r], of block b + 1 in lanes 4-7; the rows' scales in d. */            \
        template <int rx, int rw>                                                                              \
        TARGET static void block_sums(const block_q8x *x, int64_t xs, const wt *w, int64_t ws, int64_t b,     \
                                      int nb, __m256i (&sums)[rx], uint16_t (&d)[8]) {                         \
            if constexpr (Q4) {                                                                                \
                __m256i xlo[rx], xhi[rx], s[rx][4];                                                            \
                EUROLLM_UNROLL                                                                                 \
                for (int r = 0; r < rx; ++r) {                                                                 \
                    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x[r * xs + b].qs)); \
                    const __m256i x1 = nb > 1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i *>(         \
                                                    x[r * xs + b + 1].qs))                                     \
                                              : _mm256_setzero_si256();                                        \
                    xlo[r] = _mm256_permute2x128_si256(x0, x1, 0x20);                                          \
                    xhi[r] = _mm256_permute2x128_si256(x0, x1, 0x31);                                          \
                }                                                                                              \
                const __m256i nib = _mm256_set1_epi8(0x0F);                                                    \
                EUROLLM_UNROLL                                                                                 \
                for (int c = 0; c < 4; ++c) {                                                                  \
                    if (c >= rw) {                                                                             \
                        EUROLLM_UNROLL                                                                         \
                        for (int r = 0; r < rx; ++r) s[r][c] = _mm256_setzero_si256();                         \
                        continue;                                                                              \
                    }                                                                                          \
                    const wt *blk = w + c * ws + b;                                                            \
                    d[c] = blk[0].d;                                                                           \
                    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk[0].qs));          \
                    __m256i q;                                                                                 \
                    if (nb > 1) {                                                                              \
                        d[4 + c] = blk[1].d;                                                                   \
                        q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0),                                \
                                                    _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk[1].qs)), 1); \
                    } else {                                                                                   \
                        q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), _mm_setzero_si128(), 1);       \
                    }                                                                                          \
                    const __m256i lo = _mm256_and_si256(q, nib), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), nib); \
                    EUROLLM_UNROLL                                                                             \
                    for (int r = 0; r < rx; ++r) s[r][c] = dot_pair(lo, hi, xlo[r], xhi[r]);                   \
                }                                                                                              \
                EUROLLM_UNROLL                                                                                 \
                for (int r = 0; r < rx; ++r)                                                                   \
                    sums[r] = _mm256_hadd_epi32(_mm256_hadd_epi32(s[r][0], s[r][1]),                           \
                                                _mm256_hadd_epi32(s[r][2], s[r][3]));                          \
            } else {                                                                                           \
                __m256i s[rx][8];                                                                              \
                EUROLLM_UNROLL                                                                                 \
                for (int h = 0; h < 2; ++h)                                                                    \
                    EUROLLM_UNROLL                                                                             \
                    for (int c = 0; c < 4; ++c) {                                                              \
                        if (c >= rw || h >= nb) {                                                              \
                            EUROLLM_UNROLL                                                                     \
                            for (int r = 0; r < rx; ++r) s[r][4 * h + c] = _mm256_setzero_si256();             \
                            continue;                                                                          \
                        }                                                                                      \
                        const wt &blk = w[c * ws + b + h];                                                     \
                        d[4 * h + c] = blk.d;                                                                  \
                        const __m256i v = values(blk);                                                         \
                        EUROLLM_UNROLL                                                                         \
                        for (int r = 0; r < rx; ++r) s[r][4 * h + c] = dot(v, x[r * xs + b + h]);              \
                    }                                                                                          \
                EUROLLM_UNROLL                                                                                 \
                for (int r = 0; r < rx; ++r) sums[r] = reduce8_i32(s[r]);                                      \
            }                                                                                                  \
        }                                                                                                      \
                                                                                                               \
        template <int rx, int rw>                                                                              \
        TARGET static void step(const block_q8x *x, int64_t xs, const wt *w, int64_t ws, int64_t b, int nb,    \
                                __m128 (&acc)[rx]) {                                                           \
            alignas(16) uint16_t d[8] = {};                                                                    \
            __m256i sums[rx];                                                                                  \
            block_sums<rx, rw>(x, xs, w, ws, b, nb, sums, d);                                                  \
            const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(d)));           \
            EUROLLM_UNROLL                                                                                     \
            for (int r = 0; r < rx; ++r) {                                                                     \
                const block_q8x &x0 = x[r * xs + b], &x1 = x[r * xs + b + nb - 1];                            \
                const __m256i off = _mm256_setr_m128i(_mm_set1_epi32(offset(x0)), _mm_set1_epi32(offset(x1))); \
                const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(sums[r], off));                           \
                const __m256 sc = _mm256_mul_ps(dw, _mm256_setr_m128(_mm_set1_ps(x0.d), _mm_set1_ps(x1.d)));   \
                acc[r] = _mm_fmadd_ps(_mm256_castps256_ps128(f), _mm256_castps256_ps128(sc), acc[r]);          \
                if (nb > 1)                                                                                    \
                    acc[r] = _mm_fmadd_ps(_mm256_extractf128_ps(f, 1), _mm256_extractf128_ps(sc, 1), acc[r]);  \
            }                                                                                                  \
        }                                                                                                      \
                                                                                                               \
        template <int rx, int rw>                                                                              \
        TARGET static void tile(const block_q8x *x, int64_t xs, int64_t k, const wt *w, int64_t ws, float *out) { \
            __m128 acc[rx];                                                                                    \
            EUROLLM_UNROLL                                                                                     \
            for (int r = 0; r < rx; ++r) acc[r] = _mm_setzero_ps();                                            \
            const int64_t kb = k / 32;                                                                         \
            int64_t b = 0;                                                                                     \
            for (; b + 2 <= kb; b += 2) step<rx, rw>(x, xs, w, ws, b, 2, acc);                                 \
            if (b < kb) step<rx, rw>(x, xs, w, ws, b, 1, acc);                                                 \
            store_lanes4<rx>(acc, rw, out);                                                                    \
        }                                                                                                      \
    };

EUROLLM_Q_ROWS(rows_vnni512, EUROLLM_QR_VNNI512, idot::vnni512)
EUROLLM_Q_ROWS(rows_avxvnni, EUROLLM_QR_AVXVNNI, idot::avxvnni)
EUROLLM_Q_ROWS(rows_maddubs, EUROLLM_QR_AVX2, idot::maddubs)
#endif  // __x86_64__

template <bool Q4>
void rows_product(const block_q8x *x, int64_t n, int64_t k, const qblock<Q4> *w, const float *bias, int64_t j0,
                  int64_t j1, float *y, int64_t ldy) {
    const int64_t kb = k / 32;
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512 && cpu_features().avx512_vnni)
        return tiled_matmul<rows_vnni512<Q4>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
    if (cpu_isa() != isa::scalar && cpu_features().avx_vnni)
        return tiled_matmul<rows_avxvnni<Q4>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
    if (cpu_isa() != isa::scalar) return tiled_matmul<rows_maddubs<Q4>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
#endif
    tiled_matmul<rows_scalar<Q4>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
}

}  // namespace

void quant_rows(const block_q8x *x, int64_t n, int64_t k, const void *w, bool q4, const float *bias, int64_t j0,
                int64_t j1, float *y, int64_t ldy) {
    if (q4) return rows_product<true>(x, n, k, static_cast<const block_q4_0 *>(w), bias, j0, j1, y, ldy);
    rows_product<false>(x, n, k, static_cast<const block_q8_0 *>(w), bias, j0, j1, y, ldy);
}

}  // namespace eurollm::kernels::detail
