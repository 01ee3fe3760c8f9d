// Training attention, one head of one sequence, forward and backward together (llm.c style):
//   S = Q Kᵀ (n x n), P = causal_softmax(S * scale), O = P V
//   dP = dO Vᵀ, dS = P * (dP - rowsum(P * dP)) * scale,
//   dQ = dS K, dK = dSᵀ Q, dV = Pᵀ dO
// Every product goes through gemm_rows; P is saved by the forward for the backward.
//
// Causal skipping: the queries are taken in blocks of kBlock rows, and a block's products stop at
// its last key (S, dP) or start at its first row (dK, dV), so the masked upper triangle is never
// multiplied (half the work at long sequence lengths). The terms skipped are exact zeros of P / dS,
// so the sums are the same as over the full rows.
#include <algorithm>

#include "common/math.h"
#include "kernels_backward.h"

namespace eurollm::kernels {
namespace {

constexpr int64_t kBlock = 64;

// dst[d, t] = src[t * stride + d]: [n, head_dim] (strided) -> [head_dim, n].
void transpose(const float *src, int64_t n, int64_t head_dim, int64_t stride, float *dst) {
    for (int64_t t = 0; t < n; ++t)
        for (int64_t d = 0; d < head_dim; ++d) dst[d * n + t] = src[t * stride + d];
}

// dst[t, d] = bf16(src[t * stride + d]): [n, head_dim] (strided) -> contiguous bf16, the W operand
// of the bf16 products.
void to_bf16(const float *src, int64_t n, int64_t head_dim, int64_t stride, uint16_t *dst) {
    for (int64_t t = 0; t < n; ++t) round_bf16(src + t * stride, head_dim, dst + t * head_dim);
}

// dst[t, i] = src[i, t] for the i >= the start of t's block (what dK / dV read of Pᵀ / dSᵀ), in
// 16 x 16 squares so that every cache line read or written is used whole (row by row, each read
// was a new line 4n bytes from the last).
void transpose_lower(const float *src, int64_t n, float *dst) {
    constexpr int64_t kSq = 16;
    static_assert(kBlock % kSq == 0, "squares must not straddle the causal blocks");
    for (int64_t t0 = 0; t0 < n; t0 += kSq) {
        const int64_t t1 = std::min(n, t0 + kSq);
        for (int64_t i0 = t0 / kBlock * kBlock; i0 < n; i0 += kSq) {
            const int64_t i1 = std::min(n, i0 + kSq);
            for (int64_t t = t0; t < t1; ++t)
                for (int64_t i = i0; i < i1; ++i) dst[t * n + i] = src[i * n + t];
        }
    }
}

// The bf16 scratch: a prepared block, dS and a transpose ([n, n] f32 each), four [n, head_dim] bf16
// operands.
struct bf16_scratch {
    uint16_t *kh, *vh, *qh, *doh;
    float *dS, *tr;
    void *prep;
    bf16_scratch(void *base, int64_t n, int64_t head_dim) {
        auto *b = static_cast<uint8_t *>(base);
        const size_t prep_bytes = bf16_prep_bytes(kBlock, n), op = static_cast<size_t>(n * head_dim) * 2;
        prep = b;  // first: it must be 64-byte aligned
        b += (prep_bytes + 63) / 64 * 64;
        dS = reinterpret_cast<float *>(b);
        tr = dS + n * n;
        b += 2 * static_cast<size_t>(n * n) * sizeof(float);
        kh = reinterpret_cast<uint16_t *>(b);
        vh = kh + op / 2;
        qh = vh + op / 2;
        doh = qh + op / 2;
    }
    static size_t bytes(int64_t n, int64_t head_dim) {
        return (bf16_prep_bytes(kBlock, n) + 63) / 64 * 64 + 2 * static_cast<size_t>(n * n) * sizeof(float) +
               4 * static_cast<size_t>(n * head_dim) * 2;
    }
};

// Row blocks of A [n, ·] (stride lda) times a bf16 operand, the blocks' spans as in the f32 forms:
//   rows:   out[p0:p1, 0:p1) = A[p0:p1, :] · Wᵀ          (S = Q Kᵀ, dP = dO Vᵀ)
void rows_times_transposed(const float *A, int64_t lda, int64_t n, int64_t width, const uint16_t *w, float *out,
                           int64_t ldo, void *prep) {
    for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
        const int64_t p1 = std::min(n, p0 + kBlock);
        bf16_prepare(A + p0 * lda, lda, p1 - p0, width, 0, p1 - p0, prep);
        bf16_matmul(prep, p1 - p0, width, w, nullptr, 0, p1, out + p0 * ldo, ldo);
    }
}

//   causal: out[p0:p1, :] = A[p0:p1, 0:p1) · W[0:p1, :]   (O = P V, dQ = dS K)
//   anti:   out[p0:p1, :] = A[p0:p1, p0:n) · W[p0:n, :]   (dK = dSᵀ Q, dV = Pᵀ dO; A transposed)
void rows_times(const float *A, int64_t n, const uint16_t *w, int64_t head_dim, bool anti, float *out, int64_t ldo,
                void *prep) {
    for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
        const int64_t p1 = std::min(n, p0 + kBlock);
        const int64_t q0 = anti ? p0 : 0, q1 = anti ? n : p1;
        const float *a = A + p0 * n + q0;
        bf16_prepare(a, n, p1 - p0, q1 - q0, 0, p1 - p0, prep);
        gemm_dx_bf16(a, n, prep, p1 - p0, q1 - q0, w + q0 * head_dim, head_dim, 0, head_dim, out + p0 * ldo, ldo,
                     false);
    }
}

}  // namespace

size_t attention_bf16_scratch_bytes(int64_t n, int64_t head_dim) { return bf16_scratch::bytes(n, head_dim); }

void attention_forward_head_bf16(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                                 int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P,
                                 float *out, void *scratch) {
    bf16_scratch s(scratch, n, head_dim);
    to_bf16(k, n, head_dim, kv_stride, s.kh);
    to_bf16(v, n, head_dim, kv_stride, s.vh);
    rows_times_transposed(q, q_stride, n, head_dim, s.kh, P, n, s.prep);
    causal_softmax_rows(P, n, scale, window, 0, n);
    rows_times(P, n, s.vh, head_dim, false, out, q_stride, s.prep);
}

void attention_backward_head_bf16(const float *dout, const float *q, const float *k, const float *v, const float *P,
                                  int64_t n, int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale,
                                  float *dq, float *dk, float *dv, void *scratch) {
    bf16_scratch s(scratch, n, head_dim);
    to_bf16(k, n, head_dim, kv_stride, s.kh);
    to_bf16(v, n, head_dim, kv_stride, s.vh);
    to_bf16(q, n, head_dim, q_stride, s.qh);
    to_bf16(dout, n, head_dim, q_stride, s.doh);
    transpose_lower(P, n, s.tr);
    rows_times(s.tr, n, s.doh, head_dim, true, dv, head_dim, s.prep);  // dV = Pᵀ dO
    rows_times_transposed(dout, q_stride, n, head_dim, s.vh, s.dS, n, s.prep);  // dP = dO Vᵀ
    softmax_backward_rows(P, s.dS, s.dS, n, scale, 0, n);
    rows_times(s.dS, n, s.kh, head_dim, false, dq, q_stride, s.prep);  // dQ = dS K
    transpose_lower(s.dS, n, s.tr);
    rows_times(s.tr, n, s.qh, head_dim, true, dk, head_dim, s.prep);  // dK = dSᵀ Q
}

void attention_forward_head(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                            int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P, float *out,
                            float *scratch) {
    float *kt = scratch;  // [head_dim, n]
    transpose(k, n, head_dim, kv_stride, kt);
    // S[i, t] = sum_d q[i, d] kt[d, t] for the keys t up to the block's last row (the softmax zeroes the rest)
    for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
        const int64_t p1 = std::min(n, p0 + kBlock);
        gemm_rows(p0, p1, head_dim, q, q_stride, 1, kt, wtype::f32, n, 0, p1, P, n, false);
    }
    causal_softmax_rows(P, n, scale, window, 0, n);
    // out[i, d] = sum_{t < p1} P[i, t] v[t, d]
    for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
        const int64_t p1 = std::min(n, p0 + kBlock);
        gemm_rows(p0, p1, p1, P, n, 1, v, wtype::f32, kv_stride, 0, head_dim, out, q_stride, false);
    }
}

void attention_backward_head(const float *dout, const float *q, const float *k, const float *v, const float *P,
                             int64_t n, int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale, float *dq,
                             float *dk, float *dv, float *scratch) {
    float *dS = scratch;           // [n, n]
    float *vt = scratch + n * n;   // [head_dim, n]
    transpose(v, n, head_dim, kv_stride, vt);
    // dP[i, t] = sum_d dout[i, d] v[t, d] for t up to the block's last row (softmax_backward_rows
    // reads t <= i only and writes dS = 0 beyond)
    for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
        const int64_t p1 = std::min(n, p0 + kBlock);
        gemm_rows(p0, p1, head_dim, dout, q_stride, 1, vt, wtype::f32, n, 0, p1, dS, n, false);
    }
    softmax_backward_rows(P, dS, dS, n, scale, 0, n);
    for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
        const int64_t p1 = std::min(n, p0 + kBlock);
        // dq[i, d] = sum_{t < p1} dS[i, t] k[t, d]
        gemm_rows(p0, p1, p1, dS, n, 1, k, wtype::f32, kv_stride, 0, head_dim, dq, q_stride, false);
        // dk[t, d] = sum_{i >= p0} dS[i, t] q[i, d];  dv[t, d] = sum_{i >= p0} P[i, t] dout[i, d]
        gemm_rows(p0, p1, n - p0, dS + p0 * n, 1, n, q + p0 * q_stride, wtype::f32, q_stride, 0, head_dim, dk,
                  head_dim, false);
        gemm_rows(p0, p1, n - p0, P + p0 * n, 1, n, dout + p0 * q_stride, wtype::f32, q_stride, 0, head_dim, dv,
                  head_dim, false);
    }
}

}  // namespace eurollm::kernels
