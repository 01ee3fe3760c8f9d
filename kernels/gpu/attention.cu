// Attention, forward and backward together.
//
// Inference (attention): n query rows against one layer's cache, one block per (row, head):
//   q: [n, n_head * head_dim]; k, v: [n_head_kv, kv_stride, head_dim]; out like q.
//   Row i sees the cells cells[row_begin[i] .. row_begin[i + 1]) (causal mask, sequence membership
//   and sliding window applied by the KV cache); head h reads kv head h / (n_head / n_head_kv). As
//   kernels::attention_heads: s_t = (q . k_cell(t)) * scale (an f16 cache widened exactly), a max-subtracted softmax with the sum in
//   double, out = sum_t p_t v_cell(t).
//   1. warps take keys t (strided); lanes split head_dim; the score goes to scratch
//   2. block max, then p_t = exp(s_t - max) in place and the block sum in double
//   3. warps take keys again, lanes take dimensions; per-warp partial outputs in shared memory
//      are added in warp order (deterministic)
//
// Training (one head of one sequence; kernels_backward.h): S = Q K^T, P = causal_softmax(S * scale),
// O = P V; dP = dO V^T, dS = P * (dP - rowsum(P * dP)) * scale, dQ = dS K, dK = dS^T Q, dV = P^T dO.
// The products are strided gemm() calls (no transposed copies); the softmaxes are one block per row.
//
// store_kv: rows [n, n_head_kv * head_dim] scattered into the cache at cells cell[i].
#include <float.h>

#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

// A cache element as f32: the cache holds f32, or f16 bits widened exactly (kmath::f16_to_f32).
__device__ __forceinline__ float kv_value(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float kv_value(const uint16_t *p, int64_t i) { return kmath::f16_to_f32(p[i]); }

template <typename KV>
__global__ void attention_kernel(attention_desc a, float *scratch) {
    extern __shared__ float partial_out[];  // [warps, head_dim]
    __shared__ float fred[kMaxWarps];
    __shared__ double dred[kMaxWarps];
    const int lane = static_cast<int>(threadIdx.x) % warp_size();
    const int wid = static_cast<int>(threadIdx.x) / warp_size();
    const int nw = static_cast<int>(blockDim.x) / warp_size();
    const int64_t group = a.n_head / a.n_head_kv;
    const int64_t hd = a.head_dim;

    for (int64_t task = blockIdx.x; task < a.n * a.n_head; task += gridDim.x) {
        const int64_t i = task / a.n_head, h = task % a.n_head, kvh = h / group;
        const int32_t *cells = a.cells + a.row_begin[i];
        const int64_t end = a.row_begin[i + 1] - a.row_begin[i];
        const float *q = a.q + (i * a.n_head + h) * hd;
        const KV *kh = static_cast<const KV *>(a.k) + kvh * a.kv_stride * hd;
        const KV *vh = static_cast<const KV *>(a.v) + kvh * a.kv_stride * hd;
        float *sc = scratch + task * a.max_visible;

        // 1. scores
        float mx = -FLT_MAX;
        for (int64_t t = wid; t < end; t += nw) {
            const KV *kr = kh + static_cast<int64_t>(cells[t]) * hd;
            float s = 0.0f;
            for (int64_t d = lane; d < hd; d += warp_size()) s += q[d] * kv_value(kr, d);
            s = warp_sum(s) * a.scale;
            if (lane == 0) sc[t] = s;
            mx = s > mx ? s : mx;
        }
        mx = block_max(mx, fred);  // its barriers also publish the scores

        // 2. exp and the sum (double, as on the CPU)
        double sum = 0.0;
        for (int64_t t = threadIdx.x; t < end; t += blockDim.x) {
            const float e = expf(sc[t] - mx);
            sc[t] = e;
            sum += e;
        }
        sum = block_sum(sum, dred);
        const float inv = static_cast<float>(1.0 / sum);

        // 3. out = sum_t p_t v_t
        for (int64_t d = lane; d < hd; d += warp_size()) {
            float acc = 0.0f;
            for (int64_t t = wid; t < end; t += nw) acc += (sc[t] * inv) * kv_value(vh, static_cast<int64_t>(cells[t]) * hd + d);
            partial_out[wid * hd + d] = acc;
        }
        __syncthreads();
        float *out = a.out + (i * a.n_head + h) * hd;
        for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
            float acc = partial_out[d];
            for (int w = 1; w < nw; ++w) acc += partial_out[w * hd + d];
            out[d] = acc;
        }
        __syncthreads();  // partial_out and the scratch row are reused by the next task
    }
}

__device__ __forceinline__ void kv_store(float *p, int64_t i, float x) { p[i] = x; }
__device__ __forceinline__ void kv_store(uint16_t *p, int64_t i, float x) { p[i] = kmath::f32_to_f16(x); }

template <typename KV>
__global__ void store_kv_kernel(const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim,
                                int64_t stride, KV *cache) {
    const int64_t total = n * n_head_kv * head_dim;
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t d = e % head_dim, ih = e / head_dim;
        const int64_t h = ih % n_head_kv, i = ih / n_head_kv;
        kv_store(cache, (h * stride + cell[i]) * head_dim + d, rows[e]);
    }
}

// Row i of S [n, n]: keys [begin, i] get softmax(S * scale), the others 0 (causal_softmax_rows).
__global__ void causal_softmax_kernel(float *S, int64_t n, float scale, int64_t window) {
    __shared__ float fred[kMaxWarps];
    __shared__ double dred[kMaxWarps];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        float *row = S + i * n;
        const int64_t begin = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
        float mx = -FLT_MAX;
        for (int64_t t = begin + threadIdx.x; t <= i; t += blockDim.x) mx = row[t] * scale > mx ? row[t] * scale : mx;
        mx = block_max(mx, fred);
        double sum = 0.0;
        for (int64_t t = begin + threadIdx.x; t <= i; t += blockDim.x) {
            const float e = expf(row[t] * scale - mx);
            row[t] = e;
            sum += e;
        }
        sum = block_sum(sum, dred);
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t t = threadIdx.x; t < n; t += blockDim.x) row[t] = t >= begin && t <= i ? row[t] * inv : 0.0f;
    }
}

// dS[i, t] = P[i, t] * (dP[i, t] - sum_u P[i, u] dP[i, u]) * scale for t <= i, else 0; dS may alias dP.
__global__ void softmax_backward_kernel(const float *P, const float *dP, float *dS, int64_t n, float scale) {
    __shared__ double dred[kMaxWarps];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *p = P + i * n, *dp = dP + i * n;
        float *ds = dS + i * n;
        double dot = 0.0;
        for (int64_t t = threadIdx.x; t <= i; t += blockDim.x) dot += static_cast<double>(p[t]) * dp[t];
        const float d = static_cast<float>(block_sum(dot, dred));
        for (int64_t t = threadIdx.x; t < n; t += blockDim.x) ds[t] = t <= i ? p[t] * (dp[t] - d) * scale : 0.0f;
    }
}

gemm_desc f32_gemm(int64_t P, int64_t Q, int64_t N, const float *A, int64_t a_sp, int64_t a_sq, const float *B,
                   int64_t b_sq, int64_t b_sc, float *C, int64_t ldc) {
    gemm_desc d;
    d.P = P;
    d.Q = Q;
    d.N = N;
    d.A = A;
    d.a_sp = a_sp;
    d.a_sq = a_sq;
    d.B = B;
    d.bt = kernels::wtype::f32;
    d.b_sq = b_sq;
    d.b_sc = b_sc;
    d.C = C;
    d.ldc = ldc;
    return d;
}

}  // namespace

status attention(stream_t s, const attention_desc &a, float *scratch) {
    if (a.n <= 0 || a.n_head <= 0) return {};
    EUROLLM_GPU_REQUIRE(a.n_head_kv > 0 && a.n_head % a.n_head_kv == 0, "attention: n_head must be a multiple of n_head_kv");
    EUROLLM_GPU_REQUIRE(a.head_dim > 0 && a.head_dim <= 1024, "attention: head_dim out of range");
    EUROLLM_GPU_REQUIRE(a.max_visible > 0 && scratch, "attention: no score scratch");
    // Dynamic shared memory: one partial output row per warp (at most kMaxWarps warps).
    const size_t shmem = static_cast<size_t>(kMaxWarps) * static_cast<size_t>(a.head_dim) * sizeof(float);
    if (a.kv_f16)
        attention_kernel<uint16_t><<<grid_for(a.n * a.n_head, 1), kBlock, shmem, EUROLLM_STREAM(s)>>>(a, scratch);
    else
        attention_kernel<float><<<grid_for(a.n * a.n_head, 1), kBlock, shmem, EUROLLM_STREAM(s)>>>(a, scratch);
    EUROLLM_GPU_TRY_LAUNCH("attention_kernel");
    return {};
}

status store_kv(stream_t s, const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim,
                int64_t stride, void *cache, bool f16) {
    if (n <= 0) return {};
    if (f16)
        store_kv_kernel<<<grid_for(n * n_head_kv * head_dim, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(
            rows, cell, n, n_head_kv, head_dim, stride, static_cast<uint16_t *>(cache));
    else
        store_kv_kernel<<<grid_for(n * n_head_kv * head_dim, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(
            rows, cell, n, n_head_kv, head_dim, stride, static_cast<float *>(cache));
    EUROLLM_GPU_TRY_LAUNCH("store_kv_kernel");
    return {};
}

status causal_softmax(stream_t s, float *S, int64_t n, float scale, int64_t window) {
    if (n <= 0) return {};
    causal_softmax_kernel<<<grid_for(n, 1), kBlock, 0, EUROLLM_STREAM(s)>>>(S, n, scale, window);
    EUROLLM_GPU_TRY_LAUNCH("causal_softmax_kernel");
    return {};
}

status softmax_backward(stream_t s, const float *P, const float *dP, float *dS, int64_t n, float scale) {
    if (n <= 0) return {};
    softmax_backward_kernel<<<grid_for(n, 1), kBlock, 0, EUROLLM_STREAM(s)>>>(P, dP, dS, n, scale);
    EUROLLM_GPU_TRY_LAUNCH("softmax_backward_kernel");
    return {};
}

status attention_forward_head(stream_t s, blas_t blas, const float *q, const float *k, const float *v, int64_t n,
                              int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale, int64_t window,
                              float *P, float *out) {
    if (n <= 0) return {};
    // S[i, t] = sum_d q[i, d] k[t, d]
    status st = gemm(s, blas, f32_gemm(n, head_dim, n, q, q_stride, 1, k, 1, kv_stride, P, n), nullptr, 0);
    if (!st.ok()) return st;
    st = causal_softmax(s, P, n, scale, window);
    if (!st.ok()) return st;
    // out[i, d] = sum_t P[i, t] v[t, d]
    return gemm(s, blas, f32_gemm(n, n, head_dim, P, n, 1, v, kv_stride, 1, out, q_stride), nullptr, 0);
}

status attention_backward_head(stream_t s, blas_t blas, const float *dout, const float *q, const float *k,
                               const float *v, const float *P, int64_t n, int64_t head_dim, int64_t q_stride,
                               int64_t kv_stride, float scale, float *dq, float *dk, float *dv, float *dS) {
    if (n <= 0) return {};
    // dP[i, t] = sum_d dout[i, d] v[t, d]
    status st = gemm(s, blas, f32_gemm(n, head_dim, n, dout, q_stride, 1, v, 1, kv_stride, dS, n), nullptr, 0);
    if (!st.ok()) return st;
    st = softmax_backward(s, P, dS, dS, n, scale);
    if (!st.ok()) return st;
    // dq[i, d] = sum_t dS[i, t] k[t, d]
    st = gemm(s, blas, f32_gemm(n, n, head_dim, dS, n, 1, k, kv_stride, 1, dq, q_stride), nullptr, 0);
    if (!st.ok()) return st;
    // dk[t, d] = sum_i dS[i, t] q[i, d]
    st = gemm(s, blas, f32_gemm(n, n, head_dim, dS, 1, n, q, q_stride, 1, dk, head_dim), nullptr, 0);
    if (!st.ok()) return st;
    // dv[t, d] = sum_i P[i, t] dout[i, d]
    return gemm(s, blas, f32_gemm(n, n, head_dim, P, 1, n, dout, q_stride, 1, dv, head_dim), nullptr, 0);
}

}  // namespace eurollm::gpu
