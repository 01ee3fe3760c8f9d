// End-to-end: every deterministic tiny model of tests/data/make_tiny_models.py against the logits
// that Hugging Face transformers computed for it (tests/data/golden/<model>.json, written by
// tests/data/make_goldens.py). Uses only the public C API.
//
// Tolerance: for every position, max|ours - ref| / max|ref| < 1e-4 (float32 reference computed
// from the very values stored in the checkpoint, so F16/BF16 checkpoints are held to it too).

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "e2e_util.h"

using nlohmann::json;

namespace {

constexpr double kRelTol = 1e-4;

std::vector<std::string> golden_tiny_models() {
    std::vector<std::string> names;
    for (const std::string &f : e2e::list_dir(e2e::golden_dir())) {
        if (f.rfind("tiny_", 0) == 0 && f.size() > 5 && f.substr(f.size() - 5) == ".json")
            names.push_back(f.substr(0, f.size() - 5));
    }
    return names;
}

class TinyModel : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        name_ = GetParam();
        golden_ = e2e::read_json(e2e::join(e2e::golden_dir(), name_ + ".json"));
        dir_ = e2e::join(e2e::tiny_models_dir(), name_);
        ASSERT_TRUE(e2e::is_dir(dir_)) << dir_ << " does not exist: run the ctest fixture "
                                       << "tiny_models_generate (tests/data/make_tiny_models.py OUTDIR) "
                                       << "or set EUROLLM_TINY_MODELS_DIR";
        tokens_ = golden_.at("tokens").get<std::vector<int32_t>>();
        n_vocab_ = golden_.at("n_vocab").get<size_t>();
    }

    // Load the model (fatal on failure) and make a context.
    void load(uint32_t n_ctx = 64) {
        std::string err = e2e::open_model(dir_, n_ctx, &model_, &ctx_);
        ASSERT_TRUE(err.empty()) << err;
    }

    void expect_close(const std::vector<float> &ours, size_t first_row, size_t n_rows, const char *how) {
        e2e::RowCompare c = e2e::compare_rows(ours.data(), n_rows, n_vocab_, golden_.at("logits"), first_row);
        EXPECT_EQ(c.n_nonfinite, 0u) << name_ << " (" << how << "): non-finite logits";
        EXPECT_LT(c.worst, kRelTol) << name_ << " (" << how << "): " << e2e::describe(c);
        // Also printed on success, as evidence of the margin.
        std::printf("[   info   ] %s (%s): worst relative row error %.3e at position %zu\n", name_.c_str(), how,
                    c.worst, c.worst_row);
    }

    std::string name_, dir_;
    json golden_;
    std::vector<int32_t> tokens_;
    size_t n_vocab_ = 0;
    e2e::ModelPtr model_;
    e2e::ContextPtr ctx_;
};

// A drift of the generator (or of the Python that runs it) changes what the goldens describe.
TEST_P(TinyModel, FilesMatchGolden) {
    const json &files = golden_.at("files");
    std::set<std::string> expected;
    for (auto it = files.begin(); it != files.end(); ++it) {
        expected.insert(it.key());
        std::string path = e2e::join(dir_, it.key());
        ASSERT_TRUE(e2e::is_file(path)) << path << " missing";
        EXPECT_EQ(e2e::sha256_file(path), it.value().get<std::string>())
            << path << ": sha256 differs from the golden; the generator tests/data/make_tiny_models.py "
            << "changed its output: regenerate the goldens with tests/data/make_goldens.py";
    }
    std::vector<std::string> present = e2e::list_dir(dir_);
    EXPECT_EQ(std::set<std::string>(present.begin(), present.end()), expected) << "files in " << dir_;
}

TEST_P(TinyModel, Info) {
    ASSERT_NO_FATAL_FAILURE(load());
    const json &info = golden_.at("info");
    struct Key { eurollm_model_info key; const char *name; };
    const Key keys[] = {
        {EUROLLM_INFO_N_VOCAB, "n_vocab"}, {EUROLLM_INFO_N_EMBD, "n_embd"},
        {EUROLLM_INFO_N_LAYER, "n_layer"}, {EUROLLM_INFO_N_HEAD, "n_head"},
        {EUROLLM_INFO_N_HEAD_KV, "n_head_kv"}, {EUROLLM_INFO_HEAD_DIM, "head_dim"},
        {EUROLLM_INFO_N_FF, "n_ff"}, {EUROLLM_INFO_N_CTX_TRAIN, "n_ctx_train"},
        {EUROLLM_INFO_BOS_ID, "bos_id"}, {EUROLLM_INFO_SLIDING_WINDOW, "sliding_window"},
        {EUROLLM_INFO_TIED_EMBEDDINGS, "tied_embeddings"}, {EUROLLM_INFO_N_PARAMS, "n_params"},
    };
    for (const Key &k : keys) {
        int64_t v = -12345;
        eurollm_status st = eurollm_model_get_info(model_.get(), k.key, &v);
        ASSERT_EQ(st, EUROLLM_OK) << k.name << ": " << e2e::status_msg(st);
        EXPECT_EQ(v, info.at(k.name).get<int64_t>()) << name_ << ": " << k.name;
    }
    const char *arch = eurollm_model_architecture(model_.get());
    ASSERT_NE(arch, nullptr);
    EXPECT_EQ(std::string(arch), info.at("architecture").get<std::string>());

    // All end-of-generation ids: config.json eos_token_id plus generation_config.json's list.
    std::vector<int32_t> want = info.at("eos_ids").get<std::vector<int32_t>>();
    size_t n = 0;
    eurollm_status st = eurollm_model_eos_ids(model_.get(), nullptr, 0, &n);
    ASSERT_TRUE(st == EUROLLM_ERR_BUFFER_TOO_SMALL || (st == EUROLLM_OK && n == 0)) << e2e::status_msg(st);
    std::vector<int32_t> got(n);
    st = eurollm_model_eos_ids(model_.get(), got.data(), got.size(), &n);
    ASSERT_EQ(st, EUROLLM_OK) << e2e::status_msg(st);
    got.resize(n);
    std::sort(got.begin(), got.end());
    got.erase(std::unique(got.begin(), got.end()), got.end());
    EXPECT_EQ(got, want) << name_ << ": eos ids";
    int64_t eos = -12345;
    ASSERT_EQ(eurollm_model_get_info(model_.get(), EUROLLM_INFO_EOS_ID, &eos), EUROLLM_OK);
    EXPECT_TRUE(std::find(want.begin(), want.end(), (int32_t)eos) != want.end()) << "EOS_ID " << eos;
}

// The whole sequence in one call.
TEST_P(TinyModel, LogitsDecodeAll) {
    ASSERT_NO_FATAL_FAILURE(load());
    std::vector<float> logits(tokens_.size() * n_vocab_, NAN);
    eurollm_status st = eurollm_context_decode_all(ctx_.get(), tokens_.data(), tokens_.size(), logits.data(),
                                                   logits.size());
    ASSERT_EQ(st, EUROLLM_OK) << "decode_all: " << e2e::status_msg(st);
    EXPECT_EQ(eurollm_context_n_past(ctx_.get()), tokens_.size());
    expect_close(logits, 0, tokens_.size(), "decode_all, one batch");
}

// Two batches (7 + 13 tokens) over the KV cache: the second batch attends to cached keys, across
// the sliding window for the Mistral models.
TEST_P(TinyModel, LogitsDecodeAllChunked) {
    ASSERT_NO_FATAL_FAILURE(load());
    const size_t split = 7;
    ASSERT_GT(tokens_.size(), split);
    std::vector<float> logits(tokens_.size() * n_vocab_, NAN);
    eurollm_status st = eurollm_context_decode_all(ctx_.get(), tokens_.data(), split, logits.data(),
                                                   split * n_vocab_);
    ASSERT_EQ(st, EUROLLM_OK) << "decode_all (first batch): " << e2e::status_msg(st);
    st = eurollm_context_decode_all(ctx_.get(), tokens_.data() + split, tokens_.size() - split,
                                    logits.data() + split * n_vocab_, (tokens_.size() - split) * n_vocab_);
    ASSERT_EQ(st, EUROLLM_OK) << "decode_all (second batch): " << e2e::status_msg(st);
    EXPECT_EQ(eurollm_context_n_past(ctx_.get()), tokens_.size());
    expect_close(logits, 0, tokens_.size(), "decode_all, batches of 7 and 13");
}

// One token at a time (the generation path), after a reset of a used context.
TEST_P(TinyModel, LogitsTokenByToken) {
    ASSERT_NO_FATAL_FAILURE(load());
    std::vector<float> scratch(3 * n_vocab_);
    eurollm_status st0 = eurollm_context_decode_all(ctx_.get(), tokens_.data() + 5, 3, scratch.data(), scratch.size());
    ASSERT_EQ(st0, EUROLLM_OK) << e2e::status_msg(st0);
    ASSERT_EQ(eurollm_context_reset(ctx_.get()), EUROLLM_OK);
    EXPECT_EQ(eurollm_context_n_past(ctx_.get()), 0u);

    std::vector<float> logits(tokens_.size() * n_vocab_, NAN);
    for (size_t i = 0; i < tokens_.size(); ++i) {
        const float *row = nullptr;
        eurollm_status st = eurollm_context_decode(ctx_.get(), &tokens_[i], 1, &row);
        ASSERT_EQ(st, EUROLLM_OK) << "decode of position " << i << ": " << e2e::status_msg(st);
        ASSERT_NE(row, nullptr);
        std::copy(row, row + n_vocab_, logits.begin() + i * n_vocab_);
    }
    expect_close(logits, 0, tokens_.size(), "decode, one token at a time");
}

std::string param_name(const ::testing::TestParamInfo<std::string> &info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Golden, TinyModel, ::testing::ValuesIn(golden_tiny_models()), param_name);

// Every generated model has a golden and every golden a generated model.
TEST(TinyModels, GoldenSetMatchesGenerator) {
    std::vector<std::string> goldens = golden_tiny_models();
    ASSERT_GE(goldens.size(), 7u) << "golden dir " << e2e::golden_dir();
    std::string dir = e2e::tiny_models_dir();
    ASSERT_TRUE(e2e::is_dir(dir)) << dir << " does not exist: run make_tiny_models.py";
    std::vector<std::string> generated;
    for (const std::string &f : e2e::list_dir(dir))
        if (e2e::is_dir(e2e::join(dir, f))) generated.push_back(f);
    EXPECT_EQ(generated, goldens);
}

TEST(TinyModels, Sha256SelfTest) {
    EXPECT_EQ(e2e::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(e2e::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    EXPECT_EQ(e2e::sha256_hex(m.data(), m.size()),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
