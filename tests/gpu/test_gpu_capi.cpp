// The GPU through the public C ABI: a model loaded with EUROLLM_DEVICE_CUDA/HIP (weights uploaded at
// load, KV cache in device memory), against the same model on the CPU. Skipped (GTEST_SKIP, reported
// as skipped) when the library has no GPU backend or the machine no device; the "no device" answers
// of the ABI are checked everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "common/fixtures.h"
#include "common/greedy.h"
#include "eurollm.hpp"

namespace {

// The GPU kind this machine can run, if any.
bool usable_gpu(eurollm_device_kind *kind) {
    for (eurollm_device_kind k : {EUROLLM_DEVICE_CUDA, EUROLLM_DEVICE_HIP})
        if (eurollm_device_count(k) > 0) {
            *kind = k;
            return true;
        }
    return false;
}

eurollm::Model load(eurollm_device_kind kind, int32_t n_gpu_layers = -1) {
    eurollm::ModelParams mp;
    mp.device = kind;
    mp.n_gpu_layers = n_gpu_layers;
    return eurollm::Model::load(eurollm_test::stories_dir(), mp);
}

// stories260K loaded twice: on the CPU and with every layer on the GPU.
class gpu_capi : public ::testing::Test {
protected:
    void SetUp() override {
        if (!usable_gpu(&kind_)) GTEST_SKIP() << "no CUDA or HIP device (or this library was built without them)";
        EUROLLM_REQUIRE_STORIES();
        cpu_.emplace(load(EUROLLM_DEVICE_CPU));
        gpu_.emplace(load(kind_));
        n_vocab_ = static_cast<size_t>(cpu_->info(EUROLLM_INFO_N_VOCAB));
    }
    eurollm_device_kind kind_ = EUROLLM_DEVICE_CPU;
    std::optional<eurollm::Model> cpu_, gpu_;
    size_t n_vocab_ = 0;
};

double max_rel_err(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
        num = std::max(num, std::fabs(static_cast<double>(got[i]) - want[i]));
        den = std::max(den, std::fabs(static_cast<double>(want[i])));
    }
    return num / std::max(den, 1e-30);
}

TEST(gpu_capi_queries, DeviceQueriesWithoutOrWithDevice) {
    char name[256];
    size_t len = 0;
    ASSERT_EQ(eurollm_device_name(EUROLLM_DEVICE_CPU, 0, name, sizeof name, &len), EUROLLM_OK) << eurollm_last_error();
    EXPECT_EQ(std::string(name), "cpu");
    for (eurollm_device_kind k : {EUROLLM_DEVICE_CUDA, EUROLLM_DEVICE_HIP}) {
        const int n = eurollm_device_count(k);
        EXPECT_EQ(eurollm_device_name(k, n, name, sizeof name, &len), EUROLLM_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(eurollm_last_error()).find("device"), std::string::npos) << eurollm_last_error();
        for (int i = 0; i < n; ++i) {
            ASSERT_EQ(eurollm_device_name(k, i, name, sizeof name, &len), EUROLLM_OK) << eurollm_last_error();
            EXPECT_GT(len, 0u);
            uint64_t total = 0, avail = 0;
            ASSERT_EQ(eurollm_device_memory(k, i, &total, &avail), EUROLLM_OK) << eurollm_last_error();
            EXPECT_GT(total, uint64_t{1} << 28);
            EXPECT_LE(avail, total);
            std::printf("device %d: %s, %.1f GiB (%.1f free)\n", i, name, total / 1073741824.0, avail / 1073741824.0);
        }
    }
}

TEST_F(gpu_capi, GreedyGenerationEqualsCpu) {
    const std::string prompt = "Once upon a time";
    const std::vector<int32_t> want = eurollm_test::greedy_tokens(*cpu_, prompt, 64);
    ASSERT_EQ(want.size(), 64u);
    EXPECT_EQ(eurollm_test::greedy_tokens(*gpu_, prompt, 64), want) << "every layer on the GPU";
    EXPECT_EQ(eurollm_test::greedy_tokens(load(kind_, 2), prompt, 64), want) << "2 layers on the GPU, the rest on the CPU";
    EXPECT_EQ(eurollm_test::greedy_tokens(load(kind_, 0), prompt, 64), want) << "no layer on the GPU";
}

TEST_F(gpu_capi, LogitsOfEveryPositionMatchCpu) {
    const std::vector<int32_t> toks = cpu_->tokenize("The little dog ran to the park and saw a big red ball.");
    std::vector<float> want(toks.size() * n_vocab_), got(want.size());
    eurollm::Context cc(*cpu_), gc(*gpu_);
    ASSERT_EQ(eurollm_context_decode_all(cc.get(), toks.data(), toks.size(), want.data(), want.size()), EUROLLM_OK);
    ASSERT_EQ(eurollm_context_decode_all(gc.get(), toks.data(), toks.size(), got.data(), got.size()), EUROLLM_OK)
        << eurollm_last_error();
    EXPECT_LT(max_rel_err(got.data(), want.data(), want.size()), 1e-4);
    // Then one token at a time against the cache on the device.
    const std::vector<int32_t> next = {toks[1]};
    const float *lc = cc.decode(next), *lg = gc.decode(next);
    EXPECT_LT(max_rel_err(lg, lc, n_vocab_), 1e-4);
}

TEST_F(gpu_capi, StateMovesBetweenCpuAndGpu) {
    const std::vector<int32_t> toks = cpu_->tokenize("Lily wanted to play outside");
    eurollm::Context gc(*gpu_), cc(*cpu_);
    gc.decode(toks);
    size_t size = 0;
    ASSERT_EQ(eurollm_context_state_save(gc.get(), nullptr, 0, &size), EUROLLM_ERR_BUFFER_TOO_SMALL);
    std::vector<uint8_t> state(size);
    ASSERT_EQ(eurollm_context_state_save(gc.get(), state.data(), state.size(), &size), EUROLLM_OK) << eurollm_last_error();
    // The device cache read back continues on the CPU as the CPU's own cache does, and back again.
    ASSERT_EQ(eurollm_context_state_load(cc.get(), state.data(), size), EUROLLM_OK) << eurollm_last_error();
    eurollm::Context ref(*cpu_);
    ref.decode(toks);
    const std::vector<int32_t> next = {toks[2]};
    const float *a = ref.decode(next);
    std::vector<float> from_ref(a, a + n_vocab_);
    const float *b = cc.decode(next);
    EXPECT_LT(max_rel_err(b, from_ref.data(), n_vocab_), 1e-4);
    eurollm::Context gc2(*gpu_);
    ASSERT_EQ(eurollm_context_state_load(gc2.get(), state.data(), size), EUROLLM_OK) << eurollm_last_error();
    const float *c = gc2.decode(next);
    EXPECT_LT(max_rel_err(c, from_ref.data(), n_vocab_), 1e-4);
}

TEST_F(gpu_capi, EmbeddingsMatchCpu) {
    const char *texts[] = {"A cat sat on the mat.", "Tom and Sue went to the big tree to play."};
    eurollm_embed_params ep;
    eurollm_embed_params_init(&ep, EUROLLM_EMBED_PARAMS_VERSION);
    auto embed = [&](const eurollm::Model &m) {
        eurollm::Context ctx(m);
        size_t rows = 0, dim = 0;
        std::vector<float> out(2 * 1024);
        EXPECT_EQ(eurollm_embed_texts(ctx.get(), texts, nullptr, 2, &ep, out.data(), out.size(), &rows, &dim), EUROLLM_OK)
            << eurollm_last_error();
        out.resize(rows * dim);
        return out;
    };
    const std::vector<float> want = embed(*cpu_), got = embed(*gpu_);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_FALSE(want.empty());
    EXPECT_LT(max_rel_err(got.data(), want.data(), want.size()), 1e-4);
}

TEST_F(gpu_capi, F16KvCacheMatchesCpuF16Cache) {
    // Both round keys and values with the same f32 -> f16 conversion, so they attend to the same values.
    eurollm::ContextParams cp;
    cp.kv_type = EUROLLM_WEIGHT_F16;
    const std::vector<int32_t> toks = cpu_->tokenize("Once upon a time, there was a little girl named Lily.");
    std::vector<float> want(toks.size() * n_vocab_), got(want.size()), f32(want.size());
    eurollm::Context cc(*cpu_, cp), gc(*gpu_, cp), g32(*gpu_);
    ASSERT_EQ(eurollm_context_decode_all(cc.get(), toks.data(), toks.size(), want.data(), want.size()), EUROLLM_OK);
    ASSERT_EQ(eurollm_context_decode_all(gc.get(), toks.data(), toks.size(), got.data(), got.size()), EUROLLM_OK)
        << eurollm_last_error();
    ASSERT_EQ(eurollm_context_decode_all(g32.get(), toks.data(), toks.size(), f32.data(), f32.size()), EUROLLM_OK);
    EXPECT_LT(max_rel_err(got.data(), want.data(), want.size()), 1e-4);
    EXPECT_GT(max_rel_err(got.data(), f32.data(), f32.size()), 0.0) << "kv_type F16 did not reach the GPU cache";
    EXPECT_EQ(eurollm_test::greedy_tokens(*gpu_, "Once upon a time", 48, cp),
              eurollm_test::greedy_tokens(*cpu_, "Once upon a time", 48, cp));
}

TEST_F(gpu_capi, BadPlacementsAreStatuses) {
    eurollm::ModelParams mp;
    mp.device = kind_;
    mp.device_index = eurollm_device_count(kind_);
    eurollm_model *m = nullptr;
    EXPECT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), &mp, &m), EUROLLM_ERR_DEVICE);
    EXPECT_EQ(m, nullptr);
    mp.device_index = 0;
    mp.n_gpu_layers = -2;
    EXPECT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), &mp, &m), EUROLLM_ERR_INVALID_ARGUMENT);
}

}  // namespace
