// The backend interface: every op of the forward pass goes through it. The CPU backend is always
// built and is the reference; GPU backends implement the same interface. A backend instance
// belongs to one context (it owns that context's threads or stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/tensor.h"
#include "kernels.h"

namespace eurollm {

class backend {
public:
    virtual ~backend() = default;
    virtual const char *name() const = 0;

    // y[n, w.rows] = x[n, w.cols] * w^T (+ bias)
    virtual void matmul(const float *x, int64_t n, const tensor_ref &w, const float *bias, float *y) = 0;
    // Several products of one input (q, k and v; gate and up): y_i = x * w_i^T (+ bias_i), every
    // w_i with x's width. A backend may convert x once for all of them; by default they run one by
    // one.
    struct product {
        const tensor_ref *w;
        const float *bias;
        float *y;
    };
    virtual void matmuls(const float *x, int64_t n, const product *ps, size_t count) {
        for (size_t i = 0; i < count; ++i) matmul(x, n, *ps[i].w, ps[i].bias, ps[i].y);
    }
    // out[n, table.cols] = rows ids of table (ids already validated)
    virtual void embedding(const int32_t *ids, int64_t n, const tensor_ref &table, float *out) = 0;
    // out[n, dim] = rms_norm(x) * w; out may alias x
    virtual void rms_norm(const float *x, int64_t n, const tensor_ref &w, float eps, float *out) = 0;
    // rotate x[n, n_heads * head_dim] in place at positions pos[n]
    virtual void rope(float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
                      const float *inv_freq) = 0;
    // gate = silu(gate) * up over [n, dim]
    virtual void swiglu(float *gate, const float *up, int64_t n, int64_t dim) = 0;
    // y += x over count elements
    virtual void add(float *y, const float *x, int64_t count) = 0;

    // Attention of n query rows against one layer's cache.
    //   q: [n, n_head * head_dim]; k, v: [n_head_kv, kv_stride, head_dim]; out: [n, n_head * head_dim].
    //   Row i sees the cache cells cells[row_begin[i] .. row_begin[i + 1]) (causal mask, sequence
    //   membership and sliding window already applied by the KV cache).
    struct attention_args {
        const float *q;
        const void *k;  // [n_head_kv, kv_stride, head_dim] of kv_type (f32 or f16)
        const void *v;
        float *out;
        const int32_t *cells;
        const int64_t *row_begin;
        int64_t n, n_head, n_head_kv, head_dim, kv_stride;
        wtype kv_type = wtype::f32;
        float scale;
    };
    virtual void attention(const attention_args &a) = 0;

    // ---- memory the ops read in place (the KV cache) ----
    // `layer` is the model layer whose ops will read the memory: a GPU backend gives device memory,
    // or host memory for a layer it runs on the CPU (partial offload); the CPU backend, host memory.
    // Contents are undefined until written; free() takes only what alloc() returned (null: no-op).
    virtual void *alloc(size_t bytes, int64_t layer) = 0;
    virtual void free(void *p) = 0;
    // host -> backend memory and back (download waits for the backend); zero() clears bytes.
    virtual void upload(void *dst, const void *src, size_t bytes) = 0;
    virtual void download(void *dst, const void *src, size_t bytes) = 0;
    virtual void zero(void *p, size_t bytes) = 0;
    // dst[j, :] = src[rows[j], :] for j < n (rows on the host, ascending; dst may alias src when
    // rows[j] >= j): the gather of the output rows at the end of a forward pass.
    virtual void copy_rows(float *dst, const float *src, const int64_t *rows, int64_t n, int64_t dim) = 0;
    // Scatters rows [n, n_head_kv * head_dim] into their cells of a cache [n_head_kv, stride, head_dim]
    // of `type` (f32, or f16 rounded to nearest even); cache is memory from alloc().
    virtual void store_kv(const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim,
                          int64_t stride, wtype type, void *cache) = 0;
    // Which layer the next ops belong to (-1: the embedding, n_layer: the output head); a backend
    // that places layers on different devices follows it, the others ignore it.
    virtual void begin_layer(int64_t layer) = 0;
};

// The CPU backend with `n_threads` threads (0 = one per core); `precision` says how activations
// meet bf16 weights in its products (kernels.h).
std::unique_ptr<backend> make_cpu_backend(int n_threads,
                                          kernels::act_precision precision = kernels::act_precision::split);

}  // namespace eurollm
