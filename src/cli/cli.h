// Shared pieces of the eurollm command-line tool: argument cursor, number parsing, errors.
// Each command lives in its own cmd_<name>.cpp and registers in main.cpp's table.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "eurollm.hpp"

namespace cli {

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct args {
    std::vector<std::string> v;
    size_t i = 0;
    bool done() const { return i >= v.size(); }
    const std::string &next(const std::string &opt) {
        if (i >= v.size()) throw usage_error("option " + opt + " needs a value");
        return v[i++];
    }
};

inline long long to_int(const std::string &s, const std::string &opt) {
    char *end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || errno) throw usage_error("option " + opt + " expects an integer, got '" + s + "'");
    return v;
}

inline float to_float(const std::string &s, const std::string &opt) {
    char *end = nullptr;
    const float v = std::strtof(s.c_str(), &end);
    if (s.empty() || *end) throw usage_error("option " + opt + " expects a number, got '" + s + "'");
    return v;
}

// --weight-type / quantize --type: "auto" keeps the stored types.
inline eurollm_weight_type to_weight_type(const std::string &s, const std::string &opt) {
    if (s == "auto") return EUROLLM_WEIGHT_AUTO;
    if (s == "f32") return EUROLLM_WEIGHT_F32;
    if (s == "f16") return EUROLLM_WEIGHT_F16;
    if (s == "bf16") return EUROLLM_WEIGHT_BF16;
    if (s == "q8_0") return EUROLLM_WEIGHT_Q8_0;
    if (s == "q4_0") return EUROLLM_WEIGHT_Q4_0;
    if (s == "q4_k") return EUROLLM_WEIGHT_Q4_K;
    if (s == "q6_k") return EUROLLM_WEIGHT_Q6_K;
    throw usage_error("option " + opt + " expects f32, f16, bf16, q8_0, q4_0, q4_k, q6_k or auto, got '" + s + "'");
}

inline eurollm_precision to_precision(const std::string &s, const std::string &opt) {
    if (s == "exact") return EUROLLM_PRECISION_EXACT;
    if (s == "bf16") return EUROLLM_PRECISION_BF16;
    throw usage_error("option " + opt + " expects exact or bf16, got '" + s + "'");
}

// --kv-type: the KV cache's element type.
inline eurollm_weight_type to_kv_type(const std::string &s, const std::string &opt) {
    if (s == "f32") return EUROLLM_WEIGHT_F32;
    if (s == "f16") return EUROLLM_WEIGHT_F16;
    throw usage_error("option " + opt + " expects f32 or f16, got '" + s + "'");
}

// --device cpu|cuda[:N]|hip[:N] and --gpu-layers N (where the model runs), shared by every command
// that loads a model for inference. Returns false when `opt` is neither.
inline bool device_option(const std::string &opt, args &a, eurollm_model_params &mp) {
    if (opt == "--gpu-layers") {
        const long long n = to_int(a.next(opt), opt);
        if (n < -1 || n > 1 << 20) throw usage_error("option --gpu-layers expects -1 (all) or a layer count");
        mp.n_gpu_layers = static_cast<int32_t>(n);
        return true;
    }
    if (opt != "--device") return false;
    const std::string s = a.next(opt);
    const std::string kind = s.substr(0, s.find(':'));
    const std::string index = s.find(':') == std::string::npos ? "0" : s.substr(s.find(':') + 1);
    if (kind == "cpu" && index == "0") mp.device = EUROLLM_DEVICE_CPU;
    else if (kind == "cuda") mp.device = EUROLLM_DEVICE_CUDA;
    else if (kind == "hip") mp.device = EUROLLM_DEVICE_HIP;
    else throw usage_error("option --device expects cpu, cuda[:N] or hip[:N], got '" + s + "'");
    mp.device_index = static_cast<int32_t>(to_int(index, opt));
    return true;
}

// Commands: MODEL is the path after the command name, `a` holds the remaining arguments.
int cmd_info(const std::string &path, args &a);
int cmd_tokenize(const std::string &path, args &a);
int cmd_generate(const std::string &path, args &a);
int cmd_train(const std::string &path, args &a);
int cmd_export_peft(const std::string &path, args &a);
int cmd_merge(const std::string &path, args &a);
int cmd_bench(const std::string &path, args &a);
int cmd_embed(const std::string &path, args &a);
int cmd_chat(const std::string &path, args &a);
int cmd_template(const std::string &path, args &a);
int cmd_quantize(const std::string &path, args &a);

}  // namespace cli
