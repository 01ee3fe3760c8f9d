// Hyper-parameters of a Llama-family decoder, read from config.json (and generation_config.json).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eurollm {

enum class rope_scaling_type { none, linear, llama3 };

struct hparams {
    std::string architecture;  // model_type: "llama", "mistral"
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;
    int64_t n_ff = 0;
    int64_t n_ctx_train = 0;
    float rms_eps = 1e-5f;
    float rope_theta = 10000.0f;
    rope_scaling_type rope_scaling = rope_scaling_type::none;
    float rope_factor = 1.0f;
    float rope_low_freq_factor = 1.0f;   // llama3
    float rope_high_freq_factor = 4.0f;  // llama3
    int64_t rope_original_ctx = 8192;    // llama3
    int64_t sliding_window = 0;          // 0: full causal attention
    bool attention_bias = false;
    bool mlp_bias = false;
    bool tie_embeddings = false;
    int32_t bos_id = -1;
    int32_t pad_id = -1;
    std::vector<int32_t> eos_ids;

    // Rotary inverse frequencies with the scaling applied: [head_dim / 2].
    std::vector<float> rope_inv_freq() const;
};

// Throws BAD_MODEL for missing or inconsistent fields, UNSUPPORTED for known-but-unsupported options.
hparams parse_hparams(const nlohmann::json &config, const nlohmann::json &generation_config);

}  // namespace eurollm
