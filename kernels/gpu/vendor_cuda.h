// The CUDA side of the single-source GPU kernels: the CUDA runtime, half types and cuBLAS. The
// kernels are written in this spelling; vendor_hip.h maps it to HIP (ggml's vendors/cuda.h style).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#if !defined(EUROLLM_GPU_OWN_GEMM)
#include <cublas_v2.h>
#define EUROLLM_GPU_BLAS 1
#define EUROLLM_BLAS_STATUS_STRING(s) cublasGetStatusString(s)
#endif

#define EUROLLM_GPU_VENDOR "cuda"
// Warp shuffles: CUDA wants a participation mask (all lanes take part in ours).
#define EUROLLM_SHFL_XOR(v, mask) __shfl_xor_sync(0xffffffffu, (v), (mask))
