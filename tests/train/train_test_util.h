// Helpers of the training tests: fixture paths, a minimal safetensors reader (F32/I32, for the
// golden files), batch construction and RAII owners. Public API only (eurollm_experimental.h).
#pragma once

#define EUROLLM_EXPERIMENTAL
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eurollm_experimental.h"

namespace ttest {

inline std::string env_or(const char *var, const char *fallback) {
    const char *v = std::getenv(var);
    return v && *v ? v : fallback;
}
inline std::string golden_dir() { return env_or("EUROLLM_TRAIN_GOLDEN_DIR", EUROLLM_TRAIN_GOLDEN_DIR); }
inline std::string data_dir() { return env_or("EUROLLM_TRAIN_DATA_DIR", EUROLLM_TRAIN_DATA_DIR); }
inline std::string tiny_dir() { return env_or("EUROLLM_TRAIN_TINY_DIR", EUROLLM_TRAIN_TINY_DIR); }
inline std::string stories_dir() { return env_or("EUROLLM_STORIES_DIR", EUROLLM_TRAIN_STORIES_DIR); }
inline std::string scratch_dir() { return env_or("EUROLLM_TRAIN_SCRATCH_DIR", EUROLLM_TRAIN_SCRATCH_DIR); }

inline std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

inline nlohmann::json read_json(const std::string &path) { return nlohmann::json::parse(read_file(path)); }

struct tensor {
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<float> f;
    std::vector<int32_t> i;
};

// F32 and I32 tensors of a safetensors file; throws on anything else.
inline std::map<std::string, tensor> read_safetensors(const std::string &path) {
    const std::string bytes = read_file(path);
    if (bytes.size() < 8) throw std::runtime_error(path + ": not a safetensors file");
    uint64_t n = 0;
    for (int k = 0; k < 8; ++k) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
    const auto header = nlohmann::json::parse(bytes.substr(8, n));
    std::map<std::string, tensor> out;
    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == "__metadata__") continue;
        tensor t;
        t.dtype = it.value()["dtype"];
        t.shape = it.value()["shape"].get<std::vector<int64_t>>();
        const size_t b = it.value()["data_offsets"][0], e = it.value()["data_offsets"][1];
        const char *p = bytes.data() + 8 + n + b;
        if (t.dtype == "F32") {
            t.f.resize((e - b) / 4);
            std::memcpy(t.f.data(), p, e - b);
        } else if (t.dtype == "I32") {
            t.i.resize((e - b) / 4);
            std::memcpy(t.i.data(), p, e - b);
        } else {
            throw std::runtime_error(path + ": dtype " + t.dtype + " not handled by the test reader");
        }
        out[it.key()] = std::move(t);
    }
    return out;
}

struct ModelDeleter { void operator()(eurollm_model *m) const { eurollm_model_free(m); } };
struct TrainerDeleter { void operator()(eurollm_trainer *t) const { eurollm_trainer_free(t); } };
using ModelPtr = std::unique_ptr<eurollm_model, ModelDeleter>;
using TrainerPtr = std::unique_ptr<eurollm_trainer, TrainerDeleter>;

inline ModelPtr load(const std::string &dir) {
    eurollm_model *m = nullptr;
    if (eurollm_model_load(dir.c_str(), nullptr, &m) != EUROLLM_OK)
        throw std::runtime_error("load " + dir + ": " + eurollm_last_error());
    return ModelPtr(m);
}

inline TrainerPtr make_trainer(eurollm_model *m, const eurollm_trainer_params &p) {
    eurollm_trainer *t = nullptr;
    if (eurollm_trainer_create(m, &p, &t) != EUROLLM_OK)
        throw std::runtime_error(std::string("trainer_create: ") + eurollm_last_error());
    return TrainerPtr(t);
}

inline std::vector<float> get(const eurollm_trainer *t, const std::string &name, eurollm_tensor_part part) {
    size_t n = 0;
    eurollm_trainer_get_tensor(t, name.c_str(), part, nullptr, 0, &n);
    std::vector<float> v(n);
    if (eurollm_trainer_get_tensor(t, name.c_str(), part, v.data(), v.size(), &n) != EUROLLM_OK)
        throw std::runtime_error(std::string("get_tensor: ") + eurollm_last_error());
    return v;
}

inline std::vector<std::string> tensor_names(const eurollm_trainer *t) {
    size_t n = 0;
    eurollm_trainer_n_tensors(t, &n, nullptr);
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) names.push_back(eurollm_trainer_tensor_name(t, i));
    return names;
}

// All trainable values (and moments) of a trainer, concatenated in tensor order.
inline std::vector<float> snapshot(const eurollm_trainer *t, eurollm_tensor_part part) {
    std::vector<float> all;
    for (const auto &n : tensor_names(t)) {
        const auto v = get(t, n, part);
        all.insert(all.end(), v.begin(), v.end());
    }
    return all;
}

inline double rel_err(const std::vector<float> &a, const std::vector<float> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        den += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace ttest
