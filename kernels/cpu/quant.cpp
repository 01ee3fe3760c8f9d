// Block formats: sizes, dequantization of every supported type, quantizers (q8_0 / q4_0: the
// round-to-nearest rules of ggml's quantize_row_*_ref, so files we write read the same in
// llama.cpp; q4_k / q6_k: a least-squares search of each sub-block's grid, then the scales
// quantized as the format stores them).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "cpu/simd.h"
#include "kernels.h"

namespace eurollm::kernels {
namespace {

using detail::block_q4_0;
using detail::block_q4_k;
using detail::block_q6_k;
using detail::block_q8_0;

using kmath::f32_to_f16;

// q4_k: x[0, 32) ~ s * q - m with q in 0..15, s >= 0 and m >= 0 (the format subtracts its min, so
// a sub-block of positive values keeps m = 0). Grids of 14 to 16 steps over [min(x, 0), max(x)],
// each refined by least squares for (s, -m) given its q; the smallest squared error wins (the
// search llama.cpp's make_qkx2_quants does, unweighted).
void fit_q4k_sub_block(const float *x, float *s_out, float *m_out) {
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < 32; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    *s_out = 0.0f, *m_out = -lo;
    if (!(hi > lo)) return;  // constant (or not finite): the min alone
    double best = INFINITY;
    for (int step = -10; step <= 10; ++step) {
        const float iscale = (15.0f + 0.1f * static_cast<float>(step)) / (hi - lo);
        double sq = 0, sqq = 0, sx = 0, sqx = 0;
        int q[32];
        for (int i = 0; i < 32; ++i) {
            q[i] = std::clamp(static_cast<int>(std::lrintf((x[i] - lo) * iscale)), 0, 15);
            sq += q[i], sqq += q[i] * q[i], sx += x[i], sqx += q[i] * double(x[i]);
        }
        const double det = 32 * sqq - sq * sq;
        if (sqq == 0) continue;
        double a = sqx / sqq, b = 0;  // all q equal: the scale alone
        if (det > 0) a = (32 * sqx - sq * sx) / det, b = (sqq * sx - sq * sqx) / det;
        if (b > 0) b = 0, a = sqx / sqq;  // the min cannot be added
        if (a < 0) continue;
        double err = 0;
        for (int i = 0; i < 32; ++i) err += (a * q[i] + b - x[i]) * (a * q[i] + b - x[i]);
        if (err < best) best = err, *s_out = static_cast<float>(a), *m_out = static_cast<float>(-b);
    }
}

void quantize_q4_k(const float *x, block_q4_k &b) {
    float s[8], m[8], max_s = 0.0f, max_m = 0.0f;
    for (int j = 0; j < 8; ++j) {
        fit_q4k_sub_block(x + 32 * j, &s[j], &m[j]);
        max_s = std::max(max_s, s[j]), max_m = std::max(max_m, m[j]);
    }
    b.d = f32_to_f16(max_s / 63.0f), b.dmin = f32_to_f16(max_m / 63.0f);
    const float d = kmath::f16_to_f32(b.d), dmin = kmath::f16_to_f32(b.dmin);
    std::memset(b.scales, 0, sizeof b.scales);
    for (int j = 0; j < 8; ++j) {
        const int sc = d > 0 ? std::clamp(static_cast<int>(std::lrintf(s[j] / d)), 0, 63) : 0;
        const int mn = dmin > 0 ? std::clamp(static_cast<int>(std::lrintf(m[j] / dmin)), 0, 63) : 0;
        if (j < 4) {  // the 12 bytes as get_scale_min_k4 reads them
            b.scales[j] |= static_cast<uint8_t>(sc);
            b.scales[j + 4] |= static_cast<uint8_t>(mn);
        } else {
            b.scales[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((mn & 0xF) << 4));
            b.scales[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
            b.scales[j] |= static_cast<uint8_t>((mn >> 4) << 6);
        }
        // The values against the scales as stored (f16 d, dmin; 6-bit sc, mn).
        const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(mn);
        for (int e = 0; e < 32; ++e) {
            const int q = ds > 0 ? std::clamp(static_cast<int>(std::lrintf((x[32 * j + e] + dm) / ds)), 0, 15) : 0;
            uint8_t &byte = b.qs[32 * (j / 2) + e];
            byte = static_cast<uint8_t>(j % 2 ? (byte & 0x0F) | (q << 4) : q);
        }
    }
}

// q6_k: each sub-block of 16 on a symmetric grid whose -32 end is its largest magnitude (as
// llama.cpp's make_qx_quants starts from), the 16 sub-block scales as int8 steps of d.
void quantize_q6_k(const float *x, block_q6_k &b) {
    float s[16], max_abs = 0.0f;
    for (int j = 0; j < 16; ++j) {
        float v = 0.0f;
        for (int e = 16 * j; e < 16 * j + 16; ++e)
            if (std::fabs(x[e]) > std::fabs(v)) v = x[e];
        s[j] = v / -32.0f;
        max_abs = std::max(max_abs, std::fabs(s[j]));
    }
    b.d = f32_to_f16(max_abs / 127.0f);
    const float d = kmath::f16_to_f32(b.d);
    std::memset(b.ql, 0, sizeof b.ql);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int j = 0; j < 16; ++j) {
        const int sc = d > 0 ? std::clamp(static_cast<int>(std::lrintf(s[j] / d)), -127, 127) : 0;
        b.scales[j] = static_cast<int8_t>(sc);
        const float ds = d * static_cast<float>(sc);
        for (int e = 16 * j; e < 16 * j + 16; ++e) {
            const int q = (ds != 0 ? std::clamp(static_cast<int>(std::lrintf(x[e] / ds)), -32, 31) : 0) + 32;
            // element e = 128 h + 32 t + l: low 4 bits in ql[64 h + l + 32 (t & 1)] (the high
            // nibble for t >= 2), high 2 bits at bit 2 t of qh[32 h + l]
            const int h = e / 128, t = (e % 128) / 32, l = e % 32;
            b.ql[64 * h + l + 32 * (t & 1)] |= static_cast<uint8_t>((q & 0xF) << (t < 2 ? 0 : 4));
            b.qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * t));
        }
    }
}

#if defined(__x86_64__)
// f32_to_f16 sixteen at a time (vcvtps2ph rounds to nearest even as it does); a group holding a
// NaN goes through f32_to_f16, which does not keep NaN payloads as the instruction does.
__attribute__((target("avx512f"))) void f32_to_f16_avx512(const float *x, int64_t n, uint16_t *h) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) {
            for (int64_t j = i; j < i + 16; ++j) h[j] = f32_to_f16(x[j]);
            continue;
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(h + i),
                            _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; ++i) h[i] = f32_to_f16(x[i]);
}
#endif

}  // namespace

int64_t wtype_block_elems(wtype wt) {
    switch (wt) {
        case wtype::q8_0:
        case wtype::q4_0: return 32;
        case wtype::q4_k:
        case wtype::q6_k: return 256;
        default: return 1;
    }
}

int64_t wtype_block_bytes(wtype wt) {
    switch (wt) {
        case wtype::f32: return 4;
        case wtype::f16:
        case wtype::bf16: return 2;
        case wtype::q8_0: return 34;
        case wtype::q4_0: return 18;
        case wtype::q4_k: return 144;
        case wtype::q6_k: return 210;
    }
    return 0;
}

bool wtype_is_quantized(wtype wt) { return wtype_block_elems(wt) > 1; }

void dequantize_row(const void *row, wtype wt, int64_t n, float *out) {
    switch (wt) {
        case wtype::f32: std::memcpy(out, row, static_cast<size_t>(n) * 4); return;
        case wtype::f16: {
            const uint16_t *h = static_cast<const uint16_t *>(row);
            for (int64_t i = 0; i < n; ++i) out[i] = kmath::f16_to_f32(h[i]);
            return;
        }
        case wtype::bf16: {
            const uint16_t *h = static_cast<const uint16_t *>(row);
            for (int64_t i = 0; i < n; ++i) out[i] = kmath::bf16_to_f32(h[i]);
            return;
        }
        case wtype::q8_0: {
            const block_q8_0 *b = static_cast<const block_q8_0 *>(row);
            for (int64_t i = 0; i < n / 32; ++i) {
                const float d = kmath::f16_to_f32(b[i].d);
                for (int j = 0; j < 32; ++j) out[i * 32 + j] = d * b[i].qs[j];
            }
            return;
        }
        case wtype::q4_0: {
            const block_q4_0 *b = static_cast<const block_q4_0 *>(row);
            for (int64_t i = 0; i < n / 32; ++i) {
                const float d = kmath::f16_to_f32(b[i].d);
                for (int j = 0; j < 16; ++j) {
                    out[i * 32 + j] = d * static_cast<float>((b[i].qs[j] & 0x0F) - 8);
                    out[i * 32 + j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
                }
            }
            return;
        }
        case wtype::q4_k: {
            const block_q4_k *b = static_cast<const block_q4_k *>(row);
            for (int64_t i = 0; i < n / 256; ++i) {
                const uint8_t *q = b[i].qs;
                const float d = kmath::f16_to_f32(b[i].d), dmin = kmath::f16_to_f32(b[i].dmin);
                float *y = out + i * 256;
                for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
                    uint8_t sc, m;
                    detail::get_scale_min_k4(is + 0, b[i].scales, &sc, &m);
                    const float d1 = d * sc, m1 = dmin * m;
                    detail::get_scale_min_k4(is + 1, b[i].scales, &sc, &m);
                    const float d2 = d * sc, m2 = dmin * m;
                    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
                    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
                }
            }
            return;
        }
        case wtype::q6_k: {
            const block_q6_k *b = static_cast<const block_q6_k *>(row);
            for (int64_t i = 0; i < n / 256; ++i) {
                const float d = kmath::f16_to_f32(b[i].d);
                const uint8_t *ql = b[i].ql, *qh = b[i].qh;
                const int8_t *sc = b[i].scales;
                float *y = out + i * 256;
                for (int h = 0; h < 256; h += 128, y += 128, ql += 64, qh += 32, sc += 8) {
                    for (int l = 0; l < 32; ++l) {
                        const int is = l / 16;
                        const int q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                        const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        const int q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        y[l + 0] = d * sc[is + 0] * static_cast<float>(q1);
                        y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
                        y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
                        y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
                    }
                }
            }
            return;
        }
    }
}

void quantize_row(const float *x, wtype wt, int64_t n, void *out) {
    switch (wt) {
        case wtype::f32: std::memcpy(out, x, static_cast<size_t>(n) * 4); return;
        case wtype::f16: {
            uint16_t *h = static_cast<uint16_t *>(out);
#if defined(__x86_64__)
            if (cpu_isa() == isa::avx512) return f32_to_f16_avx512(x, n, h);
#endif
            for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(x[i]);
            return;
        }
        case wtype::bf16: {
            uint16_t *h = static_cast<uint16_t *>(out);
            for (int64_t i = 0; i < n; ++i) h[i] = kmath::f32_to_bf16(x[i]);
            return;
        }
        case wtype::q8_0: {
            block_q8_0 *b = static_cast<block_q8_0 *>(out);
            for (int64_t i = 0; i < n / 32; ++i) {
                const float *xb = x + i * 32;
                float amax = 0.0f;
                for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
                const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                b[i].d = f32_to_f16(d);
                for (int j = 0; j < 32; ++j) b[i].qs[j] = static_cast<int8_t>(std::roundf(xb[j] * id));
            }
            return;
        }
        case wtype::q4_0: {
            block_q4_0 *b = static_cast<block_q4_0 *>(out);
            for (int64_t i = 0; i < n / 32; ++i) {
                const float *xb = x + i * 32;
                float amax = 0.0f, max = 0.0f;
                for (int j = 0; j < 32; ++j)
                    if (std::fabs(xb[j]) > amax) {
                        amax = std::fabs(xb[j]);
                        max = xb[j];
                    }
                const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                b[i].d = f32_to_f16(d);
                for (int j = 0; j < 16; ++j) {
                    const int x0 = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j] * id + 8.5f)));
                    const int x1 = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j + 16] * id + 8.5f)));
                    b[i].qs[j] = static_cast<uint8_t>(x0 | (x1 << 4));
                }
            }
            return;
        }
        case wtype::q4_k: {
            block_q4_k *b = static_cast<block_q4_k *>(out);
            for (int64_t i = 0; i < n / 256; ++i) quantize_q4_k(x + i * 256, b[i]);
            return;
        }
        case wtype::q6_k: {
            block_q6_k *b = static_cast<block_q6_k *>(out);
            for (int64_t i = 0; i < n / 256; ++i) quantize_q6_k(x + i * 256, b[i]);
            return;
        }
    }
}

namespace detail {
namespace {

// Finite activations give |sum| <= 32 * 127; a NaN or infinity converts to INT_MIN, and the block's
// product is garbage either way (its scale d is not finite), but must not overflow a signed int.
int32_t wrapped_product(int32_t a, int32_t b) {
    return static_cast<int32_t>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
}

#if defined(__x86_64__)
// The lanes' sum in vector adds, which wrap (GCC's _mm512_reduce_add_epi32 ends in a signed scalar
// add, which the sanitizer rightly reports when NaN lanes hold INT_MIN).
__attribute__((target("avx512f"))) int32_t wrapped_sum16(__m512i v) {
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4e));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1));
    return _mm_cvtsi128_si32(q);
}

// The same arithmetic on 16 lanes: max ignores NaN as fmax does (vmaxps returns its second operand
// when the first is NaN), and vcvtps2dq rounds to nearest even as lrintf does in the default mode.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void quantize_q8x_avx512(const float *x, int64_t k,
                                                                              int32_t offset, block_q8x *out) {
    for (int64_t i = 0; i < k / 32; ++i) {
        const __m512 a = _mm512_loadu_ps(x + i * 32), b = _mm512_loadu_ps(x + i * 32 + 16);
        __m512 m = _mm512_max_ps(_mm512_abs_ps(a), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(b), m);
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(id)));
        const __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, _mm512_set1_ps(id)));
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out[i].qs), _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out[i].qs + 16), _mm512_cvtepi32_epi8(qb));
        out[i].d = d;
        out[i].bias = wrapped_product(offset, wrapped_sum16(_mm512_add_epi32(qa, qb)));
    }
}
#endif

}  // namespace

void quantize_q8x(const float *x, int64_t k, int32_t offset, block_q8x *out) {
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512) return quantize_q8x_avx512(x, k, offset, out);
#endif
    for (int64_t i = 0; i < k / 32; ++i) {
        const float *xb = x + i * 32;
        float id;
        const float d = q8_scale(xb, 32, &id);
        out[i].d = d;
        out[i].bias = wrapped_product(offset, round_to_int8(xb, 32, id, out[i].qs));
    }
}

}  // namespace detail
}  // namespace eurollm::kernels
