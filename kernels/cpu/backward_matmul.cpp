// gemm_rows: C[p, c] (+)= sum_q A[p, q] * B[q, c] with strided f32 A and row-major f32/f16/bf16 B.
// The product of every backward step (dX = dY·W, dW += dYᵀ·X) and of training attention.
//
// AVX-512 path: a register tile of R rows x NV*16 columns of C stays in registers while q runs
// over a block of B rows (kept in L1); each q loads NV vectors of B and broadcasts R values of A.
// Every element of C is the same chain of FMAs in q order whatever the tile, so the result does
// not depend on the range split (see kernels_backward.h).
#include <algorithm>

#include "common/math.h"
#include "cpu/isa.h"
#include "cpu/simd.h"
#include "kernels_backward.h"

namespace eurollm::kernels {
namespace {

inline float b_at(const void *B, wtype bt, int64_t i) {
    switch (bt) {
        case wtype::f16: return kmath::f16_to_f32(static_cast<const uint16_t *>(B)[i]);
        case wtype::bf16: return kmath::bf16_to_f32(static_cast<const uint16_t *>(B)[i]);
        default: return static_cast<const float *>(B)[i];
    }
}

// The plain-loop reference.
void gemm_scalar(int64_t p0, int64_t p1, int64_t n_q, const float *A, int64_t a_sp, int64_t a_sq, const void *B,
                 wtype bt, int64_t ldb, int64_t c0, int64_t c1, float *C, int64_t ldc, bool accumulate) {
    for (int64_t p = p0; p < p1; ++p) {
        float *cr = C + p * ldc;
        if (!accumulate)
            for (int64_t c = c0; c < c1; ++c) cr[c] = 0.0f;
        for (int64_t q = 0; q < n_q; ++q) {
            const float a = A[p * a_sp + q * a_sq];
            const int64_t base = q * ldb;
            if (bt == wtype::f32) {
                const float *br = static_cast<const float *>(B) + base;
                for (int64_t c = c0; c < c1; ++c) cr[c] += a * br[c];
            } else {
                for (int64_t c = c0; c < c1; ++c) cr[c] += a * b_at(B, bt, base + c);
            }
        }
    }
}

#if defined(__x86_64__)

#define EUROLLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

struct f16_t { uint16_t v; };
struct bf16_t { uint16_t v; };

EUROLLM_AVX512 inline __m512 load16(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
EUROLLM_AVX512 inline __m512 load16(const f16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
EUROLLM_AVX512 inline __m512 load16(const bf16_t *p, __mmask16 m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

template <int R, int NV, typename BT>
EUROLLM_AVX512 inline void tile(const float *A, int64_t a_sp, int64_t a_sq, int64_t p, int64_t q0, int64_t q1,
                                const BT *B, int64_t ldb, int64_t c, const __mmask16 *mask, float *C, int64_t ldc,
                                bool zero) {
    __m512 acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = zero ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], C + (p + r) * ldc + c + 16 * v);
    const float *ap = A + p * a_sp;
    for (int64_t q = q0; q < q1; ++q) {
        const BT *br = B + q * ldb + c;
        __m512 b[NV];
        for (int v = 0; v < NV; ++v) b[v] = load16(br + 16 * v, mask[v]);
        for (int r = 0; r < R; ++r) {
            const __m512 a = _mm512_set1_ps(ap[r * a_sp + q * a_sq]);
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(C + (p + r) * ldc + c + 16 * v, mask[v], acc[r][v]);
}

template <int NV, typename BT>
EUROLLM_AVX512 void column_block(int64_t p0, int64_t p1, int64_t n_q, const float *A, int64_t a_sp, int64_t a_sq,
                                 const BT *B, int64_t ldb, int64_t c, const __mmask16 *mask, float *C, int64_t ldc,
                                 bool accumulate) {
    // Rows of B per pass: NV vectors of each stay in L1.
    constexpr int64_t kQBlock = 256;
    for (int64_t q0 = 0; q0 < n_q || q0 == 0; q0 += kQBlock) {
        const int64_t q1 = std::min(n_q, q0 + kQBlock);
        const bool zero = q0 == 0 && !accumulate;
        int64_t p = p0;
        for (; p + 4 <= p1; p += 4) tile<4, NV>(A, a_sp, a_sq, p, q0, q1, B, ldb, c, mask, C, ldc, zero);
        for (; p < p1; ++p) tile<1, NV>(A, a_sp, a_sq, p, q0, q1, B, ldb, c, mask, C, ldc, zero);
        if (n_q == 0) break;
    }
}

template <typename BT>
EUROLLM_AVX512 void gemm_avx512(int64_t p0, int64_t p1, int64_t n_q, const float *A, int64_t a_sp, int64_t a_sq,
                                const BT *B, int64_t ldb, int64_t c0, int64_t c1, float *C, int64_t ldc,
                                bool accumulate) {
    for (int64_t c = c0; c < c1; c += 64) {
        const int64_t nc = std::min<int64_t>(64, c1 - c);
        __mmask16 mask[4];
        for (int v = 0; v < 4; ++v) mask[v] = tail_mask16(nc - 16 * v);
        switch ((nc + 15) / 16) {
            case 1: column_block<1>(p0, p1, n_q, A, a_sp, a_sq, B, ldb, c, mask, C, ldc, accumulate); break;
            case 2: column_block<2>(p0, p1, n_q, A, a_sp, a_sq, B, ldb, c, mask, C, ldc, accumulate); break;
            case 3: column_block<3>(p0, p1, n_q, A, a_sp, a_sq, B, ldb, c, mask, C, ldc, accumulate); break;
            default: column_block<4>(p0, p1, n_q, A, a_sp, a_sq, B, ldb, c, mask, C, ldc, accumulate); break;
        }
    }
}

#endif  // __x86_64__

}  // namespace

void gemm_rows(int64_t p0, int64_t p1, int64_t n_q, const float *A, int64_t a_sp, int64_t a_sq, const void *B,
               wtype bt, int64_t ldb, int64_t c0, int64_t c1, float *C, int64_t ldc, bool accumulate) {
    if (p0 >= p1 || c0 >= c1) return;
#if defined(__x86_64__)
    if (cpu_isa() == isa::avx512) {
        switch (bt) {
            case wtype::f16:
                gemm_avx512(p0, p1, n_q, A, a_sp, a_sq, static_cast<const f16_t *>(B), ldb, c0, c1, C, ldc, accumulate);
                return;
            case wtype::bf16:
                gemm_avx512(p0, p1, n_q, A, a_sp, a_sq, static_cast<const bf16_t *>(B), ldb, c0, c1, C, ldc,
                            accumulate);
                return;
            default:
                gemm_avx512(p0, p1, n_q, A, a_sp, a_sq, static_cast<const float *>(B), ldb, c0, c1, C, ldc,
                            accumulate);
                return;
        }
    }
#endif
    gemm_scalar(p0, p1, n_q, A, a_sp, a_sq, B, bt, ldb, c0, c1, C, ldc, accumulate);
}

}  // namespace eurollm::kernels
