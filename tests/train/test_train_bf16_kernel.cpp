// The BF16 training products (bf16_matmul: y = bf16(x) Wᵀ, gemm_dx_bf16: dx = bf16(dy) W) against a
// double-precision plain loop, on shapes that are not multiples of any tile (16-row tiles, 32-row
// blocks, 128-column panels, 2048-element reduction panels, 6 x 64 register tiles, odd reductions).
// Where the CPU rounds (AVX512-BF16, with or without AMX) the reference rounds the activations to
// bf16 first and the result must match it to f32 accumulation error: a kernel that kept the f32
// activations would be ~100x further off. Without AVX512-BF16 the products are the f32 kernels on
// the unrounded activations, bit for bit. ctest runs this binary three times: as the CPU is (AMX
// on Sapphire Rapids and later), with EUROLLM_CPU_ISA=avx512bf16 (AMX masked: vdpbf16ps) and with
// EUROLLM_CPU_ISA=avx512f (no bf16 instructions).
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/math.h"
#include "kernels.h"
#include "kernels_backward.h"

namespace k = eurollm::kernels;
namespace km = eurollm::kmath;

namespace {

bool cpu_rounds() { return std::string(k::cpu_isa_name()).find("bf16") != std::string::npos; }

// Product shape: n activation rows, reduction `red`, output columns [c0, c1) of `cols`.
struct shape {
    int64_t n, red, cols, c0, c1;
};

const shape kShapes[] = {
    {1, 1, 1, 0, 1},        {7, 33, 45, 0, 45},     {13, 64, 130, 0, 130},    {6, 2, 64, 0, 64},
    {37, 129, 300, 5, 290}, {12, 200, 17, 0, 17},   {19, 131, 96, 32, 96},    {4, 0, 20, 0, 20},
    {48, 2100, 150, 0, 150}, {33, 4098, 40, 3, 37}, {50, 96, 260, 0, 260},
};

std::vector<float> randv(size_t n, std::mt19937 &g) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto &x : v) x = d(g);
    return v;
}

std::vector<uint16_t> rand_bf16(size_t n, std::mt19937 &g) {
    std::vector<uint16_t> v(n);
    const auto f = randv(n, g);
    for (size_t i = 0; i < n; ++i) v[i] = km::f32_to_bf16(f[i]);
    return v;
}

double act(float x, bool rounds) { return rounds ? km::bf16_to_f32(km::f32_to_bf16(x)) : x; }

// Prepared activations: two row ranges, as two threads would, read from rows with a stride
// (attention prepares slices of wider rows).
struct prepared {
    std::vector<uint8_t> buf;
    void *p = nullptr;
    prepared(const std::vector<float> &a, int64_t n, int64_t width) {
        const int64_t lda = width + 5;
        std::vector<float> strided(static_cast<size_t>(n * lda), 1e30f);
        for (int64_t i = 0; i < n; ++i)
            std::copy(a.begin() + i * width, a.begin() + (i + 1) * width, strided.begin() + i * lda);
        buf.assign(k::bf16_prep_bytes(n, width) + 64, 0xEE);  // garbage where the padding goes
        p = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
        k::bf16_prepare(strided.data(), lda, n, width, 0, n / 2, p);
        k::bf16_prepare(strided.data(), lda, n, width, n / 2, n, p);
    }
};

}  // namespace

TEST(Bf16Products, BackwardMatchesTheReference) {
    const bool rounds = cpu_rounds();
    std::printf("[   info   ] kernels dispatch to %s\n", k::cpu_isa_name());
    std::mt19937 g(1);
    for (const shape &s : kShapes) {
        const int64_t n = s.n, m = s.red, ldw = s.cols;
        const auto dy = randv(static_cast<size_t>(n * m), g);
        const auto w = rand_bf16(static_cast<size_t>(m * ldw), g);
        const auto init = randv(static_cast<size_t>(n * ldw), g);
        const prepared prep(dy, n, m);
        for (bool accumulate : {false, true}) {
            auto run = [&](int64_t cut) {
                std::vector<float> dx = init;
                k::gemm_dx_bf16(dy.data(), m, prep.p, n, m, w.data(), ldw, s.c0, cut, dx.data(), ldw, accumulate);
                k::gemm_dx_bf16(dy.data(), m, prep.p, n, m, w.data(), ldw, cut, s.c1, dx.data(), ldw, accumulate);
                return dx;
            };
            const auto dx = run(s.c0 + (s.c1 - s.c0) / 2), whole = run(s.c1);
            ASSERT_EQ(0, std::memcmp(dx.data(), whole.data(), dx.size() * sizeof(float))) << "the split changes bits";
            std::vector<float> exact = init;
            if (!rounds)
                k::gemm_rows(0, n, m, dy.data(), m, 1, w.data(), k::wtype::bf16, ldw, s.c0, s.c1, exact.data(), ldw,
                             accumulate);
            for (int64_t i = 0; i < n; ++i)
                for (int64_t c = 0; c < ldw; ++c) {
                    const size_t at = static_cast<size_t>(i * ldw + c);
                    if (c < s.c0 || c >= s.c1) {
                        ASSERT_EQ(dx[at], init[at]) << "column " << c << " outside the range was written";
                    } else if (!rounds) {
                        ASSERT_EQ(dx[at], exact[at]) << "the fallback is not gemm_rows at " << i << "," << c;
                    } else {
                        double ref = accumulate ? init[at] : 0.0, mag = std::fabs(ref);
                        for (int64_t q = 0; q < m; ++q) {
                            const double t = act(dy[static_cast<size_t>(i * m + q)], true) *
                                             km::bf16_to_f32(w[static_cast<size_t>(q * ldw + c)]);
                            ref += t;
                            mag += std::fabs(t);
                        }
                        ASSERT_NEAR(dx[at], ref, 1e-5 * mag + 1e-30) << "n=" << n << " m=" << m << " at " << i << "," << c;
                    }
                }
        }
    }
}

TEST(Bf16Products, ForwardMatchesTheReference) {
    const bool rounds = cpu_rounds();
    std::mt19937 g(2);
    for (const shape &s : kShapes) {
        const int64_t n = s.n, kk = s.red, m = s.cols;
        const auto x = randv(static_cast<size_t>(n * kk), g);
        const auto w = rand_bf16(static_cast<size_t>(m * kk), g);
        const auto bias = randv(static_cast<size_t>(m), g);
        const prepared prep(x, n, kk);
        const std::vector<float> init(static_cast<size_t>(n * m), -7.0f);
        auto run = [&](int64_t cut) {
            std::vector<float> y = init;
            k::bf16_matmul(prep.p, n, kk, w.data(), bias.data(), s.c0, cut, y.data(), m);
            k::bf16_matmul(prep.p, n, kk, w.data(), bias.data(), cut, s.c1, y.data(), m);
            return y;
        };
        // A cut at a multiple of 16 columns: matmul_prepared (the kernel without AMX) groups columns
        // in fours from the start of its range, and the trainer's splits are multiples of 16.
        const auto y = run(s.c0 + (s.c1 - s.c0) / 32 * 16), whole = run(s.c1);
        ASSERT_EQ(0, std::memcmp(y.data(), whole.data(), y.size() * sizeof(float)))
            << "the split changes bits: n=" << n << " k=" << kk << " m=" << m;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < m; ++j) {
                const size_t at = static_cast<size_t>(i * m + j);
                if (j < s.c0 || j >= s.c1) {
                    ASSERT_EQ(y[at], -7.0f) << "column " << j << " outside the range was written";
                    continue;
                }
                double ref = bias[static_cast<size_t>(j)], mag = std::fabs(ref);
                for (int64_t c = 0; c < kk; ++c) {
                    const double t = act(x[static_cast<size_t>(i * kk + c)], rounds) *
                                     km::bf16_to_f32(w[static_cast<size_t>(j * kk + c)]);
                    ref += t;
                    mag += std::fabs(t);
                }
                // Without rounding the f32 kernels keep the activations to ~2^-17: same bound.
                ASSERT_NEAR(y[at], ref, 1e-5 * mag + 1e-30) << "n=" << n << " k=" << kk << " at " << i << "," << j;
            }
    }
}

// The bf16 attention of one head against the f32 one (test_train_kernels checks that against
// finite differences): every output within bf16 rounding, relative error of each whole array
// below 1e-2 (one rounding of each operand: ~2^-9 per term, averaging over the sums), on a length
// that is not a multiple of the 64-row blocks, with strided heads as the trainer passes them.
TEST(Bf16Products, AttentionHeadMatchesTheF32Head) {
    const int64_t n = 150, hd = 24, q_stride = 3 * hd, kv_stride = 2 * hd;
    std::mt19937 g(3);
    const auto q = randv(static_cast<size_t>(n * q_stride), g), kk = randv(static_cast<size_t>(n * kv_stride), g),
               v = randv(static_cast<size_t>(n * kv_stride), g), dout = randv(static_cast<size_t>(n * q_stride), g);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    auto rel = [](const std::vector<float> &a, const std::vector<float> &b) {
        double num = 0, den = 0;
        for (size_t i = 0; i < a.size(); ++i) {
            num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
            den += static_cast<double>(b[i]) * b[i];
        }
        return std::sqrt(num / den);
    };
    struct outputs {
        std::vector<float> P, out, dq, dk, dv;
    };
    auto run = [&](bool bf16) {
        outputs o;
        o.P.assign(static_cast<size_t>(n * n), 0.0f);
        o.out.assign(static_cast<size_t>(n * q_stride), 0.0f);
        o.dq.assign(static_cast<size_t>(n * q_stride), 0.0f);
        o.dk.assign(static_cast<size_t>(n * hd), 0.0f);
        o.dv.assign(static_cast<size_t>(n * hd), 0.0f);
        std::vector<float> scratch((bf16 ? k::attention_bf16_scratch_bytes(n, hd) / 4 : static_cast<size_t>(n * n + n * hd)) + 16);
        float *sp = scratch.data();
        void *aligned = reinterpret_cast<uint8_t *>(sp) + (64 - reinterpret_cast<uintptr_t>(sp) % 64) % 64;
        if (bf16) {
            k::attention_forward_head_bf16(q.data(), kk.data(), v.data(), n, hd, q_stride, kv_stride, scale, 0,
                                           o.P.data(), o.out.data(), aligned);
            k::attention_backward_head_bf16(dout.data(), q.data(), kk.data(), v.data(), o.P.data(), n, hd, q_stride,
                                            kv_stride, scale, o.dq.data(), o.dk.data(), o.dv.data(), aligned);
        } else {
            k::attention_forward_head(q.data(), kk.data(), v.data(), n, hd, q_stride, kv_stride, scale, 0, o.P.data(),
                                      o.out.data(), sp);
            k::attention_backward_head(dout.data(), q.data(), kk.data(), v.data(), o.P.data(), n, hd, q_stride,
                                       kv_stride, scale, o.dq.data(), o.dk.data(), o.dv.data(), sp);
        }
        return o;
    };
    const outputs a = run(true), b = run(false);
    const double errs[5] = {rel(a.P, b.P), rel(a.out, b.out), rel(a.dq, b.dq), rel(a.dk, b.dk), rel(a.dv, b.dv)};
    std::printf("[   info   ] bf16 vs f32 attention: P %.1e out %.1e dq %.1e dk %.1e dv %.1e\n", errs[0], errs[1],
                errs[2], errs[3], errs[4]);
    for (double e : errs) EXPECT_LT(e, 1e-2);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t t = i + 1; t < n; ++t) ASSERT_EQ(a.P[static_cast<size_t>(i * n + t)], 0.0f) << "not causal";
}
