// Row-wise ops of the decoder block: embedding lookup, rms norm, rope, SwiGLU, residual add.
#include <vector>

#include "common/math.h"
#include "kernels.h"
#include "kernels_backward.h"

namespace eurollm::kernels {
namespace {

float weight_at(const void *w, wtype wt, int64_t i) {
    switch (wt) {
        case wtype::f16: return kmath::f16_to_f32(static_cast<const uint16_t *>(w)[i]);
        case wtype::bf16: return kmath::bf16_to_f32(static_cast<const uint16_t *>(w)[i]);
        default: return static_cast<const float *>(w)[i];
    }
}

}  // namespace

void embedding_rows(const int32_t *ids, const void *table, wtype wt, int64_t dim, int64_t i0, int64_t i1,
                    float *out) {
    if (wt != wtype::f32) {  // every stored type, quantized ones included, through its row decoder
        const int64_t row_bytes = wtype_row_bytes(wt, dim);
        for (int64_t i = i0; i < i1; ++i)
            dequantize_row(static_cast<const uint8_t *>(table) + ids[i] * row_bytes, wt, dim, out + i * dim);
        return;
    }
    for (int64_t i = i0; i < i1; ++i) {
        const int64_t base = static_cast<int64_t>(ids[i]) * dim;
        float *o = out + i * dim;
        for (int64_t c = 0; c < dim; ++c) o[c] = weight_at(table, wt, base + c);
    }
}

void rms_norm_rows(const float *x, const void *w, wtype wt, int64_t dim, float eps, int64_t i0, int64_t i1,
                   float *out) {
    if (wtype_is_quantized(wt)) {
        std::vector<float> wf(static_cast<size_t>(dim));
        dequantize_row(w, wt, dim, wf.data());
        return rms_norm_rows(x, wf.data(), wtype::f32, dim, eps, i0, i1, out);
    }
    // The weight type is fixed per call: each form gets its own loop, which the compiler vectorizes.
    auto rows = [&](auto weight) {
        for (int64_t i = i0; i < i1; ++i) {
            const float *xr = x + i * dim;
            float *o = out + i * dim;
            const float inv = kmath::rms_inv(xr, static_cast<int>(dim), eps);
            for (int64_t c = 0; c < dim; ++c) o[c] = weight(c) * (xr[c] * inv);
        }
    };
    if (wt == wtype::f32) rows([w32 = static_cast<const float *>(w)](int64_t c) { return w32[c]; });
    else if (wt == wtype::bf16)
        rows([w16 = static_cast<const uint16_t *>(w)](int64_t c) { return kmath::bf16_to_f32(w16[c]); });
    else rows([&](int64_t c) { return weight_at(w, wt, c); });
}

void rope_rows(float *x, int64_t n_heads, int64_t head_dim, const int32_t *pos, const float *inv_freq,
               int64_t rotary_dim, int64_t i0, int64_t i1) {
    const int half = static_cast<int>(rotary_dim / 2);
    for (int64_t i = i0; i < i1; ++i) {
        const float p = static_cast<float>(pos[i]);
        for (int f = 0; f < half; ++f) {
            // The angle is rounded to f32 before cos/sin, as Hugging Face computes it.
            const float angle = p * inv_freq[f];
            const float c = cosf(angle), s = sinf(angle);
            for (int64_t h = 0; h < n_heads; ++h) kmath::rope_rotate(x + (i * n_heads + h) * head_dim, f, half, c, s);
        }
    }
}

void swiglu_rows(float *gate, const float *up, int64_t dim, int64_t i0, int64_t i1) {
    swiglu_forward_rows(gate, up, gate, dim, i0, i1);  // training's kernel (vector exp), in place
}

void add_inplace(float *y, const float *x, int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) y[e] += x[e];
}

}  // namespace eurollm::kernels
