// Row-wise ops of training, forward and backward together: rms norm, rope, SwiGLU, the fused
// softmax cross-entropy, the embedding scatter and AdamW. The per-row arithmetic is in
// common/math.h, shared with the GPU kernels; SwiGLU, the causal softmax and the cross-entropy,
// which spend their time in exp (hundreds of millions per step of a 1.7B model), also have AVX-512
// forms of the same formulas, with a 16-lane exp (relative error ~2e-7, NaN kept).
#include <cmath>
#include <vector>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/simd.h"
#include "kernels_backward.h"

namespace eurollm::kernels {
namespace {

#if defined(__x86_64__)
#define EUROLLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

EUROLLM_AVX512 void swiglu_forward_avx512(const float *gate, const float *up, float *act, int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; e += 16) {
        const __mmask16 m = tail_mask16(e1 - e);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + e), u = _mm512_maskz_loadu_ps(m, up + e);
        const __m512 e_neg = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
        const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e_neg));
        _mm512_mask_storeu_ps(act + e, m, _mm512_mul_ps(silu, u));
    }
}

EUROLLM_AVX512 void swiglu_backward_avx512(const float *dact, const float *gate, const float *up, float *dgate,
                                           float *dup, int64_t e0, int64_t e1) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t e = e0; e < e1; e += 16) {
        const __mmask16 m = tail_mask16(e1 - e);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + e), u = _mm512_maskz_loadu_ps(m, up + e),
                     d = _mm512_maskz_loadu_ps(m, dact + e);
        const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        // silu'(g) = s (1 + g (1 - s)), silu(g) = g s
        const __m512 grad = _mm512_mul_ps(s, _mm512_fmadd_ps(g, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(dgate + e, m, _mm512_mul_ps(_mm512_mul_ps(d, u), grad));
        _mm512_mask_storeu_ps(dup + e, m, _mm512_mul_ps(d, _mm512_mul_ps(g, s)));
    }
}

// row[t] = exp(row[t] * scale - mx) for t in [t0, t1); returns their sum (16 f32 partial sums).
EUROLLM_AVX512 double exp_row_avx512(float *row, int64_t t0, int64_t t1, float scale, float mx) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t t = t0; t < t1; t += 16) {
        const __mmask16 m = tail_mask16(t1 - t);
        const __m512 z = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, row + t), _mm512_set1_ps(scale), _mm512_set1_ps(mx));
        const __m512 v = exp16(z);
        _mm512_mask_storeu_ps(row + t, m, v);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(m, v));
    }
    return _mm512_reduce_add_ps(acc);
}

// kmath::softmax_xent_row, 16 at a time: each exp is computed once (kept in dz for the gradient)
// and summed in double, as there. A 128000-entry vocabulary made the scalar row 6% of a LoRA step.
EUROLLM_AVX512 float softmax_xent_row_avx512(const float *z, int64_t n, int32_t target, float scale, float *dz) {
    const float z_target = z[target];  // dz may alias z
    __m512 mx16 = _mm512_set1_ps(-INFINITY);
    for (int64_t t = 0; t < n; t += 16) {
        const __mmask16 m = tail_mask16(n - t);
        mx16 = _mm512_mask_max_ps(mx16, m, mx16, _mm512_maskz_loadu_ps(m, z + t));
    }
    const float mx = _mm512_reduce_max_ps(mx16);
    const double sum = exp_sum16(z, dz, n, mx);
    if (dz) {
        const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum)), s = _mm512_set1_ps(scale);
        for (int64_t t = 0; t < n; t += 16) {
            const __mmask16 m = tail_mask16(n - t);
            _mm512_mask_storeu_ps(dz + t, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, dz + t), inv), s));
        }
        dz[target] -= scale;
    }
    return mx + static_cast<float>(std::log(sum)) - z_target;
}
#endif

bool simd() {
#if defined(__x86_64__)
    return cpu_isa() == isa::avx512;
#else
    return false;
#endif
}

float weight_at(const void *w, wtype wt, int64_t i) {
    switch (wt) {
        case wtype::f16: return kmath::f16_to_f32(static_cast<const uint16_t *>(w)[i]);
        case wtype::bf16: return kmath::bf16_to_f32(static_cast<const uint16_t *>(w)[i]);
        default: return static_cast<const float *>(w)[i];
    }
}

}  // namespace

// ---- rms norm: y = w * x * rstd ----

void rms_norm_forward_rows(const float *x, const void *w, wtype wt, int64_t dim, float eps, int64_t i0, int64_t i1,
                           float *out, float *rstd) {
    for (int64_t i = i0; i < i1; ++i) {
        const float *xr = x + i * dim;
        float *o = out + i * dim;
        const float r = kmath::rms_inv(xr, static_cast<int>(dim), eps);
        rstd[i] = r;
        for (int64_t c = 0; c < dim; ++c) o[c] = weight_at(w, wt, c) * (xr[c] * r);
    }
}

void rms_norm_backward_rows(const float *dy, const float *x, const float *rstd, const void *w, wtype wt, int64_t dim,
                            int64_t i0, int64_t i1, float *dx, bool accumulate) {
    std::vector<float> g(static_cast<size_t>(dim));
    for (int64_t i = i0; i < i1; ++i) {
        const float *dyr = dy + i * dim;
        for (int64_t c = 0; c < dim; ++c) g[static_cast<size_t>(c)] = dyr[c] * weight_at(w, wt, c);
        kmath::rms_norm_backward_row(x + i * dim, g.data(), rstd[i], static_cast<int>(dim), dx + i * dim, accumulate);
    }
}

void rms_norm_backward_weight(const float *dy, const float *x, const float *rstd, int64_t n, int64_t dim, int64_t c0,
                              int64_t c1, float *dw) {
    for (int64_t i = 0; i < n; ++i) {
        const float *dyr = dy + i * dim, *xr = x + i * dim;
        const float r = rstd[i];
        for (int64_t c = c0; c < c1; ++c) dw[c] += dyr[c] * (xr[c] * r);
    }
}

// ---- rope: the forward rotates (a, b) by +angle; the backward by -angle ----

void rope_backward_rows(float *dx, int64_t n_heads, int64_t head_dim, const int32_t *pos, const float *inv_freq,
                        int64_t rotary_dim, int64_t i0, int64_t i1) {
    const int half = static_cast<int>(rotary_dim / 2);
    for (int64_t i = i0; i < i1; ++i) {
        const float p = static_cast<float>(pos[i]);
        for (int f = 0; f < half; ++f) {
            const float angle = p * inv_freq[f];
            const float c = cosf(angle), s = sinf(angle);
            for (int64_t h = 0; h < n_heads; ++h) kmath::rope_rotate(dx + (i * n_heads + h) * head_dim, f, half, c, -s);
        }
    }
}

// ---- SwiGLU: act = silu(gate) * up ----

void swiglu_forward_rows(const float *gate, const float *up, float *act, int64_t dim, int64_t i0, int64_t i1) {
#if defined(__x86_64__)
    if (simd()) return swiglu_forward_avx512(gate, up, act, i0 * dim, i1 * dim);
#endif
    for (int64_t e = i0 * dim; e < i1 * dim; ++e) act[e] = kmath::silu(gate[e]) * up[e];
}

void swiglu_backward_rows(const float *dact, const float *gate, const float *up, float *dgate, float *dup, int64_t dim,
                          int64_t i0, int64_t i1) {
#if defined(__x86_64__)
    if (simd()) return swiglu_backward_avx512(dact, gate, up, dgate, dup, i0 * dim, i1 * dim);
#endif
    for (int64_t e = i0 * dim; e < i1 * dim; ++e) {
        const float g = gate[e], u = up[e], d = dact[e];
        const float dg = d * u * kmath::silu_grad(g);
        const float du = d * kmath::silu(g);
        dgate[e] = dg;
        dup[e] = du;
    }
}

// ---- softmax over causal rows ----

void causal_softmax_rows(float *S, int64_t n, float scale, int64_t window, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
        float *row = S + i * n;
        const int64_t begin = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
        float mx = row[begin] * scale;
        for (int64_t t = begin; t <= i; ++t) mx = row[t] * scale > mx ? row[t] * scale : mx;
        double sum = 0.0;
#if defined(__x86_64__)
        if (simd()) {
            sum = exp_row_avx512(row, begin, i + 1, scale, mx);
        } else
#endif
        {
            for (int64_t t = begin; t <= i; ++t) {
                row[t] = expf(row[t] * scale - mx);
                sum += row[t];
            }
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t t = 0; t < begin; ++t) row[t] = 0.0f;
        for (int64_t t = begin; t <= i; ++t) row[t] *= inv;
        for (int64_t t = i + 1; t < n; ++t) row[t] = 0.0f;
    }
}

void softmax_backward_rows(const float *P, const float *dP, float *dS, int64_t n, float scale, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
        const float *p = P + i * n, *dp = dP + i * n;
        float *ds = dS + i * n;
        double dot = 0.0;
        for (int64_t t = 0; t <= i && t < n; ++t) dot += static_cast<double>(p[t]) * dp[t];
        const float d = static_cast<float>(dot);
        for (int64_t t = 0; t < n; ++t) ds[t] = t <= i ? p[t] * (dp[t] - d) * scale : 0.0f;
    }
}

// ---- the output: fused softmax cross-entropy ----

void cross_entropy_rows(const float *logits, const int32_t *targets, int64_t n_vocab, float scale, int64_t i0,
                        int64_t i1, float *losses, float *dlogits) {
    for (int64_t i = i0; i < i1; ++i) {
        const float *z = logits + i * n_vocab;
        float *dz = dlogits ? dlogits + i * n_vocab : nullptr;
        const int32_t t = targets[i];
        if (t < 0) {
            losses[i] = 0.0f;
            if (dz)
                for (int64_t c = 0; c < n_vocab; ++c) dz[c] = 0.0f;
            continue;
        }
#if defined(__x86_64__)
        if (simd()) {
            losses[i] = softmax_xent_row_avx512(z, n_vocab, t, scale, dz);
            continue;
        }
#endif
        losses[i] = kmath::softmax_xent_row(z, static_cast<int>(n_vocab), t, scale, dz);
    }
}

// ---- embedding: scatter-add rows, in row order ----

void embedding_backward(const int32_t *ids, const float *dy, int64_t n, int64_t dim, int64_t c0, int64_t c1,
                        float *dtable) {
    for (int64_t i = 0; i < n; ++i) {
        float *row = dtable + static_cast<int64_t>(ids[i]) * dim;
        const float *d = dy + i * dim;
        for (int64_t c = c0; c < c1; ++c) row[c] += d[c];
    }
}

// ---- AdamW ----

void adamw_update(float *w, const float *g, float *m, float *v, const adamw_args &a, int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e)
        kmath::adamw_element(w + e, g[e] * a.grad_scale, m + e, v + e, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay,
                             a.bias_correction1, a.bias_correction2);
}

}  // namespace eurollm::kernels
