// SwiGLU and the residual add, forward and backward together (element-wise, grid-stride).
//   forward : act = silu(gate) * up                      (act may alias gate: the in-place decode form)
//   backward: dgate = dact * up * silu'(gate), dup = dact * silu(gate)  (either may alias dact)
//   add     : y += x
// silu and silu' are kmath::silu / kmath::silu_grad, the functions the CPU kernels call.
#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

__global__ void swiglu_kernel(const float *gate, const float *up, float *act, int64_t count) {
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x)
        act[e] = kmath::silu(gate[e]) * up[e];
}

__global__ void swiglu_backward_kernel(const float *dact, const float *gate, const float *up, float *dgate, float *dup,
                                       int64_t count) {
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float g = gate[e], u = up[e], d = dact[e];
        const float dg = d * u * kmath::silu_grad(g);
        const float du = d * kmath::silu(g);
        dgate[e] = dg;
        dup[e] = du;
    }
}

__global__ void add_kernel(float *y, const float *x, int64_t count) {
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x)
        y[e] += x[e];
}

}  // namespace

status swiglu(stream_t s, const float *gate, const float *up, float *act, int64_t count) {
    if (count <= 0) return {};
    swiglu_kernel<<<grid_for(count, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(gate, up, act, count);
    EUROLLM_GPU_TRY_LAUNCH("swiglu_kernel");
    return {};
}

status swiglu_backward(stream_t s, const float *dact, const float *gate, const float *up, float *dgate, float *dup,
                       int64_t count) {
    if (count <= 0) return {};
    swiglu_backward_kernel<<<grid_for(count, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(dact, gate, up, dgate, dup,
                                                                                     count);
    EUROLLM_GPU_TRY_LAUNCH("swiglu_backward_kernel");
    return {};
}

status add(stream_t s, float *y, const float *x, int64_t count) {
    if (count <= 0) return {};
    add_kernel<<<grid_for(count, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(y, x, count);
    EUROLLM_GPU_TRY_LAUNCH("add_kernel");
    return {};
}

}  // namespace eurollm::gpu
