// Sampler semantics on hand-made logits; the reference is the definition of each control.
#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "core/error.h"
#include "generate/sampler.h"

using namespace eurollm;

namespace {

std::map<int32_t, int> histogram(sampler_params p, const std::vector<float> &logits, int n,
                                 const std::vector<int32_t> &hist = {}) {
    std::map<int32_t, int> h;
    for (int i = 0; i < n; ++i) {
        p.seed = static_cast<uint64_t>(i + 1);
        sampler s(p);
        ++h[s.sample(logits.data(), static_cast<int64_t>(logits.size()), hist)];
    }
    return h;
}

sampler_params plain() {
    sampler_params p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

}  // namespace

TEST(Sampler, GreedyTakesFirstMaximum) {
    sampler_params p = plain();
    p.temperature = 0.0f;
    sampler s(p);
    const std::vector<float> l = {0.1f, 3.0f, 3.0f, -1.0f};
    EXPECT_EQ(s.sample(l.data(), 4, {}), 1);
}

TEST(Sampler, TopKKeepsOnlyKBest) {
    sampler_params p = plain();
    p.top_k = 2;
    const auto h = histogram(p, {1.0f, 0.9f, 0.8f, 0.7f}, 300);
    for (const auto &kv : h) EXPECT_LT(kv.first, 2);
    EXPECT_EQ(h.size(), 2u);
}

TEST(Sampler, TopPCutsTail) {
    sampler_params p = plain();
    p.top_p = 0.5f;
    // probabilities 0.6, 0.3, 0.1: the first alone reaches 0.5
    const auto h = histogram(p, {std::log(0.6f), std::log(0.3f), std::log(0.1f)}, 200);
    EXPECT_EQ(h.size(), 1u);
    EXPECT_EQ(h.begin()->first, 0);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
    sampler_params p = plain();
    p.min_p = 0.2f;
    // 0.7, 0.2, 0.1: floor 0.14 keeps tokens 0 and 1
    const auto h = histogram(p, {std::log(0.7f), std::log(0.2f), std::log(0.1f)}, 400);
    EXPECT_EQ(h.count(2), 0u);
    EXPECT_GT(h.at(1), 40);
}

TEST(Sampler, FrequenciesFollowProbabilities) {
    const auto h = histogram(plain(), {std::log(0.75f), std::log(0.25f)}, 4000);
    EXPECT_NEAR(h.at(0) / 4000.0, 0.75, 0.03);
}

TEST(Sampler, RepetitionPenaltyIsHuggingFaceStyle) {
    sampler_params p = plain();
    p.temperature = 0.0f;
    p.repetition_penalty = 2.0f;
    sampler s(p);
    // token 0: 3.0 -> 1.5 (divided); token 1: 2.0 stays; so 1 wins
    const std::vector<float> l = {3.0f, 2.0f, -1.0f};
    EXPECT_EQ(s.sample(l.data(), 3, {0}), 1);
    // negative logits are multiplied: token 2 at -1 -> -2 (never helps)
    const std::vector<float> l2 = {-1.5f, -3.0f, -1.0f};
    EXPECT_EQ(s.sample(l2.data(), 3, {2}), 0);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
    sampler_params p = plain();
    p.temperature = 0.0f;
    p.frequency_penalty = 0.5f;
    sampler s(p);
    const std::vector<float> l = {2.0f, 1.2f};
    EXPECT_EQ(s.sample(l.data(), 2, {0}), 0);        // 2.0 - 0.5 = 1.5 > 1.2
    EXPECT_EQ(s.sample(l.data(), 2, {0, 0}), 1);     // 2.0 - 1.0 = 1.0 < 1.2
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 1.0f;
    sampler s2(p);
    EXPECT_EQ(s2.sample(l.data(), 2, {0}), 1);       // 2.0 - 1.0 < 1.2
}

TEST(Sampler, PenaltyWindow) {
    sampler_params p = plain();
    p.temperature = 0.0f;
    p.presence_penalty = 5.0f;
    p.penalty_last_n = 1;
    sampler s(p);
    const std::vector<float> l = {2.0f, 1.0f};
    EXPECT_EQ(s.sample(l.data(), 2, {0, 1}), 0);  // only the last token (1) is penalised
}

TEST(Sampler, InvalidParamsAreRejected) {
    sampler_params p = plain();
    p.top_p = 1.5f;
    EXPECT_THROW(sampler{p}, eurollm::error);
    p = plain();
    p.temperature = NAN;
    EXPECT_THROW(sampler{p}, eurollm::error);
}
