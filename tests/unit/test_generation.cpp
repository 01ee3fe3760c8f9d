// Generator behaviour through the public API on stories260K: stop strings spanning tokens,
// streaming equals the final text, seeded sampling is reproducible, abort, context full.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fixtures.h"
#include "eurollm.hpp"

namespace {

struct Stories : ::testing::Test {
    void SetUp() override {
        EUROLLM_REQUIRE_STORIES();
        model = std::make_unique<eurollm::Model>(eurollm::Model::load(eurollm_test::stories_dir()));
    }
    std::string generate(eurollm::GeneratorParams gp, const std::string &prompt,
                         const std::vector<std::string> &stops = {}, std::vector<int32_t> *tokens = nullptr,
                         eurollm_stop_reason *why = nullptr) {
        eurollm::ContextParams cp;
        cp.n_threads = 1;
        eurollm::Context ctx(*model, cp);
        eurollm::Generator gen(ctx, gp);
        for (const auto &s : stops) gen.add_stop_string(s);
        gen.append(model->tokenize(prompt));
        std::string text;
        while (auto t = gen.step()) {
            text += gen.text_delta();
            if (tokens) tokens->push_back(*t);
        }
        text += gen.text_delta();
        if (why) *why = gen.stop_reason();
        return text;
    }
    std::unique_ptr<eurollm::Model> model;
};

eurollm::GeneratorParams greedy(int n) {
    eurollm::GeneratorParams gp;
    gp.temperature = 0.0f;
    gp.max_tokens = n;
    return gp;
}

TEST_F(Stories, StreamedTextEqualsDecodedTokens) {
    std::vector<int32_t> toks;
    const std::string text = generate(greedy(40), "", {}, &toks);
    ASSERT_EQ(toks.size(), 40u);
    EXPECT_EQ(text, model->detokenize(toks));
}

TEST_F(Stories, StopStringSpanningTokensIsCutAndNeverStreamed) {
    const std::string full = generate(greedy(60), "");
    // A stop string that starts inside one token's text and ends in a later token's.
    const size_t at = full.find("little girl");
    ASSERT_NE(at, std::string::npos) << full;
    eurollm_stop_reason why{};
    const std::string cut = generate(greedy(60), "", {"tle gi"}, nullptr, &why);
    EXPECT_EQ(cut, full.substr(0, at + 3));
    EXPECT_EQ(why, EUROLLM_STOP_STRING);
    EXPECT_EQ(cut.find("tle gi"), std::string::npos);
}

TEST_F(Stories, UnmatchedStopPrefixIsReleasedAtTheEnd) {
    const std::string full = generate(greedy(12), "");
    // "Lily" occurs, "Lily!!" does not: held-back text must come out when generation ends.
    const std::string same = generate(greedy(12), "", {full.substr(full.size() - 3) + "@@"});
    EXPECT_EQ(same, full);
}

TEST_F(Stories, SeededSamplingIsReproducibleAndSeedsDiffer) {
    eurollm::GeneratorParams gp;
    gp.temperature = 1.0f;
    gp.max_tokens = 40;
    gp.seed = 1234;
    std::vector<int32_t> a, b, c;
    generate(gp, "Once", {}, &a);
    generate(gp, "Once", {}, &b);
    gp.seed = 99;
    generate(gp, "Once", {}, &c);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

TEST_F(Stories, StopTokenStopsBeforeEmittingIt) {
    std::vector<int32_t> all;
    generate(greedy(30), "", {}, &all);
    // The first token (past the fifth) that has not appeared before.
    size_t k = 5;
    while (std::find(all.begin(), all.begin() + static_cast<long>(k), all[k]) != all.begin() + static_cast<long>(k)) ++k;
    eurollm::Context ctx(*model);
    eurollm::Generator gen(ctx, greedy(30));
    gen.add_stop_token(all[k]);
    gen.append({1});
    std::vector<int32_t> got;
    while (auto t = gen.step()) got.push_back(*t);
    EXPECT_EQ(gen.stop_reason(), EUROLLM_STOP_EOS);
    EXPECT_EQ(got, std::vector<int32_t>(all.begin(), all.begin() + static_cast<long>(k)));
}

TEST_F(Stories, ModelEosIdsComeFromConfig) {
    EXPECT_EQ(model->eos_ids(), std::vector<int32_t>{2});
    EXPECT_EQ(model->info(EUROLLM_INFO_EOS_ID), 2);
}

TEST_F(Stories, ContextFullEndsGeneration) {
    eurollm::ContextParams cp;
    cp.n_ctx = 16;
    eurollm::Context ctx(*model, cp);
    eurollm::GeneratorParams gp = greedy(100);
    gp.ignore_eos = true;
    eurollm::Generator gen(ctx, gp);
    gen.append({1});
    int n = 0;
    while (gen.step()) ++n;
    EXPECT_EQ(gen.stop_reason(), EUROLLM_STOP_CONTEXT_FULL);
    EXPECT_EQ(n, 16);  // 15 evaluated after BOS, plus the last sampled one
    EXPECT_EQ(ctx.n_past(), 16u);
}

bool stop_after_three(int32_t, const char *, size_t, void *data) { return ++*static_cast<int *>(data) < 3; }

TEST_F(Stories, CallbackCanStop) {
    eurollm::Context ctx(*model);
    eurollm::Generator gen(ctx, greedy(50));
    int calls = 0;
    ASSERT_EQ(eurollm_generator_set_callback(gen.get(), stop_after_three, &calls), EUROLLM_OK);
    gen.append({1});
    int n = 0;
    while (gen.step()) ++n;
    EXPECT_EQ(n, 3);
    EXPECT_EQ(gen.stop_reason(), EUROLLM_STOP_CALLBACK);
}

bool abort_now(void *) { return false; }

TEST_F(Stories, AbortCallbackAborts) {
    eurollm::Context ctx(*model);
    ASSERT_EQ(eurollm_context_set_abort(ctx.get(), abort_now, nullptr), EUROLLM_OK);
    const int32_t bos = 1;
    EXPECT_EQ(eurollm_context_decode(ctx.get(), &bos, 1, nullptr), EUROLLM_ERR_ABORTED);
    EXPECT_EQ(ctx.n_past(), 0u);
    ASSERT_EQ(eurollm_context_set_abort(ctx.get(), nullptr, nullptr), EUROLLM_OK);
    EXPECT_EQ(eurollm_context_decode(ctx.get(), &bos, 1, nullptr), EUROLLM_OK);
}

TEST_F(Stories, GenerateTextConvenience) {
    eurollm::Context ctx(*model);
    eurollm::GeneratorParams gp = greedy(30);
    char buf[4096];
    size_t len = 0;
    ASSERT_EQ(eurollm_generate_text(ctx.get(), "Once upon a time", 16, &gp, buf, sizeof buf, &len), EUROLLM_OK)
        << eurollm_last_error();
    EXPECT_EQ(std::string(buf, len), generate(greedy(30), "Once upon a time"));
}

TEST_F(Stories, RoundTripOfValidUtf8) {
    for (const std::string text : {"Hello, world!", "Grüße aus Köln – ça va? Zażółć gęślą jaźń.",
                                   "Здравей, свят", "emoji 🎉 and tabs\tand\nnewlines", "  two leading spaces",
                                   "日本語のテキスト"}) {
        EXPECT_EQ(model->detokenize(model->tokenize(text, 0)), text);
    }
}

}  // namespace

namespace {

TEST_F(Stories, OlderParamsVersionIsAcceptedAndNewerFieldsDefault) {
    eurollm::Context ctx(*model);
    eurollm_generator_params gp;
    ASSERT_EQ(eurollm_generator_params_init(&gp, 1), EUROLLM_OK);
    gp.temperature = 0.0f;
    gp.max_tokens = 5;
    gp.seq_id = 55;  // not part of version 1: must be ignored, not read
    eurollm_generator *gen = nullptr;
    ASSERT_EQ(eurollm_generator_init(ctx.get(), &gp, &gen), EUROLLM_OK) << eurollm_last_error();
    const int32_t bos = 1;
    ASSERT_EQ(eurollm_generator_append_tokens(gen, &bos, 1), EUROLLM_OK);
    int32_t tok = -1;
    EXPECT_EQ(eurollm_generator_step(gen, &tok), EUROLLM_OK);
    uint32_t n0 = 0;
    ASSERT_EQ(eurollm_context_seq_n_past(ctx.get(), 0, &n0), EUROLLM_OK);
    EXPECT_EQ(n0, 1u);  // the generator extends sequence 0
    eurollm_generator_free(gen);
    gp.version = 3;
    EXPECT_EQ(eurollm_generator_init(ctx.get(), &gp, &gen), EUROLLM_ERR_INVALID_ARGUMENT);
}

}  // namespace
