// The HIP side of the single-source GPU kernels: maps the CUDA spelling the kernels are written in
// (cuda*, cublas*, CUDA_R_*, intrinsics) to HIP / hipBLAS (ggml's vendors/hip.h style). Only what
// kernels/gpu/ uses is mapped; add a line here rather than an #ifdef in a kernel.
#pragma once

#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

// ---- runtime ----
#define cudaDeviceProp hipDeviceProp_t
#define cudaDeviceSynchronize hipDeviceSynchronize
#define cudaError_t hipError_t
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaFree hipFree
#define cudaFreeHost hipHostFree
#define cudaGetDevice hipGetDevice
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaMalloc hipMalloc
#define cudaMallocHost(p, n) hipHostMalloc((p), (n), hipHostMallocDefault)
#define cudaMemGetInfo hipMemGetInfo
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemsetAsync hipMemsetAsync
#define cudaSetDevice hipSetDevice
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStream_t hipStream_t
#define cudaSuccess hipSuccess


// ---- hipBLAS (only when found; otherwise EUROLLM_GPU_OWN_GEMM and our own GEMM kernel) ----
#if !defined(EUROLLM_GPU_OWN_GEMM)
#if __has_include(<hipblas/hipblas.h>)
#include <hipblas/hipblas.h>
#else
#include <hipblas.h>
#endif
#define EUROLLM_GPU_BLAS 1
#define CUBLAS_GEMM_DEFAULT HIPBLAS_GEMM_DEFAULT
#define CUBLAS_OP_N HIPBLAS_OP_N
#define CUBLAS_OP_T HIPBLAS_OP_T
#define CUBLAS_STATUS_SUCCESS HIPBLAS_STATUS_SUCCESS
#define cublasCreate hipblasCreate
#define cublasDestroy hipblasDestroy
#define cublasGemmEx hipblasGemmEx
#define cublasHandle_t hipblasHandle_t
#define cublasOperation_t hipblasOperation_t
#define cublasSetStream hipblasSetStream
#define cublasStatus_t hipblasStatus_t
#define EUROLLM_BLAS_STATUS_STRING(s) hipblasStatusToString(s)
// hipBLAS 2.x (ROCm 6) with HIPBLAS_V2 takes hipDataType / hipblasComputeType_t; older releases
// take hipblasDatatype_t for both.
#if defined(HIPBLAS_V2)
#define cudaDataType hipDataType
#define CUDA_R_16BF HIP_R_16BF
#define CUDA_R_16F HIP_R_16F
#define CUDA_R_32F HIP_R_32F
#define CUBLAS_COMPUTE_32F HIPBLAS_COMPUTE_32F
#else
#define cudaDataType hipblasDatatype_t
#define CUDA_R_16BF HIPBLAS_R_16B
#define CUDA_R_16F HIPBLAS_R_16F
#define CUDA_R_32F HIPBLAS_R_32F
#define CUBLAS_COMPUTE_32F HIPBLAS_R_32F
#endif
#endif  // !EUROLLM_GPU_OWN_GEMM

#define EUROLLM_GPU_VENDOR "hip"
// HIP (ROCm 5.x) has no *_sync shuffles; a wavefront executes in lock-step, every lane takes part.
#define EUROLLM_SHFL_XOR(v, mask) __shfl_xor((v), (mask))
