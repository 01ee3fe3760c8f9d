// Per-row math shared by the CPU kernels and the GPU kernels (host-and-device inline), so the CPU
// tests exercise the arithmetic the GPU runs.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define EUROLLM_HD __host__ __device__ __forceinline__
#else
#define EUROLLM_HD inline
#endif

namespace eurollm::kmath {

EUROLLM_HD float bf16_to_f32(uint16_t h) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// Round to nearest even; NaN stays NaN.
EUROLLM_HD uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

EUROLLM_HD float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// f32 -> f16, round to nearest even (NaN stays NaN, overflow goes to Inf).
EUROLLM_HD uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mant = x & 0x7fffffu;
    const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
    if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
    if (e <= 0) {  // subnormal or zero
        if (e < -10) return static_cast<uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - e;
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) ++h;
        return static_cast<uint16_t>(sign | h);
    }
    uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
    return static_cast<uint16_t>(sign | h);
}

EUROLLM_HD float silu(float x) { return x / (1.0f + expf(-x)); }

// Inverse frequency of rotary pair i (0 <= i < rotary_dim/2), before any scaling.
EUROLLM_HD float rope_inv_freq(int i, int rotary_dim, float theta) {
    return 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
}

// Rotates the pair (x[i], x[i + half]) by angle: the Hugging Face "rotate_half" layout.
EUROLLM_HD void rope_rotate(float *x, int i, int half, float cos_a, float sin_a) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cos_a - b * sin_a;
    x[i + half] = b * cos_a + a * sin_a;
}

// y = x / sqrt(mean(x^2) + eps) * w, with the sum of squares accumulated in double for stability,
// in eight partial sums (element i into sum i % 8) added in a fixed order: the same bits on every
// path, and eight short chains of dependent additions instead of one of n (which made a 2048-wide
// row take ~8000 cycles).
EUROLLM_HD float rms_inv(const float *x, int n, float eps) {
    double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(x[i + j]) * x[i + j];
    for (int j = 0; i < n; ++i, ++j) part[j] += static_cast<double>(x[i]) * x[i];
    const double ss = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    return 1.0f / sqrtf(static_cast<float>(ss / n) + eps);
}

// ---- Backward (training) per-row math, shared with the GPU kernels ----

// d silu(x) / dx = s * (1 + x * (1 - s)), s = sigmoid(x).
EUROLLM_HD float silu_grad(float x) {
    const float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

// Backward of y = w * x * rstd for one row of n: given g = dy * w (already multiplied by the weight),
// dx = rstd * g - x * rstd^3 / n * sum(g * x). The dot product is accumulated in double.
EUROLLM_HD void rms_norm_backward_row(const float *x, const float *g, float rstd, int n, float *dx, bool accumulate) {
    double dot = 0.0;
    for (int i = 0; i < n; ++i) dot += static_cast<double>(g[i]) * x[i];
    const float c = static_cast<float>(dot / n) * rstd * rstd * rstd;
    for (int i = 0; i < n; ++i) {
        const float v = rstd * g[i] - c * x[i];
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

// Softmax cross-entropy of one row of logits: returns logsumexp(z) - z[target] and, when dz is not
// null, writes (softmax(z) - onehot(target)) * scale into dz (dz may alias z).
EUROLLM_HD float softmax_xent_row(const float *z, int n, int target, float scale, float *dz) {
    float mx = z[0];
    for (int i = 1; i < n; ++i) mx = z[i] > mx ? z[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += static_cast<double>(expf(z[i] - mx));
    const float lse = mx + static_cast<float>(log(sum));
    const float loss = lse - z[target];
    if (dz) {
        const float inv = static_cast<float>(1.0 / sum);
        for (int i = 0; i < n; ++i) dz[i] = expf(z[i] - mx) * inv * scale;
        dz[target] -= scale;
    }
    return loss;
}

// One AdamW element (decoupled weight decay, bias-corrected moments).
EUROLLM_HD void adamw_element(float *w, float g, float *m, float *v, float lr, float b1, float b2, float eps, float wd,
                              float bc1, float bc2) {
    *m = b1 * *m + (1.0f - b1) * g;
    *v = b2 * *v + (1.0f - b2) * g * g;
    const float mhat = *m / bc1, vhat = *v / bc2;
    *w -= lr * (mhat / (sqrtf(vhat) + eps) + wd * *w);
}

}  // namespace eurollm::kmath
