// Rotary position embedding, forward and backward together: the forward rotates each pair
// (x[f], x[f + half]) of every head by +angle, the backward (its transpose) by -angle, through the
// shared kmath::rope_rotate. angle = pos[i] * inv_freq[f], rounded to f32 before cos/sin as the
// CPU (and Hugging Face) compute it.   x: [n, n_heads * head_dim], one thread per (row, head, pair).
#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

__global__ void rope_kernel(float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
                            const float *inv_freq, int half, float sign) {
    const int64_t total = n * n_heads * half;
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int f = static_cast<int>(e % half);
        const int64_t ih = e / half;  // row * n_heads + head
        const int64_t i = ih / n_heads;
        const float angle = static_cast<float>(pos[i]) * inv_freq[f];
        kmath::rope_rotate(x + ih * head_dim, f, half, cosf(angle), sign * sinf(angle));
    }
}

}  // namespace

status rope(stream_t s, float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
            const float *inv_freq, int64_t rotary_dim, bool inverse) {
    const int half = static_cast<int>(rotary_dim / 2);
    if (n <= 0 || n_heads <= 0 || half <= 0) return {};
    EUROLLM_GPU_REQUIRE(rotary_dim <= head_dim, "rope: rotary_dim exceeds head_dim");
    rope_kernel<<<grid_for(n * n_heads * half, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(
        x, n, n_heads, head_dim, pos, inv_freq, half, inverse ? -1.0f : 1.0f);
    EUROLLM_GPU_TRY_LAUNCH("rope_kernel");
    return {};
}

}  // namespace eurollm::gpu
