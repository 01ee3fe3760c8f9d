#include "model/hparams.h"

#include <cmath>

#include "common/math.h"
#include "core/error.h"

namespace eurollm {
namespace {

using nlohmann::json;

int64_t get_int(const json &cfg, const char *key, int64_t fallback, bool required) {
    if (!cfg.contains(key) || cfg[key].is_null()) {
        if (required) fail(EUROLLM_ERR_BAD_MODEL, "config.json: missing \"", key, "\"");
        return fallback;
    }
    if (!cfg[key].is_number_integer()) fail(EUROLLM_ERR_BAD_MODEL, "config.json: \"", key, "\" must be an integer");
    return cfg[key].get<int64_t>();
}

double get_number(const json &cfg, const char *key, double fallback) {
    if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
    if (!cfg[key].is_number()) fail(EUROLLM_ERR_BAD_MODEL, "config.json: \"", key, "\" must be a number");
    return cfg[key].get<double>();
}

bool get_bool(const json &cfg, const char *key, bool fallback) {
    if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
    if (!cfg[key].is_boolean()) fail(EUROLLM_ERR_BAD_MODEL, "config.json: \"", key, "\" must be true or false");
    return cfg[key].get<bool>();
}

void add_ids(const json &v, std::vector<int32_t> &ids, const char *where) {
    auto add = [&](const json &x) {
        if (!x.is_number_integer()) fail(EUROLLM_ERR_BAD_MODEL, where, ": eos_token_id must be an integer or a list");
        const auto id = x.get<int64_t>();
        if (id < 0 || id > INT32_MAX) fail(EUROLLM_ERR_BAD_MODEL, where, ": eos_token_id ", id, " is out of range");
        for (int32_t e : ids)
            if (e == id) return;
        ids.push_back(static_cast<int32_t>(id));
    };
    if (v.is_array()) {
        for (const auto &x : v) add(x);
    } else if (!v.is_null()) {
        add(v);
    }
}

void parse_rope(const json &cfg, hparams &hp) {
    // transformers 5 writes rope_parameters {rope_type, rope_theta, factor, ...}; older files write
    // rope_theta plus rope_scaling {type|rope_type, factor, ...}.
    json scaling;
    if (cfg.contains("rope_parameters") && cfg["rope_parameters"].is_object()) {
        scaling = cfg["rope_parameters"];
        hp.rope_theta = static_cast<float>(get_number(scaling, "rope_theta", get_number(cfg, "rope_theta", 10000.0)));
    } else {
        hp.rope_theta = static_cast<float>(get_number(cfg, "rope_theta", 10000.0));
        if (cfg.contains("rope_scaling") && cfg["rope_scaling"].is_object()) scaling = cfg["rope_scaling"];
    }
    if (!(hp.rope_theta > 0.0f)) fail(EUROLLM_ERR_BAD_MODEL, "config.json: rope_theta must be positive");
    if (!scaling.is_object()) return;
    std::string type = "default";
    if (scaling.contains("rope_type") && scaling["rope_type"].is_string()) type = scaling["rope_type"];
    else if (scaling.contains("type") && scaling["type"].is_string()) type = scaling["type"];
    if (type == "default") return;
    hp.rope_factor = static_cast<float>(get_number(scaling, "factor", 1.0));
    if (!(hp.rope_factor > 0.0f)) fail(EUROLLM_ERR_BAD_MODEL, "config.json: rope scaling factor must be positive");
    if (type == "linear") {
        hp.rope_scaling = rope_scaling_type::linear;
    } else if (type == "llama3") {
        hp.rope_scaling = rope_scaling_type::llama3;
        hp.rope_low_freq_factor = static_cast<float>(get_number(scaling, "low_freq_factor", 1.0));
        hp.rope_high_freq_factor = static_cast<float>(get_number(scaling, "high_freq_factor", 4.0));
        hp.rope_original_ctx = get_int(scaling, "original_max_position_embeddings", 8192, false);
    } else {
        fail(EUROLLM_ERR_UNSUPPORTED, "config.json: rope scaling type \"", type, "\" is not supported (linear, llama3 are)");
    }
}

}  // namespace

std::vector<float> hparams::rope_inv_freq() const {
    const int half = static_cast<int>(head_dim / 2);
    std::vector<float> inv(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) {
        float f = kmath::rope_inv_freq(i, static_cast<int>(head_dim), rope_theta);
        if (rope_scaling == rope_scaling_type::linear) {
            f /= rope_factor;
        } else if (rope_scaling == rope_scaling_type::llama3) {
            // Long wavelengths are slowed by the factor, short ones kept, the band between blended.
            const float low_wavelen = static_cast<float>(rope_original_ctx) / rope_low_freq_factor;
            const float high_wavelen = static_cast<float>(rope_original_ctx) / rope_high_freq_factor;
            const float wavelen = 2.0f * static_cast<float>(M_PI) / f;
            if (wavelen > low_wavelen) {
                f /= rope_factor;
            } else if (wavelen >= high_wavelen) {
                const float smooth = (static_cast<float>(rope_original_ctx) / wavelen - rope_low_freq_factor) /
                                     (rope_high_freq_factor - rope_low_freq_factor);
                f = (1.0f - smooth) * f / rope_factor + smooth * f;
            }
        }
        inv[static_cast<size_t>(i)] = f;
    }
    return inv;
}

hparams parse_hparams(const json &cfg, const json &gen) {
    if (!cfg.is_object()) fail(EUROLLM_ERR_BAD_MODEL, "config.json: not a JSON object");
    hparams hp;
    hp.architecture = cfg.value("model_type", std::string());
    if (hp.architecture != "llama" && hp.architecture != "mistral")
        fail(EUROLLM_ERR_UNSUPPORTED, "config.json: model_type \"", hp.architecture,
             "\" is not supported (llama and mistral are)");
    const std::string act = cfg.value("hidden_act", std::string("silu"));
    if (act != "silu") fail(EUROLLM_ERR_UNSUPPORTED, "config.json: hidden_act \"", act, "\" is not supported (silu is)");

    hp.n_vocab = get_int(cfg, "vocab_size", 0, true);
    hp.n_embd = get_int(cfg, "hidden_size", 0, true);
    hp.n_layer = get_int(cfg, "num_hidden_layers", 0, true);
    hp.n_head = get_int(cfg, "num_attention_heads", 0, true);
    hp.n_head_kv = get_int(cfg, "num_key_value_heads", hp.n_head, false);
    hp.n_ff = get_int(cfg, "intermediate_size", 0, true);
    hp.n_ctx_train = get_int(cfg, "max_position_embeddings", 2048, false);
    auto positive = [](int64_t v, const char *what, int64_t max) {
        if (v <= 0 || v > max) fail(EUROLLM_ERR_BAD_MODEL, "config.json: ", what, " = ", v, " is out of range");
    };
    positive(hp.n_vocab, "vocab_size", int64_t{1} << 24);
    positive(hp.n_embd, "hidden_size", int64_t{1} << 20);
    positive(hp.n_layer, "num_hidden_layers", 4096);
    positive(hp.n_head, "num_attention_heads", 4096);
    positive(hp.n_head_kv, "num_key_value_heads", 4096);
    positive(hp.n_ff, "intermediate_size", int64_t{1} << 22);
    positive(hp.n_ctx_train, "max_position_embeddings", int64_t{1} << 24);
    if (hp.n_head % hp.n_head_kv != 0)
        fail(EUROLLM_ERR_BAD_MODEL, "config.json: num_attention_heads (", hp.n_head,
             ") is not a multiple of num_key_value_heads (", hp.n_head_kv, ")");
    hp.head_dim = get_int(cfg, "head_dim", hp.n_embd % hp.n_head == 0 ? hp.n_embd / hp.n_head : 0, false);
    if (hp.head_dim <= 0 || hp.head_dim % 2 != 0 || hp.head_dim > 4096)
        fail(EUROLLM_ERR_BAD_MODEL, "config.json: head_dim must be a positive even number");

    hp.rms_eps = static_cast<float>(get_number(cfg, "rms_norm_eps", 1e-6));
    if (!(hp.rms_eps > 0.0f)) fail(EUROLLM_ERR_BAD_MODEL, "config.json: rms_norm_eps must be positive");
    parse_rope(cfg, hp);
    if (hp.architecture == "mistral") {
        hp.sliding_window = get_int(cfg, "sliding_window", 0, false);
        if (hp.sliding_window < 0) fail(EUROLLM_ERR_BAD_MODEL, "config.json: sliding_window must be positive");
    }
    hp.attention_bias = get_bool(cfg, "attention_bias", false);
    hp.mlp_bias = get_bool(cfg, "mlp_bias", false);
    hp.tie_embeddings = get_bool(cfg, "tie_word_embeddings", false);

    hp.bos_id = static_cast<int32_t>(get_int(cfg, "bos_token_id", -1, false));
    hp.pad_id = static_cast<int32_t>(get_int(cfg, "pad_token_id", -1, false));
    if (gen.is_object() && gen.contains("bos_token_id") && gen["bos_token_id"].is_number_integer())
        hp.bos_id = gen["bos_token_id"].get<int32_t>();
    if (gen.is_object() && gen.contains("eos_token_id")) add_ids(gen["eos_token_id"], hp.eos_ids, "generation_config.json");
    if (cfg.contains("eos_token_id")) add_ids(cfg["eos_token_id"], hp.eos_ids, "config.json");
    if (hp.bos_id >= hp.n_vocab) fail(EUROLLM_ERR_BAD_MODEL, "config.json: bos_token_id is outside the vocabulary");
    if (hp.pad_id >= hp.n_vocab) hp.pad_id = -1;
    for (int32_t e : hp.eos_ids)
        if (e >= hp.n_vocab) fail(EUROLLM_ERR_BAD_MODEL, "eos_token_id ", e, " is outside the vocabulary");
    return hp;
}

}  // namespace eurollm
