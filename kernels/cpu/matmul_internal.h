// Pieces shared by the CPU matmul translation units (not part of the kernel interface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/aligned_buffer.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace eurollm::kernels::detail {

#if defined(__x86_64__)
// An AMX tile configuration (palette 1): rows[t] rows of colsb[t] bytes for tiles t = 0-7.
struct tile_config {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// GCC does not model ldtilecfg as reading its operand and may drop the stores that zero the unused
// fields (seen in bench/ceilings: colsb[8..15] left as stack garbage, then #GP); the empty asm
// keeps the whole struct live.
__attribute__((target("amx-tile"))) inline void load_tile_config(const tile_config &cfg) {
    asm volatile("" : : "m"(cfg));
    _tile_loadconfig(&cfg);
}

// A row kernel's accumulators (lane c of acc[r]: activation row r against weight row c, c < rw <= 4)
// to out[r * rw + c], as tiled_matmul takes them.
template <int rx>
inline void store_lanes4(const __m128 (&acc)[rx], int rw, float *out) {
    for (int r = 0; r < rx; ++r) {
        alignas(16) float o[4];
        _mm_store_ps(o, acc[r]);
        for (int c = 0; c < rw; ++c) out[r * rw + c] = o[c];
    }
}
#endif

// ---- the tiled driver, shared by the SIMD kernels of matmul.cpp, matmul_kquant.cpp and
// matmul_quant_rows.cpp ----------------------------------------------------------------------------
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
                float one = 0.0f;
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
                        float one[RX] = {};
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

// The ggml block layouts.
struct block_q8_0 {
    uint16_t d;  // f16
    int8_t qs[32];
};
struct block_q4_0 {
    uint16_t d;  // f16
    uint8_t qs[16];
};
struct block_q4_k {
    uint16_t d, dmin;  // f16
    uint8_t scales[12];
    uint8_t qs[128];
};
struct block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;  // f16
};
static_assert(sizeof(block_q8_0) == 34 && sizeof(block_q4_0) == 18, "ggml block sizes");
static_assert(sizeof(block_q4_k) == 144 && sizeof(block_q6_k) == 210, "ggml k-quant block sizes");

// q4_k: the 6-bit scale and min of sub-block j (0-7) from the packed 12 bytes.
inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

// Activations quantized for the q8_0/q4_0 dot products: per 32-element block the scale d, the
// sum of the 32 int8 values times the weight type's offset (128 for q8_0, 8 for q4_0: what the
// unsigned-weight instructions add, see matmul_quant.cpp) and the values.
struct block_q8x {
    float d;
    int32_t bias;
    int8_t qs[32];
};
static_assert(sizeof(block_q8x) == 40, "activation block size");

void quantize_q8x(const float *x, int64_t k, int32_t offset, block_q8x *out);

// q8_0 (q4 false) / q4_0 canonical rows w against n prepared activation rows, read in place
// (matmul_quant_rows.cpp): the product of matmul_quant.cpp's definition, for any n; the kernels
// for decode, and for products of fewer than 16 rows without AVX512-VNNI.
void quant_rows(const block_q8x *x, int64_t n, int64_t k, const void *w, bool q4, const float *bias, int64_t j0,
                int64_t j1, float *y, int64_t ldy);

// The 8-bit scale of n activations (amax / 127) and its inverse (0 for an all-zero block): the
// rule of both activation formats, q = round-to-nearest-even(x * id).
inline float q8_scale(const float *x, int64_t n, float *id) {
    float amax = 0.0f;
    for (int64_t e = 0; e < n; ++e) amax = std::fmax(amax, std::fabs(x[e]));
    const float d = amax / 127.0f;
    *id = d != 0.0f ? 1.0f / d : 0.0f;
    return d;
}

// out[e] = round-to-nearest-even(x[e] * id) for e < n, as int8 (a NaN stores 0); returns their sum.
inline int32_t round_to_int8(const float *x, int64_t n, float id, int8_t *out) {
    int32_t sum = 0;
    for (int64_t e = 0; e < n; ++e) {
        out[e] = static_cast<int8_t>(std::lrintf(x[e] * id));
        sum += out[e];
    }
    return sum;
}

// Activations quantized for the q4_k / q6_k products (matmul_kquant.cpp): per 256-element
// super-block the scale d, the sum of each 16 consecutive values (in element order) and the
// values (for q4_k in the order its nibbles come, see matmul_kquant.cpp).
struct block_q8k {
    float d;
    int16_t bsums[16];
    int8_t qs[256];
};
static_assert(sizeof(block_q8k) == 292, "k-quant activation block size");

size_t kquant_prep_bytes(int64_t n, int64_t k);
void kquant_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep);
void kquant_matmul(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                   int64_t j1, float *y, int64_t ldy);

// One AMX bf16 B tile from packed q8_0 / q4_0 weights (pack_weight_groups' layout, kb blocks per
// row): block b of group `group`'s 16 rows, dequantized (d * q, rounded once to bf16); tile row p,
// 32-bit word j = elements 2p, 2p + 1 of row j (the low half first). x86 with AVX512-BF16 only.
void dequant_tile_bf16(const uint8_t *packed, bool q4, int64_t kb, int64_t group, int64_t b, uint32_t *tile);

size_t quant_prep_bytes(wtype wt, int64_t n, int64_t k);
void quant_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep);
void quant_matmul(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                  int64_t j1, float *y, int64_t ldy);

}  // namespace eurollm::kernels::detail
