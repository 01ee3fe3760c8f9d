// The GPU kernels and the little of the device runtime they need, seen from plain C++: no CUDA or
// HIP type appears here, so src/backend/backend_gpu.cpp compiles with the host compiler and the
// same declarations serve the CUDA and the HIP build (kernels/gpu/*.cu, compiled as either).
//
// Like kernels.h they know nothing of src/: every function returns a `status` (never throws, never
// aborts) and the backend turns a failure into eurollm::error{EUROLLM_ERR_DEVICE, ...}.
//
// Pointers named in the launchers are device pointers. Launchers enqueue on `s` and return without
// waiting. Shapes are written [rows, cols], row-major, innermost last, as in kernels.h; each
// launcher computes what its CPU twin in kernels.h / kernels_backward.h computes over the full range.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_backward.h"

namespace eurollm::gpu {

// Outcome of a device call. code 0 = success; otherwise the vendor's error code, the vendor's
// message (static storage), the call as written and where (file:line in kernels/gpu/).
struct status {
    int code = 0;
    const char *message = "";
    const char *call = "";
    const char *file = "";
    int line = 0;
    bool ok() const { return code == 0; }
};

// ---- runtime: devices, memory, streams ----

const char *vendor_name();  // "cuda" or "hip"
bool have_blas();           // cuBLAS / hipBLAS compiled in (else our own GEMM kernel everywhere)

struct device_props {
    char name[256];
    char arch[64];  // "sm_90", "gfx90a", ...
    size_t total_memory;
    size_t free_memory;
    int warp_size;
    int multiprocessors;
};

// Number of devices; 0 when there is no driver or no device (never fails).
int device_count();
status get_device_props(int device, device_props *out);
status set_device(int device);

using stream_t = struct stream_impl *;  // cudaStream_t / hipStream_t
using blas_t = struct blas_impl *;      // cublasHandle_t / hipblasHandle_t (null without BLAS)

status stream_create(stream_t *out);
status stream_destroy(stream_t s);
status stream_synchronize(stream_t s);
status device_malloc(void **out, size_t bytes);
status device_free(void *p);
status host_malloc_pinned(void **out, size_t bytes);
status host_free_pinned(void *p);
status copy_to_device(void *dst, const void *src, size_t bytes, stream_t s);
status copy_to_host(void *dst, const void *src, size_t bytes, stream_t s);
status copy_on_device(void *dst, const void *src, size_t bytes, stream_t s);
status memset_device(void *dst, int value, size_t bytes, stream_t s);
status blas_create(blas_t *out, stream_t s);  // *out = null when built without BLAS
status blas_destroy(blas_t b);

// ---- products ----

// C[p, c] (+)= sum_q A[p * a_sp + q * a_sq] * B[q * b_sq + c * b_sc] (+ bias[c]),
// p in [0, P), c in [0, N), q in [0, Q). A f32 (any strides), B f32/f16/bf16 (any strides), C f32
// with row stride ldc. Accumulates in f32.
//   matmul  y = x W^T : A = x [n, k] (a_sp = k, a_sq = 1), B = W [m, k] (b_sq = 1, b_sc = k)
//   dX = dY W         : A = dY [n, m] (a_sp = m, a_sq = 1), B = W [m, k] (b_sq = k, b_sc = 1)
//   dW += dY^T X      : A = dY (a_sp = 1, a_sq = m), B = X [n, k] (b_sq = k, b_sc = 1)
// Paths: P <= 8 with contiguous rows: our GEMV kernel (weights streamed once, activations in f32);
// otherwise cuBLAS / hipBLAS GemmEx with f32 accumulation (f16/bf16 weights: activations rounded
// to the weight type) when compiled in and the strides allow, else our tiled GEMM kernel.
struct gemm_desc {
    int64_t P = 0, Q = 0, N = 0;
    const float *A = nullptr;
    int64_t a_sp = 0, a_sq = 0;
    const void *B = nullptr;
    kernels::wtype bt = kernels::wtype::f32;
    int64_t b_sq = 0, b_sc = 0;
    float *C = nullptr;
    int64_t ldc = 0;
    bool accumulate = false;
    const float *bias = nullptr;
    bool allow_blas = true;  // false: always our kernels (tests compare both)
};
// Device scratch bytes gemm() needs for `d` (activations converted for BLAS); 0 for most calls.
size_t gemm_scratch_bytes(const gemm_desc &d, blas_t blas);
status gemm(stream_t s, blas_t blas, const gemm_desc &d, void *scratch, size_t scratch_bytes);

// ---- forward ops (kernels.h twins) ----

// out[i, :] = table[ids[i], :] as f32, i in [0, n).
status embedding(stream_t s, const int32_t *ids, int64_t n, const void *table, kernels::wtype wt, int64_t dim,
                 float *out);
// out[i, :] = x[i, :] * rstd[i] * w, rstd[i] = 1 / sqrt(mean(x[i, :]^2) + eps); out may alias x;
// rstd (may be null) receives the per-row factor (rms_norm_rows / rms_norm_forward_rows).
status rms_norm(stream_t s, const float *x, int64_t n, const void *w, kernels::wtype wt, int64_t dim, float eps,
                float *out, float *rstd);
// Rotates heads in place (rope_rows); `inverse` rotates by -angle (rope_backward_rows).
status rope(stream_t s, float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
            const float *inv_freq, int64_t rotary_dim, bool inverse);
// act[e] = silu(gate[e]) * up[e] over count elements; act may alias gate (swiglu_rows in place).
status swiglu(stream_t s, const float *gate, const float *up, float *act, int64_t count);
// y[e] += x[e].
status add(stream_t s, float *y, const float *x, int64_t count);
// Scatters rows [n, n_head_kv * head_dim] into cache [n_head_kv, stride, head_dim] at cells cell[i]:
// f32, or with f16 the f16 bits (rounded to nearest even, kmath::f32_to_f16, as on the CPU).
status store_kv(stream_t s, const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim,
                int64_t stride, void *cache, bool f16);

// Attention of n query rows against one layer's cache (backend::attention_args, the same layout):
// row i attends to cells[row_begin[i] .. row_begin[i + 1]) (mask already applied by the KV cache).
// scratch: n * n_head * max_visible floats, max_visible >= the longest row's cell count.
struct attention_desc {
    const float *q;
    const void *k, *v;  // f32, or f16 bits with kv_f16
    bool kv_f16 = false;
    float *out;
    const int32_t *cells;
    const int64_t *row_begin;  // [n + 1]
    int64_t n, n_head, n_head_kv, head_dim, kv_stride;
    float scale;
    int64_t max_visible;
};
status attention(stream_t s, const attention_desc &a, float *scratch);

// ---- training (kernels_backward.h twins) ----

status rms_norm_backward(stream_t s, const float *dy, const float *x, const float *rstd, const void *w,
                         kernels::wtype wt, int64_t n, int64_t dim, float *dx, bool accumulate);
status rms_norm_backward_weight(stream_t s, const float *dy, const float *x, const float *rstd, int64_t n,
                                int64_t dim, float *dw);
status swiglu_backward(stream_t s, const float *dact, const float *gate, const float *up, float *dgate, float *dup,
                       int64_t count);
status causal_softmax(stream_t s, float *S, int64_t n, float scale, int64_t window);
status softmax_backward(stream_t s, const float *P, const float *dP, float *dS, int64_t n, float scale);
// One head of one sequence (attention_forward_head / attention_backward_head). No scratch: the
// strided products read K and V in place. dk / dv are [n, head_dim] contiguous, overwritten.
status attention_forward_head(stream_t s, blas_t blas, const float *q, const float *k, const float *v, int64_t n,
                              int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale, int64_t window,
                              float *P, float *out);
status attention_backward_head(stream_t s, blas_t blas, const float *dout, const float *q, const float *k,
                               const float *v, const float *P, int64_t n, int64_t head_dim, int64_t q_stride,
                               int64_t kv_stride, float scale, float *dq, float *dk, float *dv, float *dS_scratch);
status cross_entropy(stream_t s, const float *logits, const int32_t *targets, int64_t n, int64_t n_vocab, float scale,
                     float *losses, float *dlogits);
// dtable[ids[i], c] += dy[i, c] for every row i in order (deterministic: one thread per column).
status embedding_backward(stream_t s, const int32_t *ids, const float *dy, int64_t n, int64_t dim, float *dtable);
status adamw(stream_t s, float *w, const float *g, float *m, float *v, const kernels::adamw_args &a, int64_t count);

}  // namespace eurollm::gpu
