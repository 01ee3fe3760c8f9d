// RMS norm, forward and backward together. One block per row; the row sums are accumulated in
// double, like kmath::rms_inv and kmath::rms_norm_backward_row on the CPU, and finished with the
// same expressions.
//   forward        : out[i, :] = w * x[i, :] * rstd[i], rstd[i] = 1 / sqrt(sum(x^2) / dim + eps)
//   backward (dx)  : g = dy * w; dx = rstd * g - x * (dot(g, x) / dim) * rstd^3   (+= with accumulate)
//   backward (dw)  : dw[c] += sum_i dy[i, c] * x[i, c] * rstd[i]  (one thread per column, rows in order)
#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

template <typename W>
__global__ void rms_norm_kernel(const float *x, int64_t n, const void *w, int64_t dim, float eps, float *out,
                                float *rstd) {
    __shared__ double partial[kMaxWarps];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *xr = x + i * dim;
        double ss = 0.0;
        for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) ss += static_cast<double>(xr[c]) * xr[c];
        ss = block_sum(ss, partial);
        const float inv = 1.0f / sqrtf(static_cast<float>(ss / static_cast<double>(dim)) + eps);  // kmath::rms_inv
        if (rstd && threadIdx.x == 0) rstd[i] = inv;
        float *o = out + i * dim;  // may alias x: each thread rewrites only the elements it read
        for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) o[c] = W::at(w, c) * (xr[c] * inv);
    }
}

template <typename W>
__global__ void rms_norm_backward_kernel(const float *dy, const float *x, const float *rstd, const void *w, int64_t n,
                                         int64_t dim, float *dx, bool accumulate) {
    __shared__ double partial[kMaxWarps];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *dyr = dy + i * dim, *xr = x + i * dim;
        double dot = 0.0;
        for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
            dot += static_cast<double>(dyr[c] * W::at(w, c)) * xr[c];
        dot = block_sum(dot, partial);
        const float r = rstd[i];
        const float k = static_cast<float>(dot / static_cast<double>(dim)) * r * r * r;  // kmath::rms_norm_backward_row
        float *dxr = dx + i * dim;
        for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
            const float v = r * (dyr[c] * W::at(w, c)) - k * xr[c];
            dxr[c] = accumulate ? dxr[c] + v : v;
        }
    }
}

__global__ void rms_norm_backward_weight_kernel(const float *dy, const float *x, const float *rstd, int64_t n,
                                                int64_t dim, float *dw) {
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < dim;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        float acc = dw[c];
        for (int64_t i = 0; i < n; ++i) acc += dy[i * dim + c] * (x[i * dim + c] * rstd[i]);
        dw[c] = acc;
    }
}

}  // namespace

status rms_norm(stream_t s, const float *x, int64_t n, const void *w, kernels::wtype wt, int64_t dim, float eps,
                float *out, float *rstd) {
    if (n <= 0 || dim <= 0) return {};
    EUROLLM_GPU_REQUIRE(is_dense(wt), "rms_norm: weight must be f32, f16 or bf16");
    const unsigned grid = grid_for(n, 1);
    const cudaStream_t cs = EUROLLM_STREAM(s);
    switch (wt) {
        case kernels::wtype::f16: rms_norm_kernel<w_f16><<<grid, kBlock, 0, cs>>>(x, n, w, dim, eps, out, rstd); break;
        case kernels::wtype::bf16: rms_norm_kernel<w_bf16><<<grid, kBlock, 0, cs>>>(x, n, w, dim, eps, out, rstd); break;
        default: rms_norm_kernel<w_f32><<<grid, kBlock, 0, cs>>>(x, n, w, dim, eps, out, rstd); break;
    }
    EUROLLM_GPU_TRY_LAUNCH("rms_norm_kernel");
    return {};
}

status rms_norm_backward(stream_t s, const float *dy, const float *x, const float *rstd, const void *w,
                         kernels::wtype wt, int64_t n, int64_t dim, float *dx, bool accumulate) {
    if (n <= 0 || dim <= 0) return {};
    EUROLLM_GPU_REQUIRE(is_dense(wt), "rms_norm_backward: weight must be f32, f16 or bf16");
    const unsigned grid = grid_for(n, 1);
    const cudaStream_t cs = EUROLLM_STREAM(s);
    switch (wt) {
        case kernels::wtype::f16:
            rms_norm_backward_kernel<w_f16><<<grid, kBlock, 0, cs>>>(dy, x, rstd, w, n, dim, dx, accumulate);
            break;
        case kernels::wtype::bf16:
            rms_norm_backward_kernel<w_bf16><<<grid, kBlock, 0, cs>>>(dy, x, rstd, w, n, dim, dx, accumulate);
            break;
        default:
            rms_norm_backward_kernel<w_f32><<<grid, kBlock, 0, cs>>>(dy, x, rstd, w, n, dim, dx, accumulate);
            break;
    }
    EUROLLM_GPU_TRY_LAUNCH("rms_norm_backward_kernel");
    return {};
}

status rms_norm_backward_weight(stream_t s, const float *dy, const float *x, const float *rstd, int64_t n,
                                int64_t dim, float *dw) {
    if (n <= 0 || dim <= 0) return {};
    rms_norm_backward_weight_kernel<<<grid_for(dim, kBlock), kBlock, 0, EUROLLM_STREAM(s)>>>(dy, x, rstd, n, dim, dw);
    EUROLLM_GPU_TRY_LAUNCH("rms_norm_backward_weight_kernel");
    return {};
}

}  // namespace eurollm::gpu
