// One model shared by 4 threads, each with its own context: greedy outputs equal serial runs.
// Also run under ThreadSanitizer in CI.
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/fixtures.h"
#include "common/greedy.h"
#include "eurollm.hpp"

namespace {

std::vector<int32_t> greedy_tokens(const eurollm::Model &model, const std::string &prompt, int n) {
    eurollm::ContextParams cp;
    cp.n_threads = 1;
    cp.n_ctx = 256;
    return eurollm_test::greedy_tokens(model, prompt, n, cp);
}

TEST(Threads, SharedModelMatchesSerialRuns) {
    EUROLLM_REQUIRE_STORIES();
    const auto model = eurollm::Model::load(eurollm_test::stories_dir());
    const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Tom and Lily went", "One day, a big"};
    std::vector<std::vector<int32_t>> serial;
    for (const auto &p : prompts) serial.push_back(greedy_tokens(model, p, 64));

    std::vector<std::vector<int32_t>> parallel(prompts.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i)
        threads.emplace_back([&, i] { parallel[i] = greedy_tokens(model, prompts[i], 64); });
    for (auto &t : threads) t.join();

    for (size_t i = 0; i < prompts.size(); ++i) {
        ASSERT_EQ(serial[i].size(), 64u);
        EXPECT_EQ(parallel[i], serial[i]) << "prompt " << i;
    }
    EXPECT_NE(serial[0], serial[1]);  // the prompts really lead to different outputs
}

TEST(Threads, ContextsWithSeveralWorkerThreadsMatchSingleThreaded) {
    EUROLLM_REQUIRE_STORIES();
    const auto model = eurollm::Model::load(eurollm_test::stories_dir());
    eurollm::ContextParams one, two;
    one.n_threads = 1;
    two.n_threads = 2;
    const std::vector<int32_t> ids = model.tokenize("Once upon a time, there was a dog");
    eurollm::Context a(model, one), b(model, two);
    const float *la = a.decode(ids);
    std::vector<float> copy(la, la + model.n_vocab());
    const float *lb = b.decode(ids);
    for (int64_t i = 0; i < model.n_vocab(); ++i) EXPECT_EQ(copy[static_cast<size_t>(i)], lb[i]) << i;
}

}  // namespace
