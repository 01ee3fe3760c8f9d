// backend::matmuls (several products of one input) against the same products one by one: the CPU
// backend converts the input once per run of products that take it in the same form, so a run
// that mixes forms (tile terms, q8_0 blocks, q4_0 blocks, plain floats) must still give each
// product exactly what matmul gives it alone.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backend/backend.h"

namespace eurollm {
namespace {

struct weight {
    std::vector<uint8_t> data, packed;
    tensor_ref ref;
};

weight make_weight(wtype wt, int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    weight w;
    const int64_t rb = kernels::wtype_row_bytes(wt, cols);
    w.data.resize(static_cast<size_t>(rows * rb));
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (float &v : row) v = nd(rng);
        kernels::quantize_row(row.data(), wt, cols, w.data.data() + r * rb);
    }
    w.ref = tensor_ref{w.data.data(), wt, rows, cols};
    if (const size_t pb = kernels::packed_weight_bytes(wt, rows, cols)) {
        w.packed.resize(pb);
        kernels::pack_weight_groups(w.data.data(), wt, rows, cols, 0, (rows + 15) / 16, w.packed.data());
        w.ref.packed = w.packed.data();
    }
    return w;
}

TEST(BackendProducts, SharedInputEqualsProductsOneByOne) {
    const int64_t k = 96;
    // Alternating forms, and two bf16 products apart (a run must not reach across the q8_0 one).
    const wtype types[] = {wtype::bf16, wtype::q8_0, wtype::bf16, wtype::bf16, wtype::f16, wtype::q4_0,
                           wtype::q4_0, wtype::f32};
    std::vector<weight> ws;
    for (size_t i = 0; i < std::size(types); ++i)
        ws.push_back(make_weight(types[i], 40 + 16 * static_cast<int64_t>(i), k, 7 + static_cast<uint32_t>(i)));
    std::vector<float> bias(1024);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 17);
    for (kernels::act_precision p : {kernels::act_precision::split, kernels::act_precision::round}) {
        auto be = make_cpu_backend(2, p);
        for (int64_t n : {1, 16, 70}) {
            SCOPED_TRACE(::testing::Message() << "precision " << static_cast<int>(p) << ", rows " << n);
            std::mt19937 rng(static_cast<uint32_t>(n));
            std::normal_distribution<float> nd(0.0f, 1.0f);
            std::vector<float> x(static_cast<size_t>(n * k));
            for (float &v : x) v = nd(rng);
            std::vector<std::vector<float>> alone(ws.size()), shared(ws.size());
            std::vector<backend::product> ps;
            for (size_t i = 0; i < ws.size(); ++i) {
                const size_t out = static_cast<size_t>(n * ws[i].ref.rows);
                alone[i].assign(out, 0.0f);
                shared[i].assign(out, -1.0f);
                const float *b = i % 2 ? bias.data() : nullptr;
                be->matmul(x.data(), n, ws[i].ref, b, alone[i].data());
                ps.push_back({&ws[i].ref, b, shared[i].data()});
            }
            be->matmuls(x.data(), n, ps.data(), ps.size());
            for (size_t i = 0; i < ws.size(); ++i) EXPECT_EQ(shared[i], alone[i]) << wtype_name(types[i]);
        }
    }
}

}  // namespace
}  // namespace eurollm
