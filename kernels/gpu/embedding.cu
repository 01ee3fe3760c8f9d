// Embedding lookup and its backward (scatter-add), forward and backward together.
//   forward : out[i, c] = table[ids[i], c]                          out: [n, dim] f32
//   backward: dtable[ids[i], c] += dy[i, c] for i = 0, 1, ... in order  (deterministic: one thread
//             owns a column and adds the rows in the CPU's order, so repeated ids need no atomics
//             and the result is bitwise the CPU's)
#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

template <typename W>
__global__ void embedding_kernel(const int32_t *ids, int64_t n, const void *table, int64_t dim, float *out) {
    const int64_t total = n * dim;
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t i = e / dim, c = e % dim;
        out[e] = W::at(table, static_cast<int64_t>(ids[i]) * dim + c);
    }
}

__global__ void embedding_backward_kernel(const int32_t *ids, const float *dy, int64_t n, int64_t dim, float *dtable) {
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < dim;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x)
        for (int64_t i = 0; i < n; ++i) dtable[static_cast<int64_t>(ids[i]) * dim + c] += dy[i * dim + c];
}

}  // namespace

status embedding(stream_t s, const int32_t *ids, int64_t n, const void *table, kernels::wtype wt, int64_t dim,
                 float *out) {
    if (n <= 0 || dim <= 0) return {};
    EUROLLM_GPU_REQUIRE(is_dense(wt), "embedding: table must be f32, f16 or bf16");
    const unsigned grid = grid_for(n * dim, kBlock);
    const cudaStream_t cs = EUROLLM_STREAM(s);
    switch (wt) {
        case kernels::wtype::f16: embedding_kernel<w_f16><<<grid, kBlock, 0, cs>>>(ids, n, table, dim, out); break;
        case kernels::wtype::bf16: embedding_kernel<w_bf16><<<grid, kBlock, 0, cs>>>(ids, n, table, dim, out); break;
        default: embedding_kernel<w_f32><<<grid, kBlock, 0, cs>>>(ids, n, table, dim, out); break;
    }
    EUROLLM_GPU_TRY_LAUNCH("embedding_kernel");
    return {};
}

status embedding_backward(stream_t s, const int32_t *ids, const float *dy, int64_t n, int64_t dim, float *dtable) {
    if (n <= 0 || dim <= 0) return {};
    embedding_backward_kernel<<<grid_for(dim, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(ids, dy, n, dim, dtable);
    EUROLLM_GPU_TRY_LAUNCH("embedding_backward_kernel");
    return {};
}

}  // namespace eurollm::gpu
