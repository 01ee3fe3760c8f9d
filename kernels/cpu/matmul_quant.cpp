// y = x * w^T for block-quantized weights.
//
// q8_0 / q4_0. The activations are quantized once per product to 8 bits per 32-element block
// (block_q8x, as ggml does). The product is defined, for every instruction set, as
//
//     acc = 0;  for each block b in order:  acc = fma(float(isum_b), d_w,b * d_x,b, acc)
//     y   = acc (+ bias)
//
// where isum_b = sum of x.q * w.q over the block's 32 elements (signed weight values: q for
// q8_0, q - 8 for q4_0), an exact integer. The integer dot is exact in any grouping, so the
// scalar loop, the AVX2 / AVX-VNNI / AVX512-VNNI register kernels and the AMX tile kernel give the
// same bits, and a row's result never depends on how many other rows share the product.
//
// Decode (and, without AVX512-VNNI, products of fewer than 16 rows) reads the canonical ggml rows
// in place (matmul_quant_rows.cpp). Other products consume a packed layout (pack_weight_groups):
// rows in groups of 16 and four bytes of each row side by side, so that one 64-byte chunk is 16
// rows x 4 elements: one vpdpbusd against 4 broadcast activation bytes, or one row of an AMX B
// tile. Weights packed at load (tensor_ref::packed, where pack_at_load says so) are read directly,
// decode included; canonical rows are transposed into that layout a group at a time as the
// product reaches them, in registers below 16 rows (few_rows_vnni512), else into a scratch buffer
// (the result is the same, the cost is one more pass over the group).
//
// The unsigned-by-signed instructions (vpdpbusd, tdpbsud) see q8_0 as q + 128 and q4_0 as its
// nibbles; block_q8x::bias (the activation sum times 128 or 8) takes the offset back out.
//
// q4_k / q6_k: matmul_kquant.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "cpu/simd.h"
#include "kernels.h"

namespace eurollm::kernels {
namespace detail {
namespace {

constexpr int kGroupRows = 16;

// Per block of a group: the interleaved values (8 or 4 chunks of 64 bytes); the group's scales
// (16 f16 per block) follow all kb blocks' values.
constexpr int64_t chunk_bytes(bool q4) { return q4 ? 256 : 512; }
int64_t group_bytes(bool q4, int64_t kb) { return kb * (chunk_bytes(q4) + 2 * kGroupRows); }
const uint16_t *group_scales(const uint8_t *grp, bool q4, int64_t kb) {
    return reinterpret_cast<const uint16_t *>(grp + kb * chunk_bytes(q4));
}

int32_t read_i32(const int8_t *p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Group g of canonical rows (rows past the end become zero weights with zero scales). Four-byte
// words move as words; q8_0's flip to unsigned is an xor of each byte's top bit.
void pack_group(const uint8_t *w, bool q4, int64_t rows, int64_t kb, int64_t g, uint8_t *out) {
    const int64_t cb = chunk_bytes(q4), bb = q4 ? 18 : 34, chunks = cb / 64;
    const uint32_t flip = q4 ? 0u : 0x80808080u, pad = q4 ? 0x88888888u : 0x80808080u;
    uint16_t *scales = reinterpret_cast<uint16_t *>(out + kb * cb);
    for (int64_t b = 0; b < kb; ++b) {
        uint8_t *dst = out + b * cb;
        for (int r = 0; r < kGroupRows; ++r) {
            const int64_t j = g * kGroupRows + r;
            if (j >= rows) {
                for (int64_t c = 0; c < chunks; ++c) std::memcpy(dst + c * 64 + r * 4, &pad, 4);
                scales[b * kGroupRows + r] = 0;
                continue;
            }
            const uint8_t *blk = w + (j * kb + b) * bb;
            std::memcpy(&scales[b * kGroupRows + r], blk, 2);
            for (int64_t c = 0; c < chunks; ++c) {
                uint32_t v;
                std::memcpy(&v, blk + 2 + 4 * c, 4);
                v ^= flip;
                std::memcpy(dst + c * 64 + r * 4, &v, 4);
            }
        }
    }
}

#if defined(__x86_64__)
#define EUROLLM_Q_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// Block b of a whole group of canonical rows (blk: row 0's block b; rows `row` bytes apart) as
// pack_group lays it out: the chunks c[0, cb / 64) (q8_0 flipped to q + 128) and the 16 scales.
// 16 bytes of each row are loaded (row r + 4l into lane l of register r) and transposed as 4 x 4
// words within each lane: plain loads along the rows, which the prefetchers follow (gathering each
// chunk's 16 words from 16 rows was 2x slower and waited on memory). `offsets`: 0, row, .., 15 row.
EUROLLM_Q_AVX512 inline void transpose_block(const uint8_t *blk, int64_t row, bool q4, __m512i offsets,
                                             __m512i (&c)[8], __m256i &scales) {
    const __m512i flip = _mm512_set1_epi32(q4 ? 0 : static_cast<int32_t>(0x80808080u));
    for (int h = 0; h < (q4 ? 1 : 2); ++h) {  // the 16-byte halves of q8_0's 32 values
        __m512i z[4];
        for (int r = 0; r < 4; ++r) {
            const uint8_t *p = blk + 2 + 16 * h + r * row;
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
            v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 4 * row)), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 8 * row)), 2);
            z[r] = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 12 * row)), 3);
        }
        const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
        const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
        c[4 * h] = _mm512_xor_si512(_mm512_unpacklo_epi64(t0, t2), flip);
        c[4 * h + 1] = _mm512_xor_si512(_mm512_unpackhi_epi64(t0, t2), flip);
        c[4 * h + 2] = _mm512_xor_si512(_mm512_unpacklo_epi64(t1, t3), flip);
        c[4 * h + 3] = _mm512_xor_si512(_mm512_unpackhi_epi64(t1, t3), flip);
    }
    // Each gathered word's low half (lines the loads above just brought in).
    scales = _mm512_cvtepi32_epi16(_mm512_i32gather_epi32(offsets, blk, 1));
}

EUROLLM_Q_AVX512 inline __m512i row_offsets(int64_t row) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32(static_cast<int32_t>(row)));
}

// pack_group for a whole group on AVX2 (same bytes): transpose_block's scheme in 256-bit
// registers, one half of the group (8 rows, 32 bytes of each chunk) at a time.
__attribute__((target("avx2"))) void pack_group_avx2(const uint8_t *w, bool q4, int64_t kb, int64_t g, uint8_t *out) {
    const int64_t cb = chunk_bytes(q4), bb = q4 ? 18 : 34, row = kb * bb;
    const __m256i flip = _mm256_set1_epi32(q4 ? 0 : static_cast<int32_t>(0x80808080u));
    const uint8_t *base = w + g * kGroupRows * row;
    auto *scales = reinterpret_cast<uint16_t *>(out + kb * cb);
    for (int64_t b = 0; b < kb; ++b) {
        for (int s = 0; s < 2; ++s)  // rows 8s .. 8s + 7
            for (int h = 0; h < (q4 ? 1 : 2); ++h) {
                __m256i z[4];
                for (int r = 0; r < 4; ++r) {
                    const uint8_t *p = base + (8 * s + r) * row + b * bb + 2 + 16 * h;
                    z[r] = _mm256_inserti128_si256(
                        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))),
                        _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 4 * row)), 1);
                }
                const __m256i t0 = _mm256_unpacklo_epi32(z[0], z[1]), t1 = _mm256_unpackhi_epi32(z[0], z[1]);
                const __m256i t2 = _mm256_unpacklo_epi32(z[2], z[3]), t3 = _mm256_unpackhi_epi32(z[2], z[3]);
                const __m256i c[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                                      _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
                for (int i = 0; i < 4; ++i)
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + b * cb + (4 * h + i) * 64 + 32 * s),
                                        _mm256_xor_si256(c[i], flip));
            }
        for (int r = 0; r < kGroupRows; ++r) std::memcpy(&scales[b * kGroupRows + r], base + r * row + b * bb, 2);
    }
}

// pack_group for a whole group on AVX-512 (same bytes). `stream`: streaming stores, for a copy
// made at load (not read again until the first product, and a plain store would first read each
// line in); a scratch group read right away takes plain stores.
EUROLLM_Q_AVX512 void pack_group_avx512(const uint8_t *w, bool q4, int64_t kb, int64_t g, uint8_t *out, bool stream) {
    const int64_t cb = chunk_bytes(q4), bb = q4 ? 18 : 34, row = kb * bb;
    const __m512i offsets = row_offsets(row);
    const uint8_t *base = w + g * kGroupRows * row;
    auto *scales = reinterpret_cast<__m256i *>(out + kb * cb);
    const bool aligned = stream && (reinterpret_cast<uintptr_t>(out) & 63) == 0 && (kb * cb) % 64 == 0;
    for (int64_t b = 0; b < kb; ++b) {
        __m512i c[8];
        __m256i d;
        transpose_block(base + b * bb, row, q4, offsets, c, d);
        uint8_t *dst = out + b * cb;
        for (int i = 0; i < cb / 64; ++i) {
            if (aligned) _mm512_stream_si512(reinterpret_cast<__m512i *>(dst + 64 * i), c[i]);
            else _mm512_storeu_si512(dst + 64 * i, c[i]);
        }
        if (aligned) _mm256_stream_si256(scales + b, d);
        else _mm256_storeu_si256(scales + b, d);
    }
}

#endif

// Whether pack_group_avx512 / transpose_block can take groups of kb blocks: AVX-512, and a group
// short enough for the 32-bit offsets of their gathers.
bool transpose_ok(bool q4, int64_t kb) {
#if defined(__x86_64__)
    return cpu_isa() == isa::avx512 && kGroupRows * kb * (q4 ? 18 : 34) < (int64_t(1) << 31);
#else
    (void)q4, (void)kb;
    return false;
#endif
}

// Group g of the canonical rows in the packed layout, the fastest way this CPU has (same bytes);
// `stream` as pack_group_avx512 (the caller fences).
void pack_one_group(const uint8_t *w, bool q4, int64_t rows, int64_t kb, int64_t g, uint8_t *out, bool stream) {
#if defined(__x86_64__)
    if ((g + 1) * kGroupRows <= rows) {  // whole groups
        if (transpose_ok(q4, kb)) return pack_group_avx512(w, q4, kb, g, out, stream);
        if (cpu_isa() != isa::scalar) return pack_group_avx2(w, q4, kb, g, out);
    }
#else
    (void)stream;
#endif
    pack_group(w, q4, rows, kb, g, out);
}

#if defined(__x86_64__)
// ---- bf16 tiles of packed groups (the BF16 precision's AMX products, backward_matmul_bf16.cpp) -----
__attribute__((target("avx512f"))) inline __m512 scaled_bytes(__m128i q, __m512 scale) {
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), scale);
}

// 16 signed values per row j at bytes [4j, 4j + 4) of v, times the row's scale, rounded once to bf16
// (d * q is exact in f32), as two tile rows: row0 word j = elements (0, 1) of row j, row1 = (2, 3).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) inline void bf16_rows_of_chunk(
    __m512i v, const __m512 (&scale)[4], uint32_t *row0, uint32_t *row1) {
    // Written out: the extract's lane must be an immediate at every optimization level.
    const __m512 f[4] = {scaled_bytes(_mm512_castsi512_si128(v), scale[0]),
                         scaled_bytes(_mm512_extracti32x4_epi32(v, 1), scale[1]),
                         scaled_bytes(_mm512_extracti32x4_epi32(v, 2), scale[2]),
                         scaled_bytes(_mm512_extracti32x4_epi32(v, 3), scale[3])};
    // Dword 2j + h of x (rows 0-7) and y (rows 8-15) is the pair h of row j.
    const __m512i x = (__m512i)_mm512_cvtne2ps_pbh(f[1], f[0]), y = (__m512i)_mm512_cvtne2ps_pbh(f[3], f[2]);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    _mm512_store_si512(row0, _mm512_permutex2var_epi32(x, even, y));
    _mm512_store_si512(row1, _mm512_permutex2var_epi32(x, _mm512_add_epi32(even, _mm512_set1_epi32(1)), y));
}

#endif

}  // namespace

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) void dequant_tile_bf16(
    const uint8_t *packed, bool q4, int64_t kb, int64_t group, int64_t b, uint32_t *tile) {
    const uint8_t *grp = packed + group * group_bytes(q4, kb);
    const uint8_t *wb = grp + b * chunk_bytes(q4);
    // Lane i of scale[r] is the scale of row 4r + i / 4.
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(
        group_scales(grp, q4, kb) + b * kGroupRows)));
    const __m512i quarter = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 scale[4];
    for (int r = 0; r < 4; ++r) scale[r] = _mm512_permutexvar_ps(_mm512_add_epi32(quarter, _mm512_set1_epi32(4 * r)), d);
    if (q4) {  // chunk c: low nibbles are elements 4c.., high nibbles 16 + 4c..; values nibble - 8
        const __m512i m = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
        for (int c = 0; c < 4; ++c) {
            const __m512i v = _mm512_loadu_si512(wb + c * 64);
            bf16_rows_of_chunk(_mm512_sub_epi8(_mm512_and_si512(v, m), eight), scale, tile + (2 * c) * 16,
                               tile + (2 * c + 1) * 16);
            bf16_rows_of_chunk(_mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), m), eight), scale,
                               tile + (8 + 2 * c) * 16, tile + (9 + 2 * c) * 16);
        }
        return;
    }
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));  // stored as q + 128
    for (int c = 0; c < 8; ++c)
        bf16_rows_of_chunk(_mm512_xor_si512(_mm512_loadu_si512(wb + c * 64), flip), scale, tile + (2 * c) * 16,
                           tile + (2 * c + 1) * 16);
}
#endif

namespace {

// ---- the definition, one group: rows [0, rx) of x against the group's 16 weight rows -------------
void group_scalar(bool q4, const block_q8x *x, int64_t kb, int rx, const uint8_t *grp, float *out) {
    const int64_t cb = chunk_bytes(q4);
    const uint16_t *sc = group_scales(grp, q4, kb);
    for (int r = 0; r < rx; ++r)
        for (int c = 0; c < kGroupRows; ++c) {
            float acc = 0.0f;
            for (int64_t b = 0; b < kb; ++b) {
                const block_q8x &xb = x[r * kb + b];
                const uint8_t *wb = grp + b * cb + c * 4;
                int32_t isum = 0;
                if (q4) {
                    for (int ch = 0; ch < 4; ++ch)
                        for (int t = 0; t < 4; ++t) {
                            const int v = wb[ch * 64 + t];
                            isum += xb.qs[4 * ch + t] * ((v & 15) - 8) + xb.qs[16 + 4 * ch + t] * ((v >> 4) - 8);
                        }
                } else {
                    for (int ch = 0; ch < 8; ++ch)
                        for (int t = 0; t < 4; ++t) isum += xb.qs[4 * ch + t] * (wb[ch * 64 + t] - 128);
                }
                acc = std::fma(static_cast<float>(isum), kmath::f16_to_f32(sc[b * kGroupRows + c]) * xb.d, acc);
            }
            out[r * kGroupRows + c] = acc;
        }
}

using group_fn = void (*)(const block_q8x *x, int64_t kb, int rx, const uint8_t *grp, float *out);

template <bool Q4>
void group_scalar_fn(const block_q8x *x, int64_t kb, int rx, const uint8_t *grp, float *out) {
    group_scalar(Q4, x, kb, rx, grp, out);
}

#if defined(__x86_64__)

#define EUROLLM_Q_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EUROLLM_Q_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define EUROLLM_Q_VNNI512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define EUROLLM_Q_AMX __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni,amx-tile,amx-int8")))

// ---- AVX512-VNNI: a 512-bit register is a whole chunk ------------------------------------------
// GCC 12 flags the _mm512_undefined_ps source of the plain conversions as maybe-uninitialized
// when inlined here (a false positive); the all-ones zero-masked forms are the same instructions.
EUROLLM_Q_VNNI512 inline __m512 cvt_i32(__m512i v) { return _mm512_maskz_cvtepi32_ps(0xFFFF, v); }
EUROLLM_Q_VNNI512 inline __m512 cvt_f16(const uint16_t *p) {
    return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
}

// Decode streams each group from memory once; the hardware prefetcher alone leaves too few lines
// in flight, so each block asks for the lines this far ahead (measured on q8_0/q4_0 1.7B decode:
// 4 KiB gives 1.15-1.2x; 1 and 2 KiB less; 16 KiB lost it again).
constexpr int64_t kPrefetchBytes = 4096;

// RX activation rows against one group: packed (grp: the group's bytes) or, CANON, a whole group
// of canonical rows transposed block by block in registers (grp: its first row, rows `row` bytes
// apart; `next`: the next group's rows, streamed in meanwhile, or null).
template <bool Q4, int RX, bool CANON = false>
EUROLLM_Q_VNNI512 void group_vnni512(const block_q8x *x, int64_t kb, const uint8_t *grp, float *out, int64_t row = 0,
                                     const uint8_t *next = nullptr) {
    constexpr int64_t cb = chunk_bytes(Q4), bb = Q4 ? 18 : 34;
    const uint16_t *sc = CANON ? nullptr : group_scales(grp, Q4, kb);
    const __m512i offsets = CANON ? row_offsets(row) : _mm512_setzero_si512();
    __m512 acc[RX];
    for (int r = 0; r < RX; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < kb; ++b) {
        __m512i v[8], w[8];
        __m512 dw;
        if constexpr (CANON) {
            // The next group, 16 rows x bb bytes per block of this one.
            if (next)
                for (int64_t l = 0; l < kGroupRows * bb; l += 64)
                    _mm_prefetch(reinterpret_cast<const char *>(next + b * kGroupRows * bb + l), _MM_HINT_T0);
            __m256i d;
            transpose_block(grp + b * bb, row, Q4, offsets, v, d);
            dw = _mm512_maskz_cvtph_ps(0xFFFF, d);
        } else {
            const uint8_t *wb = grp + b * cb;
            for (int c = 0; c < cb / 64; ++c) {
                _mm_prefetch(reinterpret_cast<const char *>(wb + kPrefetchBytes + c * 64), _MM_HINT_T0);
                v[c] = _mm512_loadu_si512(wb + c * 64);
            }
            dw = cvt_f16(sc + b * kGroupRows);
        }
        if constexpr (Q4) {
            const __m512i m = _mm512_set1_epi8(0x0F);
            for (int c = 0; c < 4; ++c) {
                w[c] = _mm512_and_si512(v[c], m);
                w[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v[c], 4), m);
            }
        } else {
            for (int c = 0; c < 8; ++c) w[c] = v[c];
        }
        for (int r = 0; r < RX; ++r) {
            const block_q8x &xb = x[r * kb + b];
            // Two chains of four, so decode's single row is not one chain of eight latencies.
            __m512i s0 = _mm512_set1_epi32(-xb.bias), s1 = _mm512_setzero_si512();
            for (int c = 0; c < 8; c += 2) {
                s0 = _mm512_dpbusd_epi32(s0, w[c], _mm512_set1_epi32(read_i32(xb.qs + 4 * c)));
                s1 = _mm512_dpbusd_epi32(s1, w[c + 1], _mm512_set1_epi32(read_i32(xb.qs + 4 * c + 4)));
            }
            const __m512 f = cvt_i32(_mm512_add_epi32(s0, s1));
            acc[r] = _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(xb.d)), acc[r]);
        }
    }
    for (int r = 0; r < RX; ++r) _mm512_storeu_ps(out + r * kGroupRows, acc[r]);
}

// Fewer than 16 activation rows against canonical rows on AVX512-VNNI: each whole group is
// transposed once per 8 rows, in registers, as its products consume it (a partial last group is
// packed into `tail` first). Columns [j0, j1), as quant_groups.
template <bool Q4, int R = 8>
EUROLLM_Q_VNNI512 void rows_of_group(const block_q8x *x, int rx, int64_t kb, const uint8_t *grp, int64_t row,
                                     const uint8_t *next, bool canon, float *out) {
    if constexpr (R >= 1) {
        if (rx != R) return rows_of_group<Q4, R - 1>(x, rx, kb, grp, row, next, canon, out);
        if (canon) group_vnni512<Q4, R, true>(x, kb, grp, out, row, next);
        else group_vnni512<Q4, R>(x, kb, grp, out);
    }
}

template <bool Q4>
EUROLLM_Q_VNNI512 void few_rows_vnni512(const block_q8x *x, int64_t n, int64_t kb, const uint8_t *canonical,
                                        int64_t rows, const float *bias, int64_t j0, int64_t j1, float *y, int64_t ldy,
                                        uint8_t *tail) {
    const int64_t row = kb * (Q4 ? 18 : 34);
    alignas(64) float out[8 * kGroupRows];
    for (int64_t g = j0 / kGroupRows; g * kGroupRows < j1; ++g) {
        const bool whole = (g + 1) * kGroupRows <= rows;
        const uint8_t *grp = canonical + g * kGroupRows * row;
        if (!whole) pack_group(canonical, Q4, rows, kb, g, tail);
        const bool next_whole = (g + 2) * kGroupRows <= rows && (g + 1) * kGroupRows < j1;
        const int64_t c0 = std::max(j0, g * kGroupRows), c1 = std::min(j1, (g + 1) * kGroupRows);
        for (int64_t i = 0; i < n; i += 8) {
            const int rx = static_cast<int>(std::min<int64_t>(8, n - i));
            rows_of_group<Q4>(x + i * kb, rx, kb, whole ? grp : tail, row,
                              next_whole && i == 0 ? grp + kGroupRows * row : nullptr, whole, out);
            for (int r = 0; r < rx; ++r)
                for (int64_t c = c0; c < c1; ++c) {
                    const float v = out[r * kGroupRows + (c - g * kGroupRows)];
                    y[(i + r) * ldy + c] = bias ? v + bias[c] : v;
                }
        }
    }
}

// ---- AVX2 (vpmaddubsw) and AVX-VNNI: a chunk is two 256-bit halves of 8 rows -------------------
enum class idot { maddubs, avxvnni };

// The body, written once and compiled for each instruction choice (a target-specific intrinsic
// cannot be inlined into a function without that target, hence a macro rather than a helper).
#define EUROLLM_Q_GROUP256(NAME, TARGET, VNNI)                                                              \
    template <bool Q4, int RX>                                                                              \
    TARGET void NAME(const block_q8x *x, int64_t kb, const uint8_t *grp, float *out) {                      \
        constexpr int64_t cb = chunk_bytes(Q4);                                                             \
        const uint16_t *sc = group_scales(grp, Q4, kb);                                                     \
        const __m256i ones = _mm256_set1_epi16(1), nib = _mm256_set1_epi8(0x0F);                             \
        const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));                                      \
        __m256 acc[RX][2];                                                                                  \
        for (int r = 0; r < RX; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();                           \
        for (int64_t b = 0; b < kb; ++b) {                                                                  \
            const uint8_t *wb = grp + b * cb;                                                               \
            __m256i is[RX][2];                                                                              \
            for (int r = 0; r < RX; ++r) {                                                                  \
                /* q8_0 through vpmaddubsw multiplies signed values (no offset to take out) */              \
                const int32_t off = (VNNI || Q4) ? x[r * kb + b].bias : 0;                                  \
                is[r][0] = is[r][1] = _mm256_set1_epi32(-off);                                              \
            }                                                                                               \
            for (int c = 0; c < 8; ++c) {                                                                   \
                for (int h = 0; h < 2; ++h) {                                                               \
                    __m256i wv;                                                                             \
                    if constexpr (Q4) {                                                                     \
                        const __m256i v = _mm256_loadu_si256(                                               \
                            reinterpret_cast<const __m256i *>(wb + (c & 3) * 64 + h * 32));                 \
                        wv = _mm256_and_si256(c < 4 ? v : _mm256_srli_epi16(v, 4), nib);                    \
                    } else {                                                                                \
                        wv = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(wb + c * 64 + h * 32));   \
                    }                                                                                       \
                    for (int r = 0; r < RX; ++r) {                                                          \
                        const __m256i xc = _mm256_set1_epi32(read_i32(x[r * kb + b].qs + 4 * c));           \
                        if constexpr (VNNI) {                                                               \
                            is[r][h] = _mm256_dpbusd_avx_epi32(is[r][h], wv, xc);                           \
                        } else if constexpr (Q4) {                                                          \
                            is[r][h] = _mm256_add_epi32(is[r][h],                                           \
                                                        _mm256_madd_epi16(_mm256_maddubs_epi16(wv, xc), ones)); \
                        } else {                                                                            \
                            /* |w| * sign(x, w): products of at most 128 * 127, no saturation */            \
                            const __m256i ws = _mm256_xor_si256(wv, flip);                                  \
                            const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(ws, ws),                \
                                                                   _mm256_sign_epi8(xc, ws));               \
                            is[r][h] = _mm256_add_epi32(is[r][h], _mm256_madd_epi16(p, ones));              \
                        }                                                                                   \
                    }                                                                                       \
                }                                                                                           \
            }                                                                                               \
            for (int h = 0; h < 2; ++h) {                                                                   \
                const __m256 dw = _mm256_cvtph_ps(                                                          \
                    _mm_loadu_si128(reinterpret_cast<const __m128i *>(sc + b * kGroupRows + h * 8)));       \
                for (int r = 0; r < RX; ++r)                                                                \
                    acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r][h]),                               \
                                                _mm256_mul_ps(dw, _mm256_set1_ps(x[r * kb + b].d)), acc[r][h]); \
            }                                                                                               \
        }                                                                                                   \
        for (int r = 0; r < RX; ++r)                                                                        \
            for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out + r * kGroupRows + h * 8, acc[r][h]);          \
    }

// The avxvnni intrinsic sits in a discarded branch of the maddubs build.
EUROLLM_Q_GROUP256(group_maddubs, EUROLLM_Q_AVX2, false)
EUROLLM_Q_GROUP256(group_avxvnni, EUROLLM_Q_AVXVNNI, true)

// ---- AMX: 16 or 32 activation rows x one or two groups per call ----------------------------------
// Tiles 0-3: C (16 x 16 int32), one per (row tile, group); 4/5: A (16 rows x 32 activation bytes);
// 6/7: B (8 x 64: one block of a group as signed bytes). Each A and B tile load feeds two products
// when the call is 2 x 2. The block's integer sums go to memory and are scaled there by the vector
// units (the definition scales per block); the next block's tile products are issued before this
// block's scaling so that the two units overlap.
EUROLLM_Q_AMX void amx_begin() {
    tile_config cfg;
    for (int t = 0; t < 4; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    for (int t = 4; t < 6; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 32;
    for (int t = 6; t < 8; ++t) cfg.rows[t] = 8, cfg.colsb[t] = 64;
    load_tile_config(cfg);
}
EUROLLM_Q_AMX void amx_end() { _tile_release(); }

// Block b's packed bytes (q + 128 for q8_0, nibble pairs for q4_0) as the signed values of one B
// tile, so that tdpbssd needs no per-row offset correction afterwards (one pass per B tile instead
// of one subtraction per C row).
template <bool Q4>
EUROLLM_Q_AMX inline void signed_block(const uint8_t *wb, uint8_t *dst) {
    if constexpr (Q4) {
        const __m512i m = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
        for (int c = 0; c < 4; ++c) {
            const __m512i v = _mm512_loadu_si512(wb + c * 64);
            const __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
            _mm512_store_si512(dst + c * 64, _mm512_sub_epi8(lo, eight));
            _mm512_store_si512(dst + (c + 4) * 64, _mm512_sub_epi8(hi, eight));
        }
    } else {
        const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
        for (int c = 0; c < 8; ++c)
            _mm512_store_si512(dst + c * 64, _mm512_xor_si512(_mm512_loadu_si512(wb + c * 64), flip));
    }
}

// Block B's signed weights into wbuf[S], one iteration before the tile loads read them: a tile
// load of bytes still in the store buffer waits for them to reach the cache.
#define EUROLLM_Q_AMX_PREPARE(B, S)                                                                         \
    do {                                                                                                    \
        signed_block<Q4>(g0 + (B) * cb, wbuf[S][0]);                                                        \
        if constexpr (GT > 1) signed_block<Q4>(g1 + (B) * cb, wbuf[S][1]);                                  \
    } while (0)

// Block B's products (weights in wbuf[S]) into C tiles 0-3; groups_amx stores them.
#define EUROLLM_Q_AMX_ISSUE(B, S)                                                                           \
    do {                                                                                                    \
        _tile_loadd(6, wbuf[S][0], 64);                                                                     \
        if constexpr (GT > 1) _tile_loadd(7, wbuf[S][1], 64);                                               \
        _tile_loadd(4, x[B].qs, stride);                                                                    \
        if constexpr (RT > 1) _tile_loadd(5, x[16 * kb + (B)].qs, stride);                                  \
        _tile_zero(0);                                                                                      \
        _tile_dpbssd(0, 4, 6);                                                                              \
        if constexpr (GT > 1) { _tile_zero(1); _tile_dpbssd(1, 4, 7); }                                     \
        if constexpr (RT > 1) { _tile_zero(2); _tile_dpbssd(2, 5, 6); }                                     \
        if constexpr (RT > 1 && GT > 1) { _tile_zero(3); _tile_dpbssd(3, 5, 7); }                           \
    } while (0)

// out[r][16 g + c] for the rows r of row tile t (row stride 32) accumulates block b's sums of group
// g from c, as the definition does.
EUROLLM_Q_AMX inline void scale_tile(const int32_t *c, const block_q8x *x, int64_t kb, int64_t b, int t, int g,
                                     const uint16_t *sc, float *out) {
    const __m512 dw = cvt_f16(sc + b * kGroupRows);
    const block_q8x *xb = x + 16 * t * kb + b;
    float *o = out + 16 * t * 32 + 16 * g;
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
        const __m512 f = cvt_i32(_mm512_load_si512(c + r * 16));
        _mm512_store_ps(o + r * 32,
                        _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(xb[r * kb].d)), _mm512_load_ps(o + r * 32)));
    }
}

// Rows [0, 16 RT) of x against groups g0 (and g1 when GT = 2): out[r][c], row stride 32, 64-byte
// aligned. The tile unit works in order and its stores are slow: each of the next block's C tiles
// is stored between two of this block's scaling passes, so that neither unit waits for a burst of
// the other's work.
template <bool Q4, int RT, int GT>
EUROLLM_Q_AMX void groups_amx(const block_q8x *x, int64_t kb, const uint8_t *g0, const uint8_t *g1, float *out) {
    constexpr int64_t cb = chunk_bytes(Q4);
    const uint16_t *const sc[2] = {group_scales(g0, Q4, kb), GT > 1 ? group_scales(g1, Q4, kb) : nullptr};
    const int64_t stride = kb * static_cast<int64_t>(sizeof(block_q8x));
    alignas(64) int32_t cbuf[2][4][256];
    alignas(64) uint8_t wbuf[2][2][512];
    for (int r = 0; r < 16 * RT; ++r)
        for (int g = 0; g < GT; ++g) _mm512_store_ps(out + r * 32 + 16 * g, _mm512_setzero_ps());
    EUROLLM_Q_AMX_PREPARE(0, 0);
    if (kb > 1) EUROLLM_Q_AMX_PREPARE(1, 1);
    EUROLLM_Q_AMX_ISSUE(0, 0);
    _tile_stored(0, cbuf[0][0], 64);
    if constexpr (GT > 1) _tile_stored(1, cbuf[0][1], 64);
    if constexpr (RT > 1) _tile_stored(2, cbuf[0][2], 64);
    if constexpr (RT > 1 && GT > 1) _tile_stored(3, cbuf[0][3], 64);
    for (int64_t b = 0; b < kb; ++b) {
        const bool next = b + 1 < kb;
        const int s = b & 1, n = s ^ 1;
        if (next) EUROLLM_Q_AMX_ISSUE(b + 1, n);
        if (b + 2 < kb) EUROLLM_Q_AMX_PREPARE(b + 2, s);
        if (next) _tile_stored(0, cbuf[n][0], 64);
        scale_tile(cbuf[s][0], x, kb, b, 0, 0, sc[0], out);
        if constexpr (GT > 1) {
            if (next) _tile_stored(1, cbuf[n][1], 64);
            scale_tile(cbuf[s][1], x, kb, b, 0, 1, sc[1], out);
        }
        if constexpr (RT > 1) {
            if (next) _tile_stored(2, cbuf[n][2], 64);
            scale_tile(cbuf[s][2], x, kb, b, 1, 0, sc[0], out);
        }
        if constexpr (RT > 1 && GT > 1) {
            if (next) _tile_stored(3, cbuf[n][3], 64);
            scale_tile(cbuf[s][3], x, kb, b, 1, 1, sc[1], out);
        }
    }
}

// Rows [0, rows) of out (row stride 32) to y (row stride ldy), columns [lo, hi) of the 32-column
// window, plus bias[c] where given.
EUROLLM_Q_AMX void store_window(const float *out, int rows, int lo, int hi, const float *bias, float *y, int64_t ldy) {
    for (int h = 0; h < 2; ++h) {
        const int a = std::max(lo, 16 * h), b = std::min(hi, 16 * h + 16);
        if (a >= b) continue;
        const auto m = static_cast<__mmask16>(((1u << (b - a)) - 1) << (a - 16 * h));
        const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * h) : _mm512_setzero_ps();
        for (int r = 0; r < rows; ++r) {
            __m512 v = _mm512_load_ps(out + r * 32 + 16 * h);
            if (bias) v = _mm512_add_ps(v, bv);
            _mm512_mask_storeu_ps(y + r * ldy + 16 * h, m, v);
        }
    }
}

// rx in [1, RX] -> the register kernel for exactly rx rows.
template <bool Q4, int R, template <bool, int> class K>
struct rows_dispatch {
    static void call(const block_q8x *x, int64_t kb, int rx, const uint8_t *grp, float *out) {
        if (rx == R) return K<Q4, R>::run(x, kb, grp, out);
        if constexpr (R > 1) rows_dispatch<Q4, R - 1, K>::call(x, kb, rx, grp, out);
    }
};
template <bool Q4, int R>
struct k_vnni512 {
    static void run(const block_q8x *x, int64_t kb, const uint8_t *g, float *o) { group_vnni512<Q4, R>(x, kb, g, o); }
};
template <bool Q4, int R>
struct k_avxvnni {
    static void run(const block_q8x *x, int64_t kb, const uint8_t *g, float *o) { group_avxvnni<Q4, R>(x, kb, g, o); }
};
template <bool Q4, int R>
struct k_maddubs {
    static void run(const block_q8x *x, int64_t kb, const uint8_t *g, float *o) { group_maddubs<Q4, R>(x, kb, g, o); }
};

#endif  // __x86_64__

// Whether products of 2-15 rows on canonical rows take few_rows_vnni512.
bool few_rows_on_groups(bool q4, int64_t kb) {
#if defined(__x86_64__)
    return transpose_ok(q4, kb) && cpu_features().avx512_vnni;
#else
    (void)q4, (void)kb;
    return false;
#endif
}

struct group_kernels {
    group_fn rows = nullptr;  // 1..max_rows activation rows
    int max_rows = 1;
    bool amx = false;         // groups_amx for whole tiles of 16 rows
};

template <bool Q4>
group_kernels pick_kernels() {
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512 && cpu_features().avx512_vnni)
        return {rows_dispatch<Q4, 4, k_vnni512>::call, 4, cpu_features().amx_int8};
    if (cpu_isa() != isa::scalar && cpu_features().avx_vnni) return {rows_dispatch<Q4, 2, k_avxvnni>::call, 2, false};
    if (cpu_isa() != isa::scalar) return {rows_dispatch<Q4, 2, k_maddubs>::call, 2, false};
#endif
    return {group_scalar_fn<Q4>, 4, false};
}

// Output columns [j0, j1) for all n rows, two groups at a time on AMX, else one: each group
// (packed, or packed here from the canonical rows) is read once per block of activation rows that
// fits in L2.
template <bool Q4>
void quant_groups(const block_q8x *x, int64_t n, int64_t kb, const uint8_t *canonical, const uint8_t *packed,
                  int64_t rows, const float *bias, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    static const group_kernels ks = pick_kernels<Q4>();
    const int64_t gb = group_bytes(Q4, kb);
    const bool amx = ks.amx && n >= kGroupRows;
    const int max_groups = amx ? 2 : 1;
    thread_local aligned_buffer scratch;
    uint8_t *own = nullptr;
    if (!packed) {
        own = static_cast<uint8_t *>(scratch.get(static_cast<size_t>(max_groups * gb)));
        if (!own) return quant_rows(x, n, kb * 32, canonical, Q4, bias, j0, j1, y, ldy);  // no scratch: in place
#if defined(__x86_64__)
        if (n < kGroupRows && few_rows_on_groups(Q4, kb))
            return few_rows_vnni512<Q4>(x, n, kb, canonical, rows, bias, j0, j1, y, ldy, own);
#endif
    }
#if defined(__x86_64__)
    if (amx) amx_begin();
#endif
    // Activation rows per pass: about 1 MiB of blocks, whole pairs of 16-row tiles; 2 MiB when each
    // pass packs every group again (a prompt of 512 rows at 2048 columns is then one pass).
    constexpr int64_t tile_pair = 2 * kGroupRows;
    const int64_t pass_bytes = int64_t(packed ? 1 : 2) << 20;
    const int64_t ib = std::max<int64_t>(tile_pair, (pass_bytes / (kb * 40)) / tile_pair * tile_pair);
    alignas(64) float out[2 * kGroupRows * 2 * kGroupRows];
    for (int64_t i0 = 0; i0 < n; i0 += ib) {
        const int64_t i1 = std::min(n, i0 + ib);
        for (int64_t g = j0 / kGroupRows; g * kGroupRows < j1;) {
            const int gt = (max_groups > 1 && (g + 1) * kGroupRows < j1) ? 2 : 1;
            const uint8_t *grp = packed ? packed + g * gb : own;
            if (!packed)
                for (int t = 0; t < gt; ++t) pack_one_group(canonical, Q4, rows, kb, g + t, own + t * gb, false);
            // Rows [i, i + rx) of o (row stride 16) hold the columns of group g + t.
            auto write = [&](int64_t i, int rx, const float *o, int t) {
                const int64_t base = (g + t) * kGroupRows;
                const int64_t c0 = std::max(j0, base), c1 = std::min(j1, base + kGroupRows);
                for (int r = 0; r < rx; ++r) {
                    float *yr = y + (i + r) * ldy;
                    const float *orow = o + r * kGroupRows;
                    for (int64_t c = c0; c < c1; ++c) yr[c] = bias ? orow[c - base] + bias[c] : orow[c - base];
                }
            };
            int64_t i = i0;
#if defined(__x86_64__)
            if (amx) {
                const uint8_t *next = grp + gb;
                const int64_t base = g * kGroupRows;
                const int lo = static_cast<int>(std::max(j0, base) - base);
                const int hi = static_cast<int>(std::min(j1, base + gt * kGroupRows) - base);
                const float *bias_w = bias ? bias + base : nullptr;
                for (; i + 2 * kGroupRows <= i1; i += 2 * kGroupRows) {
                    if (gt == 2) groups_amx<Q4, 2, 2>(x + i * kb, kb, grp, next, out);
                    else groups_amx<Q4, 2, 1>(x + i * kb, kb, grp, next, out);
                    store_window(out, 2 * kGroupRows, lo, hi, bias_w, y + i * ldy + base, ldy);
                }
                if (i + kGroupRows <= i1) {
                    if (gt == 2) groups_amx<Q4, 1, 2>(x + i * kb, kb, grp, next, out);
                    else groups_amx<Q4, 1, 1>(x + i * kb, kb, grp, next, out);
                    store_window(out, kGroupRows, lo, hi, bias_w, y + i * ldy + base, ldy);
                    i += kGroupRows;
                }
            }
#endif
            // Canonical rows: the next groups' bytes (one contiguous run) are asked for a few lines
            // per step, so that packing them does not wait on memory.
            const int64_t next_row = std::min(rows, (g + gt) * kGroupRows);
            const uint8_t *ahead = packed ? nullptr : canonical + next_row * (gb / kGroupRows);
            const int64_t ahead_lines =
                packed ? 0 : (std::min(rows, next_row + gt * kGroupRows) - next_row) * (gb / kGroupRows) / 64;
            const int64_t steps = (i1 - i + ks.max_rows - 1) / ks.max_rows;
            const int64_t per_step = steps > 0 ? (ahead_lines + steps - 1) / steps : 0;
            int64_t line = 0;
            for (; i < i1; i += ks.max_rows) {
                const int rx = static_cast<int>(std::min<int64_t>(ks.max_rows, i1 - i));
                for (int64_t e = std::min(ahead_lines, line + per_step); line < e; ++line)
                    __builtin_prefetch(ahead + line * 64);
                for (int t = 0; t < gt; ++t) {
                    ks.rows(x + i * kb, kb, rx, grp + t * gb, out);
                    write(i, rx, out, t);
                }
            }
            g += gt;
        }
    }
#if defined(__x86_64__)
    if (amx) amx_end();
#endif
}

bool block8(wtype wt) { return wt == wtype::q8_0 || wt == wtype::q4_0; }

}  // namespace

size_t quant_prep_bytes(wtype wt, int64_t n, int64_t k) {
    if (block8(wt)) return static_cast<size_t>(n * (k / 32)) * sizeof(block_q8x);
    return kquant_prep_bytes(n, k);
}

void quant_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep) {
    if (block8(wt)) {
        block_q8x *p = static_cast<block_q8x *>(prep);
        const int32_t offset = wt == wtype::q4_0 ? 8 : 128;
        for (int64_t i = i0; i < i1; ++i) quantize_q8x(x + i * k, k, offset, p + i * (k / 32));
        return;
    }
    kquant_prepare(x, k, wt, i0, i1, prep);
}

void quant_matmul(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                  int64_t j1, float *y, int64_t ldy) {
    if (block8(wt)) {
        const auto *x = static_cast<const block_q8x *>(prep);
        const auto *canonical = static_cast<const uint8_t *>(w);
        // In place: decode, and short products unless AVX512-VNNI transposes the groups in
        // registers as it goes (Zen 4, q8_0 5632 x 2048, 2 threads: 8 rows 77 GOPS in place, 219
        // transposed, 206 from a copy packed at load; 2 rows 41, 64 and 70).
        if (n == 1 || (n < kGroupRows && !few_rows_on_groups(wt == wtype::q4_0, k / 32)))
            return quant_rows(x, n, k, w, wt == wtype::q4_0, bias, j0, j1, y, ldy);
        if (wt == wtype::q4_0) return quant_groups<true>(x, n, k / 32, canonical, nullptr, j1, bias, j0, j1, y, ldy);
        return quant_groups<false>(x, n, k / 32, canonical, nullptr, j1, bias, j0, j1, y, ldy);
    }
    kquant_matmul(prep, n, k, w, wt, bias, j0, j1, y, ldy);
}

}  // namespace detail

// ---- public entry points for packed weights ---------------------------------------------------------

size_t packed_weight_bytes(wtype wt, int64_t rows, int64_t cols) {
    if (!detail::block8(wt) || cols % 32 != 0 || rows <= 0) return 0;
    const int64_t groups = (rows + detail::kGroupRows - 1) / detail::kGroupRows;
    return static_cast<size_t>(groups * detail::group_bytes(wt == wtype::q4_0, cols / 32));
}

bool pack_at_load(wtype wt) { return detail::block8(wt) && detail::pick_kernels<false>().amx; }

void pack_weight_groups(const void *w, wtype wt, int64_t rows, int64_t cols, int64_t g0, int64_t g1, void *out) {
    const bool q4 = wt == wtype::q4_0;
    const int64_t kb = cols / 32, gb = detail::group_bytes(q4, kb);
    const auto *src = static_cast<const uint8_t *>(w);
    auto *dst = static_cast<uint8_t *>(out);
    for (int64_t g = g0; g < g1; ++g) detail::pack_one_group(src, q4, rows, kb, g, dst + g * gb, true);
#if defined(__x86_64__)
    _mm_sfence();  // the streaming stores are visible before the caller hands the buffer on
#endif
}

void matmul_packed(const void *prep, int64_t n, int64_t k, const void *packed, wtype wt, const float *bias,
                   int64_t j0, int64_t j1, float *y, int64_t ldy) {
    const auto *x = static_cast<const detail::block_q8x *>(prep);
    const auto *p = static_cast<const uint8_t *>(packed);
    if (wt == wtype::q4_0) return detail::quant_groups<true>(x, n, k / 32, nullptr, p, j1, bias, j0, j1, y, ldy);
    detail::quant_groups<false>(x, n, k / 32, nullptr, p, j1, bias, j0, j1, y, ldy);
}

}  // namespace eurollm::kernels
