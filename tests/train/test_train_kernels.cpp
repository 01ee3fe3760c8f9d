// Backward kernels against finite differences of their forward kernels (kernels_backward.h).
// Each check: L = sum(c * f(x)) for a fixed random c; the analytic gradient from the backward
// kernel is compared with central differences of the f32 forward, as a relative error of the whole
// gradient vector. Products are checked against a double-precision reference, bitwise
// determinism against different range splits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "common/math.h"
#include "kernels.h"
#include "kernels_backward.h"

namespace k = eurollm::kernels;
using vec = std::vector<float>;

namespace {

vec randv(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    vec v(n);
    for (auto &x : v) x = d(g);
    return v;
}

double dot(const vec &a, const vec &b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

// Central differences of L(x) = f(x) over every element of x.
vec numeric_grad(vec &x, const std::function<double()> &L, float h) {
    vec g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const float keep = x[i];
        x[i] = keep + h;
        const double lp = L();
        x[i] = keep - h;
        const double lm = L();
        x[i] = keep;
        g[i] = static_cast<float>((lp - lm) / (2.0 * h));
    }
    return g;
}

double rel_err(const vec &a, const vec &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        den += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-30));
}

constexpr double kFdTol = 2e-3;  // f32 forward, h = 1e-2 .. 1e-3

}  // namespace

TEST(TrainKernels, RmsNormBackwardMatchesFiniteDifferences) {
    const int64_t n = 3, d = 24;
    vec x = randv(n * d, 1), w = randv(d, 2, 0.5f, 1.5f), c = randv(n * d, 3);
    vec y(n * d), rstd(n);
    auto L = [&] {
        k::rms_norm_forward_rows(x.data(), w.data(), k::wtype::f32, d, 1e-5f, 0, n, y.data(), rstd.data());
        return dot(c, y);
    };
    L();
    vec dx(n * d), dw(d, 0.0f);
    k::rms_norm_backward_rows(c.data(), x.data(), rstd.data(), w.data(), k::wtype::f32, d, 0, n, dx.data(), false);
    k::rms_norm_backward_weight(c.data(), x.data(), rstd.data(), n, d, 0, d, dw.data());
    EXPECT_LT(rel_err(dx, numeric_grad(x, L, 1e-3f)), kFdTol);
    EXPECT_LT(rel_err(dw, numeric_grad(w, L, 1e-3f)), kFdTol);
}

TEST(TrainKernels, RopeBackwardMatchesFiniteDifferences) {
    const int64_t n = 5, heads = 2, hd = 8;
    vec x = randv(n * heads * hd, 4), c = randv(n * heads * hd, 5);
    std::vector<int32_t> pos = {0, 1, 2, 7, 30};
    vec inv(hd / 2);
    for (int i = 0; i < hd / 2; ++i) inv[i] = eurollm::kmath::rope_inv_freq(i, hd, 10000.0f);
    auto L = [&] {
        vec y = x;
        k::rope_rows(y.data(), heads, hd, pos.data(), inv.data(), hd, 0, n);
        return dot(c, y);
    };
    vec dx = c;
    k::rope_backward_rows(dx.data(), heads, hd, pos.data(), inv.data(), hd, 0, n);
    EXPECT_LT(rel_err(dx, numeric_grad(x, L, 1e-3f)), kFdTol);
}

TEST(TrainKernels, SwigluBackwardMatchesFiniteDifferences) {
    const int64_t n = 3, d = 16;
    vec g = randv(n * d, 6, -4, 4), u = randv(n * d, 7), c = randv(n * d, 8), act(n * d);
    auto L = [&] {
        k::swiglu_forward_rows(g.data(), u.data(), act.data(), d, 0, n);
        return dot(c, act);
    };
    vec dg(n * d), du(n * d);
    k::swiglu_backward_rows(c.data(), g.data(), u.data(), dg.data(), du.data(), d, 0, n);
    EXPECT_LT(rel_err(dg, numeric_grad(g, L, 1e-3f)), kFdTol);
    EXPECT_LT(rel_err(du, numeric_grad(u, L, 1e-3f)), kFdTol);
}

// The AVX-512 SwiGLU (a 16-lane exp) against the scalar formulas of common/math.h, on a range that
// is not a multiple of 16, with the extremes: +-inf, exp's overflow and underflow, and NaN kept.
TEST(TrainKernels, SwigluSimdMatchesTheScalarFormulas) {
    const int64_t n = 3, dim = 37;
    vec gate = randv(static_cast<size_t>(n * dim), 21, -12.0f, 12.0f), up = randv(static_cast<size_t>(n * dim), 22);
    const vec dact = randv(static_cast<size_t>(n * dim), 23);
    const float special[] = {INFINITY, -INFINITY, 100.0f, -100.0f, 0.0f, -0.0f, 88.0f, -88.0f, NAN};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; ++i) gate[i * 3] = special[i];
    vec act(gate.size()), dg(gate.size()), du(gate.size());
    k::swiglu_forward_rows(gate.data(), up.data(), act.data(), dim, 0, n);
    k::swiglu_backward_rows(dact.data(), gate.data(), up.data(), dg.data(), du.data(), dim, 0, n);
    for (size_t e = 0; e < gate.size(); ++e) {
        const float g = gate[e];
        const float ra = eurollm::kmath::silu(g) * up[e];
        const float rg = dact[e] * up[e] * eurollm::kmath::silu_grad(g), ru = dact[e] * eurollm::kmath::silu(g);
        const float got[3] = {act[e], dg[e], du[e]}, want[3] = {ra, rg, ru};
        for (int j = 0; j < 3; ++j) {
            if (std::isnan(want[j])) {
                EXPECT_TRUE(std::isnan(got[j])) << "element " << e << " gate " << g;
            } else if (std::isinf(want[j])) {
                EXPECT_EQ(got[j], want[j]) << "element " << e << " gate " << g;
            } else {
                EXPECT_NEAR(got[j], want[j], 1e-6f * std::fabs(want[j]) + 1e-30f) << "element " << e << " gate " << g;
            }
        }
    }
}

class TrainAttention : public ::testing::TestWithParam<int64_t> {};

TEST_P(TrainAttention, BackwardMatchesFiniteDifferences) {
    // One head of a sequence of 7 tokens inside wider rows (strides as in the model).
    const int64_t n = 7, hd = 8, q_stride = 3 * hd, kv_stride = 2 * hd, window = GetParam();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    vec q = randv(n * q_stride, 9, -2, 2), kk = randv(n * kv_stride, 10, -2, 2), v = randv(n * kv_stride, 11);
    vec c = randv(n * q_stride, 12);
    for (int64_t i = 0; i < n; ++i)  // only this head's slice carries a loss
        for (int64_t j = hd; j < q_stride; ++j) c[i * q_stride + j] = 0.0f;
    vec P(n * n), out(n * q_stride, 0.0f), scratch(n * n + n * hd);
    auto L = [&] {
        k::attention_forward_head(q.data(), kk.data(), v.data(), n, hd, q_stride, kv_stride, scale, window, P.data(),
                                  out.data(), scratch.data());
        return dot(c, out);
    };
    L();
    vec dq(n * q_stride, 0.0f), dk(n * hd), dv(n * hd);
    k::attention_backward_head(c.data(), q.data(), kk.data(), v.data(), P.data(), n, hd, q_stride, kv_stride, scale,
                               dq.data(), dk.data(), dv.data(), scratch.data());
    // Compare on this head's slices only.
    auto slice = [&](const vec &full, int64_t stride) {
        vec s(n * hd);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t d = 0; d < hd; ++d) s[i * hd + d] = full[i * stride + d];
        return s;
    };
    EXPECT_LT(rel_err(slice(dq, q_stride), slice(numeric_grad(q, L, 1e-3f), q_stride)), kFdTol);
    EXPECT_LT(rel_err(dk, slice(numeric_grad(kk, L, 1e-3f), kv_stride)), kFdTol);
    EXPECT_LT(rel_err(dv, slice(numeric_grad(v, L, 1e-3f), kv_stride)), kFdTol);
}

INSTANTIATE_TEST_SUITE_P(Windows, TrainAttention, ::testing::Values(0, 3));

TEST(TrainKernels, CrossEntropyBackwardMatchesFiniteDifferencesAndIgnoresMasked) {
    const int64_t n = 4, V = 37;
    vec z = randv(n * V, 13, -3, 3);
    std::vector<int32_t> t = {5, -100, 36, 0};
    vec losses(n);
    auto L = [&] {
        k::cross_entropy_rows(z.data(), t.data(), V, 1.0f, 0, n, losses.data(), nullptr);
        double s = 0;
        for (float l : losses) s += l;
        return s;
    };
    vec dz(n * V);
    k::cross_entropy_rows(z.data(), t.data(), V, 1.0f, 0, n, losses.data(), dz.data());
    EXPECT_EQ(losses[1], 0.0f);
    for (int64_t c = 0; c < V; ++c) EXPECT_EQ(dz[V + c], 0.0f);
    EXPECT_LT(rel_err(dz, numeric_grad(z, L, 1e-2f)), kFdTol);
    // The loss itself against a double-precision log-softmax.
    double mx = -1e30, s = 0;
    for (int64_t c = 0; c < V; ++c) mx = std::max<double>(mx, z[c]);
    for (int64_t c = 0; c < V; ++c) s += std::exp(z[c] - mx);
    EXPECT_NEAR(losses[0], mx + std::log(s) - z[5], 1e-5);
}

// A vocabulary-sized row (the vector path, with a tail) against double precision: the loss, the
// gradient written to a separate buffer and in place over the logits, scaled.
TEST(TrainKernels, CrossEntropyOfALongRowMatchesDoubleReference) {
    for (int64_t V : {1000, 32003}) {
        const vec z = randv(V, 17, -8, 8);
        const int32_t t = int32_t(V / 3);
        const float scale = 0.25f;
        double mx = -1e30, s = 0;
        for (int64_t c = 0; c < V; ++c) mx = std::max<double>(mx, z[c]);
        for (int64_t c = 0; c < V; ++c) s += std::exp(z[c] - mx);
        vec loss(1), dz(V), inplace = z;
        k::cross_entropy_rows(z.data(), &t, V, scale, 0, 1, loss.data(), dz.data());
        EXPECT_NEAR(loss[0], mx + std::log(s) - z[t], 1e-5 * (mx + std::log(s) - z[t])) << V;
        vec ref(V);
        for (int64_t c = 0; c < V; ++c) ref[c] = float((std::exp(z[c] - mx) / s - (c == t)) * scale);
        EXPECT_LT(rel_err(dz, ref), 1e-5) << V;
        k::cross_entropy_rows(inplace.data(), &t, V, scale, 0, 1, loss.data(), inplace.data());
        EXPECT_EQ(std::memcmp(inplace.data(), dz.data(), dz.size() * sizeof(float)), 0) << V;
    }
}

TEST(TrainKernels, GemmMatchesDoubleReferenceForEveryLayoutAndType) {
    const int64_t P = 13, Q = 70, C = 150;
    vec A = randv(P * Q, 14), Bf = randv(Q * C, 15);
    std::vector<uint16_t> Bbf(Q * C), Bh(Q * C);
    for (size_t i = 0; i < Bf.size(); ++i) {
        Bbf[i] = eurollm::kmath::f32_to_bf16(Bf[i]);
        Bf[i] = eurollm::kmath::bf16_to_f32(Bbf[i]);  // the same values in every type
    }
    // f16 bits via a round trip of the bf16 values (exactly representable in f16 for |x| < 1)
    for (size_t i = 0; i < Bf.size(); ++i) {
        const float f = Bf[i];
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        const uint32_t sign = (bits >> 16) & 0x8000u;
        int exp = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
        const uint32_t mant = bits & 0x7fffffu;
        if (f == 0.0f || exp <= 0) {
            Bh[i] = static_cast<uint16_t>(sign);
            Bf[i] = eurollm::kmath::f16_to_f32(Bh[i]);
        } else {
            Bh[i] = static_cast<uint16_t>(sign | (exp << 10) | (mant >> 13));
        }
    }
    for (int transposed = 0; transposed < 2; ++transposed) {
        // A as [P, Q] (sp = Q, sq = 1) or stored transposed [Q, P] (sp = 1, sq = P).
        vec At(P * Q);
        for (int64_t p = 0; p < P; ++p)
            for (int64_t q = 0; q < Q; ++q) At[q * P + p] = A[p * Q + q];
        const float *Ap = transposed ? At.data() : A.data();
        const int64_t sp = transposed ? 1 : Q, sq = transposed ? P : 1;
        for (auto bt : {k::wtype::f32, k::wtype::bf16, k::wtype::f16}) {
            const void *B = bt == k::wtype::f32 ? static_cast<const void *>(Bf.data())
                            : bt == k::wtype::bf16 ? static_cast<const void *>(Bbf.data())
                                                   : static_cast<const void *>(Bh.data());
            vec Cm(P * C, 0.5f), Csplit(P * C, 0.5f);
            k::gemm_rows(0, P, Q, Ap, sp, sq, B, bt, C, 0, C, Cm.data(), C, true);
            // The same product in pieces (rows 0..5 | 5..13, columns 0..17 | 17..150) is bitwise equal.
            for (auto pr : {std::pair<int64_t, int64_t>{0, 5}, {5, P}})
                for (auto cr : {std::pair<int64_t, int64_t>{0, 17}, {17, C}})
                    k::gemm_rows(pr.first, pr.second, Q, Ap, sp, sq, B, bt, C, cr.first, cr.second, Csplit.data(), C, true);
            EXPECT_EQ(0, std::memcmp(Cm.data(), Csplit.data(), Cm.size() * sizeof(float)));
            double worst = 0;
            for (int64_t p = 0; p < P; ++p)
                for (int64_t c = 0; c < C; ++c) {
                    double ref = 0.5;
                    for (int64_t q = 0; q < Q; ++q) ref += static_cast<double>(A[p * Q + q]) * Bf[q * C + c];
                    worst = std::max(worst, std::fabs(ref - Cm[p * C + c]));
                }
            EXPECT_LT(worst, 1e-4) << "type " << static_cast<int>(bt) << " transposed " << transposed;
        }
    }
}

TEST(TrainKernels, EmbeddingBackwardScattersRepeatedIds) {
    const int64_t d = 5;
    std::vector<int32_t> ids = {2, 0, 2};
    vec dy = randv(3 * d, 16), table(4 * d, 0.0f);
    k::embedding_backward(ids.data(), dy.data(), 3, d, 0, d, table.data());
    for (int64_t c = 0; c < d; ++c) {
        EXPECT_FLOAT_EQ(table[2 * d + c], dy[c] + dy[2 * d + c]);
        EXPECT_FLOAT_EQ(table[0 * d + c], dy[d + c]);
        EXPECT_EQ(table[1 * d + c], 0.0f);
    }
}

TEST(TrainKernels, AdamwMatchesReference) {
    vec w = {0.5f, -1.0f, 2.0f}, g = {0.1f, -0.2f, 0.0f}, m = {0.01f, 0.0f, -0.02f}, v = {1e-4f, 0.0f, 4e-4f};
    k::adamw_args a{};
    a.lr = 1e-2f;
    a.beta1 = 0.9f;
    a.beta2 = 0.99f;
    a.eps = 1e-8f;
    a.weight_decay = 0.1f;
    a.bias_correction1 = 1 - 0.9f * 0.9f;
    a.bias_correction2 = 1 - 0.99f * 0.99f;
    a.grad_scale = 0.5f;
    vec w0 = w, m0 = m, v0 = v;
    k::adamw_update(w.data(), g.data(), m.data(), v.data(), a, 0, 3);
    for (int i = 0; i < 3; ++i) {
        const double gi = g[i] * 0.5;
        const double mi = 0.9 * m0[i] + 0.1 * gi, vi = 0.99 * v0[i] + 0.01 * gi * gi;
        const double wi = w0[i] - 1e-2 * (mi / a.bias_correction1 / (std::sqrt(vi / a.bias_correction2) + 1e-8) + 0.1 * w0[i]);
        EXPECT_NEAR(m[i], mi, 1e-7);
        EXPECT_NEAR(v[i], vi, 1e-9);
        EXPECT_NEAR(w[i], wi, 1e-6);
    }
}
