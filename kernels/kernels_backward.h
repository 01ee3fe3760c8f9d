// Raw-pointer kernels of training: the forward ops that save what the backward pass needs, their
// backward twins, the fused softmax cross-entropy and AdamW. Like kernels.h they know nothing of
// src/ and compute a caller-given range, so the trainer splits the work over its threads.
//
// Determinism: every output element is computed entirely by one call, in a fixed order that does
// not depend on the range the caller hands out, so results are bitwise identical for any thread
// count and any split (resume-from-checkpoint relies on it).
//
// Shapes are written [rows, cols], row-major, innermost last.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

namespace eurollm::kernels {

// ---- products ----

// The one product of the backward pass (and of the attention of the training forward):
//   C[p, c] (+)= sum_{q < n_q} A[p * a_sp + q * a_sq] * B[q * ldb + c]
// for p in [p0, p1), c in [c0, c1). A is f32 with arbitrary strides (so A or its transpose);
// B is row-major of type bt (f32/f16/bf16, frozen weights are read as stored). With `accumulate`
// the sum continues from C's current value, otherwise from zero. Each element sums q in order.
//   dX = dY · W    : p = token, q = out feature, A = dY (a_sp = m, a_sq = 1), B = W [m, k]
//   dW += dYᵀ · X  : p = out feature, q = token, A = dY (a_sp = 1, a_sq = m), B = X [n, k]
void gemm_rows(int64_t p0, int64_t p1, int64_t n_q, const float *A, int64_t a_sp, int64_t a_sq, const void *B,
               wtype bt, int64_t ldb, int64_t c0, int64_t c1, float *C, int64_t ldc, bool accumulate);

// The BF16 training mode's products through a bf16 matrix W [m, k] (row-major):
//   bf16_matmul:  y[i, j] = sum_c bf16(x[i, c]) * W[j, c] (+ bias[j])   j in [j0, j1)   (x Wᵀ)
//   gemm_dx_bf16: dx[i, c] (+)= sum_j bf16(dy[i, j]) * W[j, c]           c in [c0, c1)   (dy W)
// with f32 sums. The activations (x [n, k] or dy [n, m], row stride lda) are rounded to bf16 once
// per product: bf16_prepare fills rows [i0, i1) of `prep` (bf16_prep_bytes(n, width) bytes,
// 64-byte aligned; the call whose i1 == n also zeroes the padding), then threads split the output
// columns. Kernels: AMX tiles where the CPU has them, else vdpbf16ps (AVX512-BF16), else the f32
// kernels on the unrounded activations (gemm_dx_bf16 then reads dy, row stride lddy, not prep).
size_t bf16_prep_bytes(int64_t n, int64_t width);
void bf16_prepare(const float *a, int64_t lda, int64_t n, int64_t width, int64_t i0, int64_t i1, void *prep);
void bf16_matmul(const void *prep, int64_t n, int64_t k, const uint16_t *w, const float *bias, int64_t j0, int64_t j1,
                 float *y, int64_t ldy);
void gemm_dx_bf16(const float *dy, int64_t lddy, const void *prep, int64_t n, int64_t m, const uint16_t *w, int64_t ldw,
                  int64_t c0, int64_t c1, float *dx, int64_t ldx, bool accumulate);

// bf16_matmul over q8_0 / q4_0 weights [m, k] in the packed layout (kernels.h, pack_weight_groups),
// for the BF16 precision's many-row products (prefill, embeddings): each 32-element block is
// dequantized to bf16 (d * q rounded once: relative error <= 2^-8 of the weight, inside the
// format's own quantization step) as it is packed into AMX tiles, so the product runs at the bf16
// tile rate rather than the integer kernel's per-block scaling. Only where bf16_packed_supported(wt)
// (AMX-BF16; otherwise nothing is written). j0 a multiple of 16 avoids dequantizing a group twice.
bool bf16_packed_supported(wtype wt);
void bf16_matmul_packed(const void *prep, int64_t n, int64_t k, const void *packed, wtype wt, int64_t m,
                        const float *bias, int64_t j0, int64_t j1, float *y, int64_t ldy);

// The EXACT precision's many-row products through a bf16 matrix on AMX: every f32 activation is
// split into three bf16 terms (x = hi + mid + lo exactly: 24 significand bits in three 8-bit
// pieces, by truncation), so each product with a bf16 weight is exact in f32 and only the f32 sums
// round, as in the f32 FMA kernels (in another order). Each B tile loaded serves the three terms.
// Same contracts as bf16_prepare / bf16_matmul / gemm_dx_bf16 (gemm_dx takes only the prepared
// dy); only where exact_tiles_supported() (AMX-BF16), otherwise nothing is written.
bool exact_tiles_supported();
// From this many rows the tile products beat the one-row kernels (measurements in backend_cpu.cpp);
// the CPU backend and the trainer both route by it.
constexpr int64_t kTileMinRows = 8;
// f16 weights W [m, k] on the same tiles: each weight is split exactly into two bf16 terms, so
// with `terms` = 3 (prep from exact_tiles_prepare) every product is exact (EXACT precision), with
// `terms` = 1 (prep from bf16_prepare, rounded activations) the weights still are (BF16 precision).
// Only where exact_tiles_supported().
void f16_tiles_matmul(const void *prep, int terms, int64_t n, int64_t k, const uint16_t *w, const float *bias,
                      int64_t j0, int64_t j1, float *y, int64_t ldy);
size_t exact_tiles_prep_bytes(int64_t n, int64_t width);
void exact_tiles_prepare(const float *a, int64_t lda, int64_t n, int64_t width, int64_t i0, int64_t i1, void *prep);
// W may itself be float32 values split into three bf16 terms (w_terms = 3: term u of element e at
// w[u * term_stride + e], made by exact_split), for products of two float32 operands that are
// still exact (nine tile products per multiply-add; the prompt attention of EXACT precision).
void exact_tiles_matmul(const void *prep, int64_t n, int64_t k, const uint16_t *w, const float *bias, int64_t j0,
                        int64_t j1, float *y, int64_t ldy, int w_terms = 1, int64_t term_stride = 0);
void exact_tiles_gemm_dx(const void *prep, int64_t n, int64_t m, const uint16_t *w, int64_t ldw, int64_t c0, int64_t c1,
                         float *dx, int64_t ldx, bool accumulate, int w_terms = 1, int64_t term_stride = 0);
// t0[e] + t1[e] + t2[e] = x[e] exactly, as bf16 (the split of exact_tiles_prepare), e < count.
void exact_split(const float *x, int64_t count, uint16_t *t0, uint16_t *t1, uint16_t *t2);
// dst[e] = bf16(x[e]) rounded to nearest even (vcvtne2ps2bf16 where the CPU has it), e < count.
void round_bf16(const float *x, int64_t count, uint16_t *dst);

// Prompt attention on AMX tiles, for `rows` query rows of `group` heads that share one kv head,
// whose visible cells are prefixes of one list: row r sees the first len[r] cells (len
// non-decreasing). S = Q Kᵀ, P = softmax(S * scale) in f32, O = P V: with `exact`, every operand
// split into three bf16 terms (exact products, f32 sums: EXACT precision); without, rounded to
// bf16 (BF16 precision). K and V come gathered once by attention_tiles_gather (kv_rows >=
// len[rows - 1] rows of the list; blocks of rows seeing prefixes of the same list share them).
// q: head g of row r at q + r * q_stride + g * head_dim, out likewise. scratch:
// attention_block_tiles_scratch_bytes(rows, group, len[rows - 1], head_dim, exact) bytes, 64-byte
// aligned. Only where attention_tiles_supported() (AMX-BF16); elsewhere attention_heads.
bool attention_tiles_supported();
// Rows [t0, t1) of the gathered K or V for the cache cells cells[0, rows) (a cache laid out as for
// attention_heads, kernels.h): bf16 rows [rows, head_dim], or (exact) three such arrays of terms,
// one after the other: (exact ? 3 : 1) * rows * head_dim elements in all.
void attention_tiles_gather(const void *cache, wtype kv_type, int64_t head_dim, const int32_t *cells, int64_t t0,
                            int64_t t1, int64_t rows, bool exact, uint16_t *dst);
size_t attention_block_tiles_scratch_bytes(int64_t rows, int64_t group, int64_t cells, int64_t head_dim, bool exact);
void attention_block_tiles(const float *q, int64_t q_stride, int64_t rows, int64_t group, const uint16_t *kh,
                           const uint16_t *vh, int64_t kv_rows, int64_t head_dim, const int64_t *len, float scale,
                           bool exact, float *out, void *scratch);

// ---- rms norm ----

// out[i, :] = x[i, :] * rstd[i] * w, rstd[i] = 1 / sqrt(mean(x[i, :]^2) + eps), rows [i0, i1).
void rms_norm_forward_rows(const float *x, const void *w, wtype wt, int64_t dim, float eps, int64_t i0, int64_t i1,
                           float *out, float *rstd);
// dx[i, :] (+)= d/dx of the above given dy, rows [i0, i1).
void rms_norm_backward_rows(const float *dy, const float *x, const float *rstd, const void *w, wtype wt, int64_t dim,
                            int64_t i0, int64_t i1, float *dx, bool accumulate);
// dw[c] += sum_i dy[i, c] * x[i, c] * rstd[i] over all n rows, columns [c0, c1).
void rms_norm_backward_weight(const float *dy, const float *x, const float *rstd, int64_t n, int64_t dim, int64_t c0,
                              int64_t c1, float *dw);

// ---- rope ----

// The inverse rotation of kernels::rope_rows (its transpose): maps d(rotated) to d(input), in place.
void rope_backward_rows(float *dx, int64_t n_heads, int64_t head_dim, const int32_t *pos, const float *inv_freq,
                        int64_t rotary_dim, int64_t i0, int64_t i1);

// ---- SwiGLU ----

// act[i, :] = silu(gate[i, :]) * up[i, :], rows [i0, i1) of [n, dim]; act may be gate (in place).
void swiglu_forward_rows(const float *gate, const float *up, float *act, int64_t dim, int64_t i0, int64_t i1);
// dgate = dact * up * silu'(gate), dup = dact * silu(gate). dgate / dup may alias dact.
void swiglu_backward_rows(const float *dact, const float *gate, const float *up, float *dgate, float *dup, int64_t dim,
                          int64_t i0, int64_t i1);

// ---- attention (one sequence, one query head) ----

// Causal softmax of scores in place: row i of S [n, n] keeps keys [max(0, i - window + 1), i]
// (window 0 = unbounded), scaled by `scale` before the softmax; the others become 0. Rows [i0, i1).
void causal_softmax_rows(float *S, int64_t n, float scale, int64_t window, int64_t i0, int64_t i1);
// dS[i, :] = P[i, :] * (dP[i, :] - sum_t P[i, t] dP[i, t]) * scale (dS may alias dP). Rows [i0, i1).
void softmax_backward_rows(const float *P, const float *dP, float *dS, int64_t n, float scale, int64_t i0, int64_t i1);

// Training attention of one head of one sequence of n tokens.
//   q: [n, ·] row stride q_stride (this head's slice); k, v: [n, ·] row stride kv_stride;
//   P: [n, n] the saved probabilities; out: [n, ·] row stride q_stride. scratch: n * head_dim floats.
void attention_forward_head(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                            int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P, float *out,
                            float *scratch);
// Its backward: dq (overwritten, stride q_stride), dk / dv (overwritten, [n, head_dim] contiguous:
// the caller sums query heads that share a kv head). scratch: n * n + n * head_dim floats.
void attention_backward_head(const float *dout, const float *q, const float *k, const float *v, const float *P,
                             int64_t n, int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale, float *dq,
                             float *dk, float *dv, float *scratch);

// The same in bf16 (the BF16 training mode): the six products through bf16_matmul / gemm_dx_bf16
// (q, k, v, dout and the P / dS operands rounded to bf16; P, dS and the sums stay f32). scratch:
// attention_bf16_scratch_bytes(n, head_dim) bytes, 64-byte aligned.
size_t attention_bf16_scratch_bytes(int64_t n, int64_t head_dim);
void attention_forward_head_bf16(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                                 int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P,
                                 float *out, void *scratch);
void attention_backward_head_bf16(const float *dout, const float *q, const float *k, const float *v, const float *P,
                                  int64_t n, int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale,
                                  float *dq, float *dk, float *dv, void *scratch);

// ---- output ----

// Fused softmax cross-entropy of rows [i0, i1) of logits [n, n_vocab]. Rows whose target is
// negative (-100) are ignored: loss 0 and zero gradient. losses[i] = logsumexp - logit[target];
// dlogits[i, :] = (softmax - onehot) * scale (may alias logits; null: loss only).
void cross_entropy_rows(const float *logits, const int32_t *targets, int64_t n_vocab, float scale, int64_t i0,
                        int64_t i1, float *losses, float *dlogits);

// dtable[ids[i], c] += dy[i, c] for every row i (in order), columns [c0, c1).
void embedding_backward(const int32_t *ids, const float *dy, int64_t n, int64_t dim, int64_t c0, int64_t c1,
                        float *dtable);

// ---- optimizer ----

struct adamw_args {
    float lr, beta1, beta2, eps, weight_decay;
    float bias_correction1, bias_correction2;  // 1 - beta^t
    float grad_scale;                          // gradients are multiplied by this first (clipping)
};
// Decoupled AdamW over elements [e0, e1): m, v updated, then w.
void adamw_update(float *w, const float *g, float *m, float *v, const adamw_args &a, int64_t e0, int64_t e1);

}  // namespace eurollm::kernels
