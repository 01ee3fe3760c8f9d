// Matmul kernels against references: f32/f16/bf16 weights against a double-precision product of
// the same (decoded) values; q8_0/q4_0 against dequantize-then-multiply with the activations
// quantized the same way (the integer kernels must match it to float rounding), and against the
// f32 product within the quantization error. Shapes cover decode (n = 1), register-tile remainders,
// k tails that are not a multiple of the vector width, and the thread split (j0, j1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "common/math.h"
#include "common/random.h"
#include "cpu/isa.h"
#include "cpu/matmul_internal.h"
#include "kernels.h"
#include "kernels_backward.h"

using namespace eurollm::kernels;

namespace {

using eurollm_test::randn;

// Weights of type wt from f32 values, and their decoded f32 values.
std::vector<uint8_t> encode(const std::vector<float> &w, wtype wt, int64_t m, int64_t k, std::vector<float> &decoded) {
    const int64_t rb = wtype_row_bytes(wt, k);
    std::vector<uint8_t> out(static_cast<size_t>(rb * m));
    decoded.resize(w.size());
    for (int64_t j = 0; j < m; ++j) {
        quantize_row(w.data() + j * k, wt, k, out.data() + j * rb);
        dequantize_row(out.data() + j * rb, wt, k, decoded.data() + j * k);
    }
    return out;
}

double max_rel(const std::vector<float> &a, const std::vector<double> &b) {
    double worst = 0.0, scale = 0.0;
    for (double v : b) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
    return worst / std::max(scale, 1e-30);
}

struct shape {
    int64_t n, m, k;
};
const shape kShapes[] = {{1, 37, 64}, {1, 64, 2048}, {3, 9, 172}, {7, 13, 96}, {17, 21, 256}, {64, 40, 160}};

class FloatMatmul : public ::testing::TestWithParam<wtype> {};

TEST_P(FloatMatmul, MatchesDoubleReference) {
    const wtype wt = GetParam();
    for (const shape &s : kShapes) {
        std::vector<float> wdec;
        const auto w = encode(randn(size_t(s.m * s.k), 1), wt, s.m, s.k, wdec);
        const auto x = randn(size_t(s.n * s.k), 2);
        const auto bias = randn(size_t(s.m), 3);
        std::vector<double> ref(size_t(s.n * s.m));
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                double acc = bias[j];
                for (int64_t c = 0; c < s.k; ++c) acc += double(x[i * s.k + c]) * wdec[j * s.k + c];
                ref[i * s.m + j] = acc;
            }
        std::vector<float> y(size_t(s.n * s.m), NAN);
        // Two thread-like ranges with an odd split point.
        const int64_t mid = s.m / 2 + 1;
        matmul_rows(x.data(), s.n, s.k, w.data(), wt, bias.data(), 0, mid, y.data(), s.m);
        matmul_rows(x.data(), s.n, s.k, w.data(), wt, bias.data(), mid, s.m, y.data(), s.m);
        EXPECT_LT(max_rel(y, ref), 2e-5) << "n=" << s.n << " m=" << s.m << " k=" << s.k;
    }
}

// The kernels read a row's last partial vector from a copy of exactly its remaining elements: what
// follows the last row in memory (here NaN) must not reach the result, in decode or prefill.
TEST_P(FloatMatmul, TailReadsNothingPastTheRow) {
    const wtype wt = GetParam();
    const int64_t m = 5, k = 172;  // 5 x 32 + 12 (bf16 steps), 10 x 16 + 12 (f32 steps)
    std::vector<float> wdec;
    auto w = encode(randn(size_t(m * k), 4), wt, m, k, wdec);
    const float nan = NAN;
    for (int e = 0; e < 64; ++e) {  // 256 bytes of f32 NaN; as f16 / bf16 halves: NaN or Inf
        const size_t at = w.size();
        w.resize(at + sizeof nan);
        std::memcpy(w.data() + at, &nan, sizeof nan);
    }
    for (int64_t n : {1, 9}) {
        const auto x = randn(size_t(n * k), 5);
        std::vector<float> y(size_t(n * m), NAN);
        matmul_rows(x.data(), n, k, w.data(), wt, nullptr, 0, m, y.data(), m);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < m; ++j) {
                double ref = 0.0;
                for (int64_t c = 0; c < k; ++c) ref += double(x[i * k + c]) * wdec[j * k + c];
                EXPECT_NEAR(y[i * m + j], ref, 1e-4 * (1.0 + std::fabs(ref))) << "n=" << n << " row " << j;
            }
    }
}

// kernels.h: a row's result does not depend on the other rows of the product, nor on the column
// range a call computes. Decode (one row) streams the weights one row at a time and prefill in tiles
// of several rows and columns; both must give the same bits.
TEST_P(FloatMatmul, RowResultsDoNotDependOnTheBatchOrRange) {
    const wtype wt = GetParam();
    // m > 256: decode takes its range in runs of 256 rows (matmul.cpp, kDecodeRows).
    const int64_t n = 9, m = 301, k = 300;
    std::vector<float> wdec;
    const auto w = encode(randn(size_t(m * k), 6), wt, m, k, wdec);
    const auto x = randn(size_t(n * k), 7);
    const auto bias = randn(size_t(m), 8);
    for (act_precision p : {act_precision::split, act_precision::round}) {
        std::vector<float> all(static_cast<size_t>(n * m)), one(static_cast<size_t>(m));
        matmul_rows(x.data(), n, k, w.data(), wt, bias.data(), 0, m, all.data(), m, p);
        for (int64_t i = 0; i < n; ++i) {
            matmul_rows(x.data() + i * k, 1, k, w.data(), wt, bias.data(), 0, 5, one.data(), m, p);
            matmul_rows(x.data() + i * k, 1, k, w.data(), wt, bias.data(), 5, m, one.data(), m, p);
            EXPECT_EQ(std::memcmp(one.data(), all.data() + i * m, size_t(m) * sizeof(float)), 0)
                << "row " << i << (p == act_precision::round ? " (round)" : " (split)");
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Types, FloatMatmul, ::testing::Values(wtype::f32, wtype::f16, wtype::bf16));

class QuantMatmul : public ::testing::TestWithParam<wtype> {};

TEST_P(QuantMatmul, MatchesDequantizeThenMultiply) {
    const wtype wt = GetParam();
    const shape shapes[] = {{1, 37, 64}, {1, 64, 2048}, {3, 9, 96}, {7, 13, 256}, {17, 21, 512}, {64, 40, 160}};
    for (const shape &s : shapes) {
        std::vector<float> wdec;
        const auto wf = randn(size_t(s.m * s.k), 11, 0.05f);
        const auto w = encode(wf, wt, s.m, s.k, wdec);
        const auto x = randn(size_t(s.n * s.k), 12);
        // Reference 1: dequantized weights x activations quantized as the kernel does (block_q8x).
        std::vector<eurollm::kernels::detail::block_q8x> xq(size_t(s.n * s.k / 32));
        std::vector<float> xdec(size_t(s.n * s.k));
        for (int64_t i = 0; i < s.n; ++i) {
            eurollm::kernels::detail::quantize_q8x(x.data() + i * s.k, s.k, 1, xq.data() + i * (s.k / 32));
            for (int64_t b = 0; b < s.k / 32; ++b)
                for (int e = 0; e < 32; ++e)
                    xdec[size_t(i * s.k + b * 32 + e)] = xq[size_t(i * (s.k / 32) + b)].d * xq[size_t(i * (s.k / 32) + b)].qs[e];
        }
        std::vector<double> ref(size_t(s.n * s.m)), ref_f32(size_t(s.n * s.m));
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                double acc = 0, acc32 = 0;
                for (int64_t c = 0; c < s.k; ++c) {
                    acc += double(xdec[i * s.k + c]) * wdec[j * s.k + c];
                    acc32 += double(x[i * s.k + c]) * wf[j * s.k + c];
                }
                ref[i * s.m + j] = acc;
                ref_f32[i * s.m + j] = acc32;
            }
        std::vector<float> y(size_t(s.n * s.m), NAN);
        const int64_t mid = s.m / 3 + 1;
        matmul_rows(x.data(), s.n, s.k, w.data(), wt, nullptr, 0, mid, y.data(), s.m);
        matmul_rows(x.data(), s.n, s.k, w.data(), wt, nullptr, mid, s.m, y.data(), s.m);
        EXPECT_LT(max_rel(y, ref), 1e-5) << "n=" << s.n << " m=" << s.m << " k=" << s.k;
        // And close to the unquantized product (4-bit: a few percent; 8-bit: under one percent).
        EXPECT_LT(max_rel(y, ref_f32), wt == wtype::q8_0 ? 0.02 : 0.15) << "n=" << s.n << " k=" << s.k;
    }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantMatmul, ::testing::Values(wtype::q8_0, wtype::q4_0));

// The q8_0/q4_0 product is defined bit for bit (kernels/cpu/matmul_quant.cpp): per output, in block
// order, acc = fma(float(integer block dot), d_w * d_x, acc). Written out here from the canonical
// ggml blocks; every kernel (scalar, AVX2, AVX-VNNI, AVX512-VNNI, AMX: the suite runs under each
// EUROLLM_CPU_ISA cap), on canonical or packed weights, for any row count and column split, must
// give exactly these floats: that is what makes a row's result independent of the batch.
TEST_P(QuantMatmul, EqualsTheDefinitionBitForBit) {
    using eurollm::kernels::detail::block_q8x;
    const wtype wt = GetParam();
    const int64_t bb = wtype_block_bytes(wt);
    // 50 and 69 rows: AMX calls of 32 and 16 rows, two groups and one, and a register-kernel tail.
    // Fewer than 16 rows read the canonical rows in place: 300 rows of decode are a run of 256 cut in
    // four parts and a shorter run; 15 rows are register tiles of 4 and 3; an odd block count ends on
    // a single block.
    const shape shapes[] = {{1, 48, 64},  {1, 37, 96},   {3, 40, 256},  {1, 300, 96}, {15, 42, 160},
                            {16, 33, 64}, {21, 48, 96}, {50, 35, 160}, {69, 40, 160}};
    for (const shape &s : shapes) {
        const int64_t kb = s.k / 32;
        std::vector<float> wdec;
        const auto w = encode(randn(size_t(s.m * s.k), 31, 0.05f), wt, s.m, s.k, wdec);
        auto x = randn(size_t(s.n * s.k), 32);
        x[5] = 0.0f;
        for (int e = 0; e < 32; ++e) x[size_t(s.k - 32 + e)] = 0.0f;  // an all-zero block (d = 0)
        std::vector<block_q8x> xq(size_t(s.n * kb));
        for (int64_t i = 0; i < s.n; ++i)
            eurollm::kernels::detail::quantize_q8x(x.data() + i * s.k, s.k, 1, xq.data() + i * kb);
        const auto bias_v = randn(size_t(s.m), 33);
        std::vector<float> want(size_t(s.n * s.m));
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                float acc = 0.0f;
                for (int64_t b = 0; b < kb; ++b) {
                    const uint8_t *blk = w.data() + (j * kb + b) * bb;
                    const block_q8x &xb = xq[size_t(i * kb + b)];
                    int32_t dot = 0;
                    for (int e = 0; e < 32; ++e) {
                        const int q = wt == wtype::q8_0 ? int(int8_t(blk[2 + e]))
                                                        : (e < 16 ? blk[2 + e] & 15 : blk[2 + e - 16] >> 4) - 8;
                        dot += xb.qs[e] * q;
                    }
                    const float dw = eurollm::kmath::f16_to_f32(uint16_t(blk[0] | blk[1] << 8));
                    acc = std::fma(float(dot), dw * xb.d, acc);
                }
                want[size_t(i * s.m + j)] = acc + bias_v[size_t(j)];
            }
        // Canonical rows, split at an odd column and at a group boundary.
        for (int64_t mid : {s.m / 3 + 1, int64_t(16)}) {
            std::vector<float> y(size_t(s.n * s.m), NAN);
            matmul_rows(x.data(), s.n, s.k, w.data(), wt, bias_v.data(), 0, mid, y.data(), s.m);
            matmul_rows(x.data(), s.n, s.k, w.data(), wt, bias_v.data(), mid, s.m, y.data(), s.m);
            for (size_t e = 0; e < y.size(); ++e)
                ASSERT_EQ(y[e], want[e]) << "canonical n=" << s.n << " m=" << s.m << " k=" << s.k << " at " << e;
        }
        // Packed weights, from the same prepared activations; one row at a time equals all rows.
        std::vector<uint8_t> packed(packed_weight_bytes(wt, s.m, s.k));
        ASSERT_FALSE(packed.empty());
        pack_weight_groups(w.data(), wt, s.m, s.k, 0, (s.m + 15) / 16, packed.data());
        std::vector<uint8_t> prep(matmul_prep_bytes(wt, s.n, s.k));
        matmul_prepare(x.data(), s.k, wt, 0, s.n, prep.data());
        std::vector<float> y(size_t(s.n * s.m), NAN);
        matmul_packed(prep.data(), s.n, s.k, packed.data(), wt, bias_v.data(), 0, 16, y.data(), s.m);
        matmul_packed(prep.data(), s.n, s.k, packed.data(), wt, bias_v.data(), 16, s.m, y.data(), s.m);
        for (size_t e = 0; e < y.size(); ++e)
            ASSERT_EQ(y[e], want[e]) << "packed n=" << s.n << " m=" << s.m << " k=" << s.k << " at " << e;
        // A column range inside groups: the columns outside it are left as they were.
        const int64_t lo = 3, hi = std::min<int64_t>(s.m, 21);
        std::vector<float> part(size_t(s.n * s.m), NAN);
        matmul_packed(prep.data(), s.n, s.k, packed.data(), wt, bias_v.data(), lo, hi, part.data(), s.m);
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                const size_t e = size_t(i * s.m + j);
                if (j >= lo && j < hi) ASSERT_EQ(part[e], want[e]) << "range n=" << s.n << " at " << e;
                else ASSERT_TRUE(std::isnan(part[e])) << "written outside the range at " << e;
            }
        const size_t row_bytes = matmul_prep_bytes(wt, 1, s.k);
        for (int64_t i = 0; i < s.n; i += 7) {
            std::vector<float> one(size_t(s.m), NAN);
            matmul_packed(prep.data() + i * row_bytes, 1, s.k, packed.data(), wt, bias_v.data(), 0, s.m, one.data(), s.m);
            for (int64_t j = 0; j < s.m; ++j) ASSERT_EQ(one[size_t(j)], want[size_t(i * s.m + j)]) << "row " << i;
        }
    }
    EXPECT_EQ(packed_weight_bytes(wtype::bf16, 16, 64), 0u);
    EXPECT_EQ(packed_weight_bytes(wt, 17, 64), size_t(2 * 16 * 2 * bb));  // two groups of 16 rows
}

TEST(Quant, RoundTripsAndBlockSizes) {
    EXPECT_EQ(wtype_row_bytes(wtype::q8_0, 64), 68);
    EXPECT_EQ(wtype_row_bytes(wtype::q4_0, 64), 36);
    EXPECT_EQ(wtype_row_bytes(wtype::q4_k, 256), 144);
    EXPECT_EQ(wtype_row_bytes(wtype::q6_k, 512), 420);
    const auto x = randn(256, 5);
    for (wtype wt : {wtype::f16, wtype::bf16, wtype::q8_0, wtype::q4_0}) {
        std::vector<uint8_t> q(size_t(wtype_row_bytes(wt, 256)));
        std::vector<float> back(256);
        quantize_row(x.data(), wt, 256, q.data());
        dequantize_row(q.data(), wt, 256, back.data());
        double err = 0, amax = 0;
        for (int i = 0; i < 256; ++i) {
            err = std::max(err, double(std::fabs(back[i] - x[i])));
            amax = std::max(amax, double(std::fabs(x[i])));
        }
        const double tol = wt == wtype::q4_0 ? 0.15 : wt == wtype::q8_0 ? 0.01 : wt == wtype::bf16 ? 0.005 : 0.001;
        EXPECT_LT(err / amax, tol) << static_cast<int>(wt);
    }
}

// f32 -> f16 against the compiler's _Float16 conversion (IEEE round to nearest even): normal
// values over the whole range, f16 subnormals, exact halfway cases, overflow, infinities and NaN
// (NaN only needs to stay NaN), in runs of 16 (the vector path) and a tail.
TEST(Quant, F16RoundsToNearestEven) {
    std::vector<float> x;
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> mant(1.0f, 2.0f);
    for (int e = -30; e <= 17; ++e)
        for (int i = 0; i < 16; ++i) x.push_back((i & 1 ? -1.0f : 1.0f) * std::ldexp(mant(rng), e));
    for (uint32_t h : {0x0001u, 0x0002u, 0x03ffu, 0x0400u, 0x3c00u, 0x7bffu})  // halfway above f16 values
        for (uint32_t up : {0u, 1u}) {
            const float lo = eurollm::kmath::f16_to_f32(uint16_t(h)), hi = eurollm::kmath::f16_to_f32(uint16_t(h + 1));
            x.push_back(up ? -(lo + hi) / 2 : (lo + hi) / 2);
        }
    for (float v : {65504.0f, 65520.0f, 65519.99f, 1e9f, -1e9f, 0.0f, -0.0f, 1e-30f, INFINITY, -INFINITY, NAN})
        x.push_back(v);
    x.push_back(1.0f);  // a tail after the last full group of 16
    std::vector<uint16_t> h(x.size());
    quantize_row(x.data(), wtype::f16, int64_t(x.size()), h.data());
    for (size_t i = 0; i < x.size(); ++i) {
        if (std::isnan(x[i])) {
            EXPECT_TRUE((h[i] & 0x7c00u) == 0x7c00u && (h[i] & 0x3ffu) != 0) << i;
            continue;
        }
        const _Float16 want = static_cast<_Float16>(x[i]);
        uint16_t bits;
        std::memcpy(&bits, &want, 2);
        ASSERT_EQ(h[i], bits) << "x=" << x[i] << " at " << i;
    }
}

// Q4_K / Q6_K: a hand-built block decodes to the values the ggml layout defines.
TEST(Quant, KQuantDecoding) {
    eurollm::kernels::detail::block_q6_k b6{};
    b6.d = 0x3c00;  // 1.0
    for (int i = 0; i < 16; ++i) b6.scales[i] = static_cast<int8_t>(i + 1);
    for (int i = 0; i < 128; ++i) b6.ql[i] = static_cast<uint8_t>(i * 7);
    for (int i = 0; i < 64; ++i) b6.qh[i] = static_cast<uint8_t>(i * 13);
    std::vector<float> y(256);
    dequantize_row(&b6, wtype::q6_k, 256, y.data());
    // Element 0: ql[0] low nibble | (qh[0] & 3) << 4, minus 32, times scale[0].
    EXPECT_FLOAT_EQ(y[0], 1.0f * 1 * float(((0 & 0xF) | ((0 & 3) << 4)) - 32));
    // Element 33 (second quarter, l = 1): ql[33] & 0xF | ((qh[1] >> 2) & 3) << 4, scale[0 + 2].
    EXPECT_FLOAT_EQ(y[33], 3.0f * float(((33 * 7 & 0xF) | (((13 >> 2) & 3) << 4)) - 32));
    eurollm::kernels::detail::block_q4_k b4{};
    b4.d = 0x3c00;     // 1.0
    b4.dmin = 0x3800;  // 0.5
    b4.scales[0] = 3;  // sub-block 0: scale 3, min scales[4] = 2
    b4.scales[4] = 2;
    for (int i = 0; i < 128; ++i) b4.qs[i] = static_cast<uint8_t>(0x50 | (i % 16));
    dequantize_row(&b4, wtype::q4_k, 256, y.data());
    EXPECT_FLOAT_EQ(y[5], 3.0f * 5 - 0.5f * 2);
}

// Q4_K / Q6_K quantizers: what dequantize_row reads back from the blocks quantize_row writes.
// Gaussian rows within the formats' resolution (relative RMS error; 15 or 63 steps over each
// sub-block's range, the scales in 6 or 8 bits of the super-block's largest: measured 0.0706 and
// 0.0187; q4_k's plain min-max grid gives 0.078, which the bound refuses); a zero row exactly; a
// constant and a one-sided row closely (q6_k's symmetric grid spends half its steps on the empty
// side there: 0.0141).
TEST(Quant, KQuantQuantizersRoundTrip) {
    const int64_t k = 2048;
    auto rel_rms = [&](const std::vector<float> &x, const std::vector<float> &y) {
        double e = 0, n = 0;
        for (int64_t i = 0; i < k; ++i) e += double(x[i] - y[i]) * (x[i] - y[i]), n += double(x[i]) * x[i];
        return std::sqrt(e / n);
    };
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> positive(static_cast<size_t>(k));
    for (auto &v : positive) v = unit(rng);
    const auto gauss = randn(size_t(k), 31);
    const std::vector<float> zero(static_cast<size_t>(k), 0.0f), constant(static_cast<size_t>(k), 0.3f);
    for (wtype wt : {wtype::q4_k, wtype::q6_k}) {
        const char *name = wt == wtype::q4_k ? "q4_k" : "q6_k";
        std::vector<uint8_t> blocks(static_cast<size_t>(wtype_row_bytes(wt, k)));
        std::vector<float> y(static_cast<size_t>(k));
        auto round_trip = [&](const std::vector<float> &x) {
            quantize_row(x.data(), wt, k, blocks.data());
            dequantize_row(blocks.data(), wt, k, y.data());
            return rel_rms(x, y);
        };
        const double g = round_trip(gauss), p = round_trip(positive), c = round_trip(constant);
        std::printf("[   info   ] %s relative RMS error: gaussian %.4f, uniform [0, 1) %.4f, constant %.2e\n", name, g,
                    p, c);
        EXPECT_LT(g, wt == wtype::q4_k ? 0.075 : 0.021) << name;
        EXPECT_LT(p, wt == wtype::q4_k ? 0.035 : 0.018) << name;
        EXPECT_LT(c, 1e-3) << name;
        quantize_row(zero.data(), wt, k, blocks.data());
        dequantize_row(blocks.data(), wt, k, y.data());
        for (float v : y) ASSERT_EQ(v, 0.0f) << name;
    }
}

// Q4_K / Q6_K products, as kernels/cpu/matmul_kquant.cpp defines them: activations quantized to
// 8 bits per 256 elements (d = amax / 127, round to nearest even), exact integer sums per
// sub-block, then per super-block fma(float(S), d * x.d, acc) (and for q4_k fma(float(-M),
// dmin * x.d, acc)). Computed here from the ggml block layout, element by element.
std::vector<float> kquant_reference(const std::vector<float> &x, int64_t n, int64_t k, const std::vector<uint8_t> &w,
                                    wtype wt, int64_t m, const std::vector<float> &bias) {
    namespace d = eurollm::kernels::detail;
    std::vector<float> y(size_t(n * m));
    const int64_t kb = k / 256;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
            float acc = 0.0f;
            for (int64_t s = 0; s < kb; ++s) {
                const float *xs = x.data() + i * k + s * 256;
                float amax = 0.0f;
                for (int e = 0; e < 256; ++e) amax = std::max(amax, std::fabs(xs[e]));
                const float xd = amax / 127.0f, id = xd != 0.0f ? 1.0f / xd : 0.0f;
                int xq[256];
                for (int e = 0; e < 256; ++e) xq[e] = int(std::nearbyint(xs[e] * id));
                const uint8_t *blk = w.data() + j * wtype_row_bytes(wt, k) + s * wtype_block_bytes(wt);
                int32_t S = 0, M = 0;
                if (wt == wtype::q4_k) {
                    const auto *b = reinterpret_cast<const d::block_q4_k *>(blk);
                    for (int sub = 0; sub < 8; ++sub) {
                        uint8_t sc, mn;
                        d::get_scale_min_k4(sub, b->scales, &sc, &mn);
                        int32_t dot = 0, xsum = 0;
                        for (int e = 32 * sub; e < 32 * sub + 32; ++e) {
                            const uint8_t byte = b->qs[32 * (sub / 2) + e % 32];
                            dot += (sub % 2 ? byte >> 4 : byte & 15) * xq[e];
                            xsum += xq[e];
                        }
                        S += sc * dot;
                        M += mn * xsum;
                    }
                    acc = std::fma(float(S), eurollm::kmath::f16_to_f32(b->d) * xd, acc);
                    acc = std::fma(float(-M), eurollm::kmath::f16_to_f32(b->dmin) * xd, acc);
                } else {
                    const auto *b = reinterpret_cast<const d::block_q6_k *>(blk);
                    for (int sub = 0; sub < 16; ++sub) {
                        int32_t dot = 0;
                        for (int e = 16 * sub; e < 16 * sub + 16; ++e) {
                            // element e = 128 h + 32 t + l: ql[64 h + l + 32 (t & 1)], nibble t / 2,
                            // high bits 2 t of qh[32 h + l]
                            const int h = e / 128, t = (e % 128) / 32, l = e % 32;
                            const uint8_t ql = b->ql[64 * h + l + 32 * (t & 1)];
                            const int q = (t < 2 ? ql & 15 : ql >> 4) | (((b->qh[32 * h + l] >> (2 * t)) & 3) << 4);
                            dot += (q - 32) * xq[e];
                        }
                        S += b->scales[sub] * dot;
                    }
                    acc = std::fma(float(S), eurollm::kmath::f16_to_f32(b->d) * xd, acc);
                }
            }
            y[size_t(i * m + j)] = acc + bias[size_t(j)];
        }
    return y;
}

// The products have the bits of that definition for every batch size and column range (decode,
// a few rows and 16 rows or more take different kernels), and stay within the activations' rounding
// (half a quantization step per element) of the double product on dequantize_row's weights.
// Random blocks with every scale, min and quant bit in use.
TEST(Quant, KQuantProductsFollowTheQ8KDefinition) {
    const int64_t m = 37, k = 768, n = 35;
    std::mt19937 rng(21);
    for (wtype wt : {wtype::q4_k, wtype::q6_k}) {
        const char *name = wt == wtype::q4_k ? "q4_k" : "q6_k";
        std::vector<uint8_t> w(size_t(m * wtype_row_bytes(wt, k)));
        for (auto &b : w) b = static_cast<uint8_t>(rng());
        for (int64_t i = 0; i < m * k / 256; ++i) {  // finite, modest block scales
            if (wt == wtype::q4_k) {
                auto *b = reinterpret_cast<eurollm::kernels::detail::block_q4_k *>(w.data()) + i;
                b->d = static_cast<uint16_t>(0x1800 + rng() % 0x800);  // ~2^-9 .. 2^-8
                b->dmin = static_cast<uint16_t>(0x1400 + rng() % 0x800);
            } else {
                reinterpret_cast<eurollm::kernels::detail::block_q6_k *>(w.data())[i].d =
                    static_cast<uint16_t>(0x1800 + rng() % 0x800);
            }
        }
        auto x = randn(size_t(n * k), 22);
        for (int64_t e = 256; e < 512; ++e) x[size_t(3 * k + e)] = 0.0f;  // an all-zero super-block
        const auto bias = randn(size_t(m), 23);
        const auto want = kquant_reference(x, n, k, w, wt, m, bias);
        std::vector<float> all(static_cast<size_t>(n * m)), one(static_cast<size_t>(m));
        matmul_rows(x.data(), n, k, w.data(), wt, bias.data(), 0, 21, all.data(), m);
        matmul_rows(x.data(), n, k, w.data(), wt, bias.data(), 21, m, all.data(), m);
        for (size_t e = 0; e < all.size(); ++e) ASSERT_EQ(all[e], want[e]) << name << " n = " << n << " at " << e;
        for (int64_t i : {int64_t(0), int64_t(3), n - 1}) {
            matmul_rows(x.data() + i * k, 1, k, w.data(), wt, bias.data(), 0, 6, one.data(), m);
            matmul_rows(x.data() + i * k, 1, k, w.data(), wt, bias.data(), 6, m, one.data(), m);
            for (int64_t j = 0; j < m; ++j) ASSERT_EQ(one[size_t(j)], want[size_t(i * m + j)]) << name << " row " << i << " col " << j;
        }
        // 2-15 rows: the row kernels' tiles of several activation rows (decode tiles take one).
        const int64_t few = 6;
        std::vector<float> part(static_cast<size_t>(few * m));
        matmul_rows(x.data(), few, k, w.data(), wt, bias.data(), 0, m, part.data(), m);
        for (size_t e = 0; e < part.size(); ++e) ASSERT_EQ(part[e], want[e]) << name << " n = " << few << " at " << e;
        // Accuracy: |y - x.w| <= sum_e |w_e| * (the element's activation step / 2), plus f32 sums.
        std::vector<float> wf(static_cast<size_t>(k));
        for (int64_t j = 0; j < m; ++j) {
            dequantize_row(w.data() + j * wtype_row_bytes(wt, k), wt, k, wf.data());
            for (int64_t i = 0; i < n; ++i) {
                double exact = bias[size_t(j)], bound = 0, mag = 0;
                for (int64_t s = 0; s < k / 256; ++s) {
                    double amax = 0;
                    for (int e = 0; e < 256; ++e) amax = std::max(amax, double(std::fabs(x[size_t(i * k + s * 256 + e)])));
                    for (int e = 0; e < 256; ++e) {
                        const double wv = wf[size_t(s * 256 + e)], xv = x[size_t(i * k + s * 256 + e)];
                        exact += wv * xv;
                        bound += std::fabs(wv) * amax / 127.0 / 2;
                        mag += std::fabs(wv * xv);
                    }
                }
                EXPECT_LE(std::fabs(double(all[size_t(i * m + j)]) - exact), bound * 1.001 + 1e-5 * mag + 1e-6)
                    << name << " row " << i << " col " << j;
            }
        }
    }
}

// Non-finite activations: a row holding NaN or infinity gives garbage (its scale is not finite or its
// NaN elements round to 0) but never undefined behaviour (the sanitizer builds run this), and the
// other rows keep the definition's bits, in decode and in longer products.
TEST(Quant, KQuantNonFiniteActivationsStayInTheirRow) {
    const int64_t m = 5, k = 512, n = 17;
    std::mt19937 rng(3);
    for (wtype wt : {wtype::q4_k, wtype::q6_k}) {
        std::vector<uint8_t> w(static_cast<size_t>(m * wtype_row_bytes(wt, k)));
        for (auto &b : w) b = static_cast<uint8_t>(rng());
        for (int64_t i = 0; i < m * k / 256; ++i) {  // finite block scales
            auto *blk = w.data() + i * wtype_block_bytes(wt);
            const uint16_t d = 0x1800;
            std::memcpy(blk + (wt == wtype::q4_k ? 0 : 208), &d, 2);
            if (wt == wtype::q4_k) std::memcpy(blk + 2, &d, 2);
        }
        auto x = randn(size_t(n * k), 4);
        for (int e : {1, 2, 3, 300}) x[size_t(e)] = NAN;  // several NaN lanes in one block of 16
        x[400] = INFINITY;
        const std::vector<float> bias(static_cast<size_t>(m), 0.0f);
        const std::vector<float> finite(x.begin() + k, x.end());
        const auto want = kquant_reference(finite, n - 1, k, w, wt, m, bias);
        std::vector<float> y(static_cast<size_t>(n * m)), one(static_cast<size_t>(m));
        matmul_rows(x.data(), n, k, w.data(), wt, nullptr, 0, m, y.data(), m);
        matmul_rows(x.data(), 1, k, w.data(), wt, nullptr, 0, m, one.data(), m);  // decode of that row
        for (int64_t e = 0; e < (n - 1) * m; ++e) ASSERT_EQ(y[size_t(m + e)], want[size_t(e)]) << e;
        for (int64_t j = 0; j < m; ++j)  // and the garbage row is the same garbage in both kernels
            EXPECT_TRUE(std::isnan(one[size_t(j)]) ? std::isnan(y[size_t(j)]) : one[size_t(j)] == y[size_t(j)]) << j;
    }
}

TEST(Isa, EveryLevelAgrees) {
    // The suite runs under the machine's best level; this prints it for the log.
    std::printf("[   info   ] kernels dispatch to %s\n", cpu_isa_name());
    SUCCEED();
}

}  // namespace

// act_precision::round: the activations are rounded to bf16 (on AVX512-BF16; elsewhere the exact
// path runs). The result must equal a double product of the rounded activations and the weights to
// float-summation error, and stay within bf16 rounding of the exact product.
TEST(RoundPrecision, MatchesRoundedActivationsReference) {
    const bool rounds = cpu_isa() == isa::avx512 && cpu_features().avx512_bf16;
    for (const shape &s : kShapes) {
        std::vector<float> wdec;
        const auto w = encode(randn(size_t(s.m * s.k), 21), wtype::bf16, s.m, s.k, wdec);
        const auto x = randn(size_t(s.n * s.k), 22);
        std::vector<double> ref(size_t(s.n * s.m)), exact(size_t(s.n * s.m));
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                double acc = 0, acc_exact = 0;
                for (int64_t c = 0; c < s.k; ++c) {
                    const float xv = x[i * s.k + c];
                    acc += double(rounds ? eurollm::kmath::bf16_to_f32(eurollm::kmath::f32_to_bf16(xv)) : xv) *
                           wdec[j * s.k + c];
                    acc_exact += double(xv) * wdec[j * s.k + c];
                }
                ref[i * s.m + j] = acc;
                exact[i * s.m + j] = acc_exact;
            }
        std::vector<float> y(size_t(s.n * s.m), NAN);
        const int64_t mid = s.m / 2 + 1;
        matmul_rows(x.data(), s.n, s.k, w.data(), wtype::bf16, nullptr, 0, mid, y.data(), s.m, act_precision::round);
        matmul_rows(x.data(), s.n, s.k, w.data(), wtype::bf16, nullptr, mid, s.m, y.data(), s.m, act_precision::round);
        EXPECT_LT(max_rel(y, ref), 2e-5) << "n=" << s.n << " m=" << s.m << " k=" << s.k;
        EXPECT_LT(max_rel(y, exact), 1e-2) << "n=" << s.n << " m=" << s.m << " k=" << s.k;
        // A row's result does not depend on the other rows of the product (same column split).
        std::vector<float> one(static_cast<size_t>(s.m));
        const int64_t last = s.n - 1;
        matmul_rows(x.data() + last * s.k, 1, s.k, w.data(), wtype::bf16, nullptr, 0, mid, one.data(), s.m,
                    act_precision::round);
        matmul_rows(x.data() + last * s.k, 1, s.k, w.data(), wtype::bf16, nullptr, mid, s.m, one.data(), s.m,
                    act_precision::round);
        for (int64_t j = 0; j < s.m; ++j) EXPECT_EQ(one[j], y[last * s.m + j]) << "n=" << s.n << " j=" << j;
    }
}

// The BF16 precision's tile product over packed q8_0 / q4_0 weights (bf16_matmul_packed): each
// weight is its dequantized value d * q rounded once to bf16, each activation rounded to bf16; the
// result must match a double product of exactly those values to f32 summation error (a kernel that
// kept the unrounded weights, or used another block's scale, is ~100x further off) and stay within
// the format's quantization error of the unquantized product. Column ranges start off a 16-column
// group and row counts are not multiples of the 16-row tiles or the 32-column tile pairs.
TEST_P(QuantMatmul, Bf16TilesMatchRoundedReference) {
    if (!bf16_packed_supported(GetParam())) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const wtype wt = GetParam();
    const shape shapes[] = {{16, 48, 64}, {17, 40, 96}, {37, 300, 256}, {64, 16, 2048}, {33, 530, 160}};
    for (const shape &s : shapes) {
        std::vector<float> wdec;
        const auto wf = randn(size_t(s.m * s.k), 31, 0.05f);
        const auto w = encode(wf, wt, s.m, s.k, wdec);
        std::vector<uint8_t> packed(packed_weight_bytes(wt, s.m, s.k));
        pack_weight_groups(w.data(), wt, s.m, s.k, 0, (s.m + 15) / 16, packed.data());
        const auto x = randn(size_t(s.n * s.k), 32);
        std::vector<double> ref(size_t(s.n * s.m)), exact(size_t(s.n * s.m));
        const auto bf = [](float v) { return double(eurollm::kmath::bf16_to_f32(eurollm::kmath::f32_to_bf16(v))); };
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                double acc = 0, acc_exact = 0;
                for (int64_t c = 0; c < s.k; ++c) {
                    acc += bf(x[i * s.k + c]) * bf(wdec[j * s.k + c]);
                    acc_exact += double(x[i * s.k + c]) * wf[j * s.k + c];
                }
                ref[i * s.m + j] = acc;
                exact[i * s.m + j] = acc_exact;
            }
        std::vector<uint8_t> prep(bf16_prep_bytes(s.n, s.k));
        bf16_prepare(x.data(), s.k, s.n, s.k, 0, s.n / 2, prep.data());
        bf16_prepare(x.data(), s.k, s.n, s.k, s.n / 2, s.n, prep.data());
        std::vector<float> y(size_t(s.n * s.m), NAN), bias(size_t(s.m), 0.0f);
        const int64_t mid = std::min<int64_t>(s.m, 21);
        bf16_matmul_packed(prep.data(), s.n, s.k, packed.data(), wt, s.m, bias.data(), 0, mid, y.data(), s.m);
        bf16_matmul_packed(prep.data(), s.n, s.k, packed.data(), wt, s.m, nullptr, mid, s.m, y.data(), s.m);
        EXPECT_LT(max_rel(y, ref), 2e-5) << "n=" << s.n << " m=" << s.m << " k=" << s.k;
        EXPECT_LT(max_rel(y, exact), wt == wtype::q8_0 ? 0.02 : 0.15) << "n=" << s.n << " m=" << s.m << " k=" << s.k;
    }
}

// The EXACT precision's AMX products (three bf16 terms per activation, kernels_backward.h). The terms
// must rebuild every activation bit for bit, so products with unit rows of W return the activations
// unchanged (a split that dropped any of the 24 significand bits fails here), and random products
// match a double-precision reference to float32 summation error. n, k and the column splits are off
// the 16-row, 32-element and 256-column grids; activations span 120 binades and reach FLT_MAX.
std::vector<float> wide_range(size_t n, uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::uniform_int_distribution<int> e(-60, 60);
    std::vector<float> v(n);
    for (auto &x : v) x = std::ldexp(d(g), e(g));
    v[0] = 3.4028235e38f;
    v[n / 2] = -3.4028235e38f;
    v[1] = 0.0f;
    return v;
}

std::vector<uint8_t> exact_prep(const std::vector<float> &a, int64_t n, int64_t width) {
    std::vector<uint8_t> prep(exact_tiles_prep_bytes(n, width), 0xEE);  // garbage where the padding goes
    exact_tiles_prepare(a.data(), width, n, width, 0, n / 3, prep.data());
    exact_tiles_prepare(a.data(), width, n, width, n / 3, n, prep.data());
    return prep;
}

// Prepared activations for the tile products: three terms (EXACT) or rounded to bf16 (BF16).
std::vector<uint8_t> tiles_prep(const std::vector<float> &a, int64_t n, int64_t width, int terms) {
    if (terms == 3) return exact_prep(a, n, width);
    std::vector<uint8_t> prep(bf16_prep_bytes(n, width), 0xEE);
    bf16_prepare(a.data(), width, n, width, 0, n, prep.data());
    return prep;
}

TEST(ExactTiles, UnitWeightsReturnActivationsBitForBit) {
    if (!exact_tiles_supported()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const int64_t n = 37, k = 100;
    const auto x = wide_range(size_t(n * k), 41);
    std::vector<uint16_t> w(size_t(k * k), 0);  // row j = unit vector at perm(j)
    const auto perm = [&](int64_t j) { return (j * 37 + 11) % k; };
    for (int64_t j = 0; j < k; ++j) w[size_t(j * k + perm(j))] = eurollm::kmath::f32_to_bf16(1.0f);
    const auto prep = exact_prep(x, n, k);
    std::vector<float> y(size_t(n * k), NAN);
    exact_tiles_matmul(prep.data(), n, k, w.data(), nullptr, 0, 45, y.data(), k);
    exact_tiles_matmul(prep.data(), n, k, w.data(), nullptr, 45, k, y.data(), k);
    // dx = dy W: column perm(j) of dx is column j of dy.
    std::vector<float> dx(size_t(n * k), NAN);
    exact_tiles_gemm_dx(prep.data(), n, k, w.data(), k, 0, 70, dx.data(), k, false);
    exact_tiles_gemm_dx(prep.data(), n, k, w.data(), k, 70, k, dx.data(), k, false);
    int wrong = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < k; ++j) {
            wrong += y[size_t(i * k + j)] != x[size_t(i * k + perm(j))];
            wrong += dx[size_t(i * k + perm(j))] != x[size_t(i * k + j)];
        }
    EXPECT_EQ(wrong, 0);
}

TEST(ExactTiles, MatchDoubleReference) {
    if (!exact_tiles_supported()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const shape shapes[] = {{8, 48, 64}, {37, 300, 96}, {17, 530, 1000}, {64, 256, 2048}};
    for (const shape &s : shapes) {
        auto x = randn(size_t(s.n * s.k), 42);
        for (size_t e = 0; e < x.size(); ++e) x[e] = std::ldexp(x[e], int(e % 13) - 6);
        const auto wf = randn(size_t(s.m * s.k), 43, 0.05f);
        std::vector<uint16_t> w(wf.size());
        for (size_t e = 0; e < wf.size(); ++e) w[e] = eurollm::kmath::f32_to_bf16(wf[e]);
        const auto wv = [&](int64_t j, int64_t c) { return double(eurollm::kmath::bf16_to_f32(w[size_t(j * s.k + c)])); };
        std::vector<float> bias = randn(size_t(s.m), 44);
        const auto prep = exact_prep(x, s.n, s.k);
        std::vector<float> y(size_t(s.n * s.m), NAN);
        const int64_t cut = std::min<int64_t>(s.m, 300);
        exact_tiles_matmul(prep.data(), s.n, s.k, w.data(), bias.data(), 0, cut, y.data(), s.m);
        exact_tiles_matmul(prep.data(), s.n, s.k, w.data(), bias.data(), cut, s.m, y.data(), s.m);
        double worst = 0;
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t j = 0; j < s.m; ++j) {
                double acc = bias[size_t(j)], mag = std::fabs(bias[size_t(j)]);
                for (int64_t c = 0; c < s.k; ++c) {
                    acc += double(x[size_t(i * s.k + c)]) * wv(j, c);
                    mag += std::fabs(double(x[size_t(i * s.k + c)]) * wv(j, c));
                }
                worst = std::max(worst, std::fabs(y[size_t(i * s.m + j)] - acc) / mag);
            }
        // float32 sums: ~1e-7 of the magnitude; activations rounded to bf16 would give ~1e-3.
        EXPECT_LT(worst, 1e-6) << "forward n=" << s.n << " m=" << s.m << " k=" << s.k;

        // dx (+)= dy W with dy [n, m]: the backward product, accumulating onto dx's contents.
        const auto dy = randn(size_t(s.n * s.m), 45);
        const auto dprep = exact_prep(dy, s.n, s.m);
        std::vector<float> dx = randn(size_t(s.n * s.k), 46);
        const std::vector<float> dx0 = dx;
        const int64_t cc = std::min<int64_t>(s.k, 40);
        exact_tiles_gemm_dx(dprep.data(), s.n, s.m, w.data(), s.k, 0, cc, dx.data(), s.k, true);
        exact_tiles_gemm_dx(dprep.data(), s.n, s.m, w.data(), s.k, cc, s.k, dx.data(), s.k, true);
        worst = 0;
        for (int64_t i = 0; i < s.n; ++i)
            for (int64_t c = 0; c < s.k; ++c) {
                double acc = dx0[size_t(i * s.k + c)], mag = std::fabs(acc);
                for (int64_t j = 0; j < s.m; ++j) {
                    acc += double(dy[size_t(i * s.m + j)]) * wv(j, c);
                    mag += std::fabs(double(dy[size_t(i * s.m + j)]) * wv(j, c));
                }
                worst = std::max(worst, std::fabs(dx[size_t(i * s.k + c)] - acc) / mag);
            }
        EXPECT_LT(worst, 1e-6) << "backward n=" << s.n << " m=" << s.m << " k=" << s.k;
    }
}

// f16 weights on the tiles (f16_tiles_matmul): every weight must reach the product whole (its
// two bf16 terms), so with activations of at most 13 significant bits, whose products with an f16
// weight fit in float32, unit rows return x * w bit for bit in both modes (rounding an activation
// to bf16 is exact for those with at most 8 bits, which the BF16 mode's check uses); random
// products match a double-precision reference. k is odd (the last pair is half a pair), f16
// subnormal weights included.
TEST(ExactTiles, F16WeightsExact) {
    if (!exact_tiles_supported()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const int64_t n = 21, k = 97, m = 70;
    std::mt19937 g(71);
    std::uniform_int_distribution<int> mant13(4096, 8191), mant8(128, 255), ex(-20, 20), hbits(0, 0x7bff);
    for (int terms : {3, 1}) {
        std::vector<float> x(size_t(n * k));
        for (auto &v : x) v = std::ldexp(float(terms == 3 ? mant13(g) : mant8(g)), ex(g)) * (g() % 2 ? 1.0f : -1.0f);
        std::vector<uint16_t> w(size_t(m * k), 0);  // row j: one f16 weight at column (j * 13) % k
        std::vector<float> wv(static_cast<size_t>(m));
        for (int64_t j = 0; j < m; ++j) {
            uint16_t h = static_cast<uint16_t>(hbits(g) | (g() % 2 ? 0x8000 : 0));
            if (j == 3) h = 0x0003;  // a subnormal f16
            w[size_t(j * k + (j * 13) % k)] = h;
            wv[size_t(j)] = eurollm::kmath::f16_to_f32(h);
        }
        const auto prep = tiles_prep(x, n, k, terms);
        std::vector<float> y(size_t(n * m), NAN);
        f16_tiles_matmul(prep.data(), terms, n, k, w.data(), nullptr, 0, 33, y.data(), m);
        f16_tiles_matmul(prep.data(), terms, n, k, w.data(), nullptr, 33, m, y.data(), m);
        int wrong = 0;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < m; ++j) wrong += y[size_t(i * m + j)] != x[size_t(i * k + (j * 13) % k)] * wv[size_t(j)];
        EXPECT_EQ(wrong, 0) << "terms " << terms;
    }
    // Random products against float64, bias and a column split off the 256-column panels.
    const int64_t n2 = 37, k2 = 301, m2 = 530;
    auto x = randn(size_t(n2 * k2), 72);
    std::vector<uint16_t> w(size_t(m2 * k2));
    const auto wf = randn(w.size(), 73, 0.05f);
    for (size_t e = 0; e < w.size(); ++e) w[e] = eurollm::kmath::f32_to_f16(wf[e]);
    const auto bias = randn(size_t(m2), 74);
    for (int terms : {3, 1}) {
        const auto prep = tiles_prep(x, n2, k2, terms);
        std::vector<float> y(size_t(n2 * m2), NAN);
        f16_tiles_matmul(prep.data(), terms, n2, k2, w.data(), bias.data(), 0, 300, y.data(), m2);
        f16_tiles_matmul(prep.data(), terms, n2, k2, w.data(), bias.data(), 300, m2, y.data(), m2);
        double worst = 0;
        for (int64_t i = 0; i < n2; ++i)
            for (int64_t j = 0; j < m2; ++j) {
                double acc = bias[size_t(j)], mag = std::fabs(bias[size_t(j)]);
                for (int64_t c = 0; c < k2; ++c) {
                    double xv = x[size_t(i * k2 + c)];
                    if (terms == 1) xv = eurollm::kmath::bf16_to_f32(eurollm::kmath::f32_to_bf16(float(xv)));
                    const double p = xv * eurollm::kmath::f16_to_f32(w[size_t(j * k2 + c)]);
                    acc += p;
                    mag += std::fabs(p);
                }
                worst = std::max(worst, std::fabs(y[size_t(i * m2 + j)] - acc) / mag);
            }
        EXPECT_LT(worst, 1e-6) << "terms " << terms;
    }
}

// Infinities and NaNs in the activations give what float32 FMAs give: an infinity meets positive
// weights as an infinity of its sign, a NaN makes its row NaN; the other rows are untouched.
TEST(ExactTiles, NonFiniteActivations) {
    if (!exact_tiles_supported()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const int64_t n = 9, k = 64, m = 32;
    auto x = randn(size_t(n * k), 47);
    x[3] = INFINITY;                                      // row 0
    x[size_t(k + 5)] = -INFINITY;                         // row 1
    uint32_t nan_bits = 0x7f800001u;                      // a signalling NaN whose payload is in the low bits
    std::memcpy(&x[size_t(2 * k + 7)], &nan_bits, 4);     // row 2
    std::vector<uint16_t> w(size_t(m * k), eurollm::kmath::f32_to_bf16(0.25f));
    const auto prep = exact_prep(x, n, k);
    std::vector<float> y(size_t(n * m), 0.0f);
    exact_tiles_matmul(prep.data(), n, k, w.data(), nullptr, 0, m, y.data(), m);
    for (int64_t j = 0; j < m; ++j) {
        EXPECT_EQ(y[size_t(j)], INFINITY);
        EXPECT_EQ(y[size_t(m + j)], -INFINITY);
        EXPECT_TRUE(std::isnan(y[size_t(2 * m + j)]));
        for (int64_t i = 3; i < n; ++i) EXPECT_TRUE(std::isfinite(y[size_t(i * m + j)]));
    }
}

// attention_block_tiles (prompts on AMX) against a double-precision attention. BF16 (rounded
// operands): tight against the same bf16-rounded q, k, v and p, loose against the unrounded values.
// EXACT (three terms per operand): within float32 summation error of the unrounded values. Rows
// see nested prefixes of a shuffled cell list, growing by 1 or more cells or repeating a length;
// 1 to 3 query heads per kv head, head sizes on and off the 32-element grid, f32 and f16 caches.
TEST(Attention, TileBlockMatchesDoubleReference) {
    if (!attention_tiles_supported()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const auto bf = [](double v) { return double(eurollm::kmath::bf16_to_f32(eurollm::kmath::f32_to_bf16(float(v)))); };
    for (bool exact : {false, true})
    for (wtype kv_type : {wtype::f32, wtype::f16})
        for (int64_t head_dim : {40, 64, 128})
            for (int64_t group : {1, 2, 3}) {
                const int64_t rows = 19, n_cells = 90, n_head = group + 1;  // one more head: q rows are strided
                std::vector<int64_t> len(static_cast<size_t>(rows));
                for (int64_t r = 0; r < rows; ++r) len[size_t(r)] = 20 + r * 3 - (r == 5 ? 3 : 0) - (r > 5 ? 3 : 0);
                std::vector<int32_t> cells(static_cast<size_t>(n_cells));
                for (int64_t t = 0; t < n_cells; ++t) cells[size_t(t)] = int32_t((t * 37 + 5) % n_cells);
                auto k = randn(size_t(n_cells * head_dim), 61), v = randn(size_t(n_cells * head_dim), 62);
                std::vector<uint8_t> kc(size_t(n_cells * wtype_row_bytes(kv_type, head_dim))), vc(kc.size());
                quantize_row(k.data(), kv_type, n_cells * head_dim, kc.data());
                quantize_row(v.data(), kv_type, n_cells * head_dim, vc.data());
                dequantize_row(kc.data(), kv_type, n_cells * head_dim, k.data());
                dequantize_row(vc.data(), kv_type, n_cells * head_dim, v.data());
                const int64_t q_stride = n_head * head_dim;
                const auto q = randn(size_t(rows * q_stride), 63, 0.5f);
                const float scale = 1.0f / std::sqrt(float(head_dim));
                std::vector<uint8_t> scratch(attention_block_tiles_scratch_bytes(rows, group, len.back(), head_dim, exact) + 64);
                void *base = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
                std::vector<float> out(q.size(), -7.0f);
                // Gathered in two ranges, for more rows than the block uses (as the backend does).
                const int64_t kv_rows = len.back() + 7;
                std::vector<uint16_t> kh(size_t((exact ? 3 : 1) * kv_rows * head_dim)), vh(kh.size());
                for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 30}, {30, kv_rows}}) {
                    attention_tiles_gather(kc.data(), kv_type, head_dim, cells.data(), t0, t1, kv_rows, exact, kh.data());
                    attention_tiles_gather(vc.data(), kv_type, head_dim, cells.data(), t0, t1, kv_rows, exact, vh.data());
                }
                attention_block_tiles(q.data(), q_stride, rows, group, kh.data(), vh.data(), kv_rows, head_dim,
                                      len.data(), scale, exact, out.data(), base);
                double worst_rounded = 0, worst_exact = 0, mag = 0;
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t g = 0; g < group; ++g) {
                        const float *qr = q.data() + r * q_stride + g * head_dim;
                        const int64_t L = len[size_t(r)];
                        std::vector<double> sr(static_cast<size_t>(L)), se(static_cast<size_t>(L));
                        double mr = -1e300, me = -1e300;
                        for (int64_t t = 0; t < L; ++t) {
                            const float *kr = k.data() + cells[size_t(t)] * head_dim;
                            double a = 0, b = 0;
                            for (int64_t d = 0; d < head_dim; ++d) {
                                a += bf(qr[d]) * bf(kr[d]);
                                b += double(qr[d]) * kr[d];
                            }
                            sr[size_t(t)] = a * scale;
                            se[size_t(t)] = b * scale;
                            mr = std::max(mr, sr[size_t(t)]);
                            me = std::max(me, se[size_t(t)]);
                        }
                        double zr = 0, ze = 0;
                        for (int64_t t = 0; t < L; ++t) {
                            zr += std::exp(sr[size_t(t)] - mr);
                            ze += std::exp(se[size_t(t)] - me);
                        }
                        for (int64_t d = 0; d < head_dim; ++d) {
                            double orr = 0, oe = 0;
                            for (int64_t t = 0; t < L; ++t) {
                                const double vv = v[size_t(cells[size_t(t)] * head_dim + d)];
                                orr += bf(std::exp(sr[size_t(t)] - mr) / zr) * bf(vv);
                                oe += std::exp(se[size_t(t)] - me) / ze * vv;
                            }
                            const double got = out[size_t(r * q_stride + g * head_dim + d)];
                            worst_rounded = std::max(worst_rounded, std::fabs(got - orr));
                            worst_exact = std::max(worst_exact, std::fabs(got - oe));
                            mag = std::max(mag, std::fabs(oe));
                        }
                    }
                const std::string where = std::string(exact ? "exact" : "bf16") + " kv " + std::to_string(int(kv_type)) +
                                          " head_dim " + std::to_string(head_dim) + " group " + std::to_string(group);
                if (exact) {
                    EXPECT_LT(worst_exact / mag, 2e-6) << where;
                } else {
                    EXPECT_LT(worst_rounded / mag, 3e-3) << where;
                    EXPECT_LT(worst_exact / mag, 3e-2) << where;
                }
                // The head outside the group is not written.
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t d = group * head_dim; d < q_stride; ++d)
                        ASSERT_EQ(out[size_t(r * q_stride + d)], -7.0f) << where;
            }
}

// attention_heads against a double-precision softmax(q k^T * scale) v over a shuffled cell list, for
// head sizes on the vector path (multiples of 16) and off it, for groups of 1 to 5 heads sharing the
// kv head (pairs and a lone head on the vector path), and for an f32 and an f16 cache (the reference
// reads the f16 values); each head's floats must not depend on the group it was computed in.
TEST(Attention, HeadsMatchDoubleReference) {
    for (wtype kv_type : {wtype::f32, wtype::f16})
    for (int64_t head_dim : {16, 40, 64, 128, 256}) {
        for (int64_t n_visible : {1, 7, 300}) {
            const int64_t n_cells = n_visible + 5;
            auto k = randn(size_t(n_cells * head_dim), 32);
            auto v = randn(size_t(n_cells * head_dim), 33);
            // The cache as stored, and k, v as the values it holds.
            std::vector<uint8_t> kc(size_t(n_cells * wtype_row_bytes(kv_type, head_dim))), vc(kc.size());
            quantize_row(k.data(), kv_type, n_cells * head_dim, kc.data());
            quantize_row(v.data(), kv_type, n_cells * head_dim, vc.data());
            dequantize_row(kc.data(), kv_type, n_cells * head_dim, k.data());
            dequantize_row(vc.data(), kv_type, n_cells * head_dim, v.data());
            std::vector<int32_t> cells(static_cast<size_t>(n_cells));
            for (int64_t t = 0; t < n_cells; ++t) cells[size_t(t)] = int32_t((t * 7 + 3) % n_cells);
            const float scale = 1.0f / std::sqrt(float(head_dim));
            for (int64_t n_heads : {1, 2, 3, 5}) {
                const auto q = randn(size_t(n_heads * head_dim), 31 + uint32_t(n_heads));
                std::vector<float> scratch(static_cast<size_t>(n_heads * n_visible));
                std::vector<float> out(static_cast<size_t>(n_heads * head_dim), NAN);
                attention_heads(q.data(), n_heads, kc.data(), vc.data(), kv_type, head_dim, cells.data(), n_visible,
                                scale, scratch.data(), out.data());
                for (int64_t h = 0; h < n_heads; ++h) {
                    const float *qh = q.data() + h * head_dim;
                    std::vector<double> p(static_cast<size_t>(n_visible)), ref(static_cast<size_t>(head_dim), 0.0);
                    double mx = -1e300, sum = 0;
                    for (int64_t t = 0; t < n_visible; ++t) {
                        double s = 0;
                        for (int64_t d = 0; d < head_dim; ++d) s += double(qh[d]) * k[cells[t] * head_dim + d];
                        p[t] = s * scale;
                        mx = std::max(mx, p[t]);
                    }
                    for (auto &e : p) sum += (e = std::exp(e - mx));
                    for (int64_t t = 0; t < n_visible; ++t)
                        for (int64_t d = 0; d < head_dim; ++d) ref[d] += p[t] / sum * v[cells[t] * head_dim + d];
                    const std::vector<float> got(out.begin() + h * head_dim, out.begin() + (h + 1) * head_dim);
                    EXPECT_LT(max_rel(got, ref), 1e-5) << "kv type " << int(kv_type) << " head_dim=" << head_dim
                                                        << " n_visible=" << n_visible << " head " << h << "/" << n_heads;
                    std::vector<float> alone(static_cast<size_t>(head_dim), NAN);
                    attention_heads(qh, 1, kc.data(), vc.data(), kv_type, head_dim, cells.data(), n_visible, scale,
                                    scratch.data(), alone.data());
                    for (int64_t d = 0; d < head_dim; ++d)
                        ASSERT_EQ(alone[d], got[d]) << "head_dim=" << head_dim << " head " << h << "/" << n_heads;
                }
            }
        }
    }
}
