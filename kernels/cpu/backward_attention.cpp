// Training attention, one head of one sequence, forward and backward together (llm.c style):
//   S = Q Kᵀ (n x n), P = causal_softmax(S * scale), O = P V
//   dP = dO Vᵀ, dS = P * (dP - rowsum(P * dP)) * scale,
//   dQ = dS K, dK = dSᵀ Q, dV = Pᵀ dO
// Every product goes through gemm_rows; P is saved by the forward for the backward.
#include "kernels_backward.h"

namespace eurollm::kernels {
namespace {

// dst[d, t] = src[t * stride + d]: [n, head_dim] (strided) -> [head_dim, n].
void transpose(const float *src, int64_t n, int64_t head_dim, int64_t stride, float *dst) {
    for (int64_t t = 0; t < n; ++t)
        for (int64_t d = 0; d < head_dim; ++d) dst[d * n + t] = src[t * stride + d];
}

}  // namespace

void attention_forward_head(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                            int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P, float *out,
                            float *scratch) {
    float *kt = scratch;  // [head_dim, n]
    transpose(k, n, head_dim, kv_stride, kt);
    // S[i, t] = sum_d q[i, d] kt[d, t]
    gemm_rows(0, n, head_dim, q, q_stride, 1, kt, wtype::f32, n, 0, n, P, n, false);
    causal_softmax_rows(P, n, scale, window, 0, n);
    // out[i, d] = sum_t P[i, t] v[t, d]
    gemm_rows(0, n, n, P, n, 1, v, wtype::f32, kv_stride, 0, head_dim, out, q_stride, false);
}

void attention_backward_head(const float *dout, const float *q, const float *k, const float *v, const float *P,
                             int64_t n, int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale, float *dq,
                             float *dk, float *dv, float *scratch) {
    float *dS = scratch;           // [n, n]
    float *vt = scratch + n * n;   // [head_dim, n]
    transpose(v, n, head_dim, kv_stride, vt);
    // dP[i, t] = sum_d dout[i, d] v[t, d]
    gemm_rows(0, n, head_dim, dout, q_stride, 1, vt, wtype::f32, n, 0, n, dS, n, false);
    softmax_backward_rows(P, dS, dS, n, scale, 0, n);
    // dq[i, d] = sum_t dS[i, t] k[t, d]
    gemm_rows(0, n, n, dS, n, 1, k, wtype::f32, kv_stride, 0, head_dim, dq, q_stride, false);
    // dk[t, d] = sum_i dS[i, t] q[i, d]
    gemm_rows(0, n, n, dS, 1, n, q, wtype::f32, q_stride, 0, head_dim, dk, head_dim, false);
    // dv[t, d] = sum_i P[i, t] dout[i, d]
    gemm_rows(0, n, n, P, 1, n, dout, wtype::f32, q_stride, 0, head_dim, dv, head_dim, false);
}

}  // namespace eurollm::kernels
