// Helpers of the training tests: fixture paths, a minimal safetensors reader (F32/I32, for the
// golden files), batch construction and RAII owners. Public API only (eurollm_experimental.h).
#pragma once

#define EUROLLM_EXPERIMENTAL
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
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
// One directory per EUROLLM_CPU_ISA cap: ctest -j runs a binary's masked-ISA instance beside its
// default one, and both would write the same checkpoints.
inline std::string scratch_dir() {
    const char *isa = std::getenv("EUROLLM_CPU_ISA");
    return env_or("EUROLLM_TRAIN_SCRATCH_DIR", EUROLLM_TRAIN_SCRATCH_DIR) + (isa && *isa ? std::string("_") + isa : "");
}

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

// ---- datasets and the step loop ----

struct DatasetDeleter { void operator()(eurollm_dataset *d) const { eurollm_dataset_free(d); } };
using DatasetPtr = std::unique_ptr<eurollm_dataset, DatasetDeleter>;

inline DatasetPtr load_data(eurollm_model *m, const std::string &path, size_t seq_len) {
    eurollm_dataset *d = nullptr;
    if (eurollm_dataset_load(m, path.c_str(), seq_len, &d) != EUROLLM_OK)
        throw std::runtime_error(std::string("dataset_load: ") + eurollm_last_error());
    return DatasetPtr(d);
}

inline float eval_all(eurollm_trainer *t, eurollm_dataset *d, size_t seq_len) {
    const size_t n = eurollm_dataset_n_sequences(d);
    std::vector<int32_t> tok(n * seq_len), lab(n * seq_len);
    EXPECT_EQ(EUROLLM_OK, eurollm_dataset_get(d, 0, 0, false, 0, n, tok.data(), lab.data()));
    float loss = 0;
    EXPECT_EQ(EUROLLM_OK, eurollm_trainer_eval(t, tok.data(), lab.data(), n, seq_len, &loss, nullptr)) << eurollm_last_error();
    return loss;
}

inline uint32_t bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

// The CLI's data loop: shuffled epochs, position (epoch, offset) kept in the trainer.
// Token-id data for the tiny models (they have no tokenizer): 40 documents of 31 ids. Written to a
// file of this process and renamed into place, so a test binary running alongside never reads it
// half written.
inline std::string tiny_tokens_file() {
    const std::string data = scratch_dir() + "/tiny_tokens.jsonl";
    const std::string tmp = data + "." + std::to_string(::getpid());
    std::system(("mkdir -p '" + scratch_dir() + "'").c_str());
    {
        std::ofstream f(tmp);
        uint32_t x = 12345;
        for (int doc = 0; doc < 40; ++doc) {
            f << "{\"tokens\": [1";
            for (int i = 0; i < 30; ++i) {
                x = x * 1103515245u + 12345u;
                f << ", " << 3 + (x >> 16) % 200;
            }
            f << "]}\n";
        }
    }
    std::rename(tmp.c_str(), data.c_str());
    return data;
}

inline std::vector<float> run_steps(eurollm_trainer *t, eurollm_dataset *d, size_t batch, size_t seq_len, int64_t until,
                             uint64_t seed) {
    std::vector<float> losses;
    uint64_t epoch = 0, offset = 0, s = seed;
    eurollm_trainer_get_data_position(t, &epoch, &offset, &s);
    if (eurollm_trainer_step_count(t) == 0) s = seed;
    const size_t n = eurollm_dataset_n_sequences(d);
    std::vector<int32_t> tok(batch * seq_len), lab(batch * seq_len);
    while (eurollm_trainer_step_count(t) < until) {
        if (offset + batch > n) {
            ++epoch;
            offset = 0;
        }
        EXPECT_EQ(EUROLLM_OK, eurollm_dataset_get(d, s, epoch, true, offset, batch, tok.data(), lab.data()));
        offset += batch;
        eurollm_trainer_set_data_position(t, epoch, offset, s);
        eurollm_train_result r;
        const eurollm_status st = eurollm_trainer_step(t, tok.data(), lab.data(), batch, seq_len, &r);
        EXPECT_EQ(EUROLLM_OK, st) << eurollm_last_error();
        if (st != EUROLLM_OK) break;
        losses.push_back(r.loss);
    }
    return losses;
}


// A run stopped at step `stop`, checkpointed under `dir` and continued to `until` by a new trainer
// (made with resumed(dir): the checkpoint's params, another thread count...) must equal the
// uninterrupted run `a` (losses la) bit for bit: every loss, weight and AdamW moment.
inline void expect_resume_bitwise(eurollm_model *m, const eurollm_trainer_params &p,
                                  const std::function<eurollm_trainer_params(const std::string &)> &resumed,
                                  eurollm_dataset *d, size_t batch, size_t seq_len, int64_t stop, int64_t until,
                                  uint64_t seed, const std::string &dir, const eurollm_trainer *a,
                                  const std::vector<float> &la) {
    std::system(("rm -rf '" + dir + "'").c_str());
    std::vector<float> lb;
    {
        auto b = make_trainer(m, p);
        lb = run_steps(b.get(), d, batch, seq_len, stop, seed);
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_save_checkpoint(b.get(), dir.c_str())) << eurollm_last_error();
    }
    auto c = make_trainer(m, resumed(dir));
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_load_checkpoint(c.get(), dir.c_str())) << eurollm_last_error();
    EXPECT_EQ(eurollm_trainer_step_count(c.get()), stop);
    const auto rest = run_steps(c.get(), d, batch, seq_len, until, seed);
    lb.insert(lb.end(), rest.begin(), rest.end());
    ASSERT_EQ(la.size(), lb.size());
    for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(bits(la[i]), bits(lb[i])) << "step " << i + 1;
    for (auto part : {EUROLLM_TENSOR_VALUE, EUROLLM_TENSOR_EXP_AVG, EUROLLM_TENSOR_EXP_AVG_SQ}) {
        const auto wa = snapshot(a, part), wc = snapshot(c.get(), part);
        ASSERT_EQ(wa.size(), wc.size());
        EXPECT_EQ(0, std::memcmp(wa.data(), wc.data(), wa.size() * sizeof(float))) << "part " << part;
    }
}

// LoRA target bits of a list of projection names ("q_proj", ...).
inline uint32_t target_bits(const nlohmann::json &targets) {
    const char *names[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    uint32_t bits = 0;
    for (const auto &t : targets)
        for (int j = 0; j < 7; ++j)
            if (t.get<std::string>() == names[j]) bits |= 1u << j;
    return bits;
}

}  // namespace ttest
