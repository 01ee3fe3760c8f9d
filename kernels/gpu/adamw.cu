// The optimizer step: decoupled AdamW, one thread per element, through the shared
// kmath::adamw_element (the CPU kernel calls the same function, so both update bit-for-bit alike
// up to the device's sqrtf).   w, g, m, v: [count] f32; g is scaled by grad_scale first (clipping).
#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

__global__ void adamw_kernel(float *w, const float *g, float *m, float *v, kernels::adamw_args a, int64_t count) {
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x)
        kmath::adamw_element(w + e, g[e] * a.grad_scale, m + e, v + e, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay,
                             a.bias_correction1, a.bias_correction2);
}

}  // namespace

status adamw(stream_t s, float *w, const float *g, float *m, float *v, const kernels::adamw_args &a, int64_t count) {
    if (count <= 0) return {};
    adamw_kernel<<<grid_for(count, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(w, g, m, v, a, count);
    EUROLLM_GPU_TRY_LAUNCH("adamw_kernel");
    return {};
}

}  // namespace eurollm::gpu
