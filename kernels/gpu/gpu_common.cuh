// Shared by every kernels/gpu/*.cu: the vendor header (CUDA or HIP spelling, chosen by the
// compiler), warp-width helpers, reductions, weight loads and the status-returning checks.
#pragma once

#if defined(__HIPCC__) || defined(__HIP_PLATFORM_AMD__)
#include "gpu/vendor_hip.h"
#else
#include "gpu/vendor_cuda.h"
#endif

#include "common/math.h"
#include "gpu/gpu_kernels.h"

namespace eurollm::gpu {

// Threads per block of every kernel: a multiple of both warp widths (32 and 64).
constexpr int kBlock = 256;
// Warps per block at the narrowest warp width: the size of per-warp shared arrays.
constexpr int kMaxWarps = kBlock / 32;

// The physical warp (wavefront) width of the device code being compiled, never hard-coded at a
// call site (ggml's ggml_cuda_get_physical_warp_size). One HIP compilation emits code for several
// targets, each pass with its own value: 64 on GFX8/GFX9 (GCN and CDNA, gfx90a), 32 on RDNA
// (gfx1030 runs wave32 by default) and on every NVIDIA GPU. Device code only: the host pass cannot
// know the target, so host code asks device_props::warp_size, and kernels use grid-stride loops
// that stay correct whatever the host assumed.
static constexpr __device__ int warp_size() {
#if defined(__HIP_DEVICE_COMPILE__)
#if defined(__AMDGCN_WAVEFRONT_SIZE)
    return __AMDGCN_WAVEFRONT_SIZE;
#elif defined(__GFX8__) || defined(__GFX9__)
    return 64;
#else
    return 32;
#endif
#else
    return 32;
#endif
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a grid-stride loop over `count` items of `per_block` each, capped (the loops cover
// the rest): never zero, never above what every vendor accepts in x.
inline unsigned grid_for(int64_t count, int64_t per_block) {
    int64_t g = ceil_div(count, per_block);
    if (g < 1) g = 1;
    if (g > 65535) g = 65535;
    return static_cast<unsigned>(g);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int o = warp_size() / 2; o > 0; o >>= 1) v += EUROLLM_SHFL_XOR(v, o);
    return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
    for (int o = warp_size() / 2; o > 0; o >>= 1) {
        const T u = EUROLLM_SHFL_XOR(v, o);
        v = u > v ? u : v;
    }
    return v;
}

// Sum over the block; every thread gets the result. The per-warp partials are added in warp
// order, so the result is the same on every run (deterministic). `shared`: kMaxWarps slots.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T *shared) {
    const int lane = static_cast<int>(threadIdx.x) % warp_size();
    const int wid = static_cast<int>(threadIdx.x) / warp_size();
    const int nw = static_cast<int>(blockDim.x) / warp_size();
    v = warp_sum(v);
    __syncthreads();  // the slots may still be read by a previous reduction
    if (lane == 0) shared[wid] = v;
    __syncthreads();
    T r = shared[0];
    for (int i = 1; i < nw; ++i) r += shared[i];
    return r;
}

template <typename T>
__device__ __forceinline__ T block_max(T v, T *shared) {
    const int lane = static_cast<int>(threadIdx.x) % warp_size();
    const int wid = static_cast<int>(threadIdx.x) / warp_size();
    const int nw = static_cast<int>(blockDim.x) / warp_size();
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[wid] = v;
    __syncthreads();
    T r = shared[0];
    for (int i = 1; i < nw; ++i) r = shared[i] > r ? shared[i] : r;
    return r;
}

// Weight loads by storage type, through the shared conversions of common/math.h (the CPU kernels
// use the same functions, so both read identical values).
struct w_f32 {
    static __device__ __forceinline__ float at(const void *w, int64_t i) { return static_cast<const float *>(w)[i]; }
};
struct w_f16 {
    static __device__ __forceinline__ float at(const void *w, int64_t i) {
        return kmath::f16_to_f32(static_cast<const uint16_t *>(w)[i]);
    }
};
struct w_bf16 {
    static __device__ __forceinline__ float at(const void *w, int64_t i) {
        return kmath::bf16_to_f32(static_cast<const uint16_t *>(w)[i]);
    }
};

__device__ __forceinline__ float weight_at(const void *w, kernels::wtype wt, int64_t i) {
    switch (wt) {
        case kernels::wtype::f16: return w_f16::at(w, i);
        case kernels::wtype::bf16: return w_bf16::at(w, i);
        default: return w_f32::at(w, i);
    }
}

inline bool is_dense(kernels::wtype wt) {
    return wt == kernels::wtype::f32 || wt == kernels::wtype::f16 || wt == kernels::wtype::bf16;
}

inline status make_status(int code, const char *message, const char *call, const char *file, int line) {
    status st;
    st.code = code;
    st.message = message;
    st.call = call;
    st.file = file;
    st.line = line;
    return st;
}

}  // namespace eurollm::gpu

// Returns a failed status (with the call and file:line) from the enclosing launcher when a runtime
// call fails. The backend throws it as eurollm::error{EUROLLM_ERR_DEVICE} (EUROLLM_GPU_CHECK).
// A failed call also becomes the runtime's "last error", which the next launch check would report
// again (seen on an H100: a refused cudaMalloc resurfaced as add_kernel's failure); reading it
// here clears it. A sticky error (a fault in a kernel) stays and fails every later call, as it should.
#define EUROLLM_GPU_TRY(call)                                                                                   \
    do {                                                                                                        \
        const cudaError_t eurollm_err_ = (call);                                                                \
        if (eurollm_err_ != cudaSuccess) {                                                                      \
            (void)cudaGetLastError();                                                                           \
            return ::eurollm::gpu::make_status(static_cast<int>(eurollm_err_), cudaGetErrorString(eurollm_err_), \
                                               #call, __FILE__, __LINE__);                                       \
        }                                                                                                       \
    } while (0)

// After a kernel launch: reports a bad configuration (or an earlier asynchronous fault).
#define EUROLLM_GPU_TRY_LAUNCH(what) EUROLLM_GPU_TRY((static_cast<void>(what), cudaGetLastError()))

// An argument the launcher cannot serve (a bug in the caller, reported rather than launched).
#define EUROLLM_GPU_REQUIRE(cond, msg)                                                                \
    do {                                                                                              \
        if (!(cond)) return ::eurollm::gpu::make_status(-1, msg, #cond, __FILE__, __LINE__);          \
    } while (0)

// The stream handle as the vendor type.
#define EUROLLM_STREAM(s) reinterpret_cast<cudaStream_t>(s)
