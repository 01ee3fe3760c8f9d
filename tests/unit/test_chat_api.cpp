// Chat through the public API: template rendering and a conversation that re-reads nothing.
#include <string>

#include <gtest/gtest.h>

#include "common/fixtures.h"
#include "eurollm.hpp"

namespace {

struct ChatApi : ::testing::Test {
    void SetUp() override {
        EUROLLM_REQUIRE_STORIES();
        model = std::make_unique<eurollm::Model>(eurollm::Model::load(eurollm_test::stories_dir()));
    }
    std::unique_ptr<eurollm::Model> model;
};

std::string apply(const eurollm::Model &m, const char *tmpl, const char *messages, bool gen, eurollm_status *st) {
    size_t len = 0;
    *st = eurollm_chat_apply_template(m.get(), tmpl, messages, nullptr, gen, nullptr, 0, &len);
    if (*st != EUROLLM_ERR_BUFFER_TOO_SMALL) return std::string();
    std::string out(len + 1, '\0');
    *st = eurollm_chat_apply_template(m.get(), tmpl, messages, nullptr, gen, out.data(), out.size(), &len);
    out.resize(len);
    return out;
}

TEST_F(ChatApi, ChatMLFallbackAndCustomTemplate) {
    eurollm_status st{};
    const char *msgs = R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Grüß Gott"}])";
    EXPECT_EQ(apply(*model, nullptr, msgs, true, &st),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nGrüß Gott<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(st, EUROLLM_OK);
    const char *tmpl = "{% for m in messages %}[{{ m.role | upper }}] {{ m.content | trim }}\n{% endfor %}";
    EXPECT_EQ(apply(*model, tmpl, msgs, false, &st), "[SYSTEM] Be brief.\n[USER] Grüß Gott\n");
}

TEST_F(ChatApi, BadTemplatesAndMessagesAreErrors) {
    eurollm_status st{};
    apply(*model, nullptr, "[{\"role\": \"user\"", true, &st);
    EXPECT_EQ(st, EUROLLM_ERR_INVALID_ARGUMENT);
    apply(*model, nullptr, R"([{"content":"no role"}])", true, &st);
    EXPECT_EQ(st, EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("role"), std::string::npos) << eurollm_last_error();
    apply(*model, "{% for m in messages %}{{ m.content | frobnicate }}{% endfor %}", R"([{"role":"user","content":"x"}])",
          true, &st);
    EXPECT_EQ(st, EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("frobnicate"), std::string::npos) << eurollm_last_error();
    apply(*model, "{% if true %}unclosed", R"([{"role":"user","content":"x"}])", true, &st);
    EXPECT_EQ(st, EUROLLM_ERR_INVALID_ARGUMENT);
    apply(*model, "{{ raise_exception('roles must alternate') }}", R"([{"role":"user","content":"x"}])", true, &st);
    EXPECT_EQ(st, EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("roles must alternate"), std::string::npos);
}

TEST_F(ChatApi, ConversationEvaluatesEachEarlierTokenOnce) {
    eurollm::ContextParams cp;
    cp.n_ctx = 512;
    eurollm::Context ctx(*model, cp);
    eurollm::GeneratorParams gp;
    gp.temperature = 0.0f;
    gp.max_tokens = 12;
    eurollm_chat *chat = nullptr;
    ASSERT_EQ(eurollm_chat_init(ctx.get(), &gp, &chat), EUROLLM_OK) << eurollm_last_error();
    char reply[2048];
    size_t len = 0;
    uint64_t evaluated = 0;
    std::string conversation;
    for (const char *turn : {"Tell me a story.", "What happened next?", "And then?"}) {
        ASSERT_EQ(eurollm_chat_add_message(chat, "user", turn), EUROLLM_OK);
        ASSERT_EQ(eurollm_chat_respond(chat, nullptr, nullptr, reply, sizeof reply, &len), EUROLLM_OK)
            << eurollm_last_error();
        ASSERT_EQ(eurollm_chat_n_evaluated(chat, &evaluated), EUROLLM_OK);
        // Everything fed so far sits in the cache exactly once: nothing was re-read.
        EXPECT_EQ(evaluated, ctx.n_past());
    }
    // The cache holds the whole conversation: the tokens of its final rendering, minus the
    // closing end-of-turn text of the last reply that was never fed.
    EXPECT_GT(ctx.n_past(), 60u);
    eurollm_chat *second = nullptr;
    EXPECT_EQ(eurollm_chat_init(ctx.get(), &gp, &second), EUROLLM_ERR_INVALID_ARGUMENT);  // sequence 0 taken
    EXPECT_EQ(eurollm_chat_add_message(chat, "user", "\xC3"), EUROLLM_ERR_INVALID_ARGUMENT);
    eurollm_chat_free(chat);
}

}  // namespace
