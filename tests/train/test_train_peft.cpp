// LoRA adapters in PEFT layout: export and reload, the logits PEFT computes with an adapter
// libeurollm exported (golden/peft_export_logits.safetensors, made by make_train_goldens.py
// --peft-export from golden/peft_export_adapter, itself written by this test), merge into a new
// model directory and loading a model with an adapter applied at a scale; corrupted adapters
// fail cleanly or load and run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

#include "train_test_util.h"

namespace {

const char *kModel = "tiny_llama3rope_sharded_f32";

eurollm_trainer_params lora_params() {
    eurollm_trainer_params p;
    eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
    p.lora_rank = 4;
    p.lora_alpha = 8;
    p.lora_targets = EUROLLM_LORA_Q | EUROLLM_LORA_K | EUROLLM_LORA_V | EUROLLM_LORA_O | EUROLLM_LORA_DOWN;
    p.lr = 2e-2f;
    p.total_steps = 8;
    p.seed = 11;
    p.n_threads = 2;
    return p;
}

// A deterministic LoRA run (8 steps) whose adapter is exported to `dir`.
ttest::TrainerPtr trained(eurollm_model *m) {
    auto t = ttest::make_trainer(m, lora_params());
    std::vector<int32_t> tok(2 * 16);
    uint32_t x = 99;
    for (auto &v : tok) {
        x = x * 1664525u + 1013904223u;
        v = 3 + static_cast<int32_t>((x >> 8) % 250);
    }
    for (int s = 0; s < 8; ++s)
        EXPECT_EQ(EUROLLM_OK, eurollm_trainer_step(t.get(), tok.data(), tok.data(), 2, 16, nullptr)) << eurollm_last_error();
    return t;
}

std::vector<float> trainer_logits(eurollm_trainer *t, const std::vector<int32_t> &tok, size_t n_vocab) {
    std::vector<float> out(tok.size() * n_vocab);
    EXPECT_EQ(EUROLLM_OK, eurollm_trainer_logits(t, tok.data(), tok.size(), out.data(), out.size())) << eurollm_last_error();
    return out;
}

std::vector<float> model_logits(eurollm_model *m, const std::vector<int32_t> &tok, size_t n_vocab) {
    eurollm_context *ctx = nullptr;
    EXPECT_EQ(EUROLLM_OK, eurollm_context_init(m, nullptr, &ctx)) << eurollm_last_error();
    std::vector<float> out(tok.size() * n_vocab);
    EXPECT_EQ(EUROLLM_OK, eurollm_context_decode_all(ctx, tok.data(), tok.size(), out.data(), out.size()))
        << eurollm_last_error();
    eurollm_context_free(ctx);
    return out;
}

// Worst row of max|a - b| / max|b|.
double worst_row(const std::vector<float> &a, const std::vector<float> &b, size_t n_vocab) {
    double worst = 0;
    for (size_t r = 0; r < a.size() / n_vocab; ++r) {
        double num = 0, den = 0;
        for (size_t c = 0; c < n_vocab; ++c) {
            num = std::max(num, std::fabs(static_cast<double>(a[r * n_vocab + c]) - b[r * n_vocab + c]));
            den = std::max(den, std::fabs(static_cast<double>(b[r * n_vocab + c])));
        }
        worst = std::max(worst, num / den);
    }
    return worst;
}

}  // namespace

TEST(Peft, ExportThenLoadGivesTheSameAdapterAndLogits) {
    auto model = ttest::load(ttest::tiny_dir() + "/" + kModel);
    auto t = trained(model.get());
    const std::string dir = ttest::scratch_dir() + "/peft_export";
    std::system(("rm -rf '" + dir + "'").c_str());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_export_peft(t.get(), dir.c_str())) << eurollm_last_error();
    const auto cfg = ttest::read_json(dir + "/adapter_config.json");
    EXPECT_EQ(cfg["peft_type"], "LORA");
    EXPECT_EQ(cfg["r"], 4);
    EXPECT_EQ(cfg["target_modules"].size(), 5u);
    const auto st = ttest::read_safetensors(dir + "/adapter_model.safetensors");
    ASSERT_TRUE(st.count("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    EXPECT_EQ(st.at("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape, (std::vector<int64_t>{64, 4}));

    auto u = ttest::make_trainer(model.get(), lora_params());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_load_peft(u.get(), dir.c_str())) << eurollm_last_error();
    EXPECT_EQ(ttest::snapshot(t.get(), EUROLLM_TENSOR_VALUE), ttest::snapshot(u.get(), EUROLLM_TENSOR_VALUE));
    const std::vector<int32_t> tok = {1, 5, 60, 7, 200};
    EXPECT_EQ(trainer_logits(t.get(), tok, 256), trainer_logits(u.get(), tok, 256));
    // A mismatched trainer is refused with a message.
    auto p = lora_params();
    p.lora_rank = 8;
    auto w = ttest::make_trainer(model.get(), p);
    EXPECT_EQ(EUROLLM_ERR_INVALID_ARGUMENT, eurollm_trainer_load_peft(w.get(), dir.c_str()));
}

TEST(Peft, ExportedAdapterGivesPeftsLogits) {
    const std::string golden = ttest::golden_dir() + "/peft_export_logits.safetensors";
    const std::string committed = ttest::golden_dir() + "/peft_export_adapter";
    auto model = ttest::load(ttest::tiny_dir() + "/" + kModel);
    // This run's export, kept where make_train_goldens.py --peft-export can read it.
    auto t = trained(model.get());
    const std::string dir = ttest::scratch_dir() + "/peft_for_golden";
    std::system(("rm -rf '" + dir + "'").c_str());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_export_peft(t.get(), dir.c_str()));
    if (access(golden.c_str(), F_OK) != 0) GTEST_SKIP() << "no " << golden << " (run make_train_goldens.py --peft-export " << dir << ")";
    const auto g = ttest::read_safetensors(golden);
    const auto &tok_i = g.at("tokens").i;
    const std::vector<int32_t> tok(tok_i.begin(), tok_i.end());
    const auto &ref = g.at("logits").f;
    // (1) the committed adapter (the one PEFT loaded) in a libeurollm trainer;
    auto u = ttest::make_trainer(model.get(), lora_params());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_load_peft(u.get(), committed.c_str())) << eurollm_last_error();
    const double e1 = worst_row(trainer_logits(u.get(), tok, 256), ref, 256);
    // (2) this run's freshly trained adapter (same run, this machine);
    const double e2 = worst_row(trainer_logits(t.get(), tok, 256), ref, 256);
    // (3) the inference path: the base loaded with the adapter applied at scale 1.
    eurollm_model *applied = nullptr;
    ASSERT_EQ(EUROLLM_OK, eurollm_model_load_with_adapter((ttest::tiny_dir() + "/" + kModel).c_str(), committed.c_str(), 1.0f,
                                                          nullptr, &applied))
        << eurollm_last_error();
    ttest::ModelPtr ap(applied);
    const double e3 = worst_row(model_logits(applied, tok, 256), ref, 256);
    std::printf("logits vs PEFT: committed adapter %.2e, fresh run %.2e, merged model %.2e\n", e1, e2, e3);
    EXPECT_LT(e1, 1e-4);
    EXPECT_LT(e2, 1e-4);
    EXPECT_LT(e3, 1e-4);
}

TEST(Peft, MergeAndApplyAtScale) {
    const std::string base = ttest::tiny_dir() + "/" + kModel;
    auto model = ttest::load(base);
    auto t = trained(model.get());
    const std::string adapter = ttest::scratch_dir() + "/peft_merge_adapter", merged = ttest::scratch_dir() + "/peft_merged";
    std::system(("rm -rf '" + adapter + "' '" + merged + "'").c_str());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_export_peft(t.get(), adapter.c_str()));
    ASSERT_EQ(EUROLLM_OK, eurollm_adapter_merge(base.c_str(), adapter.c_str(), 1.0f, merged.c_str())) << eurollm_last_error();
    auto mm = ttest::load(merged);
    const std::vector<int32_t> tok = {1, 17, 200, 45, 99, 3, 150, 77};
    const auto lt = trainer_logits(t.get(), tok, 256);
    EXPECT_LT(worst_row(model_logits(mm.get(), tok, 256), lt, 256), 1e-5);
    // Scale 0 is the base model; scale 0.5 lies between.
    eurollm_model *m0 = nullptr;
    ASSERT_EQ(EUROLLM_OK, eurollm_model_load_with_adapter(base.c_str(), adapter.c_str(), 0.0f, nullptr, &m0));
    ttest::ModelPtr p0(m0);
    const auto lb = model_logits(model.get(), tok, 256);
    EXPECT_EQ(model_logits(m0, tok, 256), lb);
    eurollm_model *mh = nullptr;
    ASSERT_EQ(EUROLLM_OK, eurollm_model_load_with_adapter(base.c_str(), adapter.c_str(), 0.5f, nullptr, &mh));
    ttest::ModelPtr ph(mh);
    const auto lh = model_logits(mh, tok, 256);
    EXPECT_GT(worst_row(lh, lb, 256), 1e-4);
    EXPECT_GT(worst_row(lh, lt, 256), 1e-4);
    // Full fine-tuning: save_model writes a loadable model with the trained weights.
    auto p = lora_params();
    p.mode = EUROLLM_TRAIN_FULL;
    p.lr = 1e-3f;
    auto f = ttest::make_trainer(model.get(), p);
    for (int s = 0; s < 3; ++s) ASSERT_EQ(EUROLLM_OK, eurollm_trainer_step(f.get(), tok.data(), tok.data(), 1, tok.size(), nullptr));
    const std::string saved = ttest::scratch_dir() + "/full_saved";
    std::system(("rm -rf '" + saved + "'").c_str());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_save_model(f.get(), saved.c_str())) << eurollm_last_error();
    auto sm = ttest::load(saved);
    EXPECT_LT(worst_row(model_logits(sm.get(), tok, 256), trainer_logits(f.get(), tok, 256), 256), 1e-5);
}

// The committed adapter with random edits of adapter_config.json or of the safetensors header:
// loading the base with it either fails with a status and a message, or gives a model that runs.
// Seeded; never a crash (the sanitizer builds check the reads).
TEST(Peft, CorruptedAdaptersFailCleanlyOrWork) {
    namespace fs = std::filesystem;
    const std::string base = ttest::tiny_dir() + "/" + kModel, src = ttest::golden_dir() + "/peft_export_adapter";
    const std::string dir = ttest::scratch_dir() + "/peft_corrupted";
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::mt19937_64 rng(20261206);
    int refused = 0, loaded = 0;
    const std::vector<int32_t> tok = {1, 17, 200, 45};
    for (const char *name : {"adapter_config.json", "adapter_model.safetensors"}) {
        std::ifstream in(src + "/" + name, std::ios::binary);
        const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        ASSERT_GT(good.size(), 16u) << name;
        uint64_t header = good.size();  // the safetensors JSON header: where the parser decides
        if (std::string(name) == "adapter_model.safetensors") std::memcpy(&header, good.data(), 8), header += 8;
        for (int it = 0; it < 80; ++it) {
            std::string b = good;
            for (int e = 0, edits = 1 + static_cast<int>(rng() % 3); e < edits; ++e) {
                const size_t at = static_cast<size_t>(rng() % std::min<uint64_t>(header, b.size()));
                b[at] = rng() % 2 ? static_cast<char>(rng()) : static_cast<char>(b[at] ^ (1 << (rng() % 8)));
            }
            for (const char *f : {"adapter_config.json", "adapter_model.safetensors"}) fs::copy_file(src + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
            std::ofstream(dir + "/" + name, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
            eurollm_model *m = nullptr;
            if (eurollm_model_load_with_adapter(base.c_str(), dir.c_str(), 1.0f, nullptr, &m) != EUROLLM_OK) {
                ++refused;
                EXPECT_EQ(m, nullptr);
                EXPECT_STRNE(eurollm_last_error(), "") << name << " iteration " << it;
                continue;
            }
            ++loaded;
            ttest::ModelPtr owned(m);
            EXPECT_EQ(model_logits(m, tok, 256).size(), tok.size() * 256) << name << " iteration " << it;
        }
    }
    fs::remove_all(dir);
    std::printf("[ fuzz     ] %d corrupted adapters refused, %d loaded and ran\n", refused, loaded);
    EXPECT_GT(refused, 40);
}
