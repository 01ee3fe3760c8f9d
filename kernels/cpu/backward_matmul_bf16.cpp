// The BF16 training mode's products through a bf16 matrix W [m, k]:
//   forward   y = bf16(x) · Wᵀ      (bf16_matmul)
//   backward dx = bf16(dy) · W      (gemm_dx_bf16)
// Activations are rounded to bf16 once per product (round to nearest even). Three kernels, chosen
// at run time:
//
// AMX (Sapphire Rapids and later): TDPBF16PS on 16 x 16 f32 tiles, 2 x 2 of them per step (32 rows
//   x 32 columns). A = the activations, prepared in tile order (each 16 rows x 32 columns tile is
//   1 KiB of contiguous memory: rows of 4 KiB would alias in L1), B = W repacked on the
//   fly into the tile layout (pairs of adjacent reduction elements in each 32-bit word): for the
//   backward, two rows of W interleaved; for the forward, a 16 x 16 transpose of W's 32-bit pairs.
//   A panel of 256 columns x 1024 reduction elements (512 KiB) is packed once and stays in L2 while
//   every activation row passes over it, so the repack costs 1/n of the products and no transposed
//   copy of the weights is kept (it would double the base's memory: +3.3 GB for a 1.7B model).
// AVX512-BF16 without AMX: vdpbf16ps on matmul_prepare(round)'s rows (prep_row_bytes(width)
//   bytes each); the forward is matmul_prepared(round), the backward the same repack as AMX's into
//   64-column tiles kept in L1, 6 x 64 register tiles.
// Neither: the f32 kernels on the unrounded activations (the EXACT path).
//
// Every output element is one chain of sums over the reduction in a fixed order whatever the range
// split, so the results do not depend on the thread count (see kernels_backward.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "cpu/simd.h"
#include "kernels_backward.h"


namespace eurollm::kernels {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Bytes of one prepared row (matmul_prepare's round layout where the CPU has AVX512-BF16).
int64_t prep_row_bytes(int64_t width) {
    return static_cast<int64_t>(matmul_prep_bytes(wtype::bf16, 1, width, act_precision::round));
}

bool have_bf16() {
#if defined(__x86_64__)
    return cpu_features().avx512_bf16;
#else
    return false;
#endif
}

#if defined(__x86_64__)

bool have_amx() { return cpu_features().amx_bf16; }

#define EUROLLM_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define EUROLLM_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// 32-bit words of two W rows q, q + 1 interleaved: word c = W[q][c] | W[q + 1][c] << 16.
EUROLLM_AVX512BF16 inline __m512i row_pair(const uint16_t *w, int64_t ldw, int64_t q, int64_t m, int64_t c,
                                           __mmask16 mask) {
    const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, w + q * ldw + c));
    const __m512i hi = q + 1 < m ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, w + (q + 1) * ldw + c))
                                 : _mm512_setzero_si512();
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}


// ---- AMX --------------------------------------------------------------------------------------

constexpr int64_t kPanelCols = 256;  // output columns per packed panel (8 pairs of tiles)
constexpr int64_t kPanelK = 1024;    // reduction elements per packed panel: 256 x 1024 x 2 B = 512 KiB
constexpr int64_t kPanelWords = kPanelCols * kPanelK / 2;  // 32-bit words of one packed panel

// Packed panel: for each 32-column group g and 32-element step s, two 1 KiB B tiles (columns
// 0-15, 16-31), 16 rows each = 16 reduction pairs x 16 columns of 32-bit words.
//   backward: B[pair p][col c] = W[2p][c] | W[2p + 1][c] << 16   (W is [K, N], reduction = rows)
//   forward:  B[pair p][col j] = 32-bit word p of W row j          (W is [N, K], reduction = cols)
EUROLLM_AVX512BF16 void pack_backward(const uint16_t *w, int64_t ldw, int64_t K, int64_t k0, int64_t steps,
                                      int64_t c0, int64_t nc, uint32_t *panel) {
    // Row pair by row pair (each W row is read once, along the panel's columns), prefetching the
    // pairs 8 ahead: the rows are ldw apart, too far for the hardware prefetchers.
    const int64_t groups = (nc + 31) / 32;
    __mmask16 mask[kPanelCols / 16];
    for (int v = 0; v < kPanelCols / 16; ++v) mask[v] = tail_mask16(nc - 16 * v);
    for (int64_t s = 0; s < steps; ++s)
        for (int r = 0; r < 16; ++r) {
            const int64_t q = k0 + (s * 16 + r) * 2;
            if (q + 16 < K)
                for (int64_t c = 0; c < nc; c += 32) {
                    _mm_prefetch(reinterpret_cast<const char *>(w + (q + 16) * ldw + c0 + c), _MM_HINT_T0);
                    _mm_prefetch(reinterpret_cast<const char *>(w + (q + 17) * ldw + c0 + c), _MM_HINT_T0);
                }
            for (int64_t g = 0; g < groups; ++g)
                for (int t = 0; t < 2; ++t) {
                    const int v = static_cast<int>(g * 2 + t);
                    const __m512i x = q < K ? row_pair(w, ldw, q, K, c0 + 16 * v, mask[v]) : _mm512_setzero_si512();
                    _mm512_store_si512(panel + ((g * steps + s) * 2 + t) * 256 + r * 16, x);
                }
        }
}

// r[i] <- word i of every r[j] (a 16 x 16 transpose of 32-bit words): 32-bit, 64-bit and 128-bit
// interleaves.
EUROLLM_AVX512BF16 inline void transpose16(__m512i (&r)[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // u[i + c] lane L = column 4L + c of rows i .. i + 3
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int c = 0; c < 4; ++c) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
        const __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
        const __m512i w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[c + 8] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
        r[c + 4] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[c + 12] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
    }
}

EUROLLM_AVX512BF16 void pack_forward(const uint16_t *w, int64_t K, int64_t k0, int64_t steps, int64_t j0, int64_t nc,
                                     uint32_t *panel) {
    // 16 rows of W x 16 of their pairs, transposed; an odd K's last element is a half pair, filled
    // one by one (loading it as a pair would read past the row).
    const int64_t groups = (nc + 31) / 32, pairs = K / 2;
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t s = 0; s < steps; ++s)
            for (int t = 0; t < 2; ++t) {
                const int64_t col = g * 32 + t * 16, p0 = k0 / 2 + s * 16;
                const int64_t rows = std::min<int64_t>(16, nc - col);
                const __mmask16 words = tail_mask16(pairs - p0);
                const uint16_t *base = w + (j0 + col) * K + 2 * p0;
                uint32_t *tile = panel + ((g * steps + s) * 2 + t) * 256;
                __m512i r[16];
                for (int j = 0; j < 16; ++j)
                    r[j] = j < rows ? _mm512_maskz_loadu_epi32(words, base + j * K) : _mm512_setzero_si512();
                transpose16(r);
                for (int i = 0; i < 16; ++i) _mm512_store_si512(tile + i * 16, r[i]);
                if (K % 2 == 1 && pairs >= p0 && pairs < p0 + 16)
                    for (int64_t j = 0; j < rows; ++j) tile[(pairs - p0) * 16 + j] = w[(j0 + col + j) * K + K - 1];
            }
}

// The exact split of 16 floats into three bf16 terms, each in the upper half of a 32-bit word:
// x = hi + mid + lo exactly. Truncation, not rounding: hi keeps x's top 8 significand bits, so
// x - hi is exact and holds the other 16, of which mid keeps the top 8 and lo the rest (so lo's
// low 16 bits are zero), and no term can overflow to infinity. Infinities and NaNs go whole into
// hi (a NaN keeps its quiet bit, so truncating its payload cannot make it an infinity).
EUROLLM_AVX512BF16 inline void split3(__m512 x, __m512i (&t)[3]) {
    const __m512i bits = _mm512_castps_si512(x), top = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    const __m512i exp = _mm512_set1_epi32(0x7f800000);
    const __mmask16 finite = _mm512_cmpneq_epi32_mask(_mm512_and_si512(bits, exp), exp);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), exp);
    t[0] = _mm512_and_si512(_mm512_mask_or_epi32(bits, nan, bits, _mm512_set1_epi32(0x00400000)), top);
    const __m512 r = _mm512_maskz_sub_ps(finite, x, _mm512_castsi512_ps(t[0]));
    t[1] = _mm512_and_si512(_mm512_castps_si512(r), top);
    t[2] = _mm512_castps_si512(_mm512_sub_ps(r, _mm512_castsi512_ps(t[1])));
}

// Word j of _mm512_permutex2var_epi16(a, kUpperHalves, b) = the upper half of 32-bit word j of the
// concatenated pair (a, b): 32 bf16 out of two vectors of f32 bit patterns.
alignas(64) constexpr uint16_t kUpperHalves[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
                                                   33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};

// pack_forward's layout for f16 weights, as two panels (hi, then lo pstride words later): each
// weight, exact in f32, is split by split3, whose first two terms hold it whole (hi the top 8 of
// its 11 significand bits, the second term the other 3; the third is zero). Elements past K are
// zeros.
EUROLLM_AVX512BF16 void pack_forward_f16(const uint16_t *w, int64_t K, int64_t k0, int64_t steps, int64_t j0,
                                         int64_t nc, uint32_t *panel, int64_t pstride) {
    const __m512i idx = _mm512_load_si512(kUpperHalves);
    const int64_t groups = (nc + 31) / 32;
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t s = 0; s < steps; ++s)
            for (int t = 0; t < 2; ++t) {
                const int64_t col = g * 32 + t * 16, e0 = k0 + s * 32;
                const int64_t rows = std::min<int64_t>(16, nc - col);
                const __mmask32 elems = e0 + 32 <= K ? ~__mmask32(0)
                                        : e0 < K     ? static_cast<__mmask32>((1ull << (K - e0)) - 1)
                                                     : __mmask32(0);
                __m512i hi[16], lo[16];
                for (int j = 0; j < 16; ++j) {
                    if (j >= rows) {
                        hi[j] = lo[j] = _mm512_setzero_si512();
                        continue;
                    }
                    const __m512i h = _mm512_maskz_loadu_epi16(elems, w + (j0 + col + j) * K + e0);
                    __m512i x0[3], x1[3];
                    split3(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), x0);
                    split3(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), x1);
                    hi[j] = _mm512_permutex2var_epi16(x0[0], idx, x1[0]);
                    lo[j] = _mm512_permutex2var_epi16(x0[1], idx, x1[1]);
                }
                transpose16(hi);
                transpose16(lo);
                uint32_t *tile = panel + ((g * steps + s) * 2 + t) * 256;
                for (int i = 0; i < 16; ++i) {
                    _mm512_store_si512(tile + i * 16, hi[i]);
                    _mm512_store_si512(tile + pstride + i * 16, lo[i]);
                }
            }
}

// C[rows of the padded n, panel columns] over one packed panel: tiles 0-3 accumulate 32 x 32
// (16 x 32 for the last rows when n16 is not a multiple of 32), 4-5 hold A, 6-7 hold B. For each
// block of 32 rows, the panel's column groups pass over the block's A rows (64 KiB per term, from
// L1/L2) and each 32 x 32 of C stays in the tiles for the whole panel depth. TA is the number of
// bf16 terms per activation (1: rounded; 3: the exact split), lying side by side; TB the number of
// weight terms (1: bf16 weights; 2: f16 weights split exactly), one packed panel each, `pstride`
// words apart. Every term of A meets every term of B; B tiles, loaded once a step, serve the TA
// terms. (Slicing the depth in two so that A fits in L1 was measured slower: 1.7B shapes, n = 512,
// one thread, 805-830 against 850-935 GFLOP/s; the extra C loads and stores cost more than the L1
// misses.)
template <int TA, int TB>
EUROLLM_AMX void amx_panel(const uint16_t *a, int64_t lda, int64_t n16, int64_t k0, int64_t steps, int64_t groups,
                           const uint32_t *panel, int64_t pstride, float *C, bool zero) {
    const int64_t ldc = kPanelCols * 4;  // bytes
    const int64_t block = 16 * lda;      // elements of one 16-row block of A (tile order)
    for (int64_t r0 = 0; r0 < n16; r0 += 32) {
        const bool two = r0 + 16 < n16;
        const uint16_t *ar = a + (r0 / 16) * block + k0 * 16 * TA;
        for (int64_t g = 0; g < groups; ++g) {
            const uint32_t *bp = panel + g * steps * 512;
            float *c = C + r0 * kPanelCols + g * 32;
            if (zero) {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
            } else {
                _tile_loadd(0, c, ldc);
                _tile_loadd(1, c + 16, ldc);
                if (two) {
                    _tile_loadd(2, c + 16 * kPanelCols, ldc);
                    _tile_loadd(3, c + 16 * kPanelCols + 16, ldc);
                }
            }
            // `two` is the same for the whole block: the branch costs nothing next to the tile products.
            for (int64_t s = 0; s < steps; ++s)
                for (int u = 0; u < TB; ++u) {
                    _tile_loadd(6, bp + u * pstride + s * 512, 64);
                    _tile_loadd(7, bp + u * pstride + s * 512 + 256, 64);
                    for (int t = 0; t < TA; ++t) {
                        _tile_loadd(4, ar + (s * TA + t) * 512, 64);
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 4, 7);
                        if (two) {
                            _tile_loadd(5, ar + block + (s * TA + t) * 512, 64);
                            _tile_dpbf16ps(2, 5, 6);
                            _tile_dpbf16ps(3, 5, 7);
                        }
                    }
                }
            _tile_stored(0, c, ldc);
            _tile_stored(1, c + 16, ldc);
            if (two) {
                _tile_stored(2, c + 16 * kPanelCols, ldc);
                _tile_stored(3, c + 16 * kPanelCols + 16, ldc);
            }
        }
    }
}

// out[i, c0 + c] = (accumulate ? out : 0) + C[i, c] (+ bias[c0 + c]) for the n real rows.
EUROLLM_AVX512BF16 void write_out(const float *C, int64_t n, int64_t nc, const float *bias, int64_t c0, float *out,
                                  int64_t ldo, bool accumulate) {
    for (int64_t i = 0; i < n; ++i) {
        const float *src = C + i * kPanelCols;
        float *dst = out + i * ldo + c0;
        for (int64_t c = 0; c < nc; c += 16) {
            const __mmask16 m = tail_mask16(nc - c);
            __m512 v = _mm512_maskz_loadu_ps(m, src + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c0 + c));
            if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + c), v);
            _mm512_mask_storeu_ps(dst + c, m, v);
        }
    }
}

// B tiles of packed q8_0 / q4_0 weights (matmul_quant.cpp's layout, m rows of kb blocks), for the
// forward: a 32-element block is one 32-element step, and 16 columns are one packed row group, so
// each tile is one block of one group, dequantized to bf16. Column j0 is a multiple of 16.
EUROLLM_AVX512BF16 void pack_quant(const uint8_t *packed, bool q4, int64_t kb, int64_t m, int64_t k0, int64_t steps,
                                   int64_t j0, int64_t nc, uint32_t *panel) {
    const int64_t groups = (nc + 31) / 32, row_groups = (m + 15) / 16;
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t s = 0; s < steps; ++s)
            for (int t = 0; t < 2; ++t) {
                uint32_t *tile = panel + ((g * steps + s) * 2 + t) * 256;
                const int64_t group = (j0 + g * 32 + t * 16) / 16;
                if (group < row_groups) detail::dequant_tile_bf16(packed, q4, kb, group, k0 / 32 + s, tile);
                else std::memset(tile, 0, 1024);
            }
}

// out[:, c0:c1] (+)= A · B for A in tile order (TA terms per element) and B given by pack(k0, steps,
// first column, columns, panel) (TB terms: the packer fills TB panels, kPanelWords apart). Panels
// start at c0 rounded down to a multiple of `align` (the packer's column grouping). False (nothing
// written) when the scratch buffers cannot be allocated: the caller falls back.
template <int TA = 1, int TB = 1, class Pack>
EUROLLM_AMX bool amx_product(const uint16_t *a, int64_t n, int64_t K, const Pack &pack, int64_t align,
                             const float *bias, int64_t c0, int64_t c1, float *out, int64_t ldo, bool accumulate) {
    thread_local aligned_buffer panel_buf, c_buf;
    const int64_t n16 = round_up(n, 16), kp = round_up(K, 32);
    auto *panel = static_cast<uint32_t *>(panel_buf.get(static_cast<size_t>(kPanelWords * 4 * TB)));
    auto *C = static_cast<float *>(c_buf.get(static_cast<size_t>(n16 * kPanelCols) * sizeof(float)));
    if (!panel || !C) return false;
    detail::tile_config cfg;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    detail::load_tile_config(cfg);
    for (int64_t c = c0 - c0 % align; c < c1; c += kPanelCols) {
        const int64_t nc = std::min(kPanelCols, c1 - c), groups = (nc + 31) / 32;
        if (kp == 0) std::fill(C, C + n16 * kPanelCols, 0.0f);  // an empty reduction
        for (int64_t k0 = 0; k0 < kp; k0 += kPanelK) {
            const int64_t steps = (std::min(kp, k0 + kPanelK) - k0) / 32;
            pack(k0, steps, c, nc, panel);
            amx_panel<TA, TB>(a, TA * kp, n16, k0, steps, groups, panel, kPanelWords, C, k0 == 0);
        }
        const int64_t skip = std::max<int64_t>(0, c0 - c);
        write_out(C + skip, n, nc - skip, bias, c + skip, out, ldo, accumulate);
    }
    _tile_release();
    return true;
}

// dst[0, count) = bf16(x[0, count)), rounded to nearest even, 32 at a time.
EUROLLM_AVX512BF16 void round_row(const float *x, int64_t count, uint16_t *dst) {
    for (int64_t e = 0; e < count; e += 32) {
        const __mmask16 lo = tail_mask16(count - e), hi = tail_mask16(count - e - 16);
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + e + 16), _mm512_maskz_loadu_ps(lo, x + e));
        _mm512_mask_storeu_epi16(dst + e, static_cast<__mmask32>(lo) | (static_cast<__mmask32>(hi) << 16), (__m512i)v);
    }
}

// split3 of x[0, count) into three arrays of bf16 terms.
EUROLLM_AVX512BF16 void split_terms(const float *x, int64_t count, uint16_t *t0, uint16_t *t1, uint16_t *t2) {
    uint16_t *out[3] = {t0, t1, t2};
    for (int64_t e = 0; e < count; e += 16) {
        const __mmask16 m = tail_mask16(count - e);
        __m512i t[3];
        split3(_mm512_maskz_loadu_ps(m, x + e), t);
        for (int u = 0; u < 3; ++u)
            _mm256_mask_storeu_epi16(out[u] + e, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(t[u], 16)));
    }
}

// Rows [i0, i1) of a [n, width] (row stride lda) in tile order, T bf16 terms per element (1:
// rounded to nearest even; 3: split3): term t of element (i, c) at
// ((i / 16) * T * kp / 32 + T * (c / 32) + t) * 512 + (i % 16) * 32 + c % 32, kp = round_up(width,
// 32); zeros pad the columns and the last block.
template <int T>
EUROLLM_AVX512BF16 void prepare_tiles(const float *a, int64_t lda, int64_t n, int64_t width, int64_t i0, int64_t i1,
                                      uint16_t *out) {
    const int64_t kp = round_up(width, 32);
    const int64_t end = i1 == n ? round_up(n, 16) : i1;
    const __m512i idx = _mm512_load_si512(kUpperHalves);
    for (int64_t i = i0; i < end; ++i) {
        uint16_t *row = out + (i / 16) * 16 * T * kp + (i % 16) * 32;
        for (int64_t c = 0; c < kp; c += 32) {
            __m512i v[T];
            for (int t = 0; t < T; ++t) v[t] = _mm512_setzero_si512();
            if (i < n) {
                const float *src = a + i * lda + c;
                const int64_t rem = std::min<int64_t>(32, width - c);
                const __m512 x0 = _mm512_maskz_loadu_ps(tail_mask16(rem), src);
                const __m512 x1 = _mm512_maskz_loadu_ps(tail_mask16(rem - 16), src + 16);
                if constexpr (T == 1) {
                    v[0] = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
                } else {
                    __m512i s0[3], s1[3];
                    split3(x0, s0);
                    split3(x1, s1);
                    for (int t = 0; t < 3; ++t) v[t] = _mm512_permutex2var_epi16(s0[t], idx, s1[t]);
                }
            }
            for (int t = 0; t < T; ++t) _mm512_storeu_si512(row + (T * (c / 32) + t) * 512, v[t]);
        }
    }
}

// amx_product's plain loops, for when its scratch cannot be allocated (slow, but never wrong):
// out[i, c] (+)= sum_q a[i, q] * weight(c, q) (+ bias[c]), a in tile order with `terms` terms.
template <class Weight>
void scalar_from_tiles(int terms, const uint16_t *a, int64_t n, int64_t K, const Weight &weight, const float *bias,
                       int64_t c0, int64_t c1, float *out, int64_t ldo, bool accumulate) {
    const int64_t kp = round_up(K, 32);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = c0; c < c1; ++c) {
            float acc = bias ? bias[c] : 0.0f;
            for (int64_t q = 0; q < K; ++q) {
                const uint16_t *e = a + (i / 16) * 16 * terms * kp + terms * (q / 32) * 512 + (i % 16) * 32 + q % 32;
                float x = 0.0f;  // exact: the terms' significands do not overlap
                for (int t = terms - 1; t >= 0; --t) x += kmath::bf16_to_f32(e[t * 512]);
                acc += x * weight(c, q);
            }
            out[i * ldo + c] = accumulate ? out[i * ldo + c] + acc : acc;
        }
}

// W's value at (output column c, reduction index q) for the fallback: bf16 [c, q] (forward) or
// [q, c] (backward, row stride ldw), summed over w_terms terms term_stride elements apart.
struct bf16_weight {
    const uint16_t *w;
    int64_t K, ldw;
    bool forward;
    int w_terms = 1;
    int64_t term_stride = 0;
    float operator()(int64_t c, int64_t q) const {
        float v = 0.0f;  // exact, as for the activations
        for (int u = w_terms - 1; u >= 0; --u)
            v += kmath::bf16_to_f32(w[u * term_stride + (forward ? c * K + q : q * ldw + c)]);
        return v;
    }
};

// ---- AVX512-BF16 (no AMX): the backward as 6 x 64 register tiles of vdpbf16ps ---------------------

constexpr int kRows = 6;        // dX rows of a register tile: 6 x 4 accumulators + 4 W vectors
constexpr int64_t kPairs = 64;  // row pairs of W per packed tile: 64 x 4 x 64 B = 16 KiB (L1)

template <int R, int NV>
EUROLLM_AVX512BF16 void tile(const uint16_t *a, int64_t lda, int64_t t0, int64_t t1, const __m512i *packed,
                              float *C, int64_t ldc, const __mmask16 *mask, bool zero) {
    __m512 acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = zero ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], C + r * ldc + 16 * v);
    for (int64_t t = t0; t < t1; ++t) {
        const __m512i *bp = packed + (t - t0) * 4;
        __m512bh b[NV];
        for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_load_si512(bp + v);
        for (int r = 0; r < R; ++r) {
            int32_t pair;
            std::memcpy(&pair, a + r * lda + 2 * t, sizeof pair);
            const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, b[v]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(C + r * ldc + 16 * v, mask[v], acc[r][v]);
}

// All n rows of dX against one packed tile; rows in register tiles of kRows, then the remainder.
template <int NV>
EUROLLM_AVX512BF16 void rows_pass(const uint16_t *a, int64_t lda, int64_t n, int64_t t0, int64_t t1,
                                  const __m512i *packed, float *C, int64_t ldc, const __mmask16 *mask, bool zero) {
    int64_t p = 0;
    for (; p + kRows <= n; p += kRows) tile<kRows, NV>(a + p * lda, lda, t0, t1, packed, C + p * ldc, ldc, mask, zero);
    const int64_t rest = n - p;
    a += p * lda;
    C += p * ldc;
    switch (rest) {
        case 1: tile<1, NV>(a, lda, t0, t1, packed, C, ldc, mask, zero); break;
        case 2: tile<2, NV>(a, lda, t0, t1, packed, C, ldc, mask, zero); break;
        case 3: tile<3, NV>(a, lda, t0, t1, packed, C, ldc, mask, zero); break;
        case 4: tile<4, NV>(a, lda, t0, t1, packed, C, ldc, mask, zero); break;
        case 5: tile<5, NV>(a, lda, t0, t1, packed, C, ldc, mask, zero); break;
        default: break;
    }
}

EUROLLM_AVX512BF16 void backward_avx512(const uint16_t *a, int64_t n, int64_t m, const uint16_t *w, int64_t ldw,
                                        int64_t c0, int64_t c1, float *C, int64_t ldc, bool accumulate) {
    alignas(64) __m512i packed[kPairs * 4];
    const int64_t lda = prep_row_bytes(m) / 2, pairs = (m + 1) / 2;  // matmul_prepare's row stride
    for (int64_t c = c0; c < c1; c += 64) {
        const int64_t nc = std::min<int64_t>(64, c1 - c);
        __mmask16 mask[4];
        for (int v = 0; v < 4; ++v) mask[v] = tail_mask16(nc - 16 * v);
        const int nv = static_cast<int>((nc + 15) / 16);
        for (int64_t t0 = 0; t0 < pairs; t0 += kPairs) {
            const int64_t t1 = std::min(pairs, t0 + kPairs);
            for (int64_t t = t0; t < t1; ++t)
                for (int v = 0; v < nv; ++v) packed[(t - t0) * 4 + v] = row_pair(w, ldw, 2 * t, m, c + 16 * v, mask[v]);
            const bool zero = t0 == 0 && !accumulate;
            switch (nv) {
                case 1: rows_pass<1>(a, lda, n, t0, t1, packed, C + c, ldc, mask, zero); break;
                case 2: rows_pass<2>(a, lda, n, t0, t1, packed, C + c, ldc, mask, zero); break;
                case 3: rows_pass<3>(a, lda, n, t0, t1, packed, C + c, ldc, mask, zero); break;
                default: rows_pass<4>(a, lda, n, t0, t1, packed, C + c, ldc, mask, zero); break;
            }
        }
    }
}

#endif  // __x86_64__

}  // namespace

size_t bf16_prep_bytes(int64_t n, int64_t width) {
    return static_cast<size_t>(round_up(n, 16) * prep_row_bytes(width));
}

void bf16_prepare(const float *a, int64_t lda, int64_t n, int64_t width, int64_t i0, int64_t i1, void *prep) {
#if defined(__x86_64__)
    if (have_amx()) return prepare_tiles<1>(a, lda, n, width, i0, i1, static_cast<uint16_t *>(prep));
#endif
    if (lda == width) {
        matmul_prepare(a, width, wtype::bf16, i0, i1, prep, act_precision::round);
    } else {  // matmul_prepare reads packed rows: one row at a time
        const int64_t rb = prep_row_bytes(width);
        for (int64_t i = i0; i < i1; ++i)
            matmul_prepare(a + i * lda, width, wtype::bf16, 0, 1, static_cast<uint8_t *>(prep) + i * rb,
                           act_precision::round);
    }
    if (i1 == n) {  // the tile kernels read whole blocks of 16 rows: the padding rows are zeros
        const int64_t rb = prep_row_bytes(width);
        std::memset(static_cast<uint8_t *>(prep) + n * rb, 0, static_cast<size_t>((round_up(n, 16) - n) * rb));
    }
}

void bf16_matmul(const void *prep, int64_t n, int64_t k, const uint16_t *w, const float *bias, int64_t j0, int64_t j1,
                 float *y, int64_t ldy) {
    if (n <= 0 || j0 >= j1) return;
#if defined(__x86_64__)
    if (have_amx()) {
        const auto *a = static_cast<const uint16_t *>(prep);
        const auto pack = [&](int64_t k0, int64_t steps, int64_t c, int64_t nc, uint32_t *panel) {
            pack_forward(w, k, k0, steps, c, nc, panel);
        };
        if (!amx_product(a, n, k, pack, 1, bias, j0, j1, y, ldy, false))
            scalar_from_tiles(1, a, n, k, bf16_weight{w, k, k, true}, bias, j0, j1, y, ldy, false);
        return;
    }
#endif
    matmul_prepared(prep, n, k, w, wtype::bf16, bias, j0, j1, y, ldy, act_precision::round);
}

bool bf16_packed_supported(wtype wt) {
#if defined(__x86_64__)
    return have_amx() && (wt == wtype::q8_0 || wt == wtype::q4_0);
#else
    (void)wt;
    return false;
#endif
}

void bf16_matmul_packed(const void *prep, int64_t n, int64_t k, const void *packed, wtype wt, int64_t m,
                        const float *bias, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    if (n <= 0 || j0 >= j1 || !bf16_packed_supported(wt)) return;
#if defined(__x86_64__)
    const auto *a = static_cast<const uint16_t *>(prep);
    const auto *wq = static_cast<const uint8_t *>(packed);
    const bool q4 = wt == wtype::q4_0;
    const int64_t kb = k / 32;
    const auto pack = [&](int64_t k0, int64_t steps, int64_t c, int64_t nc, uint32_t *panel) {
        pack_quant(wq, q4, kb, m, k0, steps, c, nc, panel);
    };
    if (amx_product(a, n, k, pack, 16, bias, j0, j1, y, ldy, false)) return;
    // No scratch for a panel: the same values with plain loops, 16 rows x one group at a time on
    // the stack (slow, but never wrong).
    const int64_t kp = round_up(k, 32);
    alignas(64) uint32_t tile[256];
    for (int64_t g = j0 / 16; g * 16 < j1; ++g)
        for (int64_t i0 = 0; i0 < n; i0 += 16) {
            float acc[16][16] = {};
            for (int64_t b = 0; b < kb; ++b) {
                detail::dequant_tile_bf16(wq, q4, kb, g, b, tile);
                for (int64_t i = i0; i < std::min(n, i0 + 16); ++i)
                    for (int e = 0; e < 32; ++e) {
                        const float av = kmath::bf16_to_f32(a[(i / 16) * 16 * kp + b * 512 + (i % 16) * 32 + e]);
                        for (int c = 0; c < 16; ++c) {
                            const uint32_t word = tile[(e / 2) * 16 + c];
                            acc[i - i0][c] += av * kmath::bf16_to_f32(static_cast<uint16_t>(e % 2 ? word >> 16 : word));
                        }
                    }
            }
            for (int64_t i = i0; i < std::min(n, i0 + 16); ++i)
                for (int64_t j = std::max(j0, g * 16); j < std::min(j1, g * 16 + 16); ++j)
                    y[i * ldy + j] = bias ? acc[i - i0][j - g * 16] + bias[j] : acc[i - i0][j - g * 16];
        }
#endif
}

bool exact_tiles_supported() {
#if defined(__x86_64__)
    return have_amx();
#else
    return false;
#endif
}

size_t exact_tiles_prep_bytes(int64_t n, int64_t width) {
    return static_cast<size_t>(round_up(n, 16) * round_up(width, 32) * 3) * sizeof(uint16_t);
}

void exact_tiles_prepare(const float *a, int64_t lda, int64_t n, int64_t width, int64_t i0, int64_t i1, void *prep) {
#if defined(__x86_64__)
    if (have_amx()) prepare_tiles<3>(a, lda, n, width, i0, i1, static_cast<uint16_t *>(prep));
#else
    (void)a, (void)lda, (void)n, (void)width, (void)i0, (void)i1, (void)prep;
#endif
}

void exact_split(const float *x, int64_t count, uint16_t *t0, uint16_t *t1, uint16_t *t2) {
#if defined(__x86_64__)
    if (have_amx()) return split_terms(x, count, t0, t1, t2);
#endif
    (void)x, (void)count, (void)t0, (void)t1, (void)t2;
}

void round_bf16(const float *x, int64_t count, uint16_t *dst) {
#if defined(__x86_64__)
    if (have_bf16()) return round_row(x, count, dst);
#endif
    for (int64_t e = 0; e < count; ++e) dst[e] = kmath::f32_to_bf16(x[e]);
}

void exact_tiles_matmul(const void *prep, int64_t n, int64_t k, const uint16_t *w, const float *bias, int64_t j0,
                        int64_t j1, float *y, int64_t ldy, int w_terms, int64_t term_stride) {
    if (n <= 0 || j0 >= j1 || !exact_tiles_supported() || (w_terms != 1 && w_terms != 3)) return;
#if defined(__x86_64__)
    const auto *a = static_cast<const uint16_t *>(prep);
    const auto pack = [&](int64_t k0, int64_t steps, int64_t c, int64_t nc, uint32_t *panel) {
        for (int u = 0; u < w_terms; ++u) pack_forward(w + u * term_stride, k, k0, steps, c, nc, panel + u * kPanelWords);
    };
    const bool done = w_terms == 3 ? amx_product<3, 3>(a, n, k, pack, 1, bias, j0, j1, y, ldy, false)
                                   : amx_product<3, 1>(a, n, k, pack, 1, bias, j0, j1, y, ldy, false);
    if (!done)
        scalar_from_tiles(3, a, n, k, bf16_weight{w, k, k, true, w_terms, term_stride}, bias, j0, j1, y, ldy, false);
#else
    (void)prep, (void)k, (void)w, (void)bias, (void)y, (void)ldy, (void)term_stride;
#endif
}

void exact_tiles_gemm_dx(const void *prep, int64_t n, int64_t m, const uint16_t *w, int64_t ldw, int64_t c0, int64_t c1,
                         float *dx, int64_t ldx, bool accumulate, int w_terms, int64_t term_stride) {
    if (n <= 0 || c0 >= c1 || !exact_tiles_supported() || (w_terms != 1 && w_terms != 3)) return;
#if defined(__x86_64__)
    const auto *a = static_cast<const uint16_t *>(prep);
    const auto pack = [&](int64_t k0, int64_t steps, int64_t c, int64_t nc, uint32_t *panel) {
        for (int u = 0; u < w_terms; ++u)
            pack_backward(w + u * term_stride, ldw, m, k0, steps, c, nc, panel + u * kPanelWords);
    };
    const bool done = w_terms == 3 ? amx_product<3, 3>(a, n, m, pack, 1, nullptr, c0, c1, dx, ldx, accumulate)
                                   : amx_product<3, 1>(a, n, m, pack, 1, nullptr, c0, c1, dx, ldx, accumulate);
    if (!done)
        scalar_from_tiles(3, a, n, m, bf16_weight{w, m, ldw, false, w_terms, term_stride}, nullptr, c0, c1, dx, ldx,
                          accumulate);
#else
    (void)prep, (void)m, (void)w, (void)ldw, (void)dx, (void)ldx, (void)accumulate, (void)term_stride;
#endif
}

void f16_tiles_matmul(const void *prep, int terms, int64_t n, int64_t k, const uint16_t *w, const float *bias,
                      int64_t j0, int64_t j1, float *y, int64_t ldy) {
    if (n <= 0 || j0 >= j1 || !exact_tiles_supported() || (terms != 1 && terms != 3)) return;
#if defined(__x86_64__)
    const auto *a = static_cast<const uint16_t *>(prep);
    const auto pack = [&](int64_t k0, int64_t steps, int64_t c, int64_t nc, uint32_t *panel) {
        pack_forward_f16(w, k, k0, steps, c, nc, panel, kPanelWords);
    };
    const bool done = terms == 3 ? amx_product<3, 2>(a, n, k, pack, 1, bias, j0, j1, y, ldy, false)
                                 : amx_product<1, 2>(a, n, k, pack, 1, bias, j0, j1, y, ldy, false);
    if (!done) {
        const auto weight = [&](int64_t c, int64_t q) { return kmath::f16_to_f32(w[c * k + q]); };
        scalar_from_tiles(terms, a, n, k, weight, bias, j0, j1, y, ldy, false);
    }
#else
    (void)prep, (void)k, (void)w, (void)bias, (void)y, (void)ldy;
#endif
}

void gemm_dx_bf16(const float *dy, int64_t lddy, const void *prep, int64_t n, int64_t m, const uint16_t *w, int64_t ldw,
                  int64_t c0, int64_t c1, float *dx, int64_t ldx, bool accumulate) {
    if (n <= 0 || c0 >= c1) return;
#if defined(__x86_64__)
    if (have_bf16()) {
        if (m == 0) {
            if (!accumulate)
                for (int64_t p = 0; p < n; ++p) std::fill(dx + p * ldx + c0, dx + p * ldx + c1, 0.0f);
            return;
        }
        const auto *a = static_cast<const uint16_t *>(prep);
        if (have_amx()) {
            const auto pack = [&](int64_t k0, int64_t steps, int64_t c, int64_t nc, uint32_t *panel) {
                pack_backward(w, ldw, m, k0, steps, c, nc, panel);
            };
            if (!amx_product(a, n, m, pack, 1, nullptr, c0, c1, dx, ldx, accumulate))
                scalar_from_tiles(1, a, n, m, bf16_weight{w, m, ldw, false}, nullptr, c0, c1, dx, ldx, accumulate);
            return;
        }
        return backward_avx512(a, n, m, w, ldw, c0, c1, dx, ldx, accumulate);
    }
#endif
    gemm_rows(0, n, m, dy, lddy, 1, w, wtype::bf16, ldw, c0, c1, dx, ldx, accumulate);
}

}  // namespace eurollm::kernels
