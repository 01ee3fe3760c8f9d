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

// y = x / sqrt(mean(x^2) + eps) * w, with the sum of squares accumulated in double for stability.
EUROLLM_HD float rms_inv(const float *x, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    return 1.0f / sqrtf(static_cast<float>(ss / n) + eps);
}

}  // namespace eurollm::kmath
