// The device runtime behind gpu_kernels.h: enumeration, memory, copies, streams, the BLAS handle.
// Thin and status-returning; caching, staging and error-to-exception live in the backend.
#include <stdio.h>
#include <string.h>

#include "gpu/gpu_common.cuh"

namespace eurollm::gpu {

const char *vendor_name() { return EUROLLM_GPU_VENDOR; }

bool have_blas() {
#if defined(EUROLLM_GPU_BLAS)
    return true;
#else
    return false;
#endif
}

int device_count() {
    int n = 0;
    // No driver, no device, a driver older than the runtime: all mean "no usable device here".
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky error so later calls are not confused by it
        return 0;
    }
    return n < 0 ? 0 : n;
}

status set_device(int device) {
    EUROLLM_GPU_TRY(cudaSetDevice(device));
    return {};
}

status get_device_props(int device, device_props *out) {
    cudaDeviceProp p;
    memset(&p, 0, sizeof p);
    EUROLLM_GPU_TRY(cudaGetDeviceProperties(&p, device));
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", p.name);
#if defined(__HIPCC__)
    snprintf(out->arch, sizeof out->arch, "%s", p.gcnArchName);
#else
    snprintf(out->arch, sizeof out->arch, "sm_%d%d", p.major, p.minor);
#endif
    out->total_memory = p.totalGlobalMem;
    out->warp_size = p.warpSize;
    out->multiprocessors = p.multiProcessorCount;
    int current = 0;
    EUROLLM_GPU_TRY(cudaGetDevice(&current));
    EUROLLM_GPU_TRY(cudaSetDevice(device));
    size_t free_bytes = 0, total_bytes = 0;
    const cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
    EUROLLM_GPU_TRY(cudaSetDevice(current));
    EUROLLM_GPU_TRY(e);
    out->free_memory = free_bytes;
    return {};
}

status stream_create(stream_t *out) {
    cudaStream_t s = nullptr;
    EUROLLM_GPU_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *out = reinterpret_cast<stream_t>(s);
    return {};
}

status stream_destroy(stream_t s) {
    if (s) EUROLLM_GPU_TRY(cudaStreamDestroy(EUROLLM_STREAM(s)));
    return {};
}

status stream_synchronize(stream_t s) {
    EUROLLM_GPU_TRY(cudaStreamSynchronize(EUROLLM_STREAM(s)));
    return {};
}

status device_malloc(void **out, size_t bytes) {
    *out = nullptr;
    EUROLLM_GPU_TRY(cudaMalloc(out, bytes));
    return {};
}

status device_free(void *p) {
    if (p) EUROLLM_GPU_TRY(cudaFree(p));
    return {};
}

status host_malloc_pinned(void **out, size_t bytes) {
    *out = nullptr;
    EUROLLM_GPU_TRY(cudaMallocHost(out, bytes));
    return {};
}

status host_free_pinned(void *p) {
    if (p) EUROLLM_GPU_TRY(cudaFreeHost(p));
    return {};
}

status copy_to_device(void *dst, const void *src, size_t bytes, stream_t s) {
    if (bytes) EUROLLM_GPU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, EUROLLM_STREAM(s)));
    return {};
}

status copy_to_host(void *dst, const void *src, size_t bytes, stream_t s) {
    if (bytes) EUROLLM_GPU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, EUROLLM_STREAM(s)));
    return {};
}

status copy_on_device(void *dst, const void *src, size_t bytes, stream_t s) {
    if (bytes) EUROLLM_GPU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, EUROLLM_STREAM(s)));
    return {};
}

status memset_device(void *dst, int value, size_t bytes, stream_t s) {
    if (bytes) EUROLLM_GPU_TRY(cudaMemsetAsync(dst, value, bytes, EUROLLM_STREAM(s)));
    return {};
}

#if defined(EUROLLM_GPU_BLAS)

#define EUROLLM_BLAS_TRY(call)                                                                               \
    do {                                                                                                     \
        const cublasStatus_t eurollm_bst_ = (call);                                                          \
        if (eurollm_bst_ != CUBLAS_STATUS_SUCCESS)                                                           \
            return make_status(1000 + static_cast<int>(eurollm_bst_), EUROLLM_BLAS_STATUS_STRING(eurollm_bst_), \
                               #call, __FILE__, __LINE__);                                                    \
    } while (0)

status blas_create(blas_t *out, stream_t s) {
    *out = nullptr;
    cublasHandle_t h = nullptr;
    EUROLLM_BLAS_TRY(cublasCreate(&h));
    const cublasStatus_t st = cublasSetStream(h, EUROLLM_STREAM(s));
    if (st != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h);
        EUROLLM_BLAS_TRY(st);
    }
    *out = reinterpret_cast<blas_t>(h);
    return {};
}

status blas_destroy(blas_t b) {
    if (b) EUROLLM_BLAS_TRY(cublasDestroy(reinterpret_cast<cublasHandle_t>(b)));
    return {};
}

#else

status blas_create(blas_t *out, stream_t) {
    *out = nullptr;
    return {};
}

status blas_destroy(blas_t) { return {}; }

#endif

}  // namespace eurollm::gpu
