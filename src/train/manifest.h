// The checkpoint manifest (schema: proto/eurollm.proto, message eurollm.pb.Manifest) and its
// Protobuf wire-format codec. Hand-written because libprotobuf cannot share a process with
// Debian's libsentencepiece (see eurollm.proto); the bytes are ordinary Protobuf.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eurollm::train {

struct manifest {
    struct file_entry {
        std::string name;
        uint64_t size = 0;
        std::string sha256;
    };
    uint32_t format_version = 1;
    int64_t step = 0;
    std::string mode;  // "full" | "lora"
    // LoraConfig
    uint32_t lora_rank = 0;
    float lora_alpha = 0, lora_dropout = 0;
    uint32_t lora_targets = 0;
    // Hyperparameters
    float lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0, max_grad_norm = 0;
    int64_t micro_batch = 0;
    uint64_t seed = 0;
    std::string precision;  // "exact" | "bf16"; empty (written before the field): exact
    // Schedule
    std::string schedule_kind;
    int64_t warmup_steps = 0, total_steps = 0;
    float min_lr_ratio = 0;
    uint64_t rng_state = 0;
    // DataPosition
    uint64_t data_epoch = 0, data_offset = 0, data_seed = 0;
    std::vector<file_entry> files;
    std::string base_model;
    int64_t n_trainable = 0;
    std::string created_by;
    int64_t tokens_seen = 0;

    std::string encode() const;
    // Throws BAD_MODEL on malformed bytes; unknown fields are skipped.
    static manifest decode(const std::string &bytes);
};

}  // namespace eurollm::train
