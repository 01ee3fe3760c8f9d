// The trainer through the experimental C API: fine-tuning stories260K lowers its held-out loss,
// a run stopped at step 25 and resumed from its checkpoint reproduces the uninterrupted run bit
// for bit, NaN/Inf losses leave everything unchanged, the schedule, the progress callback; a
// corrupted JSONL file fails to load or gives valid ids.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sys/stat.h>

#include "train_test_util.h"

namespace {

using ttest::bits;
using ttest::eval_all;
using ttest::load_data;
using ttest::run_steps;

eurollm_trainer_params stories_params() {
    eurollm_trainer_params p;
    eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
    p.mode = EUROLLM_TRAIN_FULL;
    p.lr = 2e-3f;
    p.warmup_steps = 5;
    p.total_steps = 50;
    p.min_lr_ratio = 0.1f;
    p.weight_decay = 0.01f;
    p.micro_batch = 4;  // two micro-batches per step: gradient accumulation in the loop
    p.seed = 7;
    p.n_threads = 2;
    return p;
}

}  // namespace

TEST(Trainer, Stories260KFiftyStepsLowerHeldOutLossAndResumeIsBitwise) {
    auto model = ttest::load(ttest::stories_dir());
    const size_t T = 64, B = 8;
    auto train = load_data(model.get(), ttest::data_dir() + "/stories_train.jsonl", T);
    auto held = load_data(model.get(), ttest::data_dir() + "/stories_heldout.jsonl", T);
    ASSERT_GE(eurollm_dataset_n_sequences(train.get()), B);

    // Uninterrupted: 50 steps.
    auto a = ttest::make_trainer(model.get(), stories_params());
    const float before = eval_all(a.get(), held.get(), T);
    const auto losses_a = run_steps(a.get(), train.get(), B, T, 50, 7);
    const float after = eval_all(a.get(), held.get(), T);
    ASSERT_EQ(losses_a.size(), 50u);
    std::printf("stories260K held-out loss: %.4f before, %.4f after 50 steps (train loss %.4f -> %.4f)\n", before, after,
                losses_a.front(), losses_a.back());
    EXPECT_LT(after, before - 0.2f);

    // Stopped at 25, checkpointed, a new trainer resumed from the checkpoint's params.
    ttest::expect_resume_bitwise(
        model.get(), stories_params(),
        [](const std::string &dir) {
            eurollm_trainer_params p;
            eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
            EXPECT_EQ(EUROLLM_OK, eurollm_trainer_params_from_checkpoint(dir.c_str(), &p)) << eurollm_last_error();
            p.n_threads = 1;  // a different thread count must not change a bit
            return p;
        },
        train.get(), B, T, 25, 50, 7, ttest::scratch_dir() + "/resume_stories", a.get(), losses_a);
}

TEST(Trainer, LoraWithDropoutResumesBitwise) {
    auto model = ttest::load(ttest::tiny_dir() + "/tiny_llama_gqa2_untied_bf16");
    auto ds = load_data(model.get(), ttest::tiny_tokens_file(), 16);
    eurollm_trainer_params p;
    eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
    p.lora_rank = 4;
    p.lora_alpha = 8;
    p.lora_dropout = 0.1f;
    p.lora_targets = EUROLLM_LORA_ALL;
    p.lr = 1e-2f;
    p.total_steps = 12;
    p.schedule = EUROLLM_SCHEDULE_LINEAR;
    p.seed = 3;
    p.n_threads = 2;
    auto a = ttest::make_trainer(model.get(), p);
    const auto la = run_steps(a.get(), ds.get(), 4, 16, 12, 3);
    EXPECT_LT(la.back(), la.front());
    ttest::expect_resume_bitwise(
        model.get(), p, [&](const std::string &) { return p; }, ds.get(), 4, 16, 5, 12, 3,
        ttest::scratch_dir() + "/resume_lora", a.get(), la);
}

// A copy of a tiny model with one weight of the final norm set to `value` (NaN or Inf).
std::string poisoned_model(const std::string &name, float value, const std::string &tag) {
    const std::string src = ttest::tiny_dir() + "/" + name, dst = ttest::scratch_dir() + "/poisoned_" + tag;
    std::system(("rm -rf '" + dst + "' && mkdir -p '" + dst + "' && cp '" + src + "'/* '" + dst + "'/").c_str());
    std::string bytes = ttest::read_file(dst + "/model.safetensors");
    uint64_t n = 0;
    for (int k = 0; k < 8; ++k) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
    const auto header = nlohmann::json::parse(bytes.substr(8, n));
    const size_t off = 8 + n + header["model.norm.weight"]["data_offsets"][0].get<size_t>();
    std::memcpy(&bytes[off + 4], &value, 4);
    std::ofstream(dst + "/model.safetensors", std::ios::binary) << bytes;
    return dst;
}

TEST(Trainer, NonFiniteLossStopsTheStepAndLeavesEverythingUnchanged) {
    for (float poison : {NAN, INFINITY}) {
        for (auto mode : {EUROLLM_TRAIN_LORA, EUROLLM_TRAIN_FULL}) {
            auto model = ttest::load(poisoned_model("tiny_llama_mha_tied_f32", poison, std::isnan(poison) ? "nan" : "inf"));
            eurollm_trainer_params p;
            eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
            p.mode = mode;
            p.n_threads = 2;
            auto t = ttest::make_trainer(model.get(), p);
            std::vector<int32_t> tok = {1, 5, 9, 13, 17, 21, 25, 29};
            const auto w0 = ttest::snapshot(t.get(), EUROLLM_TENSOR_VALUE);
            const auto m0 = ttest::snapshot(t.get(), EUROLLM_TENSOR_EXP_AVG);
            const auto v0 = ttest::snapshot(t.get(), EUROLLM_TENSOR_EXP_AVG_SQ);
            eurollm_train_result r;
            const eurollm_status st = eurollm_trainer_step(t.get(), tok.data(), tok.data(), 1, tok.size(), &r);
            EXPECT_EQ(EUROLLM_ERR_GENERIC, st);
            const std::string msg = eurollm_last_error();
            EXPECT_NE(msg.find("not finite"), std::string::npos) << msg;
            EXPECT_NE(msg.find("unchanged"), std::string::npos) << msg;
            EXPECT_EQ(eurollm_trainer_step_count(t.get()), 0);
            const auto w1 = ttest::snapshot(t.get(), EUROLLM_TENSOR_VALUE);
            EXPECT_EQ(0, std::memcmp(w0.data(), w1.data(), w0.size() * sizeof(float)));
            EXPECT_EQ(m0, ttest::snapshot(t.get(), EUROLLM_TENSOR_EXP_AVG));
            EXPECT_EQ(v0, ttest::snapshot(t.get(), EUROLLM_TENSOR_EXP_AVG_SQ));
        }
    }
}

TEST(Trainer, ScheduleWarmsUpThenDecays) {
    auto model = ttest::load(ttest::tiny_dir() + "/tiny_llama_mha_tied_f32");
    eurollm_trainer_params p;
    eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
    p.lr = 1e-3f;
    p.warmup_steps = 4;
    p.total_steps = 14;
    p.min_lr_ratio = 0.1f;
    p.n_threads = 1;
    auto t = ttest::make_trainer(model.get(), p);
    std::vector<int32_t> tok = {1, 5, 9, 13, 17, 21, 25, 29};
    std::vector<float> lrs;
    for (int s = 0; s < 16; ++s) {
        eurollm_train_result r;
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_step(t.get(), tok.data(), tok.data(), 1, tok.size(), &r));
        lrs.push_back(r.lr);
        EXPECT_EQ(r.step, s + 1);
        EXPECT_EQ(r.tokens, 8);
        EXPECT_EQ(r.loss_tokens, 7);
    }
    EXPECT_NEAR(lrs[0], 2.5e-4f, 1e-9);
    EXPECT_NEAR(lrs[3], 1e-3f, 1e-9);
    EXPECT_NEAR(lrs[8], 1e-4f + 0.9e-3f * 0.5f, 1e-8);  // half-way through the decay
    EXPECT_NEAR(lrs[13], 1e-4f, 1e-9);
    EXPECT_NEAR(lrs[15], 1e-4f, 1e-9);
}

TEST(Trainer, ProgressCallbackAndArgumentChecks) {
    auto model = ttest::load(ttest::tiny_dir() + "/tiny_llama_mha_tied_f32");
    auto t = ttest::make_trainer(model.get(), [] {
        eurollm_trainer_params p;
        eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
        return p;
    }());
    int calls = 0;
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_set_progress(
                              t.get(),
                              [](const eurollm_train_result *r, void *u) {
                                  ++*static_cast<int *>(u);
                                  return r->step < 2;
                              },
                              &calls));
    std::vector<int32_t> tok = {1, 5, 9, 13}, masked = {-100, -100, -100, -100}, bad = {1, 5, 999, 13};
    EXPECT_EQ(EUROLLM_OK, eurollm_trainer_step(t.get(), tok.data(), tok.data(), 1, 4, nullptr));
    EXPECT_EQ(EUROLLM_ERR_ABORTED, eurollm_trainer_step(t.get(), tok.data(), tok.data(), 1, 4, nullptr));
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(eurollm_trainer_step_count(t.get()), 2);
    EXPECT_EQ(EUROLLM_ERR_INVALID_ARGUMENT, eurollm_trainer_step(t.get(), tok.data(), masked.data(), 1, 4, nullptr));
    EXPECT_EQ(EUROLLM_ERR_INVALID_ARGUMENT, eurollm_trainer_step(t.get(), bad.data(), bad.data(), 1, 4, nullptr));
    EXPECT_EQ(EUROLLM_ERR_INVALID_ARGUMENT, eurollm_trainer_step(nullptr, tok.data(), tok.data(), 1, 4, nullptr));
    EXPECT_EQ(eurollm_trainer_step_count(t.get()), 2);
    eurollm_trainer_free(nullptr);
}

// A JSONL file with every kind of line (plain text, a chat, token ids with labels), corrupted at
// random: loading either fails with a status and a message, or gives sequences whose tokens are
// vocabulary ids and whose labels are ids or negative (ignored). Never a crash. Seeded. (It found
// that labels past the vocabulary were accepted at load and refused only when stepped.)
TEST(Dataset, CorruptedJsonlFailsCleanlyOrGivesValidIds) {
    auto model = ttest::load(ttest::stories_dir());
    int64_t vocab = 0;
    ASSERT_EQ(EUROLLM_OK, eurollm_model_get_info(model.get(), EUROLLM_INFO_N_VOCAB, &vocab));
    std::string good;
    {
        std::ifstream in(ttest::data_dir() + "/stories_train.jsonl");
        std::string line;
        for (int i = 0; i < 3 && std::getline(in, line); ++i) good += line + "\n";
    }
    good += R"({"messages": [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon a time."}]})" "\n";
    good += R"({"tokens": [1, 17, 200, 45, 99], "labels": [-100, -100, 200, 45, 99]})" "\n";
    const std::string path = ttest::scratch_dir() + "/corrupt.jsonl";
    std::mt19937_64 rng(20261206);
    int refused = 0, loaded = 0;
    for (int it = 0; it < 150; ++it) {
        std::string bad = good;
        for (int e = 0, edits = 1 + static_cast<int>(rng() % 3); e < edits; ++e) {
            const size_t at = static_cast<size_t>(rng() % bad.size());
            switch (rng() % 3) {
            case 0: bad[at] = "{}[]\":,-0123456789 \\ntu"[rng() % 24]; break;
            case 1: bad[at] = static_cast<char>(rng()); break;
            default: bad.erase(at, 1 + rng() % 8); break;
            }
        }
        std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
        eurollm_dataset *d = nullptr;
        if (eurollm_dataset_load(model.get(), path.c_str(), 16, &d) != EUROLLM_OK) {
            ++refused;
            EXPECT_EQ(d, nullptr);
            EXPECT_STRNE(eurollm_last_error(), "") << "iteration " << it;
            continue;
        }
        ++loaded;
        ttest::DatasetPtr owned(d);
        const size_t n = eurollm_dataset_n_sequences(d);
        std::vector<int32_t> tokens(n * 16), labels(n * 16);
        ASSERT_EQ(EUROLLM_OK, eurollm_dataset_get(d, 3, 0, true, 0, n, tokens.data(), labels.data())) << eurollm_last_error();
        for (size_t i = 0; i < tokens.size(); ++i) {
            ASSERT_TRUE(tokens[i] >= 0 && tokens[i] < vocab) << "iteration " << it << ": token " << tokens[i];
            ASSERT_LT(labels[i], vocab) << "iteration " << it << ": label " << labels[i];  // negative: ignored
        }
    }
    // The case the corruption found, written out: a label one past the vocabulary.
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        << R"({"tokens": [1, 17, 200], "labels": [-100, 17, )" << vocab << "]}\n";
    eurollm_dataset *d = nullptr;
    EXPECT_EQ(EUROLLM_ERR_INVALID_ARGUMENT, eurollm_dataset_load(model.get(), path.c_str(), 2, &d));
    EXPECT_NE(std::string(eurollm_last_error()).find("label " + std::to_string(vocab)), std::string::npos)
        << eurollm_last_error();
    std::remove(path.c_str());
    std::printf("[ fuzz     ] %d corrupted data files refused, %d loaded with valid ids\n", refused, loaded);
    EXPECT_GT(refused, 30);
    EXPECT_GT(loaded, 10);
}
