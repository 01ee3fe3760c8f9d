// The kernels' paths for when their scratch memory cannot be allocated: the tile products fall back
// to plain loops (scalar_from_tiles), and the q8_0/q4_0 product over canonical weights computes the
// definition straight from the rows. Nothing else exercises them, since allocation does not fail in
// the other tests. This executable replaces aligned_alloc (which the kernels' scratch buffers use)
// with one that fails on the threads that ask it to; each product then runs once on a fresh thread
// (empty thread-local scratch) that fails, and once normally.
#include <gtest/gtest.h>
#include <malloc.h>

#include <new>

#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/math.h"
#include "common/aligned_buffer.h"
#include "common/random.h"
#include "cpu/isa.h"
#include "kernels.h"
#include "kernels_backward.h"

namespace {
thread_local bool fail_aligned_alloc = false;
thread_local int refused_allocations = 0;
}

extern "C" void *aligned_alloc(size_t alignment, size_t size) {
    if (fail_aligned_alloc) return ++refused_allocations, nullptr;
    return memalign(alignment, size);
}

namespace {

using namespace eurollm::kernels;

using eurollm_test::randn;

// fn() on a new thread whose aligned_alloc fails (when failing) or works; returns how many
// allocations it refused, so that a test can tell its fallback was reached at all.
template <class F>
int on_fresh_thread(bool failing, F fn) {
    int refused = 0;
    std::thread t([&] {
        fail_aligned_alloc = failing;
        fn();
        fail_aligned_alloc = false;
        refused = refused_allocations;
    });
    t.join();
    return refused;
}

TEST(ScratchFallback, AllocationFailsOnlyWhereAsked) {
    void *p = nullptr;
    on_fresh_thread(true, [&] { p = std::aligned_alloc(64, 1024); });
    EXPECT_EQ(p, nullptr);
    on_fresh_thread(false, [&] { p = std::aligned_alloc(64, 1024); });
    EXPECT_NE(p, nullptr);
    std::free(p);
}

// Both tile precisions: the fallback's result agrees with the tile kernel's to float32 rounding.
TEST(ScratchFallback, TileProductsWithoutScratch) {
    if (!exact_tiles_supported()) GTEST_SKIP() << "no AMX-BF16 on this CPU (or masked by EUROLLM_CPU_ISA)";
    const int64_t n = 21, k = 96, m = 40;
    const auto x = randn(size_t(n * k), 1);
    const auto wf = randn(size_t(m * k), 2, 0.05f);
    std::vector<uint16_t> w(wf.size());
    for (size_t e = 0; e < wf.size(); ++e) w[e] = eurollm::kmath::f32_to_bf16(wf[e]);
    const auto bias = randn(size_t(m), 3);
    for (bool exact : {true, false}) {
        SCOPED_TRACE(exact ? "exact" : "bf16");
        aligned_buffer prep;
        void *pp = prep.get(exact ? exact_tiles_prep_bytes(n, k) : bf16_prep_bytes(n, k));
        if (exact) exact_tiles_prepare(x.data(), k, n, k, 0, n, pp);
        else bf16_prepare(x.data(), k, n, k, 0, n, pp);
        std::vector<float> tiles(size_t(n * m), NAN), plain(size_t(n * m), NAN);
        auto product = [&](std::vector<float> &y) {
            if (exact) exact_tiles_matmul(pp, n, k, w.data(), bias.data(), 0, m, y.data(), m);
            else bf16_matmul(pp, n, k, w.data(), bias.data(), 0, m, y.data(), m);
        };
        on_fresh_thread(false, [&] { product(tiles); });
        EXPECT_GT(on_fresh_thread(true, [&] { product(plain); }), 0) << "the fallback was not reached";
        for (size_t e = 0; e < tiles.size(); ++e) {
            ASSERT_FALSE(std::isnan(plain[e])) << "not written at " << e;
            EXPECT_NEAR(plain[e], tiles[e], 1e-5 * (1.0 + std::fabs(tiles[e]))) << "at " << e;
        }
    }
}

// The q8_0/q4_0 product is defined bit for bit: over canonical rows without scratch for the packed
// groups it must give the same floats. matmul_rows, which allocates its activations' buffer
// itself, reports a failed allocation as std::bad_alloc.
TEST(ScratchFallback, QuantProductWithoutScratchIsTheDefinition) {
    const int64_t n = 37, k = 160, m = 40;
    const auto x = randn(size_t(n * k), 4);
    for (wtype wt : {wtype::q8_0, wtype::q4_0}) {
        SCOPED_TRACE(wt == wtype::q8_0 ? "q8_0" : "q4_0");
        const int64_t rb = wtype_row_bytes(wt, k);
        std::vector<uint8_t> w(size_t(m * rb));
        const auto wf = randn(size_t(m * k), 5, 0.05f);
        for (int64_t j = 0; j < m; ++j) quantize_row(wf.data() + j * k, wt, k, w.data() + j * rb);
        const auto bias = randn(size_t(m), 6);
        aligned_buffer prep;
        void *pp = prep.get(matmul_prep_bytes(wt, n, k));
        matmul_prepare(x.data(), k, wt, 0, n, pp);
        std::vector<float> normal(size_t(n * m), NAN), plain(size_t(n * m), NAN);
        on_fresh_thread(false, [&] { matmul_prepared(pp, n, k, w.data(), wt, bias.data(), 0, m, normal.data(), m); });
        EXPECT_GT(on_fresh_thread(true, [&] { matmul_prepared(pp, n, k, w.data(), wt, bias.data(), 0, m, plain.data(), m); }), 0)
            << "the fallback was not reached";
        for (size_t e = 0; e < normal.size(); ++e) ASSERT_EQ(plain[e], normal[e]) << "at " << e;
        bool threw = false;
        on_fresh_thread(true, [&] {
            try {
                matmul_rows(x.data(), n, k, w.data(), wt, bias.data(), 0, m, plain.data(), m);
            } catch (const std::bad_alloc &) {
                threw = true;
            }
        });
        EXPECT_TRUE(threw);
    }
}

// k-quant products of 16 or more rows lay the activations out 16 (AVX512-VNNI) or 8 (AVX2) rows side
// by side in thread-local scratch: without it they take the kernel that needs none, same bits.
TEST(ScratchFallback, KQuantProductWithoutScratchKeepsItsBits) {
    const int64_t n = 20, k = 512, m = 6;
    for (wtype wt : {wtype::q4_k, wtype::q6_k}) {
        std::vector<uint8_t> w(static_cast<size_t>(m * wtype_row_bytes(wt, k)));
        for (size_t e = 0; e < w.size(); ++e) w[e] = static_cast<uint8_t>(e * 37 + 11);
        for (int64_t b = 0; b < m * k / 256; ++b) {  // small finite f16 scales (d, dmin / d)
            const size_t at = static_cast<size_t>(b * wtype_block_bytes(wt)) + (wt == wtype::q4_k ? 0 : 208);
            w[at] = 0x00, w[at + 1] = 0x20;
            if (wt == wtype::q4_k) w[at + 2] = 0x00, w[at + 3] = 0x1c;
        }
        const auto x = randn(size_t(n * k), 7);
        aligned_buffer prep;
        void *pp = prep.get(matmul_prep_bytes(wt, n, k));
        matmul_prepare(x.data(), k, wt, 0, n, pp);
        std::vector<float> want(static_cast<size_t>(n * m), NAN), got(static_cast<size_t>(n * m), NAN);
        on_fresh_thread(false, [&] { matmul_prepared(pp, n, k, w.data(), wt, nullptr, 0, m, want.data(), m); });
        const int refused =
            on_fresh_thread(true, [&] { matmul_prepared(pp, n, k, w.data(), wt, nullptr, 0, m, got.data(), m); });
        if (cpu_isa() != isa::scalar) {
            EXPECT_GT(refused, 0);
        }
        for (size_t e = 0; e < want.size(); ++e) {
            EXPECT_TRUE(std::isfinite(want[e]));
            EXPECT_EQ(got[e], want[e]) << e;
        }
    }
}

}  // namespace
