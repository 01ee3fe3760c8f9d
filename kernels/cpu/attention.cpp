// The query heads of one row that share a kv head, against the KV cache: scores, a max-subtracted
// softmax, the weighted sum of values. The AVX-512 path keeps q and the output rows in registers
// (head_dim a multiple of 16, at most 256) and reads each key and value row once for two heads; the
// scalar path is the reference and serves every other shape. The cache holds f32 or f16 elements.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/simd.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12 reports its own _mm512_reduce_add_ps as reading uninitialised values (as in matmul.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace eurollm::kernels {
namespace {

// scratch[0, n) = exp(scratch - max); returns 1 / their sum (summed in double).
float softmax_in_place(float *scratch, int64_t n, float max_score) {
    double sum = 0.0;
    for (int64_t t = 0; t < n; ++t) {
        scratch[t] = std::exp(scratch[t] - max_score);
        sum += scratch[t];
    }
    return static_cast<float>(1.0 / sum);
}

// A cache element as a float: f32 as is, f16 (the cache's half-size option) widened exactly.
inline float cache_value(float x) { return x; }
inline float cache_value(uint16_t h) { return kmath::f16_to_f32(h); }

template <typename KV>
void attention_row_scalar(const float *q, const KV *k_cache, const KV *v_cache, int64_t head_dim,
                          const int32_t *cells, int64_t n_visible, float scale, float *scratch, float *out) {
    float max_score = -FLT_MAX;
    for (int64_t t = 0; t < n_visible; ++t) {
        const KV *kr = k_cache + static_cast<int64_t>(cells[t]) * head_dim;
        float s = 0.0f;
        for (int64_t d = 0; d < head_dim; ++d) s += q[d] * cache_value(kr[d]);
        s *= scale;
        scratch[t] = s;
        if (s > max_score) max_score = s;
    }
    const float inv = softmax_in_place(scratch, n_visible, max_score);
    for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
    for (int64_t t = 0; t < n_visible; ++t) {
        const float p = scratch[t] * inv;
        const KV *vr = v_cache + static_cast<int64_t>(cells[t]) * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) out[d] += p * cache_value(vr[d]);
    }
}

#if defined(__x86_64__)
#define EUROLLM_ATT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,fma")))

constexpr int kMaxVecs = 16;  // head_dim <= 256

EUROLLM_ATT_AVX512 inline __m512 load16(const float *p) { return _mm512_loadu_ps(p); }
EUROLLM_ATT_AVX512 inline __m512 load16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
}

// scratch[0, n) = exp(scratch - max), 16 at a time; returns 1 / their sum, summed in double.
EUROLLM_ATT_AVX512 float softmax_avx512(float *scratch, int64_t n, float max_score) {
    return static_cast<float>(1.0 / exp_sum16(scratch, scratch, n, max_score));
}

// One cell's lanes: two FMA chains (even and odd vectors of the row), added. Every cell takes
// exactly these steps, for one head or two.
template <int NV, typename KV>
EUROLLM_ATT_AVX512 inline __m512 dot_lanes(const __m512 *qv, const KV *kr) {
    __m512 even = _mm512_mul_ps(qv[0], load16(kr));
    __m512 odd = NV > 1 ? _mm512_mul_ps(qv[1], load16(kr + 16)) : _mm512_setzero_ps();
    for (int v = 2; v < NV; v += 2) {
        even = _mm512_fmadd_ps(qv[v], load16(kr + 16 * v), even);
        if (v + 1 < NV) odd = _mm512_fmadd_ps(qv[v + 1], load16(kr + 16 * (v + 1)), odd);
    }
    return _mm512_add_ps(even, odd);
}

// The same for two heads, each key vector loaded once for both.
template <int NV, typename KV>
EUROLLM_ATT_AVX512 inline void dot_lanes2(const __m512 *qa, const __m512 *qb, const KV *kr, __m512 &la, __m512 &lb) {
    const __m512 x0 = load16(kr), x1 = NV > 1 ? load16(kr + 16) : _mm512_setzero_ps();
    __m512 ae = _mm512_mul_ps(qa[0], x0), be = _mm512_mul_ps(qb[0], x0);
    __m512 ao = NV > 1 ? _mm512_mul_ps(qa[1], x1) : _mm512_setzero_ps();
    __m512 bo = NV > 1 ? _mm512_mul_ps(qb[1], x1) : _mm512_setzero_ps();
    for (int v = 2; v < NV; v += 2) {
        const __m512 x = load16(kr + 16 * v);
        ae = _mm512_fmadd_ps(qa[v], x, ae), be = _mm512_fmadd_ps(qb[v], x, be);
        if (v + 1 < NV) {
            const __m512 y = load16(kr + 16 * (v + 1));
            ao = _mm512_fmadd_ps(qa[v + 1], y, ao), bo = _mm512_fmadd_ps(qb[v + 1], y, bo);
        }
    }
    la = _mm512_add_ps(ae, ao), lb = _mm512_add_ps(be, bo);
}

// Lane c of the result = the sum of v[c]'s 16 lanes, for 16 cells at once: a tree of shuffles and
// adds (256-bit halves, 128-bit quarters, pairs, then singles) that sums every cell's lanes in the
// same order, whatever its slot, at about 3 instructions a cell instead of a horizontal sum's 8.
EUROLLM_ATT_AVX512 inline __m512 lane_sums16(const __m512 (&v)[16]) {
    __m512 w[8], x[4], y[2];
    for (int i = 0; i < 8; ++i)  // w[i]: 8 partial sums of v[i], then 8 of v[i + 8]
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[i], v[i + 8], 0x44), _mm512_shuffle_f32x4(v[i], v[i + 8], 0xEE));
    for (int i = 0; i < 4; ++i)  // x[i]: 4 each of cells i, i + 8, i + 4, i + 12
        x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[i], w[i + 4], 0x88), _mm512_shuffle_f32x4(w[i], w[i + 4], 0xDD));
    for (int i = 0; i < 2; ++i)  // y[i]: in each quarter, 2 of x[i]'s cell, 2 of x[i + 2]'s
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[i], x[i + 2], 0x44), _mm512_shuffle_ps(x[i], x[i + 2], 0xEE));
    // Quarter q holds the cells of x[0], x[2], x[1], x[3] at offset 0, 8, 4, 12 (q = 0..3).
    const __m512 z = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xDD));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15), z);
}

// Scores cells [0, n) of one head into scratch (times scale) and returns their maximum, 16 cells
// per step (the missing cells of the last step are zeros, which leave the others' sums unchanged).
template <int NV, typename KV>
EUROLLM_ATT_AVX512 float score_one(const __m512 *qv, const KV *k_cache, const int32_t *cells, int64_t n,
                                   float scale, float *scratch) {
    constexpr int64_t head_dim = 16 * NV;
    __m512 best = _mm512_set1_ps(-FLT_MAX);
    for (int64_t t0 = 0; t0 < n; t0 += 16) {
        const int nb = static_cast<int>(std::min<int64_t>(16, n - t0));
        __m512 lanes[16];
        for (int c = 0; c < nb; ++c)
            lanes[c] = dot_lanes<NV, KV>(qv, k_cache + static_cast<int64_t>(cells[t0 + c]) * head_dim);
        for (int c = nb; c < 16; ++c) lanes[c] = _mm512_setzero_ps();
        const __mmask16 m = tail_mask16(nb);
        const __m512 sc = _mm512_mul_ps(lane_sums16(lanes), _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(scratch + t0, m, sc);
        best = _mm512_mask_max_ps(best, m, best, sc);
    }
    return _mm512_reduce_max_ps(best);
}

// The same scores for two heads that share a kv head: each key row is loaded once for both; each
// head's arithmetic is exactly score_one's (so a head's bits do not depend on whether it was scored
// alone or in a pair).
template <int NV, typename KV>
EUROLLM_ATT_AVX512 void score_two(const __m512 *qa, const __m512 *qb, const KV *k_cache, const int32_t *cells,
                                  int64_t n, float scale, float *sa, float *sb, float *max_a, float *max_b) {
    constexpr int64_t head_dim = 16 * NV;
    __m512 best_a = _mm512_set1_ps(-FLT_MAX), best_b = best_a;
    for (int64_t t0 = 0; t0 < n; t0 += 16) {
        const int nb = static_cast<int>(std::min<int64_t>(16, n - t0));
        __m512 la[16], lb[16];
        for (int c = 0; c < nb; ++c)
            dot_lanes2<NV, KV>(qa, qb, k_cache + static_cast<int64_t>(cells[t0 + c]) * head_dim, la[c], lb[c]);
        for (int c = nb; c < 16; ++c) la[c] = lb[c] = _mm512_setzero_ps();
        const __mmask16 m = tail_mask16(nb);
        const __m512 sca = _mm512_mul_ps(lane_sums16(la), _mm512_set1_ps(scale));
        const __m512 scb = _mm512_mul_ps(lane_sums16(lb), _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(sa + t0, m, sca);
        _mm512_mask_storeu_ps(sb + t0, m, scb);
        best_a = _mm512_mask_max_ps(best_a, m, best_a, sca);
        best_b = _mm512_mask_max_ps(best_b, m, best_b, scb);
    }
    *max_a = _mm512_reduce_max_ps(best_a), *max_b = _mm512_reduce_max_ps(best_b);
}

// Heads [0, n_heads) of one query row that share a kv head: in pairs while their q vectors and
// accumulators fit in the registers (head_dim <= 128), one at a time otherwise.
template <int NV, typename KV>
EUROLLM_ATT_AVX512 void attention_heads_avx512(const float *q, int64_t n_heads, const KV *k_cache,
                                               const KV *v_cache, const int32_t *cells, int64_t n_visible,
                                               float scale, float *scratch, float *out) {
    constexpr int64_t head_dim = 16 * NV;
    int64_t h = 0;
    for (; NV <= 8 && h + 2 <= n_heads; h += 2) {
        __m512 qa[NV], qb[NV];
        for (int v = 0; v < NV; ++v) {
            qa[v] = _mm512_loadu_ps(q + h * head_dim + 16 * v);
            qb[v] = _mm512_loadu_ps(q + (h + 1) * head_dim + 16 * v);
        }
        float *sa = scratch + h * n_visible, *sb = sa + n_visible;
        float max_a, max_b;
        score_two<NV, KV>(qa, qb, k_cache, cells, n_visible, scale, sa, sb, &max_a, &max_b);
        const float inv_a = softmax_avx512(sa, n_visible, max_a), inv_b = softmax_avx512(sb, n_visible, max_b);
        __m512 acc_a[NV], acc_b[NV];
        for (int v = 0; v < NV; ++v) acc_a[v] = acc_b[v] = _mm512_setzero_ps();
        for (int64_t t = 0; t < n_visible; ++t) {
            const __m512 pa = _mm512_set1_ps(sa[t] * inv_a), pb = _mm512_set1_ps(sb[t] * inv_b);
            const KV *vr = v_cache + static_cast<int64_t>(cells[t]) * head_dim;
            for (int v = 0; v < NV; ++v) {
                const __m512 x = load16(vr + 16 * v);
                acc_a[v] = _mm512_fmadd_ps(pa, x, acc_a[v]);
                acc_b[v] = _mm512_fmadd_ps(pb, x, acc_b[v]);
            }
        }
        for (int v = 0; v < NV; ++v) {
            _mm512_storeu_ps(out + h * head_dim + 16 * v, acc_a[v]);
            _mm512_storeu_ps(out + (h + 1) * head_dim + 16 * v, acc_b[v]);
        }
    }
    for (; h < n_heads; ++h) {
        __m512 qv[NV];
        for (int v = 0; v < NV; ++v) qv[v] = _mm512_loadu_ps(q + h * head_dim + 16 * v);
        float *s = scratch + h * n_visible;
        const float inv = softmax_avx512(s, n_visible, score_one<NV, KV>(qv, k_cache, cells, n_visible, scale, s));
        __m512 acc[NV];
        for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
        for (int64_t t = 0; t < n_visible; ++t) {
            const __m512 p = _mm512_set1_ps(s[t] * inv);
            const KV *vr = v_cache + static_cast<int64_t>(cells[t]) * head_dim;
            for (int v = 0; v < NV; ++v) acc[v] = _mm512_fmadd_ps(p, load16(vr + 16 * v), acc[v]);
        }
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + h * head_dim + 16 * v, acc[v]);
    }
}

template <typename KV>
using heads_fn = void (*)(const float *, int64_t, const KV *, const KV *, const int32_t *, int64_t, float, float *,
                          float *);
template <typename KV>
constexpr heads_fn<KV> kAvx512Heads[kMaxVecs] = {
    attention_heads_avx512<1, KV>,  attention_heads_avx512<2, KV>,  attention_heads_avx512<3, KV>,
    attention_heads_avx512<4, KV>,  attention_heads_avx512<5, KV>,  attention_heads_avx512<6, KV>,
    attention_heads_avx512<7, KV>,  attention_heads_avx512<8, KV>,  attention_heads_avx512<9, KV>,
    attention_heads_avx512<10, KV>, attention_heads_avx512<11, KV>, attention_heads_avx512<12, KV>,
    attention_heads_avx512<13, KV>, attention_heads_avx512<14, KV>, attention_heads_avx512<15, KV>,
    attention_heads_avx512<16, KV>};
#endif

template <typename KV>
void heads(const float *q, int64_t n_heads, const KV *k_cache, const KV *v_cache, int64_t head_dim, const int32_t *cells,
           int64_t n_visible, float scale, float *scratch, float *out) {
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512 && head_dim % 16 == 0 && head_dim / 16 >= 1 && head_dim / 16 <= kMaxVecs)
        return kAvx512Heads<KV>[head_dim / 16 - 1](q, n_heads, k_cache, v_cache, cells, n_visible, scale, scratch, out);
#endif
    for (int64_t h = 0; h < n_heads; ++h)
        attention_row_scalar(q + h * head_dim, k_cache, v_cache, head_dim, cells, n_visible, scale,
                             scratch + h * n_visible, out + h * head_dim);
}

}  // namespace

void attention_heads(const float *q, int64_t n_heads, const void *k_cache, const void *v_cache, wtype kv_type,
                     int64_t head_dim, const int32_t *cells, int64_t n_visible, float scale, float *scratch,
                     float *out) {
    if (kv_type == wtype::f16)
        return heads(q, n_heads, static_cast<const uint16_t *>(k_cache), static_cast<const uint16_t *>(v_cache),
                     head_dim, cells, n_visible, scale, scratch, out);
    heads(q, n_heads, static_cast<const float *>(k_cache), static_cast<const float *>(v_cache), head_dim, cells,
          n_visible, scale, scratch, out);
}

}  // namespace eurollm::kernels
