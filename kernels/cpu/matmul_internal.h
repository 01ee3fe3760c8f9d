// Pieces shared by the CPU matmul translation units (not part of the kernel interface).
#pragma once

#include <cstddef>
#include <cstdint>
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
#endif

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

// q4_k / q6_k products (matmul.cpp), from activations prepared for f32 weights. kquant_rows: y as
// the f32 product on the dequantized rows, the weights dequantized in registers (AVX-512 or AVX2;
// false elsewhere); kquant_dequantize: `rows` rows of w as f32 (row stride k), the values
// dequantize_row gives, vectorized (AVX-512 or AVX2; false elsewhere).
bool kquant_rows(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy);
bool kquant_dequantize(const void *w, wtype wt, int64_t k, int64_t rows, float *out);

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

// One AMX bf16 B tile from packed q8_0 / q4_0 weights (pack_weight_groups' layout, kb blocks per
// row): block b of group `group`'s 16 rows, dequantized (d * q, rounded once to bf16); tile row p,
// 32-bit word j = elements 2p, 2p + 1 of row j (the low half first). x86 with AVX512-BF16 only.
void dequant_tile_bf16(const uint8_t *packed, bool q4, int64_t kb, int64_t group, int64_t b, uint32_t *tile);

size_t quant_prep_bytes(wtype wt, int64_t n, int64_t k);
void quant_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep);
void quant_matmul(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                  int64_t j1, float *y, int64_t ldy);

}  // namespace eurollm::kernels::detail
