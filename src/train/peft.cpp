// LoRA adapters in Hugging Face PEFT layout, and model directories written from trained weights.
//
//   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "target_modules", ...}
//   adapter_model.safetensors  base_model.model.model.layers.<l>.<self_attn|mlp>.<proj>.lora_A.weight [r, in]
//                              base_model.model.model.layers.<l>.<self_attn|mlp>.<proj>.lora_B.weight [out, r]
// (PEFT drops the adapter name "default" from the saved keys.)
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/math.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "model/safetensors.h"
#include "train/file_io.h"
#include "train/trainer.h"

namespace eurollm::train {
namespace {

using nlohmann::json;

struct model_tensor {
    std::string name;
    tensor_ref ref;
};

// Every tensor of a loaded model in checkpoint order, named as transformers names them.
std::vector<model_tensor> model_tensors(const model &m) {
    std::vector<model_tensor> out;
    auto vec = [](const std::vector<float> &b) { return tensor_ref{b.data(), wtype::f32, 1, static_cast<int64_t>(b.size())}; };
    out.push_back({"model.embed_tokens.weight", m.tok_embd});
    for (size_t l = 0; l < m.layers.size(); ++l) {
        const layer_weights &L = m.layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        out.push_back({p + "input_layernorm.weight", L.attn_norm});
        const tensor_ref *w[7] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
        const std::vector<float> *b[7] = {&L.bq, &L.bk, &L.bv, &L.bo, &L.b_gate, &L.b_up, &L.b_down};
        for (int j = 0; j < 7; ++j) {
            if (j == 4) out.push_back({p + "post_attention_layernorm.weight", L.ffn_norm});
            const std::string name = p + kProjModules[j] + "." + kProjNames[j];
            out.push_back({name + ".weight", *w[j]});
            if (!b[j]->empty()) out.push_back({name + ".bias", vec(*b[j])});
        }
    }
    out.push_back({"model.norm.weight", m.output_norm});
    if (!m.hp.tie_embeddings) out.push_back({"lm_head.weight", m.output});
    return out;
}

void to_f32(const tensor_ref &r, float *dst) {
    std::vector<int32_t> ids(static_cast<size_t>(r.rows));
    for (int64_t i = 0; i < r.rows; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    kernels::embedding_rows(ids.data(), r.data, r.type, r.cols, 0, r.rows, dst);
}

void copy_file(const std::string &from, const std::string &to) {
    if (!file_exists(from)) return;
    const std::string text = read_text_file(from);
    write_text_atomic(to, text);
}

// Writes a model directory: the base's metadata files, and model.safetensors whose tensors are
// produced one at a time by `value` (f32) and stored as `dtype` ("F32" or "BF16").
void write_model_dir(const model &base, const std::string &out_dir,
                     const std::function<void(const model_tensor &, float *)> &value, const std::string &dtype) {
    make_dirs(out_dir);
    const std::string src = base.path.back() == '/' ? base.path : base.path + "/";
    for (const char *f : {"config.json", "generation_config.json", "tokenizer.model", "tokenizer_config.json",
                          "tokenizer.json", "special_tokens_map.json", "chat_template.jinja"})
        copy_file(src + f, out_dir + "/" + f);
    const std::vector<model_tensor> tensors = model_tensors(base);
    const size_t esize = dtype == "BF16" ? 2 : 4;
    remove_tree(out_dir + "/model.safetensors.index.json");  // the output is one file
    size_t offset = 0;
    nlohmann::ordered_json h;
    h["__metadata__"] = {{"format", "pt"}};
    for (const auto &t : tensors) {
        const size_t nbytes = static_cast<size_t>(t.ref.rows * t.ref.cols) * esize;
        const std::vector<int64_t> shape =
            t.ref.rows == 1 ? std::vector<int64_t>{t.ref.cols} : std::vector<int64_t>{t.ref.rows, t.ref.cols};
        h[t.name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
    }
    std::string hs = h.dump();
    hs.append((8 - hs.size() % 8) % 8, ' ');
    write_file_atomic(out_dir + "/model.safetensors", [&](const byte_sink &sink) {
        uint8_t len[8];
        for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(hs.size()) >> (8 * i));
        sink(len, 8);
        sink(hs.data(), hs.size());
        std::vector<float> buf;
        std::vector<uint16_t> half;
        for (const auto &t : tensors) {
            const size_t n = static_cast<size_t>(t.ref.rows * t.ref.cols);
            buf.resize(n);
            value(t, buf.data());
            if (esize == 2) {
                half.resize(n);
                for (size_t i = 0; i < n; ++i) half[i] = kmath::f32_to_bf16(buf[i]);
                sink(half.data(), n * 2);
            } else {
                sink(buf.data(), n * 4);
            }
        }
    });
}

struct adapter {
    json config;
    int64_t rank = 0;
    float alpha = 0;
    std::unique_ptr<mapped_file> file;
    std::map<std::string, safetensor> tensors;
};

adapter read_adapter(const std::string &dir) {
    adapter a;
    const std::string cfg_path = dir + "/adapter_config.json";
    if (!file_exists(cfg_path)) fail(EUROLLM_ERR_IO, cfg_path, ": file not found (not a PEFT adapter directory?)");
    try {
        a.config = json::parse(read_text_file(cfg_path));
    } catch (const json::exception &e) {
        fail(EUROLLM_ERR_BAD_MODEL, cfg_path, ": malformed JSON: ", e.what());
    }
    if (a.config.value("peft_type", std::string()) != "LORA")
        fail(EUROLLM_ERR_UNSUPPORTED, cfg_path, ": peft_type must be LORA");
    if (a.config.value("use_dora", false) || a.config.value("use_rslora", false))
        fail(EUROLLM_ERR_UNSUPPORTED, cfg_path, ": DoRA and rsLoRA adapters are not supported");
    if (!a.config.contains("r") || !a.config["r"].is_number_integer()) fail(EUROLLM_ERR_BAD_MODEL, cfg_path, ": missing \"r\"");
    a.rank = a.config["r"].get<int64_t>();
    a.alpha = a.config.value("lora_alpha", static_cast<float>(a.rank));
    if (a.rank <= 0) fail(EUROLLM_ERR_BAD_MODEL, cfg_path, ": r must be positive");
    const std::string st = dir + "/adapter_model.safetensors";
    if (!file_exists(st)) fail(EUROLLM_ERR_IO, st, ": file not found");
    a.file = std::make_unique<mapped_file>(st, true);
    a.tensors = parse_safetensors(*a.file);
    return a;
}

void read_tensor_f32(const safetensor &t, int64_t rows, int64_t cols, float *dst, const std::string &where) {
    if (t.shape != std::vector<int64_t>{rows, cols})
        fail(EUROLLM_ERR_BAD_MODEL, where, ": tensor '", t.name, "' has the wrong shape (want [", rows, ", ", cols, "])");
    tensor_ref r;
    r.data = t.data;
    r.rows = rows;
    r.cols = cols;
    if (t.dtype == "F32") r.type = wtype::f32;
    else if (t.dtype == "BF16") r.type = wtype::bf16;
    else if (t.dtype == "F16") r.type = wtype::f16;
    else fail(EUROLLM_ERR_UNSUPPORTED, where, ": tensor '", t.name, "' has dtype ", t.dtype);
    to_f32(r, dst);
}

std::string lora_name(const std::string &weight_name, const char *which) {
    // model.layers.0.self_attn.q_proj.weight -> base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
    return "base_model.model." + weight_name.substr(0, weight_name.size() - 7) + ".lora_" + which + ".weight";
}

}  // namespace

void trainer::export_peft(const std::string &dir) const {
    if (!o_.model.lora) fail(EUROLLM_ERR_INVALID_ARGUMENT, "export_peft: the trainer fine-tunes all weights, not LoRA adapters");
    make_dirs(dir);
    json cfg;
    std::vector<std::string> targets;
    for (int j = 0; j < 7; ++j)
        if (o_.model.lora_targets & (1u << j)) targets.push_back(kProjNames[j]);
    cfg["peft_type"] = "LORA";
    cfg["task_type"] = "CAUSAL_LM";
    cfg["r"] = o_.model.lora_rank;
    cfg["lora_alpha"] = o_.model.lora_alpha;
    cfg["lora_dropout"] = o_.model.lora_dropout;
    cfg["target_modules"] = targets;
    cfg["bias"] = "none";
    cfg["fan_in_fan_out"] = false;
    cfg["inference_mode"] = true;
    cfg["init_lora_weights"] = true;
    cfg["use_rslora"] = false;
    cfg["use_dora"] = false;
    cfg["modules_to_save"] = nullptr;
    cfg["layers_to_transform"] = nullptr;
    cfg["layers_pattern"] = nullptr;
    cfg["rank_pattern"] = json::object();
    cfg["alpha_pattern"] = json::object();
    cfg["revision"] = nullptr;
    cfg["base_model_name_or_path"] = m_.path;
    std::vector<st_tensor> ts;
    for (const auto &p : net_.params())
        ts.push_back({p->name, "F32", {p->rows, p->cols}, p->w.data(), static_cast<size_t>(p->size()) * 4});
    write_safetensors(dir + "/adapter_model.safetensors", ts, {{"format", "pt"}});
    write_text_atomic(dir + "/adapter_config.json", cfg.dump(2) + "\n");
}

void trainer::load_peft(const std::string &dir) {
    if (!o_.model.lora) fail(EUROLLM_ERR_INVALID_ARGUMENT, "load_peft: the trainer is not a LoRA trainer");
    adapter a = read_adapter(dir);
    if (a.rank != o_.model.lora_rank || std::fabs(a.alpha - o_.model.lora_alpha) > 1e-6f * std::fabs(a.alpha))
        fail(EUROLLM_ERR_INVALID_ARGUMENT, dir, ": adapter r=", a.rank, " alpha=", a.alpha, " but the trainer has r=",
             o_.model.lora_rank, " alpha=", o_.model.lora_alpha);
    std::set<std::string> used;
    for (auto &p : net_.params()) {
        const auto it = a.tensors.find(p->name);
        if (it == a.tensors.end()) fail(EUROLLM_ERR_BAD_MODEL, dir, ": the adapter has no tensor '", p->name, "'");
        read_tensor_f32(it->second, p->rows, p->cols, p->w.data(), dir);
        used.insert(p->name);
    }
    for (const auto &kv : a.tensors)
        if (!used.count(kv.first))
            fail(EUROLLM_ERR_INVALID_ARGUMENT, dir, ": the adapter has tensor '", kv.first,
                 "' that the trainer's targets do not include");
}

void trainer::save_model(const std::string &dir) const {
    const std::string dtype = m_.tok_embd.type == wtype::bf16 ? "BF16" : "F32";
    train_model &net = const_cast<train_model &>(net_);
    write_model_dir(
        m_, dir,
        [&](const model_tensor &t, float *dst) {
            if (!o_.model.lora) {
                if (param *p = net.find(t.name)) {
                    std::memcpy(dst, p->w.data(), p->w.size() * sizeof(float));
                    return;
                }
                to_f32(t.ref, dst);
                return;
            }
            to_f32(t.ref, dst);
            const std::string an = lora_name(t.name, "A");
            param *A = t.name.size() > 7 ? net.find(an) : nullptr;
            if (!A) return;
            param *B = net.find(lora_name(t.name, "B"));
            const float s = o_.model.lora_alpha / static_cast<float>(o_.model.lora_rank);
            const int64_t r = A->rows, in = A->cols, out = B->rows;
            for (int64_t o = 0; o < out; ++o)
                for (int64_t k = 0; k < r; ++k) {
                    const float c = s * B->w[static_cast<size_t>(o * r + k)];
                    const float *ar = A->w.data() + k * in;
                    float *row = dst + o * in;
                    for (int64_t i = 0; i < in; ++i) row[i] += c * ar[i];
                }
        },
        dtype);
}

void merge_adapter(const std::string &base_dir, const std::string &adapter_dir, float scale, const std::string &out_dir) {
    model_load_options lo;
    const std::unique_ptr<model> m = load_model(base_dir, lo);
    adapter a = read_adapter(adapter_dir);
    const float s = scale * a.alpha / static_cast<float>(a.rank);
    std::set<std::string> used;
    std::vector<float> Af, Bf;
    const std::string dtype = m->tok_embd.type == wtype::bf16 ? "BF16" : "F32";
    write_model_dir(
        *m, out_dir,
        [&](const model_tensor &t, float *dst) {
            to_f32(t.ref, dst);
            if (t.ref.rows == 1) return;
            const std::string an = lora_name(t.name, "A"), bn = lora_name(t.name, "B");
            const auto ia = a.tensors.find(an), ib = a.tensors.find(bn);
            if (ia == a.tensors.end() && ib == a.tensors.end()) return;
            if (ia == a.tensors.end() || ib == a.tensors.end())
                fail(EUROLLM_ERR_BAD_MODEL, adapter_dir, ": only one of lora_A / lora_B for ", t.name);
            const int64_t r = a.rank, out = t.ref.rows, in = t.ref.cols;
            Af.resize(static_cast<size_t>(r * in));
            Bf.resize(static_cast<size_t>(out * r));
            read_tensor_f32(ia->second, r, in, Af.data(), adapter_dir);
            read_tensor_f32(ib->second, out, r, Bf.data(), adapter_dir);
            for (int64_t o = 0; o < out; ++o)
                for (int64_t k = 0; k < r; ++k) {
                    const float c = s * Bf[static_cast<size_t>(o * r + k)];
                    const float *ar = Af.data() + k * in;
                    float *row = dst + o * in;
                    for (int64_t i = 0; i < in; ++i) row[i] += c * ar[i];
                }
            used.insert(an);
            used.insert(bn);
        },
        dtype);
    for (const auto &kv : a.tensors)
        if (!used.count(kv.first))
            fail(EUROLLM_ERR_BAD_MODEL, adapter_dir, ": adapter tensor '", kv.first, "' matches no weight of the model");
}

}  // namespace eurollm::train
