// y = x * w^T for q4_k / q6_k weights (ggml's k-quant super-blocks of 256 elements).
//
// The activations are quantized once per product to 8 bits per 256-element super-block
// (block_q8k: d = amax / 127, q = round(x / d), as quantize_q8x does per 32 elements), with the sum
// of each 16 consecutive values. The product is defined, for every instruction set, as
//
//     acc = 0;  for each super-block in order:
//       q4_k:  S = sum_j sc_j * sum_{e in j} q_e * x.q_e          (8 sub-blocks j of 32, q in 0..15)
//              M = sum_j m_j * sum_{e in j} x.q_e
//              acc = fma(float(S), d * x.d, acc);  acc = fma(float(-M), dmin * x.d, acc)
//       q6_k:  S = sum_j sc_j * sum_{e in j} (q_e - 32) * x.q_e   (16 sub-blocks of 16, q in 0..63)
//              acc = fma(float(S), d * x.d, acc)
//     y = acc (+ bias)
//
// the kind of product llama.cpp computes for these types (8-bit activations per super-block,
// integer sums per sub-block). S and M are exact integers (|S| < 2^28), so any grouping of the
// integer sums gives the same bits: decode and short products sum a row's super-block across a
// register's lanes and reduce it (kq512, kq256); products of 16 rows or more keep one activation row
// per lane (lanes512, lanes256); a row's result never depends on the other rows of the product.
// This replaced an f32 product on weights dequantized in registers (Zen 4, 1.7B Q4_K_M decode: ~5
// vector operations per 16 weights became ~2).
//
// For q4_k the activation values are stored in the order the nibbles come: a 64-byte load of the
// packed nibbles holds sub-blocks (0, 2) in its low nibbles and (1, 3) in its high ones, so the
// activations are kept as sub-blocks 0 2 1 3 4 6 5 7, and each 64-byte weight register meets one
// 64-byte activation load. q6_k's registers come out in element order.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "kernels.h"

#if defined(__x86_64__)
// GCC 12 reports its own conversion intrinsics as reading uninitialised values (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace eurollm::kernels::detail {
namespace {

// Position in block_q8k::qs of element e of a q4_k super-block (see the top of the file).
int q4k_position(int e) {
    const int j = e / 32;
    return (j / 4) * 128 + (j % 2) * 64 + ((j / 2) % 2) * 32 + e % 32;
}

// q4_k: the 8 six-bit scales (bytes 0-7 of *sc) and mins (*m) from the 12 packed bytes, four at a
// time (get_scale_min_k4 one at a time gives the same values).
void q4k_scales_mins(const uint8_t *packed, uint64_t *sc, uint64_t *m) {
    uint32_t a, b, c;
    std::memcpy(&a, packed, 4);
    std::memcpy(&b, packed + 4, 4);
    std::memcpy(&c, packed + 8, 4);
    const uint32_t sc_hi = (c & 0x0F0F0F0Fu) | (((a >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((c >> 4) & 0x0F0F0F0Fu) | (((b >> 6) & 0x03030303u) << 4);
    *sc = (a & 0x3F3F3F3Fu) | (static_cast<uint64_t>(sc_hi) << 32);
    *m = (b & 0x3F3F3F3Fu) | (static_cast<uint64_t>(m_hi) << 32);
}

// q6_k: element e's value q (0..63, stored as q - 32 meaning the weight).
int q6k_value(const block_q6_k &b, int e) {
    const int h = e / 128, t = (e % 128) / 32, l = e % 32;
    const uint8_t ql = b.ql[h * 64 + l + (t & 1) * 32];
    const int lo = t < 2 ? ql & 0x0F : ql >> 4;
    return lo | (((b.qh[h * 32 + l] >> (2 * t)) & 3) << 4);
}

// ---- the definition, one output --------------------------------------------------------------------
float dot_scalar(const block_q8k *x, const block_q4_k *w, int64_t kb) {
    float acc = 0.0f;
    for (int64_t s = 0; s < kb; ++s) {
        const block_q4_k &b = w[s];
        const block_q8k &xb = x[s];
        uint64_t sc, m;
        q4k_scales_mins(b.scales, &sc, &m);
        int32_t S = 0, M = 0;
        for (int j = 0; j < 8; ++j) {
            int32_t isum = 0;
            for (int e = 32 * j; e < 32 * j + 32; ++e) {
                const uint8_t byte = b.qs[32 * (j / 2) + e % 32];
                isum += (j % 2 ? byte >> 4 : byte & 0x0F) * xb.qs[q4k_position(e)];
            }
            S += static_cast<int32_t>((sc >> (8 * j)) & 0xFF) * isum;
            M += static_cast<int32_t>((m >> (8 * j)) & 0xFF) * (xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
        }
        acc = std::fma(static_cast<float>(S), kmath::f16_to_f32(b.d) * xb.d, acc);
        acc = std::fma(static_cast<float>(-M), kmath::f16_to_f32(b.dmin) * xb.d, acc);
    }
    return acc;
}

float dot_scalar(const block_q8k *x, const block_q6_k *w, int64_t kb) {
    float acc = 0.0f;
    for (int64_t s = 0; s < kb; ++s) {
        const block_q6_k &b = w[s];
        const block_q8k &xb = x[s];
        int32_t S = 0;
        for (int j = 0; j < 16; ++j) {
            int32_t isum = 0;
            for (int e = 16 * j; e < 16 * j + 16; ++e) isum += (q6k_value(b, e) - 32) * xb.qs[e];
            S += b.scales[j] * isum;
        }
        acc = std::fma(static_cast<float>(S), kmath::f16_to_f32(b.d) * xb.d, acc);
    }
    return acc;
}

template <typename B>
struct kq_scalar {
    using xt = block_q8k;
    using wt = B;
    static constexpr int RX = 1, RW = 1;
    template <int rx, int rw>
    static void tile(const block_q8k *x, int64_t xs, int64_t k, const B *w, int64_t, float *out) {
        static_assert(rx == 1 && rw == 1, "one output per tile");
        (void)xs;
        out[0] = dot_scalar(x, w, k / 256);
    }
};

#if defined(__x86_64__)
#define EUROLLM_KQ2 __attribute__((target("avx2,fma,f16c")))
#define EUROLLM_KQ512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")))
#define EUROLLM_UNROLL _Pragma("GCC unroll 8")

// Four registers of 8 int32 -> their four sums.
EUROLLM_KQ2 inline __m128i reduce4_i32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

EUROLLM_KQ512 inline __m256i fold16(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// One super-block of one weight row, ready to meet activation rows: the four 64-byte registers
// of unsigned values (q4_k: q; q6_k: q + 32), the scale of each lane's sub-block (int32) and the
// int16 factors of the activation sums (q4_k: each min twice, for sums of 16; q6_k: the scales).
struct kq_row {
    __m512i v[4], sc[4];
    __m256i f16x;
};

// The 256 values of a super-block as unsigned bytes, in block_q8k's order for the type.
EUROLLM_KQ512 inline void load_values(const block_q4_k &b, __m512i (&v)[4]) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const __m512i v0 = _mm512_loadu_si512(b.qs), v1 = _mm512_loadu_si512(b.qs + 64);
    v[0] = _mm512_and_si512(v0, nib);
    v[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), nib);
    v[2] = _mm512_and_si512(v1, nib);
    v[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), nib);
}

EUROLLM_KQ512 inline void load_values(const block_q6_k &b, __m512i (&v)[4]) {
    const __m512i nib = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    // Words 0-15 of a register hold the first 32 elements of the pair it decodes, words 16-31 the
    // next 32: their high bits sit 2 bits further up in qh.
    const __m512i up = _mm512_setr_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                         0x0004000400040004, 0x0002000200020002, 0x0002000200020002,
                                         0x0002000200020002, 0x0002000200020002);
    const __m512i down = _mm512_setr_epi64(0, 0, 0, 0, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                           0x0002000200020002);
    for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.qh + 32 * h)));
        v[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, nib), _mm512_and_si512(_mm512_sllv_epi16(qh, up), top));
        v[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), nib),
                                       _mm512_and_si512(_mm512_srlv_epi16(qh, down), top));
    }
}

EUROLLM_KQ512 inline void load_row(const block_q4_k &b, kq_row &r) {
    load_values(b, r.v);
    uint64_t sc, m;
    q4k_scales_mins(b.scales, &sc, &m);
    const __m512i s = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(sc)));
    // Register i holds sub-blocks (a, b) in lanes 0-7 and 8-15: (0, 2), (1, 3), (4, 6), (5, 7).
    r.sc[0] = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2), s);
    r.sc[1] = _mm512_permutexvar_epi32(_mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3), s);
    r.sc[2] = _mm512_permutexvar_epi32(_mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6), s);
    r.sc[3] = _mm512_permutexvar_epi32(_mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7), s);
    const __m128i twice = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    r.f16x = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<long long>(m)), twice));
}

EUROLLM_KQ512 inline void load_row(const block_q6_k &b, kq_row &r) {
    load_values(b, r.v);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
    const __m512i s = _mm512_cvtepi8_epi32(sc8);
    // Register i holds elements 64 i .. 64 i + 63: sub-block 4 i + lane / 4.
    const __m512i quarter = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int i = 0; i < 4; ++i)
        r.sc[i] = _mm512_permutexvar_epi32(_mm512_add_epi32(quarter, _mm512_set1_epi32(4 * i)), s);
    r.f16x = _mm256_cvtepi8_epi16(sc8);
}

// S (q4_k and q6_k) and M (q4_k) of one weight row against one activation super-block, as 8 lanes
// each (summed by reduce4_i32).
template <typename B>
EUROLLM_KQ512 inline void row_sums(const kq_row &r, const block_q8k &x, __m256i &s, __m256i &m) {
    __m512i acc = _mm512_setzero_si512();
    EUROLLM_UNROLL
    for (int i = 0; i < 4; ++i) {
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), r.v[i], _mm512_loadu_si512(x.qs + 64 * i));
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(p, r.sc[i]));
    }
    const __m256i sums = _mm256_madd_epi16(r.f16x, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.bsums)));
    if constexpr (std::is_same_v<B, block_q4_k>) {
        s = fold16(acc);
        m = sums;
    } else {  // the values were q + 32: take 32 * sum_j sc_j * sum(x.q in j) back out
        s = _mm256_sub_epi32(fold16(acc), _mm256_slli_epi32(sums, 5));
        m = _mm256_setzero_si256();
    }
}

template <typename B>
EUROLLM_KQ2 inline uint16_t dmin_of(const B &b) {
    if constexpr (std::is_same_v<B, block_q4_k>) return b.dmin;
    else return 0;
}

// ---- AVX2: the same sums in 256-bit registers (vpmaddubsw, then vpmaddwd by the scales) ----------
// A register is one sub-block (q4_k, in block_q8k's order) or two (q6_k); the pairs vpmaddubsw adds
// stay below 2^15 (q4_k: 2 * 15 * 127, q6_k: 2 * 63 * 127), so nothing saturates.
struct kq_row2 {
    __m256i v[8], sc[8];  // values; the int16 scale of each lane's sub-block
    __m256i f16x;
};

EUROLLM_KQ2 inline void load_row(const block_q4_k &b, kq_row2 &r) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    uint64_t sc, m;
    q4k_scales_mins(b.scales, &sc, &m);
    constexpr int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};  // the sub-block at each 32-value position
    for (int i = 0; i < 8; ++i) {
        const int j = order[i];
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.qs + 32 * (j / 2)));
        r.v[i] = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, nib);
        r.sc[i] = _mm256_set1_epi16(static_cast<int16_t>((sc >> (8 * j)) & 0xFF));
    }
    const __m128i twice = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    r.f16x = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<long long>(m)), twice));
}

EUROLLM_KQ2 inline void load_row(const block_q6_k &b, kq_row2 &r) {
    const __m256i nib = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.ql + 64 * h));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.qh + 32 * h));
        r.v[4 * h] = _mm256_or_si256(_mm256_and_si256(lo, nib), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top));
        r.v[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(hi, nib), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top));
        r.v[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo, 4), nib), _mm256_and_si256(qh, top));
        r.v[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(hi, 4), nib),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), top));
    }
    for (int i = 0; i < 8; ++i)
        r.sc[i] = _mm256_setr_m128i(_mm_set1_epi16(b.scales[2 * i]), _mm_set1_epi16(b.scales[2 * i + 1]));
    r.f16x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)));
}

template <typename B>
EUROLLM_KQ2 inline void row_sums(const kq_row2 &r, const block_q8k &x, __m256i &s, __m256i &m) {
    __m256i acc = _mm256_setzero_si256();
    EUROLLM_UNROLL
    for (int i = 0; i < 8; ++i) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.qs + 32 * i));
        const __m256i p = _mm256_maddubs_epi16(r.v[i], xv);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, r.sc[i]));
    }
    const __m256i sums = _mm256_madd_epi16(r.f16x, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.bsums)));
    if constexpr (std::is_same_v<B, block_q4_k>) {
        s = acc;
        m = sums;
    } else {
        s = _mm256_sub_epi32(acc, _mm256_slli_epi32(sums, 5));
        m = _mm256_setzero_si256();
    }
}

// RX activation rows x RW (at most 4) weight rows; the RW rows' sums share one reduction. Written
// once for both targets (a target's intrinsics inline only into functions of that target).
#define EUROLLM_KQ_ROWS(NAME, TARGET, ROW) \
template <typename B>                                                                                                  \
struct NAME {                                                                                                          \
    using xt = block_q8k;                                                                                              \
    using wt = B;                                                                                                      \
    static constexpr int RX = 4, RW = 4;                                                                               \
                                                                                                                       \
    template <int rx, int rw>                                                                                          \
    TARGET static void tile(const block_q8k *x, int64_t xs, int64_t k, const B *w, int64_t ws, float *out) {           \
        __m128 acc[rx];                                                                                                \
        EUROLLM_UNROLL                                                                                                 \
        for (int r = 0; r < rx; ++r) acc[r] = _mm_setzero_ps();                                                        \
        for (int64_t b = 0; b < k / 256; ++b) {                                                                        \
            __m256i s[rx][4], m[rx][4];                                                                                \
            alignas(16) uint16_t d[8] = {}, dmin[8] = {};                                                              \
            EUROLLM_UNROLL                                                                                             \
            for (int c = 0; c < 4; ++c) {                                                                              \
                if (c >= rw) {                                                                                         \
                    EUROLLM_UNROLL                                                                                     \
                    for (int r = 0; r < rx; ++r) s[r][c] = m[r][c] = _mm256_setzero_si256();                           \
                    continue;                                                                                          \
                }                                                                                                      \
                const B &blk = w[c * ws + b];                                                                          \
                d[c] = blk.d;                                                                                          \
                dmin[c] = dmin_of(blk);                                                                                \
                ROW row;                                                                                               \
                load_row(blk, row);                                                                                    \
                EUROLLM_UNROLL                                                                                         \
                for (int r = 0; r < rx; ++r) row_sums<B>(row, x[r * xs + b], s[r][c], m[r][c]);                        \
            }                                                                                                          \
            const __m128 dv = _mm_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(d)));                      \
            EUROLLM_UNROLL                                                                                             \
            for (int r = 0; r < rx; ++r) {                                                                             \
                const __m128 xd = _mm_set1_ps(x[r * xs + b].d);                                                        \
                const __m128i S = reduce4_i32(s[r][0], s[r][1], s[r][2], s[r][3]);                                     \
                acc[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(S), _mm_mul_ps(dv, xd), acc[r]);                                 \
                if constexpr (std::is_same_v<B, block_q4_k>) {                                                         \
                    const __m128 mv = _mm_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(dmin)));           \
                    const __m128i M = reduce4_i32(m[r][0], m[r][1], m[r][2], m[r][3]);                                 \
                    acc[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_sub_epi32(_mm_setzero_si128(), M)), _mm_mul_ps(mv, xd),  \
                                          acc[r]);                                                                     \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        store_lanes4<rx>(acc, rw, out);                                                                                \
    }                                                                                                                  \
};

EUROLLM_KQ_ROWS(kq512, EUROLLM_KQ512, kq_row)
EUROLLM_KQ_ROWS(kq256, EUROLLM_KQ2, kq_row2)

// ---- longer products: one activation row per lane ------------------------------------------------
// The row kernels reduce every super-block of every (activation row, weight row) pair across
// lanes; with many activation rows that reduction and the scale multiplies cost more than the dot
// products. Here a lane is an activation row: the activations are laid out L rows side by side
// (kq_lanes, built per call), a weight row's four bytes are broadcast against them, and a
// sub-block's sums are scaled as whole registers. The integer sums are the same, so are the bits.

// One super-block of L activation rows.
template <int L>
struct alignas(64) kq_lanes {
    int8_t q[64][4 * L];  // dword p of each row's values, rows side by side
    float d[L];
    // q4_k: aux[i] = (sum32[2i], sum32[2i+1]) as int16 pairs (i < 4). q6_k: -32 * sum16[j] (AVX-512,
    // the sub-block's starting sum) or, for AVX2, (sum16[2i], sum16[2i+1]) as int16 pairs (i < 8).
    int32_t aux[16][L];
};

// One super-block of one weight row.
struct alignas(64) kq_wrow {
    uint8_t q[256];      // values, block_q8k's order
    int32_t sc[16];      // scale of sub-block j
    uint32_t pairs[8];   // int16 pairs: q4_k (m[2i], m[2i+1]); q6_k (sc[2i], sc[2i+1])
    float d, dmin;
};

uint32_t int16_pair(int a, int b) { return (static_cast<uint32_t>(a) & 0xFFFF) | (static_cast<uint32_t>(b) << 16); }

// Everything of kq_wrow but the values.
template <typename B>
void wrow_scales(const B &b, kq_wrow &r) {
    r.d = kmath::f16_to_f32(b.d);
    if constexpr (std::is_same_v<B, block_q4_k>) {
        uint64_t sc, m;
        q4k_scales_mins(b.scales, &sc, &m);
        for (int j = 0; j < 8; ++j) r.sc[j] = static_cast<int32_t>((sc >> (8 * j)) & 0xFF);
        for (int i = 0; i < 4; ++i) {
            const auto lo = static_cast<int>((m >> (16 * i)) & 0xFF), hi = static_cast<int>((m >> (16 * i + 8)) & 0xFF);
            r.pairs[i] = int16_pair(lo, hi);
        }
        r.dmin = kmath::f16_to_f32(b.dmin);
    } else {
        for (int j = 0; j < 16; ++j) r.sc[j] = b.scales[j];
        for (int i = 0; i < 8; ++i) r.pairs[i] = int16_pair(b.scales[2 * i], b.scales[2 * i + 1]);
    }
}

// Groups [0, groups) of L activation rows (rows past n are zeros).
template <int L, bool Q4, bool Q6Pairs>
void build_lanes(const block_q8k *x, int64_t n, int64_t kb, int64_t groups, kq_lanes<L> *out) {
    const block_q8k zero{};
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t s = 0; s < kb; ++s) {
            kq_lanes<L> &l = out[g * kb + s];
            for (int r = 0; r < L; ++r) {
                const int64_t i = g * L + r;
                const block_q8k &b = i < n ? x[i * kb + s] : zero;
                for (int p = 0; p < 64; ++p) std::memcpy(l.q[p] + 4 * r, b.qs + 4 * p, 4);
                l.d[r] = b.d;
                const int16_t *bs = b.bsums;
                if constexpr (Q4) {
                    for (int a = 0; a < 4; ++a)
                        l.aux[a][r] = static_cast<int32_t>(
                            int16_pair(bs[4 * a] + bs[4 * a + 1], bs[4 * a + 2] + bs[4 * a + 3]));
                } else if constexpr (Q6Pairs) {
                    for (int a = 0; a < 8; ++a)
                        l.aux[a][r] = static_cast<int32_t>(int16_pair(bs[2 * a], bs[2 * a + 1]));
                } else {
                    for (int j = 0; j < 16; ++j) l.aux[j][r] = -32 * bs[j];
                }
            }
        }
}

inline uint32_t read_u32(const uint8_t *p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// AVX512-VNNI: weight rows w[c * kb + s] (c = 0-3) against two groups of 16 (a, a + kb): out[c][32].
struct lanes512 {
    static constexpr int L = 16, G = 2;
    static constexpr bool q6_pairs = false;

    template <typename B>
    EUROLLM_KQ512 static void decode(const B &b, kq_wrow &r) {
        __m512i v[4];
        load_values(b, v);
        for (int i = 0; i < 4; ++i) _mm512_store_si512(r.q + 64 * i, v[i]);
        wrow_scales(b, r);
    }

    template <bool Q4>
    EUROLLM_KQ512 static void tile(const kq_wrow *w, int64_t kb, const kq_lanes<16> *a0, float *out) {
        constexpr int subs = Q4 ? 8 : 16, steps = 64 / subs;
        __m512 acc[4][2];
        EUROLLM_UNROLL
        for (int c = 0; c < 4; ++c) acc[c][0] = acc[c][1] = _mm512_setzero_ps();
        for (int64_t s = 0; s < kb; ++s) {
            const kq_lanes<16> *a[2] = {a0 + s, a0 + kb + s};
            const kq_wrow *wr[4] = {w + s, w + kb + s, w + 2 * kb + s, w + 3 * kb + s};
            __m512i S[4][2];
            EUROLLM_UNROLL
            for (int c = 0; c < 4; ++c) S[c][0] = S[c][1] = _mm512_setzero_si512();
            for (int j = 0; j < subs; ++j) {
                const int p0 = Q4 ? q4k_position(32 * j) / 4 : 4 * j;
                __m512i P[4][2];
                EUROLLM_UNROLL
                for (int v = 0; v < 2; ++v) {
                    const __m512i init = Q4 ? _mm512_setzero_si512() : _mm512_load_si512(a[v]->aux[j]);
                    EUROLLM_UNROLL
                    for (int c = 0; c < 4; ++c) P[c][v] = init;
                }
                EUROLLM_UNROLL
                for (int t = 0; t < steps; ++t) {
                    const __m512i x0 = _mm512_load_si512(a[0]->q[p0 + t]), x1 = _mm512_load_si512(a[1]->q[p0 + t]);
                    EUROLLM_UNROLL
                    for (int c = 0; c < 4; ++c) {
                        const __m512i wb = _mm512_set1_epi32(static_cast<int32_t>(read_u32(wr[c]->q + 4 * (p0 + t))));
                        P[c][0] = _mm512_dpbusd_epi32(P[c][0], wb, x0);
                        P[c][1] = _mm512_dpbusd_epi32(P[c][1], wb, x1);
                    }
                }
                EUROLLM_UNROLL
                for (int c = 0; c < 4; ++c) {
                    const __m512i sc = _mm512_set1_epi32(wr[c]->sc[j]);
                    S[c][0] = _mm512_add_epi32(S[c][0], _mm512_mullo_epi32(P[c][0], sc));
                    S[c][1] = _mm512_add_epi32(S[c][1], _mm512_mullo_epi32(P[c][1], sc));
                }
            }
            EUROLLM_UNROLL
            for (int v = 0; v < 2; ++v) {
                const __m512 xd = _mm512_load_ps(a[v]->d);
                EUROLLM_UNROLL
                for (int c = 0; c < 4; ++c) {
                    acc[c][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[c][v]),
                                                _mm512_mul_ps(_mm512_set1_ps(wr[c]->d), xd), acc[c][v]);
                    if constexpr (Q4) {
                        __m512i M = _mm512_setzero_si512();
                        for (int i = 0; i < 4; ++i) {
                            const __m512i mins = _mm512_set1_epi32(static_cast<int32_t>(wr[c]->pairs[i]));
                            M = _mm512_add_epi32(M, _mm512_madd_epi16(_mm512_load_si512(a[v]->aux[i]), mins));
                        }
                        acc[c][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_setzero_si512(), M)),
                                                    _mm512_mul_ps(_mm512_set1_ps(wr[c]->dmin), xd), acc[c][v]);
                    }
                }
            }
        }
        EUROLLM_UNROLL
        for (int c = 0; c < 4; ++c) {
            _mm512_store_ps(out + 32 * c, acc[c][0]);
            _mm512_store_ps(out + 32 * c + 16, acc[c][1]);
        }
    }
};

// AVX2: weight rows w[c * kb + s] (c = 0-3) against one group of 8: out[c][8]. vpmaddubsw's int16
// pairs are summed in int16 over a q4_k sub-block (at most 16 * 15 * 127 < 2^15) or half a q6_k one
// (4 * 63 * 127), then scaled into int32 by vpmaddwd with the sub-block's scale.
struct lanes256 {
    static constexpr int L = 8, G = 1;
    static constexpr bool q6_pairs = true;

    template <typename B>
    EUROLLM_KQ2 static void decode(const B &b, kq_wrow &r) {
        kq_row2 row;
        load_row(b, row);
        for (int i = 0; i < 8; ++i) _mm256_store_si256(reinterpret_cast<__m256i *>(r.q + 32 * i), row.v[i]);
        wrow_scales(b, r);
    }

    template <bool Q4>
    EUROLLM_KQ2 static void tile(const kq_wrow *w, int64_t kb, const kq_lanes<8> *a0, float *out) {
        constexpr int subs = Q4 ? 8 : 16, steps = 64 / subs, run = Q4 ? 8 : 2;  // steps summed in int16
        __m256 acc[4];
        EUROLLM_UNROLL
        for (int c = 0; c < 4; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t s = 0; s < kb; ++s) {
            const kq_lanes<8> &a = a0[s];
            const kq_wrow *wr[4] = {w + s, w + kb + s, w + 2 * kb + s, w + 3 * kb + s};
            __m256i S[4];
            EUROLLM_UNROLL
            for (int c = 0; c < 4; ++c) S[c] = _mm256_setzero_si256();
            for (int j = 0; j < subs; ++j) {
                const int p0 = Q4 ? q4k_position(32 * j) / 4 : 4 * j;
                EUROLLM_UNROLL
                for (int t0 = 0; t0 < steps; t0 += run) {
                    __m256i P[4];
                    EUROLLM_UNROLL
                    for (int c = 0; c < 4; ++c) P[c] = _mm256_setzero_si256();
                    EUROLLM_UNROLL
                    for (int t = t0; t < t0 + run; ++t) {
                        const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i *>(a.q[p0 + t]));
                        EUROLLM_UNROLL
                        for (int c = 0; c < 4; ++c) {
                            const auto word = static_cast<int32_t>(read_u32(wr[c]->q + 4 * (p0 + t)));
                            const __m256i wb = _mm256_set1_epi32(word);
                            P[c] = _mm256_add_epi16(P[c], _mm256_maddubs_epi16(wb, xv));
                        }
                    }
                    EUROLLM_UNROLL
                    for (int c = 0; c < 4; ++c) {
                        const __m256i sc = _mm256_set1_epi16(static_cast<int16_t>(wr[c]->sc[j]));
                        S[c] = _mm256_add_epi32(S[c], _mm256_madd_epi16(P[c], sc));
                    }
                }
            }
            const __m256 xd = _mm256_load_ps(a.d);
            EUROLLM_UNROLL
            for (int c = 0; c < 4; ++c) {
                __m256i pair_sums = _mm256_setzero_si256();  // q4_k: M; q6_k: sum_j sc_j * sum16_j
                for (int i = 0; i < (Q4 ? 4 : 8); ++i) {
                    const __m256i f = _mm256_set1_epi32(static_cast<int32_t>(wr[c]->pairs[i]));
                    const __m256i sums = _mm256_load_si256(reinterpret_cast<const __m256i *>(a.aux[i]));
                    pair_sums = _mm256_add_epi32(pair_sums, _mm256_madd_epi16(sums, f));
                }
                if constexpr (!Q4) S[c] = _mm256_sub_epi32(S[c], _mm256_slli_epi32(pair_sums, 5));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[c]), _mm256_mul_ps(_mm256_set1_ps(wr[c]->d), xd), acc[c]);
                if constexpr (Q4)
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_setzero_si256(), pair_sums)),
                                             _mm256_mul_ps(_mm256_set1_ps(wr[c]->dmin), xd), acc[c]);
            }
        }
        EUROLLM_UNROLL
        for (int c = 0; c < 4; ++c) _mm256_store_ps(out + 8 * c, acc[c]);
    }
};

// The product for n >= 16 rows through P's lane kernel; false (nothing written) when the scratch
// buffers cannot be allocated.
template <class P, typename B>
bool kquant_lanes(const block_q8k *x, int64_t n, int64_t k, const B *w, const float *bias, int64_t j0, int64_t j1,
                  float *y, int64_t ldy) {
    constexpr bool Q4 = std::is_same_v<B, block_q4_k>;
    constexpr int L = P::L, T = P::L * P::G;  // activation rows per group, per tile
    const int64_t kb = k / 256, tiles = (n + T - 1) / T;
    thread_local aligned_buffer lane_buf, row_buf;
    const auto lane_bytes = static_cast<size_t>(tiles * P::G * kb) * sizeof(kq_lanes<L>);
    auto *lanes = static_cast<kq_lanes<L> *>(lane_buf.get(lane_bytes));
    auto *rows = static_cast<kq_wrow *>(row_buf.get(static_cast<size_t>(4 * kb) * sizeof(kq_wrow)));
    if (!lanes || !rows) return false;
    build_lanes<L, Q4, P::q6_pairs>(x, n, kb, tiles * P::G, lanes);
    // Tiles per pass: about 512 KiB of activations stay in L2 while the weight rows pass.
    const int64_t pb = std::max<int64_t>(1, (512 * 1024) / (P::G * kb * static_cast<int64_t>(sizeof(kq_lanes<L>))));
    alignas(64) float out[4 * T];
    for (int64_t q0 = 0; q0 < tiles; q0 += pb) {
        const int64_t q1 = std::min(tiles, q0 + pb);
        for (int64_t j = j0; j < j1; j += 4) {
            const int rw = static_cast<int>(std::min<int64_t>(4, j1 - j));
            for (int c = 0; c < 4; ++c)  // a short tile repeats its last row
                for (int64_t s = 0; s < kb; ++s) P::decode(w[(j + std::min(c, rw - 1)) * kb + s], rows[c * kb + s]);
            for (int64_t q = q0; q < q1; ++q) {
                P::template tile<Q4>(rows, kb, lanes + q * P::G * kb, out);
                const int live = static_cast<int>(std::min<int64_t>(T, n - T * q));
                for (int l = 0; l < live; ++l)
                    for (int c = 0; c < rw; ++c)
                        y[(T * q + l) * ldy + j + c] = out[T * c + l] + (bias ? bias[j + c] : 0.0f);
            }
        }
    }
    return true;
}

EUROLLM_KQ512 void quantize_q8k_avx512(const float *x, int64_t k, bool q4k, block_q8k *out) {
    for (int64_t i = 0; i < k / 256; ++i) {
        const float *xb = x + i * 256;
        __m512 mx = _mm512_setzero_ps();
        for (int v = 0; v < 16; ++v) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(xb + 16 * v)));
        const float amax = _mm512_reduce_max_ps(mx);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int v = 0; v < 16; ++v) {
            const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * v), _mm512_set1_ps(id)));
            const int pos = q4k ? q4k_position(16 * v) : 16 * v;
            const __m128i bytes = _mm512_cvtepi32_epi8(q);
            _mm_storeu_si128(reinterpret_cast<__m128i *>(out[i].qs + pos), bytes);
            // The sum of the stored bytes: a NaN converts to INT_MIN, whose lane sums would overflow
            // (and the scalar path stores and sums 0 for it).
            out[i].bsums[v] = static_cast<int16_t>(_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(bytes)));
        }
        out[i].d = d;
    }
}
#endif  // __x86_64__

void quantize_q8k(const float *x, int64_t k, bool q4k, block_q8k *out) {
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512) return quantize_q8k_avx512(x, k, q4k, out);
#endif
    for (int64_t i = 0; i < k / 256; ++i) {
        const float *xb = x + i * 256;
        float id;
        const float d = q8_scale(xb, 256, &id);
        for (int v = 0; v < 16; ++v)  // runs of 16 stay together in q4_k's order
            out[i].bsums[v] = static_cast<int16_t>(
                round_to_int8(xb + 16 * v, 16, id, out[i].qs + (q4k ? q4k_position(16 * v) : 16 * v)));
        out[i].d = d;
    }
}

template <typename B>
void kquant_rows(const block_q8k *x, int64_t n, int64_t k, const B *w, const float *bias, int64_t j0, int64_t j1,
                 float *y, int64_t ldy) {
    const int64_t kb = k / 256;
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512 && cpu_features().avx512_vnni) {
        if (n >= 16 && kquant_lanes<lanes512>(x, n, k, w, bias, j0, j1, y, ldy)) return;
        return tiled_matmul<kq512<B>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
    }
    if (cpu_isa() != isa::scalar) {
        if (n >= 16 && kquant_lanes<lanes256>(x, n, k, w, bias, j0, j1, y, ldy)) return;
        return tiled_matmul<kq256<B>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
    }
#endif
    tiled_matmul<kq_scalar<B>>(x, kb, n, k, w, kb, bias, j0, j1, y, ldy);
}

}  // namespace

size_t kquant_prep_bytes(int64_t n, int64_t k) { return static_cast<size_t>(n * (k / 256)) * sizeof(block_q8k); }

void kquant_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep) {
    block_q8k *p = static_cast<block_q8k *>(prep);
    for (int64_t i = i0; i < i1; ++i) quantize_q8k(x + i * k, k, wt == wtype::q4_k, p + i * (k / 256));
}

void kquant_matmul(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                   int64_t j1, float *y, int64_t ldy) {
    const auto *x = static_cast<const block_q8k *>(prep);
    if (wt == wtype::q4_k) return kquant_rows(x, n, k, static_cast<const block_q4_k *>(w), bias, j0, j1, y, ldy);
    kquant_rows(x, n, k, static_cast<const block_q6_k *>(w), bias, j0, j1, y, ldy);
}

}  // namespace eurollm::kernels::detail
