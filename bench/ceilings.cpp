// The machine's two ceilings for the CPU kernels, and the kernels' own rates against them.
//   memory read bandwidth: T threads summing disjoint parts of a 2 GiB buffer with 512-bit loads,
//                          each part read as one stream and as four (the better is the ceiling)
//   bf16 matrix rate:      T threads issuing independent vdpbf16ps chains (32 multiply-adds each),
//                          and, where the CPU has AMX, back-to-back tdpbf16ps on resident tiles
//                          (16 x 16 x 32 multiply-adds each); the int8 rate likewise with tdpbssd
//                          (16 x 16 x 64 each), and with vpdpbusd chains (the register kernels')
//   kernels:               bf16 GEMV (n = 1), GEMM n = 8 (batched decode) and n = 512 (prefill),
//                          q8_0 GEMV (n = 1) against the read bandwidth, on the weights as loaded,
//                          activations split (exact) and rounded (act_precision::round), EuroLLM-1.7B shapes;
//                          on AMX, n = 512 on the tiles rounded and exact (three bf16 terms per activation:
//                          its fraction of the AMX peak counts the three tile products per multiply-add),
//                          and the q8_0 product n = 512 against the int8 peak (a 32-element block per
//                          tile product, each scaled on the vector units: at most half that peak)
// Build and run: bench/ceilings.sh [threads]. Prints one JSON object.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels.h"
#include "kernels_backward.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace eurollm::kernels;

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
static double run_threads(int t, F f) {
    std::vector<std::thread> th;
    const double t0 = now();
    for (int i = 0; i < t; ++i) th.emplace_back(f, i);
    for (auto &x : th) x.join();
    return now() - t0;
}

// Sums n floats read as S sequential streams (the n / S parts side by side). The ceiling is the
// better of one stream and four (the decode GEMV's pattern); on the Zen 4 VM one stream read
// 31-35 GB/s and four parts 256 MiB apart 20-26, the same minute.
template <int S>
__attribute__((target("avx512f"))) static float read_sum(const float *p, size_t n) {
    const size_t part = n / S / 64 * 64;
    __m512 a[S][4];
    for (int q = 0; q < S; ++q)
        for (int c = 0; c < 4; ++c) a[q][c] = _mm512_setzero_ps();
    for (size_t i = 0; i < part; i += 64)
        for (int q = 0; q < S; ++q)
            for (int c = 0; c < 4; ++c) a[q][c] = _mm512_add_ps(a[q][c], _mm512_load_ps(p + q * part + i + 16 * c));
    __m512 t = _mm512_setzero_ps();
    for (int q = 0; q < S; ++q)
        for (int c = 0; c < 4; ++c) t = _mm512_add_ps(t, a[q][c]);
    return _mm512_reduce_add_ps(t);
}

// Small starting sums: on the Zen 4 VM the rate depended on the values, and chains started at
// 0, 1, ..., 11 ran at half the rate of chains started at 0, 0.001, ..., 0.011 (233 against 450
// GFLOP/s, 2 threads), below what our own GEMM reached.
__attribute__((target("avx512f,avx512bf16"))) static float bf16_spin(long iters) {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i));
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);
    for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);  // in registers at -O2 too
    }
    float s = 0;
    for (int i = 0; i < 12; ++i) s += _mm512_reduce_add_ps(acc[i]);
    return s;
}

// The int8 rate without AMX: independent vpdpbusd chains (16 lanes x 4 multiply-adds each). 24
// chains: with 12 the Zen 4 VM measured half the rate (the instruction's latency, not its rate).
__attribute__((target("avx512f,avx512vnni"))) static int vnni_spin(long iters) {
    __m512i acc[24];
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_epi32(i);
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    }
    int s = 0;
    for (int i = 0; i < 24; ++i) s += _mm512_reduce_add_epi32(acc[i]);
    return s;
}

// AMX: the CPU bits (tiles, bf16 and int8 products) and Linux's permission for the tile state
// (asked once per process).
static bool amx_usable() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const unsigned bits = (1u << 22) | (1u << 24) | (1u << 25);  // AMX-BF16, AMX-TILE, AMX-INT8
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (d & bits) != bits) return false;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

struct tile_cfg {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// Back-to-back tile products on resident tiles: bf16 (tdpbf16ps) or int8 (tdpbssd).
template <bool Int8>
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) static void amx_spin(long iters) {
    tile_cfg cfg;
    for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    // GCC does not model ldtilecfg as reading its operand and may drop the stores that zero the
    // unused fields (seen in bench/ceilings: colsb[8..15] left as stack garbage, then #GP). The
    // empty asm makes the whole struct live.
    asm volatile("" : : "m"(cfg));
    _tile_loadconfig(&cfg);
    // Six accumulators: each product waits for the previous one into its tile, and fewer chains
    // than the multiplier's latency in products would measure the latency, not the rate.
    alignas(64) static const uint8_t zeros[1024] = {};
    _tile_loadd(6, zeros, 64);
    _tile_loadd(7, zeros, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    // The product into each accumulator (a macro: the tile intrinsics take literal tile numbers).
#define EUROLLM_SIX(product)                                                 \
    do {                                                                     \
        product(0, 6, 7);                                                    \
        product(1, 6, 7);                                                    \
        product(2, 6, 7);                                                    \
        product(3, 6, 7);                                                    \
        product(4, 6, 7);                                                    \
        product(5, 6, 7);                                                    \
    } while (0)
    for (long it = 0; it < iters; ++it) {
        if constexpr (Int8) EUROLLM_SIX(_tile_dpbssd);
        else EUROLLM_SIX(_tile_dpbf16ps);
    }
#undef EUROLLM_SIX
    _tile_release();
}

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char **argv) {
    const int T = argc > 1 ? std::atoi(argv[1]) : 2;
    const int reps = 5;
    // ---- memory read bandwidth ----
    const size_t bytes = size_t(2) << 30, n = bytes / 4;
    float *buf = static_cast<float *>(std::aligned_alloc(64, bytes));
    std::memset(buf, 1, bytes);
    std::vector<double> bw1, bw4;
    std::atomic<float> sink{0};
    for (int r = 0; r < reps; ++r)
        for (int streams : {1, 4}) {
            const double s = run_threads(T, [&](int i) {
                const size_t part = n / T / 256 * 256;
                sink = sink + (streams == 1 ? read_sum<1>(buf + part * i, part) : read_sum<4>(buf + part * i, part));
            });
            (streams == 1 ? bw1 : bw4).push_back(double(n / T / 256 * 256 * T) * 4 / s / 1e9);
        }
    const double bw = std::max(median(bw1), median(bw4));
    std::free(buf);
    // ---- bf16 rate ----
    std::vector<double> fl;
    const long iters = 20000000;
    for (int r = 0; r < reps; ++r) {
        const double s = run_threads(T, [&](int) { sink = sink + bf16_spin(iters); });
        fl.push_back(2.0 * 32 * 12 * iters * T / s / 1e9);
    }
    std::vector<double> vnni;
    for (int r = 0; __builtin_cpu_supports("avx512vnni") && r < reps; ++r) {
        const double s = run_threads(T, [&](int) { sink = sink + static_cast<float>(vnni_spin(iters / 2)); });
        vnni.push_back(2.0 * 64 * 24 * (iters / 2) * T / s / 1e9);
    }
    std::vector<double> amx, amx_int8;
    const bool have_amx = amx_usable();
    for (int r = 0; have_amx && r < reps; ++r) {
        const long it = 2000000;
        const double s = run_threads(T, [&](int) { amx_spin<false>(it); });
        amx.push_back(2.0 * 16 * 16 * 32 * 6 * it * T / s / 1e9);
        const double s8 = run_threads(T, [&](int) { amx_spin<true>(it); });
        amx_int8.push_back(2.0 * 16 * 16 * 64 * 6 * it * T / s8 / 1e9);
    }
    // ---- our kernels on real shapes: [n, 2048] x [5632, 2048]^T ----
    // The GEMV cycles through enough weight copies (8 x 23 MB) that they cannot stay in the L3.
    const int64_t k = 2048, m = 5632, copies = 8;
    std::vector<uint16_t> w(size_t(copies * m * k));
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0x3c00 + (i % 7);  // bf16 ~ 0.008
    std::vector<float> x(size_t(512 * k)), y(size_t(512 * m));
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.001f * float(i % 13);
    auto gemm = [&](int64_t rows, act_precision p) {
        std::vector<double> v;
        std::vector<uint8_t> prep(matmul_prep_bytes(wtype::bf16, rows, k, p) + 64);
        void *pp = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(prep.data()) + 63) & ~uintptr_t(63));
        matmul_prepare(x.data(), k, wtype::bf16, 0, rows, pp, p);
        for (int r = 0; r < reps * copies; ++r) {
            const uint16_t *wc = w.data() + size_t(r % copies) * size_t(m * k);
            v.push_back(run_threads(T, [&](int i) {
                const int64_t part = m / T;
                matmul_prepared(pp, rows, k, wc, wtype::bf16, nullptr, part * i, i == T - 1 ? m : part * (i + 1),
                                y.data(), m, p);
            }));
        }
        return median(v);
    };
    const double t1 = gemm(1, act_precision::split);
    const double gemv_gbs = double(m) * k * 2 / t1 / 1e9;
    auto gflops = [&](int64_t rows, act_precision p) { return 2.0 * rows * m * k / gemm(rows, p) / 1e9; };
    const double g512s = gflops(512, act_precision::split), g512r = gflops(512, act_precision::round);
    const double g8s = gflops(8, act_precision::split), g8r = gflops(8, act_precision::round);
    const double peak = median(fl);
    // Products of 512 rows through the tile kernels: prepare once, then the columns split over the
    // threads in whole 256-column panels.
    auto tile_gflops = [&](size_t prep_bytes, auto prepare, auto product) {
        std::vector<uint8_t> prep(prep_bytes + 64);
        void *pp = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(prep.data()) + 63) & ~uintptr_t(63));
        prepare(pp);
        std::vector<double> v;
        for (int r = 0; r < reps; ++r)
            v.push_back(run_threads(T, [&](int i) {
                const int64_t part = m / T / 256 * 256;
                product(pp, part * i, i == T - 1 ? m : part * (i + 1));
            }));
        return 2.0 * 512 * m * k / median(v) / 1e9;
    };
    // Rounded activations (AMX where present, else vdpbf16ps).
    const double tiles = tile_gflops(
        bf16_prep_bytes(512, k), [&](void *pp) { bf16_prepare(x.data(), k, 512, k, 0, 512, pp); },
        [&](void *pp, int64_t j0, int64_t j1) { bf16_matmul(pp, 512, k, w.data(), nullptr, j0, j1, y.data(), m); });
    // The exact product (three bf16 terms per activation; AMX only).
    const double exact_tiles =
        !exact_tiles_supported()
            ? 0.0
            : tile_gflops(
                  exact_tiles_prep_bytes(512, k), [&](void *pp) { exact_tiles_prepare(x.data(), k, 512, k, 0, 512, pp); },
                  [&](void *pp, int64_t j0, int64_t j1) {
                      exact_tiles_matmul(pp, 512, k, w.data(), nullptr, j0, j1, y.data(), m);
                  });
    // The q8_0 products (8-bit activations per 32-element block, as ggml) on the weights as the model
    // holds them: packed where pack_at_load says so (AMX), else the canonical rows read in place.
    // GEMV over `copies` matrices (8 x 12 MB) as above; n = 512 on one.
    const int64_t q8_row = wtype_row_bytes(wtype::q8_0, k);
    const bool q8_packed = pack_at_load(wtype::q8_0);
    std::vector<uint8_t> wq(size_t(copies * m * q8_row));
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t j = 0; j < copies * m; ++j) {
        for (int64_t c = 0; c < k; ++c) row[size_t(c)] = 0.01f * float((j * 7 + c * 3) % 29) - 0.14f;
        quantize_row(row.data(), wtype::q8_0, k, wq.data() + j * q8_row);
    }
    std::vector<uint8_t> wp(q8_packed ? size_t(copies) * packed_weight_bytes(wtype::q8_0, m, k) : 0);
    for (int64_t c = 0; q8_packed && c < copies; ++c)
        pack_weight_groups(wq.data() + c * m * q8_row, wtype::q8_0, m, k, 0, (m + 15) / 16,
                           wp.data() + c * packed_weight_bytes(wtype::q8_0, m, k));
    auto q8_product = [&](const void *pp, int64_t rows, int64_t c, int64_t j0, int64_t j1) {
        if (q8_packed)
            matmul_packed(pp, rows, k, wp.data() + c * packed_weight_bytes(wtype::q8_0, m, k), wtype::q8_0, nullptr,
                          j0, j1, y.data(), m);
        else
            matmul_prepared(pp, rows, k, wq.data() + c * m * q8_row, wtype::q8_0, nullptr, j0, j1, y.data(), m);
    };
    double q8_gemv_gbs = 0.0;
    {
        std::vector<uint8_t> prep(matmul_prep_bytes(wtype::q8_0, 1, k) + 64);
        void *pp = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(prep.data()) + 63) & ~uintptr_t(63));
        matmul_prepare(x.data(), k, wtype::q8_0, 0, 1, pp);
        // Each thread takes its columns of all the copies in one start (a thread start per 12 MB
        // matrix would be a tenth of the time).
        std::vector<double> v;
        for (int r = 0; r < reps; ++r)
            v.push_back(run_threads(T, [&](int i) {
                const int64_t part = m / T / 16 * 16;
                for (int64_t c = 0; c < copies; ++c) q8_product(pp, 1, c, part * i, i == T - 1 ? m : part * (i + 1));
            }));
        q8_gemv_gbs = double(copies * m) * q8_row / median(v) / 1e9;
    }
    const double q8_gops = tile_gflops(
        matmul_prep_bytes(wtype::q8_0, 512, k), [&](void *pp) { matmul_prepare(x.data(), k, wtype::q8_0, 0, 512, pp); },
        [&](void *pp, int64_t j0, int64_t j1) { q8_product(pp, 512, 0, j0, j1); });
    const double amx_peak = amx.empty() ? 0.0 : median(amx), int8_peak = amx_int8.empty() ? 0.0 : median(amx_int8);
    const double vnni_peak = vnni.empty() ? 0.0 : median(vnni);
    std::printf(
        "{\"threads\": %d, \"isa\": \"%s\", \"mem_read_gb_s\": %.2f, \"mem_read_1_stream_gb_s\": %.2f, \"mem_read_4_streams_gb_s\": %.2f, \"bf16_peak_gflops\": %.1f, "
        "\"gemv_bf16_gb_s\": %.2f, \"gemv_fraction_of_bw\": %.3f, "
        "\"gemm512_split_gflops\": %.1f, \"gemm512_split_fraction_of_peak\": %.3f, "
        "\"gemm512_round_gflops\": %.1f, \"gemm512_round_fraction_of_peak\": %.3f, "
        "\"gemm8_split_gflops\": %.1f, \"gemm8_round_gflops\": %.1f, \"amx_bf16_peak_gflops\": %.1f, "
        "\"gemm512_tiles_gflops\": %.1f, \"gemm512_tiles_fraction_of_amx_peak\": %.3f, "
        "\"gemm512_exact_tiles_gflops\": %.1f, \"gemm512_exact_tiles_fraction_of_amx_peak\": %.3f, "
        "\"amx_int8_peak_gops\": %.1f, \"q8_0_512_gops\": %.1f, \"q8_0_512_fraction_of_int8_peak\": %.3f, "
        "\"vnni_int8_peak_gops\": %.1f, \"q8_0_512_fraction_of_vnni_peak\": %.3f, \"q8_0_packed_at_load\": %s, "
        "\"gemv_q8_0_gb_s\": %.2f, \"gemv_q8_0_fraction_of_bw\": %.3f}\n",
        T, cpu_isa_name(), bw, median(bw1), median(bw4), peak, gemv_gbs, gemv_gbs / bw, g512s, g512s / peak, g512r,
        g512r / peak, g8s, g8r, amx_peak, tiles, amx_peak > 0 ? tiles / amx_peak : 0.0, exact_tiles,
        amx_peak > 0 ? 3 * exact_tiles / amx_peak : 0.0, int8_peak, q8_gops, int8_peak > 0 ? q8_gops / int8_peak : 0.0,
        vnni_peak, vnni_peak > 0 ? q8_gops / vnni_peak : 0.0, q8_packed ? "true" : "false", q8_gemv_gbs,
        q8_gemv_gbs / bw);
    return sink == 12345.0f;
}
