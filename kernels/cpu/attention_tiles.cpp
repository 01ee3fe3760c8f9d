// The prompt attention on the tile products (kernels_backward.h, attention_block_tiles): a block of
// query rows whose visible cells are prefixes of one list takes two tile products per kv head
// instead of one dot product per (row, cell):
//   S = Q Kᵀ      (K gathered from the cache in list order)
//   P = softmax(S * scale) over each row's own prefix, in f32 (zeros past it)
//   O = P V
// BF16 precision rounds Q, K, P and V to bf16 (bf16_matmul, gemm_dx_bf16); EXACT splits each into
// three bf16 terms (exact_tiles_*: nine tile products per multiply-add, every product exact, the
// sums in f32). Row r of the block sees cells[0, len[r]); the block's products run to the longest
// prefix, and the zeros of P past a row's own prefix add nothing to its sums.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/simd.h"
#include "kernels_backward.h"

namespace eurollm::kernels {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The scratch, in this order (each part 64-byte aligned): the prepared operand (Q or P), S / P
// [rows * group, cells] f32, Q / O [rows * group, head_dim] f32.
struct block_scratch {
    void *prep;
    float *S, *QO;
    block_scratch(void *base, int64_t n, int64_t cells, int64_t head_dim, bool exact) {
        auto *b = static_cast<uint8_t *>(base);
        prep = b;
        b += prep_bytes(n, cells, head_dim, exact);
        S = reinterpret_cast<float *>(b);
        b += round_up(n * cells * 4, 64);
        QO = reinterpret_cast<float *>(b);
    }
    static int64_t prep_bytes(int64_t n, int64_t cells, int64_t head_dim, bool exact) {
        const auto bytes = [&](int64_t width) {
            return exact ? exact_tiles_prep_bytes(n, width) : bf16_prep_bytes(n, width);
        };
        return round_up(static_cast<int64_t>(std::max(bytes(head_dim), bytes(cells))), 64);
    }
    static size_t bytes(int64_t n, int64_t cells, int64_t head_dim, bool exact) {
        return static_cast<size_t>(prep_bytes(n, cells, head_dim, exact) + round_up(n * cells * 4, 64) +
                                   round_up(n * head_dim * 4, 64));
    }
};

// row[0, len) = softmax(row[0, len) * scale), row[len, cells) = 0.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) void softmax_prefix_avx512(float *row, int64_t len, int64_t cells, float scale) {
    const __m512 sv = _mm512_set1_ps(scale);
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int64_t t = 0; t < len; t += 16) {
        const __mmask16 k = tail_mask16(len - t);
        const __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + t), sv);
        _mm512_mask_storeu_ps(row + t, k, x);
        mv = _mm512_mask_max_ps(mv, k, mv, x);
    }
    const double sum = exp_sum16(row, row, len, _mm512_reduce_max_ps(mv));
    const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
    for (int64_t t = 0; t < len; t += 16) {
        const __mmask16 k = tail_mask16(len - t);
        _mm512_mask_storeu_ps(row + t, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + t), inv));
    }
    std::fill(row + len, row + cells, 0.0f);
}
#endif

void softmax_prefix(float *row, int64_t len, int64_t cells, float scale) {
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512) return softmax_prefix_avx512(row, len, cells, scale);
#endif
    float mx = -INFINITY;
    for (int64_t t = 0; t < len; ++t) {
        row[t] *= scale;
        mx = std::max(mx, row[t]);
    }
    double sum = 0.0;
    for (int64_t t = 0; t < len; ++t) {
        row[t] = std::exp(row[t] - mx);
        sum += row[t];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t t = 0; t < len; ++t) row[t] *= inv;
    std::fill(row + len, row + cells, 0.0f);
}

}  // namespace

bool attention_tiles_supported() { return exact_tiles_supported(); }

void attention_tiles_gather(const void *cache, wtype kv_type, int64_t head_dim, const int32_t *cells, int64_t t0,
                            int64_t t1, int64_t rows, bool exact, uint16_t *dst) {
    std::vector<float> row(static_cast<size_t>(kv_type == wtype::f16 ? head_dim : 0));
    const int64_t stride = rows * head_dim;  // between the terms of the exact split
    for (int64_t t = t0; t < t1; ++t) {
        const float *src = static_cast<const float *>(cache) + cells[t] * head_dim;
        if (kv_type == wtype::f16) {
            const uint16_t *h = static_cast<const uint16_t *>(cache) + cells[t] * head_dim;
            for (int64_t d = 0; d < head_dim; ++d) row[static_cast<size_t>(d)] = kmath::f16_to_f32(h[d]);
            src = row.data();
        }
        uint16_t *o = dst + t * head_dim;
        if (exact) exact_split(src, head_dim, o, o + stride, o + 2 * stride);
        else round_bf16(src, head_dim, o);
    }
}

size_t attention_block_tiles_scratch_bytes(int64_t rows, int64_t group, int64_t cells, int64_t head_dim, bool exact) {
    return block_scratch::bytes(rows * group, cells, head_dim, exact);
}

void attention_block_tiles(const float *q, int64_t q_stride, int64_t rows, int64_t group, const uint16_t *kh,
                           const uint16_t *vh, int64_t kv_rows, int64_t head_dim, const int64_t *len, float scale,
                           bool exact, float *out, void *scratch) {
    if (rows <= 0 || group <= 0) return;
    const int64_t n = rows * group, L = len[rows - 1], stride = kv_rows * head_dim;
    block_scratch s(scratch, n, L, head_dim, exact);
    // Operand row p = r * group + g: query head g of row r.
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(s.QO + r * group * head_dim, q + r * q_stride, static_cast<size_t>(group * head_dim) * 4);
    if (exact) {
        exact_tiles_prepare(s.QO, head_dim, n, head_dim, 0, n, s.prep);
        exact_tiles_matmul(s.prep, n, head_dim, kh, nullptr, 0, L, s.S, L, 3, stride);
    } else {
        bf16_prepare(s.QO, head_dim, n, head_dim, 0, n, s.prep);
        bf16_matmul(s.prep, n, head_dim, kh, nullptr, 0, L, s.S, L);
    }
    for (int64_t p = 0; p < n; ++p) softmax_prefix(s.S + p * L, len[p / group], L, scale);
    if (exact) {
        exact_tiles_prepare(s.S, L, n, L, 0, n, s.prep);
        exact_tiles_gemm_dx(s.prep, n, L, vh, head_dim, 0, head_dim, s.QO, head_dim, false, 3, stride);
    } else {
        bf16_prepare(s.S, L, n, L, 0, n, s.prep);
        gemm_dx_bf16(s.S, L, s.prep, n, L, vh, head_dim, 0, head_dim, s.QO, head_dim, false);
    }
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(out + r * q_stride, s.QO + r * group * head_dim, static_cast<size_t>(group * head_dim) * 4);
}

}  // namespace eurollm::kernels
