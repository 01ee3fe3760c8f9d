// End-to-end on the real trained model stories260K (../shared/models/stories260K, never copied into
// the repo): greedy generation, logits and SentencePiece tokenization against the references of
// tests/data/golden/stories260K_*.json (transformers + sentencepiece, see tests/data/make_goldens.py).
// Uses only the public C API. Skipped (not passed) when the model directory is absent.

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "e2e_util.h"

using nlohmann::json;

namespace {

constexpr double kRelTol = 1e-4;

class Stories : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = e2e::stories_dir();
        if (!e2e::is_file(e2e::join(dir_, "config.json")))
            GTEST_SKIP() << "stories260K not found at '" << dir_ << "' (set EUROLLM_STORIES_DIR or the CMake "
                         << "variable EUROLLM_STORIES_DIR)";
    }

    json golden(const char *file) { return e2e::read_json(e2e::join(e2e::golden_dir(), file)); }

    // The golden was made from exactly these files.
    void check_files(const json &g) {
        const json &files = g.at("files");
        for (auto it = files.begin(); it != files.end(); ++it) {
            std::string path = e2e::join(dir_, it.key());
            ASSERT_EQ(e2e::sha256_file(path), it.value().get<std::string>())
                << path << " is not the file the golden was computed from: regenerate the goldens "
                << "(tests/data/make_goldens.py --stories DIR)";
        }
    }

    void load(uint32_t n_ctx = 0) {
        std::string err = e2e::open_model(dir_, n_ctx, &model_, &ctx_);
        ASSERT_TRUE(err.empty()) << err;
    }

    std::vector<int32_t> tokenize(const std::string &text, uint32_t flags, eurollm_status *status) {
        size_t n = 0;
        eurollm_status st = eurollm_tokenize(model_.get(), text.data(), text.size(), flags, nullptr, 0, &n);
        if (st != EUROLLM_OK && st != EUROLLM_ERR_BUFFER_TOO_SMALL) {
            *status = st;
            return {};
        }
        std::vector<int32_t> ids(n + 1);
        st = eurollm_tokenize(model_.get(), text.data(), text.size(), flags, ids.data(), ids.size(), &n);
        *status = st;
        ids.resize(st == EUROLLM_OK ? n : 0);
        return ids;
    }

    std::string detokenize(const std::vector<int32_t> &ids, eurollm_status *status) {
        size_t len = 0;
        eurollm_status st = eurollm_detokenize(model_.get(), ids.data(), ids.size(), nullptr, 0, &len);
        if (st != EUROLLM_OK && st != EUROLLM_ERR_BUFFER_TOO_SMALL) {
            *status = st;
            return {};
        }
        std::vector<char> buf(len + 1);
        st = eurollm_detokenize(model_.get(), ids.data(), ids.size(), buf.data(), buf.size(), &len);
        *status = st;
        return st == EUROLLM_OK ? std::string(buf.data(), len) : std::string();
    }

    std::string dir_;
    e2e::ModelPtr model_;
    e2e::ContextPtr ctx_;
};

// 200 greedy tokens from BOS alone, EOS ignored: every token identical to transformers'.
TEST_F(Stories, Greedy200) {
    json g = golden("stories260K_greedy.json");
    ASSERT_NO_FATAL_FAILURE(check_files(g));
    ASSERT_NO_FATAL_FAILURE(load());
    std::vector<int32_t> want = g.at("tokens").get<std::vector<int32_t>>();
    std::vector<int32_t> prompt = g.at("prompt_tokens").get<std::vector<int32_t>>();
    std::vector<double> margins = g.at("margins").get<std::vector<double>>();
    ASSERT_EQ(want.size(), 200u);

    eurollm_generator_params gp;
    ASSERT_EQ(eurollm_generator_params_init(&gp, EUROLLM_GENERATOR_PARAMS_VERSION), EUROLLM_OK);
    gp.temperature = 0.0f;
    gp.ignore_eos = true;
    gp.max_tokens = 200;
    eurollm_generator *gen_raw = nullptr;
    eurollm_status st = eurollm_generator_init(ctx_.get(), &gp, &gen_raw);
    ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
    e2e::GeneratorPtr gen(gen_raw);
    st = eurollm_generator_append_tokens(gen.get(), prompt.data(), prompt.size());
    ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);

    std::vector<int32_t> got;
    std::string text;
    for (int guard = 0; guard < 1000; ++guard) {
        int32_t tok = -2;
        st = eurollm_generator_step(gen.get(), &tok);
        if (st != EUROLLM_OK) break;
        got.push_back(tok);
        const char *delta = nullptr;
        size_t len = 0;
        if (eurollm_generator_text_delta(gen.get(), &delta, &len) == EUROLLM_OK && delta) text.append(delta, len);
    }
    ASSERT_EQ(st, EUROLLM_DONE) << e2e::status_msg(st);
    EXPECT_EQ(eurollm_generator_stop_reason(gen.get()), EUROLLM_STOP_MAX_TOKENS);
    EXPECT_EQ(eurollm_generator_n_generated(gen.get()), 200u);

    size_t first_diff = 0;
    while (first_diff < got.size() && first_diff < want.size() && got[first_diff] == want[first_diff]) ++first_diff;
    std::printf("[   info   ] stories260K greedy: %zu of %zu tokens identical before the first difference\n",
                first_diff, want.size());
    EXPECT_EQ(got.size(), want.size());
    if (first_diff < want.size()) {
        ADD_FAILURE() << "first difference at step " << first_diff << ": ours "
                      << (first_diff < got.size() ? std::to_string(got[first_diff]) : std::string("<none>"))
                      << ", transformers " << want[first_diff] << " (reference top1-top2 margin there "
                      << margins[first_diff] << ")";
    }
    // The streamed text of those tokens: SentencePiece decoding (leading dummy space dropped).
    EXPECT_EQ(text, g.at("text").get<std::string>()) << "concatenated eurollm_generator_text_delta";
}

TEST_F(Stories, Logits) {
    json g = golden("stories260K_logits.json");
    ASSERT_NO_FATAL_FAILURE(check_files(g));
    ASSERT_NO_FATAL_FAILURE(load());
    std::vector<int32_t> tokens = g.at("tokens").get<std::vector<int32_t>>();
    size_t n_vocab = g.at("n_vocab").get<size_t>();
    int64_t v = 0;
    ASSERT_EQ(eurollm_model_get_info(model_.get(), EUROLLM_INFO_N_VOCAB, &v), EUROLLM_OK);
    ASSERT_EQ((size_t)v, n_vocab);

    std::vector<float> logits(tokens.size() * n_vocab, NAN);
    eurollm_status st = eurollm_context_decode_all(ctx_.get(), tokens.data(), tokens.size(), logits.data(),
                                                   logits.size());
    ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
    e2e::RowCompare c = e2e::compare_rows(logits.data(), tokens.size(), n_vocab, g.at("logits"), 0);
    EXPECT_EQ(c.n_nonfinite, 0u);
    EXPECT_LT(c.worst, kRelTol) << "stories260K: " << e2e::describe(c);
    std::printf("[   info   ] stories260K logits: worst relative row error %.3e at position %zu\n", c.worst,
                c.worst_row);

    // The prompt tokenizes to the same ids.
    eurollm_status tst = EUROLLM_OK;
    std::vector<int32_t> ids = tokenize(g.at("prompt").get<std::string>(), EUROLLM_TOKENIZE_ADD_BOS, &tst);
    ASSERT_EQ(tst, EUROLLM_OK) << e2e::status_msg(tst);
    EXPECT_EQ(ids, tokens);
}

// SentencePiece ids with BOS for a dozen strings (accents, Cyrillic, emoji, whitespace runs,
// leading spaces, the empty string), without BOS, and back to text.
TEST_F(Stories, Tokenize) {
    json g = golden("stories260K_tokenize.json");
    ASSERT_NO_FATAL_FAILURE(check_files(g));
    ASSERT_NO_FATAL_FAILURE(load());
    int32_t bos = g.at("bos_id").get<int32_t>();
    for (const json &c : g.at("cases")) {
        std::string text = c.at("text").get<std::string>();
        std::vector<int32_t> want = c.at("ids").get<std::vector<int32_t>>();
        SCOPED_TRACE("text: \"" + text + "\"");

        eurollm_status st = EUROLLM_OK;
        std::vector<int32_t> got = tokenize(text, EUROLLM_TOKENIZE_ADD_BOS, &st);
        ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
        EXPECT_EQ(got, want) << "EUROLLM_TOKENIZE_ADD_BOS";

        // cap 0 asks for the size.
        size_t n = 12345;
        st = eurollm_tokenize(model_.get(), text.data(), text.size(), EUROLLM_TOKENIZE_ADD_BOS, nullptr, 0, &n);
        EXPECT_EQ(st, EUROLLM_ERR_BUFFER_TOO_SMALL);
        EXPECT_EQ(n, want.size());

        std::vector<int32_t> no_bos(want.begin() + (want.empty() || want[0] != bos ? 0 : 1), want.end());
        got = tokenize(text, 0u, &st);
        ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
        EXPECT_EQ(got, no_bos) << "flags 0 (no BOS)";

        // tokenizer_config.json says add_bos_token; none of these strings holds a special token.
        got = tokenize(text, EUROLLM_TOKENIZE_MODEL_DEFAULT, &st);
        ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
        EXPECT_EQ(got, want) << "EUROLLM_TOKENIZE_MODEL_DEFAULT";

        // Back to text: BOS produces no text; the round trip gives the string back.
        std::string decoded = c.at("decoded").get<std::string>();
        std::string back = detokenize(want, &st);
        ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
        EXPECT_EQ(back, decoded) << "detokenize(ids with BOS)";
        EXPECT_EQ(back, text) << "round trip";
        back = detokenize(no_bos, &st);
        ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
        EXPECT_EQ(back, decoded) << "detokenize(ids without BOS)";
    }
}

// Greedy text from the golden tokens: detokenize of the 200 tokens equals transformers' decode.
TEST_F(Stories, DetokenizeGreedyText) {
    json g = golden("stories260K_greedy.json");
    ASSERT_NO_FATAL_FAILURE(check_files(g));
    ASSERT_NO_FATAL_FAILURE(load());
    std::vector<int32_t> tokens = g.at("tokens").get<std::vector<int32_t>>();
    eurollm_status st = EUROLLM_OK;
    std::string text = detokenize(tokens, &st);
    ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
    EXPECT_EQ(text, g.at("text").get<std::string>());
}

}  // namespace
