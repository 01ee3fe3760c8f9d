// Embeddings and several sequences in one context, through the public API on stories260K.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "eurollm.hpp"

namespace {

using nlohmann::json;

eurollm::GeneratorParams greedy(int n, int32_t seq = 0) {
    eurollm::GeneratorParams gp;
    gp.temperature = 0.0f;
    gp.max_tokens = n;
    gp.ignore_eos = true;
    gp.seq_id = seq;
    return gp;
}

struct Batching : ::testing::Test {
    void SetUp() override {
        EUROLLM_REQUIRE_STORIES();
        model = std::make_unique<eurollm::Model>(eurollm::Model::load(eurollm_test::stories_dir()));
    }
    eurollm::ContextParams params(uint32_t n_ctx = 512) {
        eurollm::ContextParams cp;
        cp.n_ctx = n_ctx;
        cp.n_threads = 2;
        return cp;
    }
    std::vector<int32_t> alone(const std::string &prompt, eurollm::GeneratorParams gp) {
        gp.seq_id = 0;
        eurollm::Context ctx(*model, params());
        eurollm::Generator gen(ctx, gp);
        gen.append(model->tokenize(prompt));
        std::vector<int32_t> out;
        while (auto t = gen.step()) out.push_back(*t);
        return out;
    }
    std::vector<float> embed(eurollm::Context &ctx, const std::vector<std::string> &texts, eurollm_pooling pool,
                             bool normalize = false, uint32_t dim = 0, size_t *rows_out = nullptr) {
        eurollm_embed_params ep;
        eurollm_embed_params_init(&ep, EUROLLM_EMBED_PARAMS_VERSION);
        ep.pooling = pool;
        ep.normalize = normalize;
        ep.dim = dim;
        std::vector<const char *> ptrs;
        for (const auto &t : texts) ptrs.push_back(t.c_str());
        size_t rows = 0, d = 0;
        EXPECT_EQ(eurollm_embed_texts(ctx.get(), ptrs.data(), nullptr, ptrs.size(), &ep, nullptr, 0, &rows, &d),
                  texts.empty() ? EUROLLM_OK : EUROLLM_ERR_BUFFER_TOO_SMALL);
        std::vector<float> out(rows * d);
        EXPECT_EQ(eurollm_embed_texts(ctx.get(), ptrs.data(), nullptr, ptrs.size(), &ep, out.data(), out.size(), &rows, &d),
                  EUROLLM_OK)
            << eurollm_last_error();
        if (rows_out) *rows_out = rows;
        return out;
    }
    std::unique_ptr<eurollm::Model> model;
};

double rel_err(const float *a, const std::vector<double> &ref) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        worst = std::max(worst, std::fabs(a[i] - ref[i]));
        scale = std::max(scale, std::fabs(ref[i]));
    }
    return worst / scale;
}

TEST_F(Batching, EmbeddingsMatchTransformers) {
    std::ifstream in(std::string(EUROLLM_GOLDEN_DIR) + "/stories260K_embed.json");
    ASSERT_TRUE(in) << "missing golden stories260K_embed.json";
    const json golden = json::parse(in);
    std::vector<std::string> texts;
    for (const auto &it : golden["items"]) texts.push_back(it["text"]);
    eurollm::Context ctx(*model, params());
    const std::vector<float> mean = embed(ctx, texts, EUROLLM_POOLING_MEAN);
    const std::vector<float> last = embed(ctx, texts, EUROLLM_POOLING_LAST);
    const size_t d = 64;
    for (size_t i = 0; i < texts.size(); ++i) {
        const auto &it = golden["items"][i];
        EXPECT_EQ(model->tokenize(texts[i]), it["tokens"].get<std::vector<int32_t>>());
        EXPECT_LT(rel_err(mean.data() + i * d, it["mean"].get<std::vector<double>>()), 1e-4) << texts[i];
        EXPECT_LT(rel_err(last.data() + i * d, it["last"].get<std::vector<double>>()), 1e-4) << texts[i];
    }
}

TEST_F(Batching, BatchEmbeddingEqualsEmbeddingAlone) {
    const std::vector<std::string> texts = {"Once upon a time", "A much longer text about a dog and a cat who play",
                                            "x", "The end."};
    eurollm::Context ctx(*model, params());
    const std::vector<float> together = embed(ctx, texts, EUROLLM_POOLING_MEAN);
    for (size_t i = 0; i < texts.size(); ++i) {
        const std::vector<float> one = embed(ctx, {texts[i]}, EUROLLM_POOLING_MEAN);
        for (size_t j = 0; j < one.size(); ++j) EXPECT_NEAR(together[i * 64 + j], one[j], 1e-5);
    }
    // A context too small to hold them all at once processes them in rounds: same vectors.
    eurollm::Context small(*model, params(32));
    const std::vector<float> rounds = embed(small, texts, EUROLLM_POOLING_MEAN);
    for (size_t j = 0; j < rounds.size(); ++j) EXPECT_NEAR(rounds[j], together[j], 1e-5);
}

// In BF16 precision on AMX, a prompt's attention runs on tiles for blocks of rows that see nested
// prefixes of one cell list; blocks that straddle two sequences of a batch must not (they stay on
// the per-row kernel). Texts of 17-40 tokens embedded together and alone agree to bf16 rounding;
// a block mixing sequences would leak one text into another (errors of order 1).
TEST_F(Batching, Bf16PromptAttentionKeepsSequencesApart) {
    const std::vector<std::string> texts = {
        "Once upon a time there was a little girl named Lily who loved to play in the park with her dog",
        "The cat sat on the mat and looked at the bird in the tree for a long time",
        "Tom and his mom went to the store to buy some milk and bread, and then they went home to eat",
    };
    eurollm::ContextParams cp = params();
    cp.precision = EUROLLM_PRECISION_BF16;
    eurollm::Context ctx(*model, cp);
    const std::vector<float> together = embed(ctx, texts, EUROLLM_POOLING_MEAN);
    eurollm::Context exact(*model, params());
    for (size_t i = 0; i < texts.size(); ++i) {
        ASSERT_GE(model->tokenize(texts[i]).size(), 17u);
        const std::vector<float> one = embed(ctx, {texts[i]}, EUROLLM_POOLING_MEAN);
        const std::vector<float> ref = embed(exact, {texts[i]}, EUROLLM_POOLING_MEAN);
        const std::vector<double> one_d(one.begin(), one.end()), ref_d(ref.begin(), ref.end());
        EXPECT_LT(rel_err(together.data() + i * 64, one_d), 1e-2) << texts[i];
        EXPECT_LT(rel_err(together.data() + i * 64, ref_d), 2e-2) << texts[i];
    }
}

TEST_F(Batching, PoolingNormalisationTruncationAndCosine) {
    eurollm::Context ctx(*model, params());
    const std::vector<std::string> texts = {"Once upon a time", "The cat sat"};
    size_t rows = 0;
    const std::vector<float> tokens = embed(ctx, texts, EUROLLM_POOLING_NONE, false, 0, &rows);
    EXPECT_EQ(rows, model->tokenize(texts[0]).size() + model->tokenize(texts[1]).size());
    const std::vector<float> first = embed(ctx, texts, EUROLLM_POOLING_FIRST);
    EXPECT_EQ(0, std::memcmp(first.data(), tokens.data(), 64 * sizeof(float)));  // row 0 = BOS state

    const std::vector<float> unit = embed(ctx, texts, EUROLLM_POOLING_MEAN, true);
    const std::vector<float> raw = embed(ctx, texts, EUROLLM_POOLING_MEAN);
    double n2 = 0;
    for (size_t j = 0; j < 64; ++j) n2 += unit[j] * unit[j];
    EXPECT_NEAR(n2, 1.0, 1e-5);
    float cos = 0, cos_raw = 0;
    ASSERT_EQ(eurollm_cosine_similarity(unit.data(), unit.data() + 64, 64, &cos), EUROLLM_OK);
    ASSERT_EQ(eurollm_cosine_similarity(raw.data(), raw.data() + 64, 64, &cos_raw), EUROLLM_OK);
    EXPECT_NEAR(cos, cos_raw, 1e-5);
    double dot = 0;
    for (size_t j = 0; j < 64; ++j) dot += unit[j] * unit[64 + j];
    EXPECT_NEAR(cos, dot, 1e-5);

    size_t r16 = 0;
    const std::vector<float> m16 = embed(ctx, texts, EUROLLM_POOLING_MEAN, true, 16, &r16);
    ASSERT_EQ(m16.size(), 2u * 16);
    double s = 0;
    for (size_t j = 0; j < 16; ++j) s += raw[j] * raw[j];
    for (size_t j = 0; j < 16; ++j) EXPECT_NEAR(m16[j], raw[j] / std::sqrt(s), 1e-5);
}

TEST_F(Batching, EightPromptsDecodedTogetherEqualSeparateRuns) {
    const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Tom", "One day, a big",
                                              "The sun was", "A little bird", "Max had a", "In the park"};
    eurollm::Context ctx(*model, params(1024));
    std::vector<std::unique_ptr<eurollm::Generator>> gens;
    for (size_t i = 0; i < prompts.size(); ++i) {
        gens.push_back(std::make_unique<eurollm::Generator>(ctx, greedy(40, static_cast<int32_t>(i))));
        gens.back()->append(model->tokenize(prompts[i]));
    }
    std::vector<std::vector<int32_t>> got(prompts.size());
    std::vector<eurollm_generator *> raw;
    for (auto &g : gens) raw.push_back(g->get());
    std::vector<int32_t> toks(raw.size());
    std::vector<eurollm_status> st(raw.size());
    for (bool any = true; any;) {
        ASSERT_EQ(eurollm_generator_step_batch(raw.data(), raw.size(), toks.data(), st.data()), EUROLLM_OK)
            << eurollm_last_error();
        any = false;
        for (size_t i = 0; i < raw.size(); ++i)
            if (st[i] == EUROLLM_OK) {
                got[i].push_back(toks[i]);
                any = true;
            }
    }
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i], alone(prompts[i], greedy(40))) << prompts[i];
}

TEST_F(Batching, SequencesJoinAndLeaveBetweenSteps) {
    eurollm::Context ctx(*model, params(1024));
    const std::vector<std::string> prompts = {"Once upon a time", "The dog", "A girl named"};
    const std::vector<int> lengths = {30, 10, 20};
    const std::vector<int> joins = {0, 5, 12};  // step at which each sequence joins
    std::vector<std::unique_ptr<eurollm::Generator>> gens(3);
    std::vector<std::vector<int32_t>> got(3);
    for (int step = 0; step < 60; ++step) {
        std::vector<eurollm_generator *> active;
        std::vector<size_t> which;
        for (size_t i = 0; i < 3; ++i) {
            if (step == joins[i]) {
                gens[i] = std::make_unique<eurollm::Generator>(ctx, greedy(lengths[i], static_cast<int32_t>(i)));
                gens[i]->append(model->tokenize(prompts[i]));
            }
            if (gens[i]) {
                active.push_back(gens[i]->get());
                which.push_back(i);
            }
        }
        std::vector<int32_t> toks(active.size());
        std::vector<eurollm_status> st(active.size());
        ASSERT_EQ(eurollm_generator_step_batch(active.data(), active.size(), toks.data(), st.data()), EUROLLM_OK);
        for (size_t k = 0; k < active.size(); ++k) {
            const size_t i = which[k];
            if (st[k] == EUROLLM_OK) {
                got[i].push_back(toks[k]);
            } else {  // done: leave the batch and free the sequence's cells for others
                gens[i].reset();
                ASSERT_EQ(eurollm_context_seq_remove(ctx.get(), static_cast<int32_t>(i), 0), EUROLLM_OK);
            }
        }
    }
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i], alone(prompts[i], greedy(lengths[i]))) << prompts[i];
}

TEST_F(Batching, PrefixSharingReusesThePrompt) {
    const std::vector<int32_t> prompt = model->tokenize("Once upon a time, there was a");
    eurollm::Context ctx(*model, params(512));
    ASSERT_EQ(eurollm_context_decode(ctx.get(), prompt.data(), prompt.size(), nullptr), EUROLLM_OK);
    for (int32_t s = 1; s < 4; ++s) ASSERT_EQ(eurollm_context_seq_copy(ctx.get(), 0, s, -1), EUROLLM_OK);
    uint32_t n = 0;
    ASSERT_EQ(eurollm_context_seq_n_past(ctx.get(), 3, &n), EUROLLM_OK);
    EXPECT_EQ(n, prompt.size());
    for (int32_t s = 0; s < 4; ++s) {
        eurollm::GeneratorParams gp;
        gp.temperature = 0.9f;
        gp.max_tokens = 20;
        gp.seed = 100 + static_cast<uint64_t>(s);
        gp.seq_id = s;
        eurollm::Generator gen(ctx, gp);  // nothing to append: the shared prompt is already evaluated
        std::vector<int32_t> got;
        while (auto t = gen.step()) got.push_back(*t);
        gp.seq_id = 0;
        EXPECT_EQ(got, alone("Once upon a time, there was a", gp)) << "sequence " << s;
    }
}

TEST_F(Batching, StateSaveAndRestore) {
    const std::vector<int32_t> prompt = model->tokenize("Once upon a time");
    eurollm::Context a(*model, params());
    ASSERT_EQ(eurollm_context_decode(a.get(), prompt.data(), prompt.size(), nullptr), EUROLLM_OK);
    size_t size = 0;
    ASSERT_EQ(eurollm_context_state_save(a.get(), nullptr, 0, &size), EUROLLM_ERR_BUFFER_TOO_SMALL);
    std::vector<uint8_t> blob(size);
    ASSERT_EQ(eurollm_context_state_save(a.get(), blob.data(), blob.size(), &size), EUROLLM_OK);

    auto continue_greedy = [&](eurollm::Context &ctx) {
        eurollm::Generator gen(ctx, greedy(25));
        std::vector<int32_t> out;
        while (auto t = gen.step()) out.push_back(*t);
        return out;
    };
    const std::vector<int32_t> expected = continue_greedy(a);
    eurollm::Context b(*model, params());
    ASSERT_EQ(eurollm_context_state_load(b.get(), blob.data(), blob.size()), EUROLLM_OK) << eurollm_last_error();
    EXPECT_EQ(b.n_past(), prompt.size());
    EXPECT_EQ(continue_greedy(b), expected);

    const std::string path = std::filesystem::temp_directory_path() / ("eurollm-state-" + std::to_string(::getpid()));
    ASSERT_EQ(eurollm_context_state_save_file(b.get(), path.c_str()), EUROLLM_OK);
    eurollm::Context c(*model, params());
    ASSERT_EQ(eurollm_context_state_load_file(c.get(), path.c_str()), EUROLLM_OK) << eurollm_last_error();
    EXPECT_EQ(c.n_past(), b.n_past());
    std::filesystem::remove(path);

    // Corrupt or truncated blobs are refused and leave the context as it was.
    EXPECT_EQ(eurollm_context_state_load(c.get(), blob.data(), blob.size() / 2), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_context_state_load(c.get(), blob.data() + 1, blob.size() - 1), EUROLLM_ERR_INVALID_ARGUMENT);
    std::vector<uint8_t> longer(blob.begin(), blob.end());
    longer.push_back(0);  // one trailing byte
    EXPECT_EQ(eurollm_context_state_load(c.get(), longer.data(), longer.size()), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(c.n_past(), b.n_past());
}

// Random corruption of a saved state (two sequences): a load either succeeds and generation
// continues, or is refused with INVALID_ARGUMENT and leaves the context as it was. Seeded.
TEST_F(Batching, CorruptedStatesAreRefusedOrUsable) {
    eurollm::Context a(*model, params(64));
    const std::vector<int32_t> p0 = model->tokenize("Once upon a time"), p1 = model->tokenize("The dog");
    const int32_t seqs[2] = {0, 1};
    const int32_t *toks[2] = {p0.data(), p1.data()};
    const size_t lens[2] = {p0.size(), p1.size()};
    ASSERT_EQ(eurollm_context_decode_seqs(a.get(), seqs, toks, lens, 2), EUROLLM_OK) << eurollm_last_error();
    size_t size = 0;
    eurollm_context_state_save(a.get(), nullptr, 0, &size);
    std::vector<uint8_t> blob(size);
    ASSERT_EQ(eurollm_context_state_save(a.get(), blob.data(), blob.size(), &size), EUROLLM_OK);

    eurollm::Context b(*model, params(64));
    const std::vector<int32_t> mine = model->tokenize("Lily");
    ASSERT_EQ(eurollm_context_decode(b.get(), mine.data(), mine.size(), nullptr), EUROLLM_OK);
    std::mt19937_64 rng(20261206);
    int refused = 0, loaded = 0;
    for (int it = 0; it < 300; ++it) {
        std::vector<uint8_t> bad = blob;
        for (int e = 0, edits = 1 + static_cast<int>(rng() % 3); e < edits; ++e) {
            // Mostly the header and cell table at the front; sometimes anywhere (cache values).
            const size_t at = static_cast<size_t>(rng() % (rng() % 4 ? std::min<size_t>(bad.size(), 512) : bad.size()));
            bad[at] = rng() % 2 ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(bad[at] ^ (1u << (rng() % 8)));
        }
        const uint32_t before = b.n_past();
        if (eurollm_context_state_load(b.get(), bad.data(), bad.size()) != EUROLLM_OK) {
            ++refused;
            EXPECT_STRNE(eurollm_last_error(), "");
            EXPECT_EQ(b.n_past(), before) << "iteration " << it;
            continue;
        }
        ++loaded;
        eurollm::Generator gen(b, greedy(2));
        while (gen.step()) {
        }
        // back to a known state for the next iteration
        ASSERT_EQ(eurollm_context_reset(b.get()), EUROLLM_OK);
        ASSERT_EQ(eurollm_context_decode(b.get(), mine.data(), mine.size(), nullptr), EUROLLM_OK);
    }
    std::printf("[ fuzz     ] %d corrupted states refused, %d loaded and generated\n", refused, loaded);
    EXPECT_GT(refused, 40);  // edits of cache values and logits load: the blob has no checksum
}

TEST_F(Batching, StateFromAnotherModelIsRefused) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("eurollm-other-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char *f : {"config.json", "tokenizer.model", "tokenizer_config.json", "model.safetensors"})
        fs::copy_file(fs::path(eurollm_test::stories_dir()) / f, dir / f);
    {  // the same architecture with one weight changed: a different model
        std::fstream f(dir / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(-2, std::ios::end);
        char c = 0;
        f.read(&c, 1);
        f.seekp(-2, std::ios::end);
        c ^= 0x40;
        f.write(&c, 1);
    }
    const auto other = eurollm::Model::load(dir.string());
    eurollm::Context a(*model, params());
    const int32_t bos = 1;
    ASSERT_EQ(eurollm_context_decode(a.get(), &bos, 1, nullptr), EUROLLM_OK);
    size_t size = 0;
    eurollm_context_state_save(a.get(), nullptr, 0, &size);
    std::vector<uint8_t> blob(size);
    ASSERT_EQ(eurollm_context_state_save(a.get(), blob.data(), blob.size(), &size), EUROLLM_OK);
    eurollm::Context b(other, params());
    EXPECT_EQ(eurollm_context_state_load(b.get(), blob.data(), blob.size()), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("different model"), std::string::npos);
    fs::remove_all(dir);
}

TEST_F(Batching, BadSequenceUse) {
    eurollm::Context ctx(*model, params(32));
    const int32_t toks[] = {1, 5, 6};
    const int32_t *lists[] = {toks, toks};
    const size_t lens[] = {3, 3};
    const int32_t bad_ids[] = {0, 64};
    EXPECT_EQ(eurollm_context_decode_seqs(ctx.get(), bad_ids, lists, lens, 2), EUROLLM_ERR_INVALID_ARGUMENT);
    const int32_t dup_ids[] = {3, 3};
    EXPECT_EQ(eurollm_context_decode_seqs(ctx.get(), dup_ids, lists, lens, 2), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_context_seq_remove(ctx.get(), -1, 0), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_context_seq_copy(ctx.get(), 0, 99, -1), EUROLLM_ERR_INVALID_ARGUMENT);
    const float *logits = nullptr;
    EXPECT_EQ(eurollm_context_seq_logits(ctx.get(), 5, &logits), EUROLLM_ERR_INVALID_ARGUMENT);

    // A batch larger than the context: refused whole, nothing evaluated.
    std::vector<int32_t> big(20, 7);
    const int32_t *big_lists[] = {big.data(), big.data()};
    const size_t big_lens[] = {20, 20};
    const int32_t ids[] = {0, 1};
    EXPECT_EQ(eurollm_context_decode_seqs(ctx.get(), ids, big_lists, big_lens, 2), EUROLLM_ERR_CONTEXT_FULL);
    uint32_t n = 99;
    ASSERT_EQ(eurollm_context_seq_n_past(ctx.get(), 0, &n), EUROLLM_OK);
    EXPECT_EQ(n, 0u);

    eurollm::GeneratorParams gp = greedy(5, 2);
    eurollm::Generator g(ctx, gp);
    eurollm_generator *second = nullptr;
    EXPECT_EQ(eurollm_generator_init(ctx.get(), &gp, &second), EUROLLM_ERR_INVALID_ARGUMENT);  // seq 2 taken
    gp.seq_id = 70;
    EXPECT_EQ(eurollm_generator_init(ctx.get(), &gp, &second), EUROLLM_ERR_INVALID_ARGUMENT);

    const char *texts[] = {"hello"};
    size_t rows = 0, dim = 0;
    eurollm_embed_params ep;
    eurollm_embed_params_init(&ep, EUROLLM_EMBED_PARAMS_VERSION);
    ep.dim = 65;
    float out[128];
    EXPECT_EQ(eurollm_embed_texts(ctx.get(), texts, nullptr, 1, &ep, out, 128, &rows, &dim), EUROLLM_ERR_INVALID_ARGUMENT);
    ep.dim = 0;
    ep.pooling = static_cast<eurollm_pooling>(9);
    EXPECT_EQ(eurollm_embed_texts(ctx.get(), texts, nullptr, 1, &ep, out, 128, &rows, &dim), EUROLLM_ERR_INVALID_ARGUMENT);
    std::string long_text(400, 'a');
    const char *long_texts[] = {long_text.c_str()};
    ep.pooling = EUROLLM_POOLING_MEAN;
    EXPECT_EQ(eurollm_embed_texts(ctx.get(), long_texts, nullptr, 1, &ep, out, 128, &rows, &dim), EUROLLM_ERR_CONTEXT_FULL);
}

}  // namespace
