// The GPU backend against the CPU reference: every forward op (backend.h), every training op
// (kernels_backward.h), the host-pointer and the device-resident paths, greedy generation of
// stories260K, one training step. Device tests skip (GTEST_SKIP, reported as skipped) when this
// build has no GPU backend or the machine has no device; gpu_runtime.* runs everywhere and checks
// that a GPU-enabled library answers "no device" cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "backend/backend.h"
#include "backend/backend_gpu.h"
#include "common/fixtures.h"
#include "common/forward.h"
#include "common/math.h"
#include "core/error.h"
#include "kernels.h"
#include "kernels_backward.h"
#include "model/arch/llama.h"
#include "model/model.h"
#include "runtime/kv_cache.h"

namespace eurollm {
namespace {

using kernels::wtype;

// ---- helpers ----------------------------------------------------------------------------------------

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::vector<float> v(n);
    uint32_t s = seed * 2654435761u + 12345u;
    for (auto &x : v) {
        s = s * 1664525u + 1013904223u;
        x = scale * (static_cast<float>(s >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f);
    }
    return v;
}

// Weights stored as `wt` (f32 / f16 / bf16 / q8_0) from f32 values; keeps the bytes alive.
struct weight {
    std::vector<unsigned char> bytes;
    tensor_ref ref;
};

weight make_weight(const std::vector<float> &values, int64_t rows, int64_t cols, wtype wt) {
    weight w;
    const int64_t row_bytes = kernels::wtype_row_bytes(wt, cols);
    w.bytes.resize(static_cast<size_t>(row_bytes * rows));
    for (int64_t r = 0; r < rows; ++r)
        kernels::quantize_row(values.data() + r * cols, wt, cols, w.bytes.data() + r * row_bytes);
    w.ref = tensor_ref{w.bytes.data(), wt, rows, cols};
    return w;
}

// max |a - b| / max(max |b|, floor): one number per comparison, relative to the output's scale.
double rel_err(const float *a, const float *b, size_t n, double floor = 1e-6) {
    double diff = 0.0, mag = floor;
    for (size_t i = 0; i < n; ++i) {
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        mag = std::max(mag, std::fabs(static_cast<double>(b[i])));
    }
    return diff / mag;
}
double rel_err(const std::vector<float> &a, const std::vector<float> &b) {
    EXPECT_EQ(a.size(), b.size());
    return rel_err(a.data(), b.data(), std::min(a.size(), b.size()));
}

// The one GPU kind this build has (a build holds CUDA or HIP, not both).
bool built_kind(gpu_kind *kind) {
    if (gpu_compiled(gpu_kind::cuda)) {
        *kind = gpu_kind::cuda;
        return true;
    }
    if (gpu_compiled(gpu_kind::hip)) {
        *kind = gpu_kind::hip;
        return true;
    }
    return false;
}

#define EUROLLM_REQUIRE_GPU(kind_var)                                                                   \
    gpu_kind kind_var = gpu_kind::cuda;                                                                 \
    do {                                                                                                \
        if (!built_kind(&kind_var)) GTEST_SKIP() << "this build has no GPU backend (-DEUROLLM_CUDA/HIP)"; \
        if (gpu_device_count(kind_var) == 0)                                                            \
            GTEST_SKIP() << "no " << gpu_kind_name(kind_var) << " device on this machine";              \
    } while (0)

// ---- runs everywhere ---------------------------------------------------------------------------------

TEST(gpu_runtime, QueriesAnswerWithoutDevice) {
    for (gpu_kind kind : {gpu_kind::cuda, gpu_kind::hip}) {
        const int n = gpu_device_count(kind);
        EXPECT_GE(n, 0);
        if (!gpu_compiled(kind)) {
            EXPECT_EQ(n, 0);
            try {
                gpu_backend_options o;
                o.kind = kind;
                make_gpu_backend(o);
                ADD_FAILURE() << "make_gpu_backend succeeded for a kind not compiled in";
            } catch (const error &e) {
                EXPECT_EQ(e.status(), EUROLLM_ERR_UNSUPPORTED) << e.what();
            }
        } else if (n == 0) {
            // Built with this GPU kind, on a machine without a device: a clean "no such device".
            try {
                gpu_backend_options o;
                o.kind = kind;
                make_gpu_backend(o);
                ADD_FAILURE() << "make_gpu_backend succeeded without a device";
            } catch (const error &e) {
                EXPECT_EQ(e.status(), EUROLLM_ERR_INVALID_ARGUMENT) << e.what();
            }
            EXPECT_THROW(gpu_device_properties(kind, 0), error);
        }
    }
}

// ---- forward ops (backend.h) against the CPU backend ------------------------------------------------

class gpu_ops : public ::testing::Test {
protected:
    void SetUp() override {
        EUROLLM_REQUIRE_GPU(kind);
        gpu_backend_options o;
        o.kind = kind;
        gpu_ = make_gpu_backend(o);
        cpu_ = make_cpu_backend(2);
    }
    std::unique_ptr<gpu_backend> gpu_;
    std::unique_ptr<backend> cpu_;
};

TEST_F(gpu_ops, DeviceProperties) {
    const gpu_device_info &info = gpu_->device_info();
    EXPECT_FALSE(info.name.empty());
    EXPECT_GT(info.total_memory, size_t{0});
    EXPECT_TRUE(info.warp_size == 32 || info.warp_size == 64) << info.warp_size;
    std::printf("device: %s (%s), %.1f GiB, warp %d, %d SMs/CUs\n", info.name.c_str(), info.arch.c_str(),
                static_cast<double>(info.total_memory) / (1 << 30), info.warp_size, info.multiprocessors);
}

TEST_F(gpu_ops, Matmul) {
    const int64_t k = 96, m = 80;
    const std::vector<float> wv = random_floats(static_cast<size_t>(m * k), 1, 0.5f);
    const std::vector<float> bias = random_floats(static_cast<size_t>(m), 2);
    for (wtype wt : {wtype::f32, wtype::f16, wtype::bf16, wtype::q8_0}) {
        const weight w = make_weight(wv, m, k, wt);
        for (int64_t n : {1, 3, 8, 37, 130}) {
            for (bool blas : {true, false}) {
                for (bool with_bias : {false, true}) {
                    SCOPED_TRACE(testing::Message() << "wtype " << static_cast<int>(wt) << " n " << n << " blas " << blas
                                                    << " bias " << with_bias);
                    const std::vector<float> x = random_floats(static_cast<size_t>(n * k), 3 + static_cast<uint32_t>(n));
                    std::vector<float> y_cpu(static_cast<size_t>(n * m)), y_gpu(y_cpu.size(), -7.0f);
                    const float *b = with_bias ? bias.data() : nullptr;
                    cpu_->matmul(x.data(), n, w.ref, b, y_cpu.data());
                    gpu_->set_use_blas(blas);
                    gpu_->matmul(x.data(), n, w.ref, b, y_gpu.data());
                    // f16/bf16 through BLAS round the activations to the weight type (~2^-8 relative);
                    // q8_0 on the CPU quantizes the activations to 8 bits.
                    const bool rounded = (blas && n > 8 && (wt == wtype::f16 || wt == wtype::bf16)) || wt == wtype::q8_0;
                    EXPECT_LT(rel_err(y_gpu, y_cpu), rounded ? 2e-2 : 1e-5);
                }
            }
        }
        gpu_->weights().clear();  // the next weight may reuse the address
    }
}

TEST_F(gpu_ops, WeightsUploadOnce) {
    const weight w = make_weight(random_floats(64 * 32, 4), 64, 32, wtype::bf16);
    const std::vector<float> x = random_floats(32, 5);
    std::vector<float> y(64);
    gpu_->matmul(x.data(), 1, w.ref, nullptr, y.data());
    gpu_->matmul(x.data(), 1, w.ref, nullptr, y.data());
    EXPECT_EQ(gpu_->weights().count(), size_t{1});
    EXPECT_EQ(gpu_->weights().device_bytes(), size_t{64 * 32 * 2});
}

TEST_F(gpu_ops, Embedding) {
    const int64_t rows = 50, dim = 72;
    const std::vector<float> tv = random_floats(static_cast<size_t>(rows * dim), 6);
    const std::vector<int32_t> ids = {3, 0, 49, 3, 17, 8};
    for (wtype wt : {wtype::f32, wtype::f16, wtype::bf16}) {
        const weight t = make_weight(tv, rows, dim, wt);
        std::vector<float> a(ids.size() * dim), b(a.size());
        cpu_->embedding(ids.data(), static_cast<int64_t>(ids.size()), t.ref, a.data());
        gpu_->embedding(ids.data(), static_cast<int64_t>(ids.size()), t.ref, b.data());
        EXPECT_EQ(a, b) << "wtype " << static_cast<int>(wt);  // a lookup and a conversion: exact
        gpu_->weights().clear();
    }
}

TEST_F(gpu_ops, RmsNorm) {
    const int64_t n = 7, dim = 2048 + 3;
    const std::vector<float> x = random_floats(static_cast<size_t>(n * dim), 7, 3.0f);
    for (wtype wt : {wtype::f32, wtype::bf16}) {
        const weight w = make_weight(random_floats(static_cast<size_t>(dim), 8), 1, dim, wt);
        std::vector<float> a(x.size()), b(x.size());
        cpu_->rms_norm(x.data(), n, w.ref, 1e-5f, a.data());
        gpu_->rms_norm(x.data(), n, w.ref, 1e-5f, b.data());
        EXPECT_LT(rel_err(b, a), 1e-6);
        std::vector<float> inplace = x;  // out aliasing x
        gpu_->rms_norm(inplace.data(), n, w.ref, 1e-5f, inplace.data());
        EXPECT_LT(rel_err(inplace, a), 1e-6);
        gpu_->weights().clear();
    }
}

TEST_F(gpu_ops, Rope) {
    const int64_t n = 5, n_heads = 6, head_dim = 64;
    hparams hp;
    hp.head_dim = head_dim;
    const std::vector<float> inv = hp.rope_inv_freq();
    const std::vector<int32_t> pos = {0, 1, 2, 700, 4095};
    std::vector<float> a = random_floats(static_cast<size_t>(n * n_heads * head_dim), 9), b = a;
    cpu_->rope(a.data(), n, n_heads, head_dim, pos.data(), inv.data());
    gpu_->rope(b.data(), n, n_heads, head_dim, pos.data(), inv.data());
    EXPECT_LT(rel_err(b, a), 1e-5);  // device cosf/sinf are within 2 ulp
}

TEST_F(gpu_ops, SwigluAndAdd) {
    const int64_t n = 3, dim = 1000;
    std::vector<float> ga = random_floats(static_cast<size_t>(n * dim), 10, 6.0f), gb = ga;
    const std::vector<float> up = random_floats(ga.size(), 11);
    cpu_->swiglu(ga.data(), up.data(), n, dim);
    gpu_->swiglu(gb.data(), up.data(), n, dim);
    EXPECT_LT(rel_err(gb, ga), 1e-6);
    std::vector<float> ya = random_floats(ga.size(), 12), yb = ya;
    cpu_->add(ya.data(), up.data(), n * dim);
    gpu_->add(yb.data(), up.data(), n * dim);
    EXPECT_EQ(ya, yb);
}

TEST_F(gpu_ops, Attention) {
    // Rows attend to explicit cell lists (as the KV cache hands them out): contiguous prefixes,
    // a sliding window, and scattered cells of a sequence sharing the cache with others.
    const int64_t n_head = 8, n_head_kv = 2, head_dim = 64, stride = 300;
    const std::vector<float> k = random_floats(static_cast<size_t>(n_head_kv * stride * head_dim), 13);
    const std::vector<float> v = random_floats(k.size(), 14);
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    kernels::quantize_row(k.data(), wtype::f16, static_cast<int64_t>(k.size()), k16.data());
    kernels::quantize_row(v.data(), wtype::f16, static_cast<int64_t>(v.size()), v16.data());
    auto prefix = [](int32_t first, int32_t last) {
        std::vector<int32_t> c;
        for (int32_t t = first; t <= last; ++t) c.push_back(t);
        return c;
    };
    std::vector<int32_t> scattered;
    for (int32_t t = 3; t < 290; t += 7) scattered.push_back(t);
    const std::vector<std::vector<std::vector<int32_t>>> cases = {
        {prefix(0, 0)},
        {prefix(0, 255)},
        {prefix(0, 120), prefix(0, 121), prefix(0, 122), prefix(106, 123), prefix(107, 124)},
        {scattered, prefix(5, 5), std::vector<int32_t>(scattered.begin(), scattered.begin() + 9)},
    };
    for (const auto &rows : cases) {
        std::vector<int32_t> cells;
        std::vector<int64_t> row_begin = {0};
        for (const auto &r : rows) {
            cells.insert(cells.end(), r.begin(), r.end());
            row_begin.push_back(static_cast<int64_t>(cells.size()));
        }
        const int64_t n = static_cast<int64_t>(rows.size());
        const std::vector<float> q = random_floats(static_cast<size_t>(n * n_head * head_dim), 15);
        std::vector<float> a(q.size()), b(q.size());
        backend::attention_args args{};
        args.q = q.data();
        args.k = k.data();
        args.v = v.data();
        args.cells = cells.data();
        args.row_begin = row_begin.data();
        args.n = n;
        args.n_head = n_head;
        args.n_head_kv = n_head_kv;
        args.head_dim = head_dim;
        args.kv_stride = stride;
        args.scale = 0.125f;
        args.out = a.data();
        cpu_->attention(args);
        args.out = b.data();
        gpu_->attention(args);
        EXPECT_LT(rel_err(b, a), 1e-5) << "rows " << n << " cells " << cells.size();
        // The same cache as f16 (the context option kv_type): both read the same rounded values.
        args.k = k16.data();
        args.v = v16.data();
        args.kv_type = wtype::f16;
        args.out = a.data();
        cpu_->attention(args);
        args.out = b.data();
        gpu_->attention(args);
        EXPECT_LT(rel_err(b, a), 1e-5) << "f16 cache, rows " << n << " cells " << cells.size();
        args.kv_type = wtype::f32;
    }
}

TEST_F(gpu_ops, DevicePointersAndStoreKv) {
    // The device-resident path: operands in device memory stay there; store_kv writes the cache.
    const int64_t n = 4, dim = 256;
    const std::vector<float> x = random_floats(static_cast<size_t>(n * dim), 16);
    const weight w = make_weight(random_floats(static_cast<size_t>(dim), 17), 1, dim, wtype::f32);
    float *dx = static_cast<float *>(gpu_->alloc(x.size() * sizeof(float), -1));
    float *dy = static_cast<float *>(gpu_->alloc(x.size() * sizeof(float), -1));
    EXPECT_TRUE(gpu_->is_device_pointer(dx));
    EXPECT_TRUE(gpu_->is_device_pointer(dx + 5));
    EXPECT_FALSE(gpu_->is_device_pointer(x.data()));
    gpu_->upload(dx, x.data(), x.size() * sizeof(float));
    gpu_->rms_norm(dx, n, w.ref, 1e-6f, dy);
    std::vector<float> got(x.size()), want(x.size());
    gpu_->download(got.data(), dy, got.size() * sizeof(float));
    cpu_->rms_norm(x.data(), n, w.ref, 1e-6f, want.data());
    EXPECT_LT(rel_err(got, want), 1e-6);

    const int64_t n_head_kv = 2, head_dim = 8, stride = 16;
    const std::vector<float> rows = random_floats(static_cast<size_t>(n * n_head_kv * head_dim), 18);
    const std::vector<int32_t> pos = {3, 4, 5, 6};  // the cells
    std::vector<float> cache_host(static_cast<size_t>(n_head_kv * stride * head_dim), 0.0f), cache_back(cache_host.size());
    float *cache_dev = static_cast<float *>(gpu_->alloc(cache_host.size() * sizeof(float), -1));
    gpu_->upload(cache_dev, cache_host.data(), cache_host.size() * sizeof(float));
    gpu_->store_kv(rows.data(), pos.data(), n, n_head_kv, head_dim, stride, wtype::f32, cache_dev);
    gpu_->store_kv(rows.data(), pos.data(), n, n_head_kv, head_dim, stride, wtype::f32, cache_host.data());  // host cache
    gpu_->download(cache_back.data(), cache_dev, cache_back.size() * sizeof(float));
    EXPECT_EQ(cache_back, cache_host);
    // An f16 cache: the device rounds exactly as the CPU backend does (kmath::f32_to_f16), bit for bit.
    std::vector<uint16_t> c16_cpu(cache_host.size(), 0), c16_back(cache_host.size());
    const size_t c16_bytes = c16_cpu.size() * sizeof(uint16_t);
    void *c16_dev = gpu_->alloc(c16_bytes, -1);
    gpu_->zero(c16_dev, c16_bytes);
    gpu_->store_kv(rows.data(), pos.data(), n, n_head_kv, head_dim, stride, wtype::f16, c16_dev);
    cpu_->store_kv(rows.data(), pos.data(), n, n_head_kv, head_dim, stride, wtype::f16, c16_cpu.data());
    gpu_->download(c16_back.data(), c16_dev, c16_bytes);
    EXPECT_EQ(c16_back, c16_cpu);
    gpu_->free(c16_dev);
    EXPECT_EQ(cache_host[static_cast<size_t>((1 * stride + 5) * head_dim + 2)], rows[static_cast<size_t>((2 * n_head_kv + 1) * head_dim + 2)]);
    gpu_->free(dx);
    gpu_->free(dy);
    gpu_->free(cache_dev);
    EXPECT_GT(gpu_->pool_bytes(), size_t{0});  // kept for reuse
}

TEST_F(gpu_ops, DeviceErrorsBecomeStatuses) {
    try {
        gpu_->alloc(size_t{1} << 56, -1);  // 64 PiB
        ADD_FAILURE() << "a 64 PiB allocation succeeded";
    } catch (const error &e) {
        EXPECT_EQ(e.status(), EUROLLM_ERR_DEVICE);
        EXPECT_NE(std::string(e.what()).find(".cu:"), std::string::npos) << e.what();  // file:line of the call
    }
    int local = 0;
    try {
        gpu_->free(&local);
        ADD_FAILURE() << "freeing a foreign pointer succeeded";
    } catch (const error &e) {
        EXPECT_EQ(e.status(), EUROLLM_ERR_INVALID_ARGUMENT);
    }
    // The backend still works after both.
    std::vector<float> y = {1, 2}, x = {3, 4};
    gpu_->add(y.data(), x.data(), 2);
    EXPECT_EQ(y, (std::vector<float>{4, 6}));
}

// ---- training ops (kernels_backward.h) against the CPU kernels --------------------------------------

using gpu_backward = gpu_ops;

TEST_F(gpu_backward, Gemm) {
    // dX = dY W (W bf16 [m, k]), dW += dY^T X, and a plain f32 product, with and without BLAS.
    const int64_t n = 19, m = 40, k = 24;
    const std::vector<float> dy = random_floats(static_cast<size_t>(n * m), 20);
    const std::vector<float> xs = random_floats(static_cast<size_t>(n * k), 21);
    const weight w16 = make_weight(random_floats(static_cast<size_t>(m * k), 22), m, k, wtype::bf16);
    for (bool blas : {true, false}) {
        gpu_->set_use_blas(blas);
        std::vector<float> a(static_cast<size_t>(n * k)), b(a.size());
        kernels::gemm_rows(0, n, m, dy.data(), m, 1, w16.bytes.data(), wtype::bf16, k, 0, k, a.data(), k, false);
        gpu_->gemm(n, m, dy.data(), m, 1, w16.bytes.data(), wtype::bf16, k, k, b.data(), k, false);
        EXPECT_LT(rel_err(b, a), blas ? 2e-2 : 1e-5) << "dX, blas " << blas;

        std::vector<float> dw_a = random_floats(static_cast<size_t>(m * k), 23), dw_b = dw_a;
        kernels::gemm_rows(0, m, n, dy.data(), 1, m, xs.data(), wtype::f32, k, 0, k, dw_a.data(), k, true);
        gpu_->gemm(m, n, dy.data(), 1, m, xs.data(), wtype::f32, k, k, dw_b.data(), k, true);
        EXPECT_LT(rel_err(dw_b, dw_a), 1e-5) << "dW, blas " << blas;
    }
}

TEST_F(gpu_backward, RmsNorm) {
    const int64_t n = 6, dim = 520;
    const std::vector<float> x = random_floats(static_cast<size_t>(n * dim), 24, 2.0f);
    const std::vector<float> w = random_floats(static_cast<size_t>(dim), 25);
    const std::vector<float> dy = random_floats(x.size(), 26);
    std::vector<float> out_a(x.size()), out_b(x.size()), r_a(static_cast<size_t>(n)), r_b(r_a.size());
    kernels::rms_norm_forward_rows(x.data(), w.data(), wtype::f32, dim, 1e-5f, 0, n, out_a.data(), r_a.data());
    gpu_->rms_norm_forward(x.data(), w.data(), wtype::f32, n, dim, 1e-5f, out_b.data(), r_b.data());
    EXPECT_LT(rel_err(out_b, out_a), 1e-6);
    EXPECT_LT(rel_err(r_b, r_a), 1e-6);
    for (bool acc : {false, true}) {
        std::vector<float> dx_a = random_floats(x.size(), 27), dx_b = dx_a;
        kernels::rms_norm_backward_rows(dy.data(), x.data(), r_a.data(), w.data(), wtype::f32, dim, 0, n, dx_a.data(), acc);
        gpu_->rms_norm_backward(dy.data(), x.data(), r_a.data(), w.data(), wtype::f32, n, dim, dx_b.data(), acc);
        EXPECT_LT(rel_err(dx_b, dx_a), 1e-5) << "accumulate " << acc;
    }
    std::vector<float> dw_a = random_floats(static_cast<size_t>(dim), 28), dw_b = dw_a;
    kernels::rms_norm_backward_weight(dy.data(), x.data(), r_a.data(), n, dim, 0, dim, dw_a.data());
    gpu_->rms_norm_backward_weight(dy.data(), x.data(), r_a.data(), n, dim, dw_b.data());
    EXPECT_LT(rel_err(dw_b, dw_a), 1e-6);
}

TEST_F(gpu_backward, RopeAndSwiglu) {
    const int64_t n = 4, n_heads = 3, head_dim = 16;
    hparams hp;
    hp.head_dim = head_dim;
    const std::vector<float> inv = hp.rope_inv_freq();
    const std::vector<int32_t> pos = {0, 5, 9, 100};
    std::vector<float> a = random_floats(static_cast<size_t>(n * n_heads * head_dim), 29), b = a;
    kernels::rope_backward_rows(a.data(), n_heads, head_dim, pos.data(), inv.data(), head_dim, 0, n);
    gpu_->rope_backward(b.data(), n, n_heads, head_dim, pos.data(), inv.data());
    EXPECT_LT(rel_err(b, a), 1e-5);

    const int64_t dim = 300;
    const std::vector<float> gate = random_floats(static_cast<size_t>(n * dim), 30, 5.0f);
    const std::vector<float> up = random_floats(gate.size(), 31);
    const std::vector<float> dact = random_floats(gate.size(), 32);
    std::vector<float> act_a(gate.size()), act_b(gate.size());
    kernels::swiglu_forward_rows(gate.data(), up.data(), act_a.data(), dim, 0, n);
    gpu_->swiglu_forward(gate.data(), up.data(), act_b.data(), n, dim);
    EXPECT_LT(rel_err(act_b, act_a), 1e-6);
    std::vector<float> dg_a(gate.size()), du_a(gate.size()), dg_b(gate.size()), du_b(gate.size());
    kernels::swiglu_backward_rows(dact.data(), gate.data(), up.data(), dg_a.data(), du_a.data(), dim, 0, n);
    gpu_->swiglu_backward(dact.data(), gate.data(), up.data(), dg_b.data(), du_b.data(), n, dim);
    EXPECT_LT(rel_err(dg_b, dg_a), 1e-6);
    EXPECT_LT(rel_err(du_b, du_a), 1e-6);
}

TEST_F(gpu_backward, AttentionHead) {
    const int64_t n = 21, head_dim = 16, q_stride = 3 * head_dim, kv_stride = 2 * head_dim;
    const std::vector<float> q = random_floats(static_cast<size_t>(n * q_stride), 33);
    const std::vector<float> k = random_floats(static_cast<size_t>(n * kv_stride), 34);
    const std::vector<float> v = random_floats(k.size(), 35);
    const std::vector<float> dout = random_floats(q.size(), 36);
    for (int64_t window : {0, 5}) {
        for (bool blas : {true, false}) {
            gpu_->set_use_blas(blas);
            SCOPED_TRACE(testing::Message() << "window " << window << " blas " << blas);
            std::vector<float> P_a(static_cast<size_t>(n * n)), P_b(P_a.size());
            std::vector<float> o_a(q.size(), 0.0f), o_b(q.size(), 0.0f);
            std::vector<float> scratch(static_cast<size_t>(n * n + n * head_dim));
            kernels::attention_forward_head(q.data(), k.data(), v.data(), n, head_dim, q_stride, kv_stride, 0.25f,
                                            window, P_a.data(), o_a.data(), scratch.data());
            gpu_->attention_forward_head(q.data(), k.data(), v.data(), n, head_dim, q_stride, kv_stride, 0.25f, window,
                                         P_b.data(), o_b.data());
            EXPECT_LT(rel_err(P_b, P_a), 1e-5);
            EXPECT_LT(rel_err(o_b, o_a), 1e-5);

            std::vector<float> dq_a(q.size(), 0.0f), dq_b(q.size(), 0.0f);
            std::vector<float> dk_a(static_cast<size_t>(n * head_dim)), dk_b(dk_a.size()), dv_a(dk_a.size()),
                dv_b(dk_a.size());
            kernels::attention_backward_head(dout.data(), q.data(), k.data(), v.data(), P_a.data(), n, head_dim,
                                             q_stride, kv_stride, 0.25f, dq_a.data(), dk_a.data(), dv_a.data(),
                                             scratch.data());
            gpu_->attention_backward_head(dout.data(), q.data(), k.data(), v.data(), P_a.data(), n, head_dim, q_stride,
                                          kv_stride, 0.25f, dq_b.data(), dk_b.data(), dv_b.data());
            EXPECT_LT(rel_err(dq_b, dq_a), 1e-5);
            EXPECT_LT(rel_err(dk_b, dk_a), 1e-5);
            EXPECT_LT(rel_err(dv_b, dv_a), 1e-5);
        }
    }
}

TEST_F(gpu_backward, CrossEntropy) {
    const int64_t n = 5, n_vocab = 3001;
    const std::vector<float> z = random_floats(static_cast<size_t>(n * n_vocab), 37, 8.0f);
    const std::vector<int32_t> targets = {7, -100, 3000, 0, 1500};
    std::vector<float> l_a(static_cast<size_t>(n)), l_b(l_a.size()), d_a(z.size()), d_b(z.size());
    kernels::cross_entropy_rows(z.data(), targets.data(), n_vocab, 0.2f, 0, n, l_a.data(), d_a.data());
    gpu_->cross_entropy(z.data(), targets.data(), n, n_vocab, 0.2f, l_b.data(), d_b.data());
    EXPECT_LT(rel_err(l_b, l_a), 1e-6);
    EXPECT_LT(rel_err(d_b, d_a), 1e-5);
    EXPECT_EQ(l_b[1], 0.0f);
    std::vector<float> in_place = z;  // dlogits aliasing logits
    gpu_->cross_entropy(in_place.data(), targets.data(), n, n_vocab, 0.2f, l_b.data(), in_place.data());
    EXPECT_LT(rel_err(in_place, d_a), 1e-5);
}

TEST_F(gpu_backward, EmbeddingBackwardIsExact) {
    const int64_t rows = 30, dim = 40;
    const std::vector<int32_t> ids = {4, 4, 29, 0, 4, 17};
    const std::vector<float> dy = random_floats(ids.size() * dim, 38);
    std::vector<float> a = random_floats(static_cast<size_t>(rows * dim), 39), b = a;
    kernels::embedding_backward(ids.data(), dy.data(), static_cast<int64_t>(ids.size()), dim, 0, dim, a.data());
    gpu_->embedding_backward(ids.data(), dy.data(), static_cast<int64_t>(ids.size()), dim, rows, b.data());
    EXPECT_EQ(a, b);  // the same additions in the same order
}

TEST_F(gpu_backward, AdamW) {
    const int64_t count = 10000;
    std::vector<float> w_a = random_floats(static_cast<size_t>(count), 40), w_b = w_a;
    std::vector<float> m_a = random_floats(w_a.size(), 41, 0.1f), m_b = m_a;
    std::vector<float> v_a = random_floats(w_a.size(), 42, 0.01f), v_b;
    for (auto &x : v_a) x = std::fabs(x);
    v_b = v_a;
    const std::vector<float> g = random_floats(w_a.size(), 43);
    kernels::adamw_args args{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f - 0.9f * 0.9f, 1.0f - 0.999f * 0.999f, 0.5f};
    kernels::adamw_update(w_a.data(), g.data(), m_a.data(), v_a.data(), args, 0, count);
    gpu_->adamw(w_b.data(), g.data(), m_b.data(), v_b.data(), args, count);
    EXPECT_LT(rel_err(w_b, w_a), 1e-6);
    EXPECT_LT(rel_err(m_b, m_a), 1e-6);
    EXPECT_LT(rel_err(v_b, v_a), 1e-6);
}

// One training step of a tiny language-model head, on the CPU kernels and on the device:
//   h = rms_norm(table[ids]) ; logits = h W^T ; loss = xent(logits, targets)
//   backward to W and the table, then AdamW on both. The updated weights must agree.
TEST_F(gpu_backward, OneTrainingStepCloseToCpu) {
    const int64_t n = 12, dim = 64, vocab = 97;
    const std::vector<int32_t> ids = {1, 5, 9, 5, 80, 2, 3, 96, 0, 41, 41, 7};
    std::vector<int32_t> targets(ids.begin() + 1, ids.end());
    targets.push_back(-100);
    const std::vector<float> norm_w = random_floats(static_cast<size_t>(dim), 44);
    struct state {
        std::vector<float> table, W, m_t, v_t, m_w, v_w;
        float loss = 0.0f;
    };
    auto init = [&]() {
        state s;
        s.table = random_floats(static_cast<size_t>(vocab * dim), 45);
        s.W = random_floats(static_cast<size_t>(vocab * dim), 46, 0.2f);
        s.m_t.assign(s.table.size(), 0.0f);
        s.v_t = s.m_t;
        s.m_w = s.m_t;
        s.v_w = s.m_t;
        return s;
    };
    const kernels::adamw_args opt{1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 0.1f, 0.001f, 1.0f};
    const float scale = 1.0f / static_cast<float>(n - 1);

    // CPU: the kernels directly.
    state c = init();
    {
        std::vector<float> x(static_cast<size_t>(n * dim)), h(x.size()), rstd(static_cast<size_t>(n));
        std::vector<float> logits(static_cast<size_t>(n * vocab)), losses(static_cast<size_t>(n));
        kernels::embedding_rows(ids.data(), c.table.data(), wtype::f32, dim, 0, n, x.data());
        kernels::rms_norm_forward_rows(x.data(), norm_w.data(), wtype::f32, dim, 1e-5f, 0, n, h.data(), rstd.data());
        // logits = h W^T: gemm_rows with B = W^T is not row-major, so use matmul_rows.
        kernels::matmul_rows(h.data(), n, dim, c.W.data(), wtype::f32, nullptr, 0, vocab, logits.data(), vocab);
        kernels::cross_entropy_rows(logits.data(), targets.data(), vocab, scale, 0, n, losses.data(), logits.data());
        c.loss = std::accumulate(losses.begin(), losses.end(), 0.0f) * scale;
        std::vector<float> dW(c.W.size(), 0.0f), dh(h.size()), dx(h.size()), dtable(c.table.size(), 0.0f);
        kernels::gemm_rows(0, vocab, n, logits.data(), 1, vocab, h.data(), wtype::f32, dim, 0, dim, dW.data(), dim, true);
        kernels::gemm_rows(0, n, vocab, logits.data(), vocab, 1, c.W.data(), wtype::f32, dim, 0, dim, dh.data(), dim,
                           false);
        kernels::rms_norm_backward_rows(dh.data(), x.data(), rstd.data(), norm_w.data(), wtype::f32, dim, 0, n,
                                        dx.data(), false);
        kernels::embedding_backward(ids.data(), dx.data(), n, dim, 0, dim, dtable.data());
        kernels::adamw_update(c.W.data(), dW.data(), c.m_w.data(), c.v_w.data(), opt, 0, vocab * dim);
        kernels::adamw_update(c.table.data(), dtable.data(), c.m_t.data(), c.v_t.data(), opt, 0, vocab * dim);
    }

    // Device: everything resident, the same sequence through the GPU backend.
    state g = init();
    {
        gpu_backend &be = *gpu_;
        auto dev = [&](const std::vector<float> &host) {
            float *p = static_cast<float *>(be.alloc(host.size() * sizeof(float), -1));
            be.upload(p, host.data(), host.size() * sizeof(float));
            return p;
        };
        auto zeros = [&](int64_t count) {
            float *p = static_cast<float *>(be.alloc(static_cast<size_t>(count) * sizeof(float), -1));
            be.zero(p, static_cast<size_t>(count) * sizeof(float));
            return p;
        };
        float *table = dev(g.table), *W = dev(g.W), *m_t = dev(g.m_t), *v_t = dev(g.v_t), *m_w = dev(g.m_w),
              *v_w = dev(g.v_w), *nw = dev(norm_w);
        float *x = zeros(n * dim), *h = zeros(n * dim), *rstd = zeros(n), *logits = zeros(n * vocab),
              *losses = zeros(n), *dW = zeros(vocab * dim), *dh = zeros(n * dim), *dx = zeros(n * dim),
              *dtable = zeros(vocab * dim);
        be.embedding(ids.data(), n, tensor_ref{table, wtype::f32, vocab, dim}, x);
        be.rms_norm_forward(x, nw, wtype::f32, n, dim, 1e-5f, h, rstd);
        be.matmul(h, n, tensor_ref{W, wtype::f32, vocab, dim}, nullptr, logits);
        be.cross_entropy(logits, targets.data(), n, vocab, scale, losses, logits);
        std::vector<float> l(static_cast<size_t>(n));
        be.download(l.data(), losses, l.size() * sizeof(float));
        g.loss = std::accumulate(l.begin(), l.end(), 0.0f) * scale;
        be.gemm(vocab, n, logits, 1, vocab, h, wtype::f32, dim, dim, dW, dim, true);
        be.gemm(n, vocab, logits, vocab, 1, W, wtype::f32, dim, dim, dh, dim, false);
        be.rms_norm_backward(dh, x, rstd, nw, wtype::f32, n, dim, dx, false);
        be.embedding_backward(ids.data(), dx, n, dim, vocab, dtable);
        be.adamw(W, dW, m_w, v_w, opt, vocab * dim);
        be.adamw(table, dtable, m_t, v_t, opt, vocab * dim);
        be.download(g.W.data(), W, g.W.size() * sizeof(float));
        be.download(g.table.data(), table, g.table.size() * sizeof(float));
        for (float *p : {table, W, m_t, v_t, m_w, v_w, nw, x, h, rstd, logits, losses, dW, dh, dx, dtable}) be.free(p);
    }
    EXPECT_NEAR(g.loss, c.loss, 1e-4 * std::fabs(c.loss));
    EXPECT_LT(rel_err(g.W, c.W), 1e-4);
    EXPECT_LT(rel_err(g.table, c.table), 1e-4);
    const state start = init();
    EXPECT_GT(rel_err(c.W, start.W), 1e-4);  // the step did move the weights
}

// ---- stories260K: a real model ---------------------------------------------------------------------

// Greedy decoding of one sequence through llama_forward (the runtime's placement, done here by
// the KV cache as the context does it).
std::vector<int32_t> greedy(const model &m, backend &be, std::vector<int32_t> prompt, int n_new) {
    kv_cache cache(m.hp, 128, wtype::f32, be);
    llama_scratch s;
    std::vector<float> logits(static_cast<size_t>(m.hp.n_vocab));
    std::vector<int32_t> out;
    int32_t next_pos = 0;
    std::vector<int32_t> batch = std::move(prompt);
    for (int step = 0; step < n_new; ++step) {
        eurollm_test::forward_last(m, be, cache, s, batch, next_pos, logits.data());
        next_pos += static_cast<int32_t>(batch.size());
        const int32_t tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(tok);
        batch = {tok};
    }
    return out;
}

class gpu_stories : public ::testing::Test {
protected:
    void SetUp() override {
        EUROLLM_REQUIRE_GPU(kind);
        EUROLLM_REQUIRE_STORIES();
        kind_ = kind;
        model_ = load_model(eurollm_test::stories_dir(), model_load_options{});
    }
    gpu_kind kind_ = gpu_kind::cuda;
    std::unique_ptr<model> model_;
};

TEST_F(gpu_stories, GreedyGenerationEqualsCpu) {
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 300, 289, 281, 488};
    auto cpu = make_cpu_backend(2);
    gpu_backend_options o;
    o.kind = kind_;
    auto gpu = make_gpu_backend(o);
    const std::vector<int32_t> want = greedy(*model_, *cpu, prompt, 48);
    const std::vector<int32_t> got = greedy(*model_, *gpu, prompt, 48);
    EXPECT_EQ(got, want);
    EXPECT_GT(gpu->weights().count(), size_t{0});
}

// The device-resident forward the context will run once integrated: scratch and KV cache in
// device memory, store_kv on the device, begin_layer for partial offload. Same arithmetic as
// llama_forward (see src/model/arch/llama.cpp), logits compared with the CPU's.
void device_forward(const model &m, gpu_backend &be, const std::vector<int32_t> &tokens, int32_t pos0,
                    std::vector<float *> &k_cache, std::vector<float *> &v_cache, int64_t stride, float *logits_host) {
    const hparams &hp = m.hp;
    const int64_t n = static_cast<int64_t>(tokens.size()), d = hp.n_embd;
    auto buf = [&](int64_t count) { return static_cast<float *>(be.alloc(static_cast<size_t>(count) * sizeof(float), -1)); };
    float *x = buf(n * d), *h = buf(n * d), *q = buf(n * hp.n_head * hp.head_dim), *att = buf(n * hp.n_head * hp.head_dim),
          *kn = buf(n * hp.n_head_kv * hp.head_dim), *vn = buf(n * hp.n_head_kv * hp.head_dim), *gate = buf(n * hp.n_ff),
          *up = buf(n * hp.n_ff), *logits = buf(hp.n_vocab);
    std::vector<int32_t> pos(tokens.size());
    std::iota(pos.begin(), pos.end(), pos0);
    // One sequence in a fresh cache: token i sits in cell pos[i] and sees cells [window start, pos[i]].
    std::vector<int32_t> visible;
    std::vector<int64_t> visible_begin = {0};
    for (int32_t p : pos) {
        const int32_t first = hp.sliding_window > 0 ? std::max<int32_t>(0, p - static_cast<int32_t>(hp.sliding_window) + 1) : 0;
        for (int32_t t = first; t <= p; ++t) visible.push_back(t);
        visible_begin.push_back(static_cast<int64_t>(visible.size()));
    }
    const std::vector<float> inv = hp.rope_inv_freq();
    be.begin_layer(-1);
    be.embedding(tokens.data(), n, m.tok_embd, x);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        be.begin_layer(l);
        const layer_weights &L = m.layers[static_cast<size_t>(l)];
        be.rms_norm(x, n, L.attn_norm, hp.rms_eps, h);
        be.matmul(h, n, L.wq, nullptr, q);
        be.matmul(h, n, L.wk, nullptr, kn);
        be.matmul(h, n, L.wv, nullptr, vn);
        be.rope(q, n, hp.n_head, hp.head_dim, pos.data(), inv.data());
        be.rope(kn, n, hp.n_head_kv, hp.head_dim, pos.data(), inv.data());
        be.store_kv(kn, pos.data(), n, hp.n_head_kv, hp.head_dim, stride, wtype::f32, k_cache[static_cast<size_t>(l)]);
        be.store_kv(vn, pos.data(), n, hp.n_head_kv, hp.head_dim, stride, wtype::f32, v_cache[static_cast<size_t>(l)]);
        backend::attention_args a{};
        a.q = q;
        a.k = k_cache[static_cast<size_t>(l)];
        a.v = v_cache[static_cast<size_t>(l)];
        a.out = att;
        a.cells = visible.data();
        a.row_begin = visible_begin.data();
        a.n = n;
        a.n_head = hp.n_head;
        a.n_head_kv = hp.n_head_kv;
        a.head_dim = hp.head_dim;
        a.kv_stride = stride;
        a.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
        be.attention(a);
        be.matmul(att, n, L.wo, nullptr, h);
        be.add(x, h, n * d);
        be.rms_norm(x, n, L.ffn_norm, hp.rms_eps, h);
        be.matmul(h, n, L.w_gate, nullptr, gate);
        be.matmul(h, n, L.w_up, nullptr, up);
        be.swiglu(gate, up, n, hp.n_ff);
        be.matmul(gate, n, L.w_down, nullptr, h);
        be.add(x, h, n * d);
    }
    be.begin_layer(hp.n_layer);
    const int64_t last = n - 1;
    be.copy_rows(x, x, &last, 1, d);  // the output-row gather (only the last row here)
    be.rms_norm(x, 1, m.output_norm, hp.rms_eps, h);
    be.matmul(h, 1, m.output, nullptr, logits);
    be.download(logits_host, logits, static_cast<size_t>(hp.n_vocab) * sizeof(float));
    for (float *p : {x, h, q, att, kn, vn, gate, up, logits}) be.free(p);
}

TEST_F(gpu_stories, DeviceResidentForwardAndPartialOffload) {
    const model &m = *model_;
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 300};
    const std::vector<int32_t> next = {289};
    auto cpu = make_cpu_backend(2);
    kv_cache cache(m.hp, 64, wtype::f32, *cpu);
    llama_scratch s;
    std::vector<float> want1(static_cast<size_t>(m.hp.n_vocab)), want2(want1.size());
    auto run_cpu = [&](const std::vector<int32_t> &tokens, int32_t pos0, float *logits) {
        eurollm_test::forward_last(m, *cpu, cache, s, tokens, pos0, logits);
    };
    run_cpu(prompt, 0, want1.data());
    const int32_t p6 = static_cast<int32_t>(prompt.size());
    run_cpu(next, p6, want2.data());

    for (int64_t n_gpu_layers : {int64_t{-1}, int64_t{1}}) {
        SCOPED_TRACE(testing::Message() << "n_gpu_layers " << n_gpu_layers);
        gpu_backend_options o;
        o.kind = kind_;
        o.n_gpu_layers = n_gpu_layers;
        o.n_layer = m.hp.n_layer;
        auto be = make_gpu_backend(o);
        const int64_t stride = 64, per_layer = m.hp.n_head_kv * stride * m.hp.head_dim;
        std::vector<float *> kc, vc;
        const std::vector<float> zero(static_cast<size_t>(per_layer), 0.0f);
        for (int64_t l = 0; l < m.hp.n_layer; ++l) {
            kc.push_back(static_cast<float *>(be->alloc(zero.size() * sizeof(float), l)));
            vc.push_back(static_cast<float *>(be->alloc(zero.size() * sizeof(float), l)));
            be->upload(kc.back(), zero.data(), zero.size() * sizeof(float));
            be->upload(vc.back(), zero.data(), zero.size() * sizeof(float));
        }
        std::vector<float> got1(want1.size()), got2(want1.size());
        device_forward(m, *be, prompt, 0, kc, vc, stride, got1.data());
        device_forward(m, *be, next, p6, kc, vc, stride, got2.data());
        EXPECT_LT(rel_err(got1, want1), 1e-4);
        EXPECT_LT(rel_err(got2, want2), 1e-4);
        for (float *p : kc) be->free(p);
        for (float *p : vc) be->free(p);
        if (n_gpu_layers == 1) {
            EXPECT_EQ(be->weights().count(), size_t{9});  // layer 0 only; the rest ran on the CPU
        }
    }
}

}  // namespace
}  // namespace eurollm
