// Raw-pointer kernels. They know nothing of src/: no model, no tensor class, no threads. Each CPU
// kernel computes a caller-given range so that the backend can split the work over its threads.
//
// Shapes are written [rows, cols], row-major, innermost last.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace eurollm::kernels {

enum class wtype : int { f32 = 0, f16 = 1, bf16 = 2 };

// The instruction set the CPU kernels dispatch to (chosen once, at first use).
const char *cpu_isa_name();

// y[i, j] = sum_k x[i, k] * w[j, k] (+ bias[j]) for i in [0, n), j in [j0, j1).
//   x: [n, k] f32, w: [m, k] of type wt with row stride k, bias: [m] f32 or null, y: [n, ldy] f32.
void matmul_rows(const float *x, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy);

// out[i, :] = row `ids[i]` of the table [n_rows, dim] as f32, for i in [i0, i1).
void embedding_rows(const int32_t *ids, const void *table, wtype wt, int64_t dim, int64_t i0, int64_t i1,
                    float *out);

// out[i, :] = x[i, :] * rms_inv(x[i, :]) * w  for i in [i0, i1). x, out: [n, dim]; may alias.
void rms_norm_rows(const float *x, const void *w, wtype wt, int64_t dim, float eps, int64_t i0, int64_t i1,
                   float *out);

// Rotates heads in place. x: [n, n_heads * head_dim]; pos[i] is the position of row i;
// inv_freq: [rotary_dim/2] (scaling already applied). Rows [i0, i1).
void rope_rows(float *x, int64_t n_heads, int64_t head_dim, const int32_t *pos, const float *inv_freq,
               int64_t rotary_dim, int64_t i0, int64_t i1);

// gate[i, j] = silu(gate[i, j]) * up[i, j], rows [i0, i1) of [n, dim].
void swiglu_rows(float *gate, const float *up, int64_t dim, int64_t i0, int64_t i1);

// y += x, elements [e0, e1).
void add_inplace(float *y, const float *x, int64_t e0, int64_t e1);

// Attention of one query row against the cache cells it may see.
//   q: [head_dim] for query head h; k_cache, v_cache: [n_cells, head_dim] for h's kv head
//   (row stride head_dim); cells[0..n_visible) are the visible cell indices, in position order.
//   out: [head_dim]. scratch: at least n_visible floats.
void attention_row(const float *q, const float *k_cache, const float *v_cache, int64_t head_dim,
                   const int32_t *cells, int64_t n_visible, float scale, float *scratch, float *out);

}  // namespace eurollm::kernels
