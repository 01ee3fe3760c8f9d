// The output layer of training: fused softmax cross-entropy, forward and backward in one pass.
// One block per row of logits [n, n_vocab]; as kmath::softmax_xent_row: the max, the sum of
// exp(z - max) in double, loss = max + log(sum) - z[target], dz = softmax * scale - onehot * scale.
// Rows with a negative target (-100: masked) get loss 0 and a zero gradient. dlogits may alias logits.
#include <float.h>

#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

__global__ void cross_entropy_kernel(const float *logits, const int32_t *targets, int64_t n, int64_t n_vocab,
                                     float scale, float *losses, float *dlogits) {
    __shared__ float fred[kMaxWarps];
    __shared__ double dred[kMaxWarps];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *z = logits + i * n_vocab;
        float *dz = dlogits ? dlogits + i * n_vocab : nullptr;
        const int32_t target = targets[i];
        if (target < 0) {
            if (threadIdx.x == 0) losses[i] = 0.0f;
            if (dz)
                for (int64_t c = threadIdx.x; c < n_vocab; c += blockDim.x) dz[c] = 0.0f;
            continue;
        }
        float mx = -FLT_MAX;
        for (int64_t c = threadIdx.x; c < n_vocab; c += blockDim.x) mx = z[c] > mx ? z[c] : mx;
        mx = block_max(mx, fred);
        double sum = 0.0;
        for (int64_t c = threadIdx.x; c < n_vocab; c += blockDim.x) sum += static_cast<double>(expf(z[c] - mx));
        sum = block_sum(sum, dred);  // its barriers also order the read of z[target] before any write
        const float lse = mx + static_cast<float>(log(sum));
        if (threadIdx.x == 0) losses[i] = lse - z[target];
        if (!dz) continue;
        __syncthreads();  // z[target] is read before dz (which may alias z) is written
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t c = threadIdx.x; c < n_vocab; c += blockDim.x) dz[c] = expf(z[c] - mx) * inv * scale;
        __syncthreads();
        if (threadIdx.x == 0) dz[target] -= scale;
    }
}

}  // namespace

status cross_entropy(stream_t s, const float *logits, const int32_t *targets, int64_t n, int64_t n_vocab, float scale,
                     float *losses, float *dlogits) {
    if (n <= 0) return {};
    EUROLLM_GPU_REQUIRE(n_vocab > 0, "cross_entropy: empty vocabulary");
    cross_entropy_kernel<<<grid_for(n, 1), kBlock, 0, EUROLLM_STREAM(s)>>>(logits, targets, n, n_vocab, scale, losses,
                                                                          dlogits);
    EUROLLM_GPU_TRY_LAUNCH("cross_entropy_kernel");
    return {};
}

}  // namespace eurollm::gpu
