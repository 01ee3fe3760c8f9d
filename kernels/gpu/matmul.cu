// The products: C[p, c] (+)= sum_q A[p, q] B[q, c] with strided f32 A and f32/f16/bf16 B.
// Forward (matmul, attention scores) and backward (dX = dY W, dW += dY^T X) go through gemm().
//
//   gemv_kernel   P <= 8, contiguous rows: one warp per output column, the weights read once,
//                 the activations kept in f32 (decode is bandwidth-bound, so this is the fast path
//                 and it matches the CPU's precision)
//   cuBLAS/hipBLAS GemmEx, f32 accumulation; f16/bf16 weights get activations rounded to the same
//                 type by convert_kernel (llama.cpp does the same); f32 weights: SGEMM (no TF32)
//   gemm_tiled    everything else, and the HIP build without hipBLAS (EUROLLM_GPU_OWN_GEMM):
//                 64x64 output tile per block, 16-deep slices of A and B in shared memory, 4x4 per thread
#include <limits.h>

#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {
namespace {

using kernels::wtype;

constexpr int kGemvRows = 8;
constexpr int kTile = 64, kTileK = 16, kTileSub = 4;  // kBlock = (kTile / kTileSub)^2 threads

// ---- kernels -------------------------------------------------------------------------------------

// C[p, c] = sum_q A[p * a_sp + q] * B[c * b_sc + q], p < P <= R; lanes split q, a warp per column c.
template <typename W, int R>
__global__ void gemv_kernel(int64_t P, int64_t Q, int64_t N, const float *A, int64_t a_sp, const void *B,
                            int64_t b_sc, float *C, int64_t ldc, bool accumulate, const float *bias) {
    const int lane = static_cast<int>(threadIdx.x) % warp_size();
    const int64_t warps = static_cast<int64_t>(blockDim.x) / warp_size();
    const int64_t wid = static_cast<int64_t>(threadIdx.x) / warp_size();
    for (int64_t c = blockIdx.x * warps + wid; c < N; c += static_cast<int64_t>(gridDim.x) * warps) {
        float acc[R];
        for (int r = 0; r < R; ++r) acc[r] = 0.0f;
        for (int64_t q = lane; q < Q; q += warp_size()) {
            const float w = W::at(B, c * b_sc + q);
            for (int r = 0; r < R; ++r)
                if (r < P) acc[r] += A[r * a_sp + q] * w;
        }
        for (int r = 0; r < R; ++r) acc[r] = warp_sum(acc[r]);
        if (lane == 0) {
            const float b = bias ? bias[c] : 0.0f;
            for (int r = 0; r < R && r < P; ++r) {
                float *out = C + r * ldc + c;
                *out = accumulate ? *out + acc[r] + b : acc[r] + b;
            }
        }
    }
}

template <typename W>
__global__ void gemm_tiled_kernel(int64_t P, int64_t Q, int64_t N, const float *A, int64_t a_sp, int64_t a_sq,
                                  const void *B, int64_t b_sq, int64_t b_sc, float *C, int64_t ldc, bool accumulate,
                                  const float *bias) {
    __shared__ float As[kTileK][kTile + 1];
    __shared__ float Bs[kTileK][kTile + 1];
    constexpr int kSide = kTile / kTileSub;  // 16 threads along each side
    const int tx = static_cast<int>(threadIdx.x) % kSide, ty = static_cast<int>(threadIdx.x) / kSide;
    const int64_t p_base = static_cast<int64_t>(blockIdx.y) * kTile;
    const int64_t c_base = static_cast<int64_t>(blockIdx.x) * kTile;
    float acc[kTileSub][kTileSub];
    for (int i = 0; i < kTileSub; ++i)
        for (int j = 0; j < kTileSub; ++j) acc[i][j] = 0.0f;

    for (int64_t q0 = 0; q0 < Q; q0 += kTileK) {
        for (int e = static_cast<int>(threadIdx.x); e < kTile * kTileK; e += static_cast<int>(blockDim.x)) {
            const int r = e / kTileK, k = e % kTileK;  // k fastest: consecutive threads read consecutive q
            const int64_t q = q0 + k;
            const int64_t p = p_base + r, c = c_base + r;
            As[k][r] = (p < P && q < Q) ? A[p * a_sp + q * a_sq] : 0.0f;
            Bs[k][r] = (c < N && q < Q) ? W::at(B, q * b_sq + c * b_sc) : 0.0f;
        }
        __syncthreads();
        for (int k = 0; k < kTileK; ++k) {
            float a[kTileSub], b[kTileSub];
            for (int i = 0; i < kTileSub; ++i) a[i] = As[k][ty + kSide * i];
            for (int j = 0; j < kTileSub; ++j) b[j] = Bs[k][tx + kSide * j];
            for (int i = 0; i < kTileSub; ++i)
                for (int j = 0; j < kTileSub; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < kTileSub; ++i) {
        const int64_t p = p_base + ty + kSide * i;
        if (p >= P) continue;
        for (int j = 0; j < kTileSub; ++j) {
            const int64_t c = c_base + tx + kSide * j;
            if (c >= N) continue;
            const float v = acc[i][j] + (bias ? bias[c] : 0.0f);
            float *out = C + p * ldc + c;
            *out = accumulate ? *out + v : v;
        }
    }
}

#if defined(EUROLLM_GPU_BLAS)

// dst[p * Q + q] = A[p * a_sp + q * a_sq] rounded to f16 or bf16 (the BLAS operand type).
__global__ void convert_kernel(const float *A, int64_t P, int64_t Q, int64_t a_sp, int64_t a_sq, uint16_t *dst,
                               bool to_bf16) {
    const int64_t total = P * Q;
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t p = e / Q, q = e % Q;
        const float x = A[p * a_sp + q * a_sq];
        dst[e] = to_bf16 ? kmath::f32_to_bf16(x) : __half_as_ushort(__float2half_rn(x));
    }
}

__global__ void add_bias_kernel(float *C, int64_t P, int64_t N, int64_t ldc, const float *bias) {
    const int64_t total = P * N;
    for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t p = e / N, c = e % N;
        C[p * ldc + c] += bias[c];
    }
}

#endif

// ---- launchers -----------------------------------------------------------------------------------

bool gemv_fits(const gemm_desc &d) { return d.P <= kGemvRows && d.a_sq == 1 && d.b_sq == 1; }

template <typename W>
status launch_gemv(cudaStream_t s, const gemm_desc &d) {
    const unsigned grid = grid_for(d.N, kBlock / 32);
#define EUROLLM_GEMV(R)                                                                                          \
    gemv_kernel<W, R><<<grid, kBlock, 0, s>>>(d.P, d.Q, d.N, d.A, d.a_sp, d.B, d.b_sc, d.C, d.ldc, d.accumulate, \
                                              d.bias)
    if (d.P == 1)
        EUROLLM_GEMV(1);
    else if (d.P <= 2)
        EUROLLM_GEMV(2);
    else if (d.P <= 4)
        EUROLLM_GEMV(4);
    else
        EUROLLM_GEMV(kGemvRows);
#undef EUROLLM_GEMV
    EUROLLM_GPU_TRY_LAUNCH("gemv_kernel");
    return {};
}

template <typename W>
status launch_tiled(cudaStream_t s, const gemm_desc &d) {
    EUROLLM_GPU_REQUIRE(ceil_div(d.P, kTile) <= 65535, "gemm: too many rows for one launch");
    const dim3 grid(static_cast<unsigned>(ceil_div(d.N, kTile)), static_cast<unsigned>(ceil_div(d.P, kTile)));
    gemm_tiled_kernel<W><<<grid, kBlock, 0, s>>>(d.P, d.Q, d.N, d.A, d.a_sp, d.a_sq, d.B, d.b_sq, d.b_sc, d.C, d.ldc,
                                                 d.accumulate, d.bias);
    EUROLLM_GPU_TRY_LAUNCH("gemm_tiled_kernel");
    return {};
}

#if defined(EUROLLM_GPU_BLAS)

// How BLAS sees the product (column-major): C^T [N x P] = op(B) [N x Q] * op(A) [Q x P].
struct blas_plan {
    bool ok = false;
    bool convert = false;  // A must be converted to B's 16-bit type first
    cublasOperation_t op_b = CUBLAS_OP_N, op_a = CUBLAS_OP_N;
    int64_t ld_b = 0, ld_a = 0;
};

bool fits_int(int64_t v) { return v > 0 && v <= INT_MAX; }

blas_plan plan_blas(const gemm_desc &d) {
    blas_plan pl;
    if (!fits_int(d.P) || !fits_int(d.Q) || !fits_int(d.N) || !fits_int(d.ldc) || d.ldc < d.N) return pl;
    if (d.b_sc == 1 && d.b_sq >= d.N && fits_int(d.b_sq)) {
        pl.op_b = CUBLAS_OP_N;  // row-major B [Q, N] = column-major [N x Q]
        pl.ld_b = d.b_sq;
    } else if (d.b_sq == 1 && d.b_sc >= d.Q && fits_int(d.b_sc)) {
        pl.op_b = CUBLAS_OP_T;  // B[c * b_sc + q]: column-major [Q x N], transposed
        pl.ld_b = d.b_sc;
    } else {
        return pl;
    }
    if (d.bt != wtype::f32) {
        pl.convert = true;  // converted A is contiguous [P, Q] = column-major [Q x P]
        pl.op_a = CUBLAS_OP_N;
        pl.ld_a = d.Q;
    } else if (d.a_sq == 1 && d.a_sp >= d.Q && fits_int(d.a_sp)) {
        pl.op_a = CUBLAS_OP_N;
        pl.ld_a = d.a_sp;
    } else if (d.a_sp == 1 && d.a_sq >= d.P && fits_int(d.a_sq)) {
        pl.op_a = CUBLAS_OP_T;
        pl.ld_a = d.a_sq;
    } else {
        return pl;
    }
    pl.ok = true;
    return pl;
}

cudaDataType blas_type(wtype t) {
    switch (t) {
        case wtype::f16: return CUDA_R_16F;
        case wtype::bf16: return CUDA_R_16BF;
        default: return CUDA_R_32F;
    }
}

status launch_blas(cudaStream_t s, blas_t blas, const gemm_desc &d, const blas_plan &pl, void *scratch) {
    const void *a = d.A;
    if (pl.convert) {
        convert_kernel<<<grid_for(d.P * d.Q, kBlock), kBlock, 0, s>>>(d.A, d.P, d.Q, d.a_sp, d.a_sq,
                                                                      static_cast<uint16_t *>(scratch),
                                                                      d.bt == wtype::bf16);
        EUROLLM_GPU_TRY_LAUNCH("convert_kernel");
        a = scratch;
    }
    const float alpha = 1.0f, beta = d.accumulate ? 1.0f : 0.0f;
    const cublasStatus_t st =
        cublasGemmEx(reinterpret_cast<cublasHandle_t>(blas), pl.op_b, pl.op_a, static_cast<int>(d.N),
                     static_cast<int>(d.P), static_cast<int>(d.Q), &alpha, d.B, blas_type(d.bt),
                     static_cast<int>(pl.ld_b), a, blas_type(d.bt), static_cast<int>(pl.ld_a), &beta, d.C, CUDA_R_32F,
                     static_cast<int>(d.ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return make_status(1000 + static_cast<int>(st), EUROLLM_BLAS_STATUS_STRING(st), "cublasGemmEx", __FILE__,
                           __LINE__);
    if (d.bias) {
        add_bias_kernel<<<grid_for(d.P * d.N, kBlock), kBlock, 0, s>>>(d.C, d.P, d.N, d.ldc, d.bias);
        EUROLLM_GPU_TRY_LAUNCH("add_bias_kernel");
    }
    return {};
}

#endif  // EUROLLM_GPU_BLAS

template <typename W>
status gemm_typed(cudaStream_t s, blas_t blas, const gemm_desc &d, void *scratch, size_t scratch_bytes) {
    if (gemv_fits(d)) return launch_gemv<W>(s, d);
#if defined(EUROLLM_GPU_BLAS)
    if (blas && d.allow_blas) {
        const blas_plan pl = plan_blas(d);
        if (pl.ok) {
            EUROLLM_GPU_REQUIRE(!pl.convert || (scratch && scratch_bytes >= gemm_scratch_bytes(d, blas)),
                                "gemm: scratch smaller than gemm_scratch_bytes()");
            return launch_blas(s, blas, d, pl, scratch);
        }
    }
#else
    (void)blas;
    (void)scratch;
    (void)scratch_bytes;
#endif
    return launch_tiled<W>(s, d);
}

}  // namespace

size_t gemm_scratch_bytes(const gemm_desc &d, blas_t blas) {
#if defined(EUROLLM_GPU_BLAS)
    if (!blas || !d.allow_blas || gemv_fits(d)) return 0;
    const blas_plan pl = plan_blas(d);
    return pl.ok && pl.convert ? static_cast<size_t>(d.P * d.Q) * sizeof(uint16_t) : 0;
#else
    (void)d;
    (void)blas;
    return 0;
#endif
}

status gemm(stream_t s, blas_t blas, const gemm_desc &d, void *scratch, size_t scratch_bytes) {
    if (d.P <= 0 || d.N <= 0) return {};
    EUROLLM_GPU_REQUIRE(d.Q >= 0 && d.A && d.B && d.C, "gemm: bad arguments");
    EUROLLM_GPU_REQUIRE(is_dense(d.bt), "gemm: B must be f32, f16 or bf16 (quantized weights are expanded at upload)");
    const cudaStream_t cs = EUROLLM_STREAM(s);
    switch (d.bt) {
        case wtype::f16: return gemm_typed<w_f16>(cs, blas, d, scratch, scratch_bytes);
        case wtype::bf16: return gemm_typed<w_bf16>(cs, blas, d, scratch, scratch_bytes);
        default: return gemm_typed<w_f32>(cs, blas, d, scratch, scratch_bytes);
    }
}

}  // namespace eurollm::gpu
