// One optimizer step at a time: micro-batched forward/backward with gradient accumulation,
// loss scaling by the tokens of the whole step, a finite check, global-norm clipping, the learning
// rate schedule and AdamW. Plus checkpoints (checkpoint.cpp) and PEFT adapters (peft.cpp).
// A trainer belongs to one thread at a time; the model it reads is shared and never written.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "train/manifest.h"
#include "train/rng.h"
#include "train/train_model.h"

namespace eurollm::train {

enum class schedule_kind { cosine, linear, constant };

struct trainer_options {
    train_config model;
    float lr = 1e-4f;
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.0f;
    schedule_kind schedule = schedule_kind::cosine;
    int64_t warmup_steps = 0;
    int64_t total_steps = 0;  // length of the schedule; 0 = constant lr after warmup
    float min_lr_ratio = 0.0f;
    int64_t micro_batch = 0;  // sequences per forward/backward; 0 = the whole batch
    float max_grad_norm = 1.0f;  // 0 = no clipping
    uint64_t seed = 0;
};

struct step_result {
    double loss = 0;       // mean over the tokens that carry a label
    double grad_norm = 0;  // before clipping
    float lr = 0;
    int64_t tokens = 0;        // tokens processed (B * T)
    int64_t loss_tokens = 0;   // tokens that carried a label
    int64_t step = 0;          // optimizer steps taken, this one included
};

struct data_position {
    uint64_t epoch = 0, offset = 0, seed = 0;
};

class trainer {
public:
    trainer(const model &m, const trainer_options &o);

    const trainer_options &options() const { return o_; }
    train_model &net() { return net_; }
    int64_t step_count() const { return step_; }
    int64_t tokens_seen() const { return tokens_seen_; }
    data_position &data() { return data_; }

    float lr_at(int64_t step) const;  // the lr of optimizer step `step` (1-based)

    // One optimizer step over tokens/labels [B, T]. Throws on a non-finite loss or gradient with
    // weights, moments and the step count left as they were.
    step_result step(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T);
    // Mean loss without touching any state; *n_tokens: the tokens that carried a label.
    double eval(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T, int64_t *n_tokens);
    // Forward/backward only: leaves the gradients (of the mean loss) in each param's g.
    double compute_gradients(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T);

    // Checkpoints (checkpoint.cpp): ROOT/checkpoints/step-NNNNNNNN + ROOT/checkpoints/latest.
    std::string save_checkpoint(const std::string &root, int keep_last = 2);
    void load_checkpoint(const std::string &root);  // the latest valid one; throws IO if none

    // PEFT adapters (peft.cpp).
    void export_peft(const std::string &dir) const;
    void load_peft(const std::string &dir);
    // Full fine-tuning: write the trained weights as a model directory (config and tokenizer
    // copied from the base). LoRA: the base with the adapters merged.
    void save_model(const std::string &dir) const;

private:
    const model &m_;
    trainer_options o_;
    train_model net_;
    int64_t step_ = 0;
    int64_t tokens_seen_ = 0;
    rng rng_;
    data_position data_;
};

// The manifest of the latest valid checkpoint under root/checkpoints (checkpoint.cpp).
manifest read_latest_manifest(const std::string &root);

// Merge a PEFT adapter into a base model directory at `scale` (1 = as trained) and write a new
// model directory (peft.cpp).
void merge_adapter(const std::string &base_dir, const std::string &adapter_dir, float scale,
                   const std::string &out_dir);

}  // namespace eurollm::train
