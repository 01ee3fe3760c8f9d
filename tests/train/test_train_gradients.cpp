// Gradients of every trainable tensor against PyTorch autograd (tests/data/train/golden, made by
// make_train_goldens.py with transformers + PEFT on the tiny models), full fine-tuning and LoRA,
// with and without loss masking: relative error per tensor below 1e-4 (float32).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "train_test_util.h"

namespace {

std::vector<std::string> golden_cases() {
    return {"full_mha_tied",           "full_mha_tied_masked",       "full_mqa_bias_masked",
            "full_llama3rope_gqa",     "full_mistral_swa_masked",    "lora_mha_tied",
            "lora_llama3rope_all_masked", "lora_mqa_bias_all_masked", "lora_mistral_swa_bf16_masked"};
}

struct golden_case {
    nlohmann::json meta;
    std::map<std::string, ttest::tensor> grads;
    ttest::ModelPtr model;
    eurollm_trainer_params params;
};

golden_case open_case(const std::string &name, int32_t micro_batch = 0) {
    golden_case c;
    const std::string base = ttest::golden_dir() + "/" + name;
    c.meta = ttest::read_json(base + ".json");
    c.grads = ttest::read_safetensors(base + ".grads.safetensors");
    c.model = ttest::load(ttest::tiny_dir() + "/" + c.meta["model"].get<std::string>());
    eurollm_trainer_params_init(&c.params, EUROLLM_TRAINER_PARAMS_VERSION);
    c.params.micro_batch = micro_batch;
    c.params.n_threads = 2;
    if (c.meta["mode"] == "full") {
        c.params.mode = EUROLLM_TRAIN_FULL;
    } else {
        c.params.mode = EUROLLM_TRAIN_LORA;
        c.params.lora_rank = c.meta["lora_r"];
        c.params.lora_alpha = c.meta["lora_alpha"];
        c.params.lora_targets = ttest::target_bits(c.meta["lora_targets"]);
    }
    return c;
}

}  // namespace

class TrainGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGradients, MatchPyTorchAutograd) {
    golden_case c = open_case(GetParam());
    auto tr = ttest::make_trainer(c.model.get(), c.params);
    if (c.params.mode == EUROLLM_TRAIN_LORA) {
        const std::string adapter = ttest::golden_dir() + "/" + GetParam() + ".adapter";
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_load_peft(tr.get(), adapter.c_str())) << eurollm_last_error();
    }
    const auto tokens = c.meta["tokens"].get<std::vector<int32_t>>();
    const auto labels = c.meta["labels"].get<std::vector<int32_t>>();
    const size_t B = c.meta["B"], T = c.meta["T"];
    float loss = 0;
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_compute_gradients(tr.get(), tokens.data(), labels.data(), B, T, &loss))
        << eurollm_last_error();
    const double ref_loss = c.meta["loss"];
    EXPECT_NEAR(loss, ref_loss, 1e-5 * std::fabs(ref_loss)) << "loss";

    const auto names = ttest::tensor_names(tr.get());
    std::set<std::string> ours(names.begin(), names.end()), theirs;
    for (const auto &kv : c.grads) theirs.insert(kv.first);
    EXPECT_EQ(ours, theirs) << "the trainable sets differ";
    double worst = 0;
    std::string worst_name;
    for (const auto &name : names) {
        const auto it = c.grads.find(name);
        if (it == c.grads.end()) continue;
        const auto g = ttest::get(tr.get(), name, EUROLLM_TENSOR_GRAD);
        ASSERT_EQ(g.size(), it->second.f.size()) << name;
        const double err = ttest::rel_err(g, it->second.f);
        EXPECT_LT(err, 1e-4) << name;
        if (err > worst) {
            worst = err;
            worst_name = name;
        }
    }
    std::printf("[ %s ] %zu tensors, loss %.7f (torch %.7f), worst relative error %.2e (%s)\n", GetParam().c_str(),
                names.size(), loss, ref_loss, worst, worst_name.c_str());
}

INSTANTIATE_TEST_SUITE_P(Golden, TrainGradients, ::testing::ValuesIn(golden_cases()),
                         [](const ::testing::TestParamInfo<std::string> &i) { return i.param; });

// Gradient accumulation: one sequence per forward/backward gives the gradients of the whole batch.
TEST(TrainGradients, MicroBatchesAccumulateToTheFullBatchGradient) {
    for (const std::string name : {"full_mqa_bias_masked", "lora_llama3rope_all_masked"}) {
        golden_case whole = open_case(name, 0), micro = open_case(name, 1);
        auto a = ttest::make_trainer(whole.model.get(), whole.params);
        auto b = ttest::make_trainer(micro.model.get(), micro.params);
        const auto tokens = whole.meta["tokens"].get<std::vector<int32_t>>();
        const auto labels = whole.meta["labels"].get<std::vector<int32_t>>();
        float la = 0, lb = 0;
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_compute_gradients(a.get(), tokens.data(), labels.data(), 2, 12, &la));
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_compute_gradients(b.get(), tokens.data(), labels.data(), 2, 12, &lb));
        EXPECT_NEAR(la, lb, 1e-6 * std::fabs(la));
        for (const auto &n : ttest::tensor_names(a.get()))
            EXPECT_LT(ttest::rel_err(ttest::get(b.get(), n, EUROLLM_TENSOR_GRAD), ttest::get(a.get(), n, EUROLLM_TENSOR_GRAD)),
                      1e-5)
                << name << " " << n;
    }
}
