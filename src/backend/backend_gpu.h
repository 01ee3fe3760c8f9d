// The GPU backend (CUDA or ROCm HIP, one source: kernels/gpu/): the backend interface of
// backend.h on a device, plus what a device needs beyond it (memory, copies, weights uploaded once,
// training ops). Always declared; in a build without GPU support the queries answer "none" and the
// factories throw EUROLLM_ERR_UNSUPPORTED, so callers need no #ifdef (STYLE A.1, B.17).
//
// Pointers. Every pointer argument of every op may be host memory or device memory from alloc():
// device memory is used in place (nothing waits); host memory is copied to the device before the op
// and, for outputs, back after it (the op then waits for the device). So the backend runs today's
// host-pointer forward pass unchanged, and becomes device-resident, op by op, as the callers move
// their buffers (scratch, KV cache) to alloc(). Weights (tensor_ref) in host memory are uploaded on
// first use into the weight store and read from there afterwards; a tensor_ref whose data is device
// memory is used as it is (trainable weights being updated must be passed that way, or as raw
// pointers to the training ops: the store assumes host weights never change).
//
// Threads: like every backend, one instance belongs to one context (its own stream, its own
// caching allocator); a gpu_weight_store is shared by every backend on its device and is thread-safe.
// Errors: device failures throw eurollm::error{EUROLLM_ERR_DEVICE, "<call> failed: <reason> at file:line"}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "kernels_backward.h"

namespace eurollm {

enum class gpu_kind { cuda, hip };

const char *gpu_kind_name(gpu_kind kind);  // "cuda" / "hip"

// Whether this library was built with that GPU backend.
bool gpu_compiled(gpu_kind kind);
// Usable devices of a kind: 0 when not compiled in, without a driver or without a device. Never throws.
int gpu_device_count(gpu_kind kind);

struct gpu_device_info {
    std::string name;  // "NVIDIA H100 80GB HBM3"
    std::string arch;  // "sm_90", "gfx90a"
    size_t total_memory = 0;
    size_t free_memory = 0;
    int warp_size = 0;
    int multiprocessors = 0;
};
// Throws UNSUPPORTED (kind not compiled in), INVALID_ARGUMENT (index out of range), DEVICE.
gpu_device_info gpu_device_properties(gpu_kind kind, int index);

// Weights on one device, uploaded once and shared by every backend on that device. Keyed by the
// host address of the weight (tensor_ref::data) with its type and shape: model weights are
// immutable and outlive the contexts that use them.
class gpu_weight_store {
public:
    virtual ~gpu_weight_store() = default;
    virtual gpu_kind kind() const = 0;
    virtual int device() const = 0;
    // The device copy of `w` (uploaded now if it is not there yet): f32/f16/bf16 as stored,
    // quantized types expanded to f32. Returns a tensor_ref whose data is device memory.
    virtual tensor_ref upload(const tensor_ref &w) = 0;
    // Whether p lies in device memory this store holds.
    virtual bool owns_device_pointer(const void *p) const = 0;
    virtual size_t device_bytes() const = 0;
    virtual size_t count() const = 0;
    // Frees every device copy; no backend may be using them.
    virtual void clear() = 0;
};
std::shared_ptr<gpu_weight_store> make_gpu_weight_store(gpu_kind kind, int index);

struct gpu_backend_options {
    gpu_kind kind = gpu_kind::cuda;
    int device = 0;
    // Layers [0, n_gpu_layers) run on the device and the rest on a CPU backend; -1 = all. The
    // placement follows begin_layer(); the embedding (layer -1) and the output head (layer n_layer)
    // are on the device only when every layer is. Without begin_layer() calls everything runs on the device.
    int64_t n_gpu_layers = -1;
    int64_t n_layer = 0;
    int n_cpu_threads = 0;                      // the CPU backend of the layers not offloaded
    std::shared_ptr<gpu_weight_store> weights;  // null: a private store
};

class gpu_backend : public backend {
public:
    // ---- memory (alloc/free/upload/download/zero/copy_rows are backend.h's) ----
    virtual void synchronize() = 0;
    virtual bool is_device_pointer(const void *p) const = 0;
    virtual size_t pool_bytes() const = 0;  // device memory the allocator holds (in use + cached)

    virtual const gpu_device_info &device_info() const = 0;
    virtual gpu_weight_store &weights() = 0;
    // false: products use our own kernels only, never cuBLAS/hipBLAS (for tests).
    virtual void set_use_blas(bool use) = 0;

    // ---- training: the kernels_backward.h twins, over the full range ----
    // C[p, c] (+)= sum_q A[p * a_sp + q * a_sq] * B[q * ldb + c], p < P, c < N (gemm_rows).
    virtual void gemm(int64_t P, int64_t Q, const float *A, int64_t a_sp, int64_t a_sq, const void *B,
                      kernels::wtype bt, int64_t ldb, int64_t N, float *C, int64_t ldc, bool accumulate) = 0;
    virtual void rms_norm_forward(const float *x, const void *w, kernels::wtype wt, int64_t n, int64_t dim, float eps,
                                  float *out, float *rstd) = 0;
    virtual void rms_norm_backward(const float *dy, const float *x, const float *rstd, const void *w,
                                   kernels::wtype wt, int64_t n, int64_t dim, float *dx, bool accumulate) = 0;
    virtual void rms_norm_backward_weight(const float *dy, const float *x, const float *rstd, int64_t n, int64_t dim,
                                          float *dw) = 0;
    virtual void rope_backward(float *dx, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
                               const float *inv_freq) = 0;
    virtual void swiglu_forward(const float *gate, const float *up, float *act, int64_t n, int64_t dim) = 0;
    virtual void swiglu_backward(const float *dact, const float *gate, const float *up, float *dgate, float *dup,
                                 int64_t n, int64_t dim) = 0;
    virtual void causal_softmax(float *S, int64_t n, float scale, int64_t window) = 0;
    virtual void softmax_backward(const float *P, const float *dP, float *dS, int64_t n, float scale) = 0;
    virtual void attention_forward_head(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                                        int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P,
                                        float *out) = 0;
    virtual void attention_backward_head(const float *dout, const float *q, const float *k, const float *v,
                                         const float *P, int64_t n, int64_t head_dim, int64_t q_stride,
                                         int64_t kv_stride, float scale, float *dq, float *dk, float *dv) = 0;
    virtual void cross_entropy(const float *logits, const int32_t *targets, int64_t n, int64_t n_vocab, float scale,
                               float *losses, float *dlogits) = 0;
    virtual void embedding_backward(const int32_t *ids, const float *dy, int64_t n, int64_t dim, int64_t n_rows,
                                    float *dtable) = 0;
    virtual void adamw(float *w, const float *g, float *m, float *v, const kernels::adamw_args &a, int64_t count) = 0;
};

// Throws UNSUPPORTED (kind not compiled in), INVALID_ARGUMENT (no such device), DEVICE.
std::unique_ptr<gpu_backend> make_gpu_backend(const gpu_backend_options &options);

}  // namespace eurollm
