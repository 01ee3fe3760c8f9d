// Loads a Hugging Face model directory: config.json (+ generation_config.json, tokenizer_config.json),
// model.safetensors or the shards listed in model.safetensors.index.json, tokenizer.model.
#include <algorithm>
#include <set>

#include <sys/stat.h>

#include "core/error.h"
#include "core/log.h"
#include "model/convert.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/safetensors.h"

namespace eurollm {
namespace {

using nlohmann::json;

json parse_json_file(const std::string &path, bool required) {
    if (!file_exists(path)) {
        if (required) fail(EUROLLM_ERR_IO, path, ": file not found");
        return json();
    }
    const std::string text = read_text_file(path);
    try {
        return json::parse(text);
    } catch (const json::exception &e) {
        fail(EUROLLM_ERR_BAD_MODEL, path, ": malformed JSON: ", e.what());
    }
}

std::string basename_of(const std::string &path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Name -> tensor over all shards; a name in two shards is an error.
struct tensor_index {
    std::map<std::string, safetensor> tensors;
    std::set<std::string> used;

    const safetensor *find(const std::string &name) {
        const auto it = tensors.find(name);
        if (it == tensors.end()) return nullptr;
        used.insert(name);
        return &it->second;
    }
};

wtype to_wtype(const safetensor &t) {
    if (t.dtype == "F32") return wtype::f32;
    if (t.dtype == "F16") return wtype::f16;
    if (t.dtype == "BF16") return wtype::bf16;
    fail(EUROLLM_ERR_UNSUPPORTED, basename_of(t.file->path()), ": tensor '", t.name, "' has dtype ", t.dtype,
         " (F32, F16 and BF16 are supported)");
}

std::string shape_string(const std::vector<int64_t> &shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

tensor_ref take(tensor_index &index, const std::string &name, int64_t rows, int64_t cols, bool vector) {
    const safetensor *t = index.find(name);
    if (!t) fail(EUROLLM_ERR_BAD_MODEL, "missing tensor '", name, "'");
    const std::vector<int64_t> want = vector ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols};
    if (t->shape != want)
        fail(EUROLLM_ERR_BAD_MODEL, basename_of(t->file->path()), ": tensor '", name, "' has shape ",
             shape_string(t->shape), " but config.json implies ", shape_string(want));
    tensor_ref r;
    r.data = t->data;
    r.type = to_wtype(*t);
    r.rows = vector ? 1 : rows;
    r.cols = cols;
    return r;
}

std::vector<float> take_bias(tensor_index &index, const std::string &name, int64_t n) {
    const tensor_ref r = take(index, name, 1, n, true);
    std::vector<float> out(static_cast<size_t>(n));
    kernels::embedding_rows(std::vector<int32_t>{0}.data(), r.data, r.type, n, 0, 1, out.data());
    return out;
}

void load_weights(model &m, tensor_index &index) {
    const hparams &hp = m.hp;
    const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    m.tok_embd = take(index, "model.embed_tokens.weight", hp.n_vocab, d, false);
    m.output_norm = take(index, "model.norm.weight", 1, d, true);
    if (hp.tie_embeddings) {
        m.output = m.tok_embd;
        if (index.tensors.count("lm_head.weight")) index.used.insert("lm_head.weight");  // some exports keep a copy
    } else {
        m.output = take(index, "lm_head.weight", hp.n_vocab, d, false);
    }
    m.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        layer_weights &L = m.layers[static_cast<size_t>(l)];
        L.attn_norm = take(index, p + "input_layernorm.weight", 1, d, true);
        L.wq = take(index, p + "self_attn.q_proj.weight", q_dim, d, false);
        L.wk = take(index, p + "self_attn.k_proj.weight", kv_dim, d, false);
        L.wv = take(index, p + "self_attn.v_proj.weight", kv_dim, d, false);
        L.wo = take(index, p + "self_attn.o_proj.weight", d, q_dim, false);
        L.ffn_norm = take(index, p + "post_attention_layernorm.weight", 1, d, true);
        L.w_gate = take(index, p + "mlp.gate_proj.weight", hp.n_ff, d, false);
        L.w_up = take(index, p + "mlp.up_proj.weight", hp.n_ff, d, false);
        L.w_down = take(index, p + "mlp.down_proj.weight", d, hp.n_ff, false);
        if (hp.attention_bias) {
            L.bq = take_bias(index, p + "self_attn.q_proj.bias", q_dim);
            L.bk = take_bias(index, p + "self_attn.k_proj.bias", kv_dim);
            L.bv = take_bias(index, p + "self_attn.v_proj.bias", kv_dim);
            L.bo = take_bias(index, p + "self_attn.o_proj.bias", d);
        }
        if (hp.mlp_bias) {
            L.b_gate = take_bias(index, p + "mlp.gate_proj.bias", hp.n_ff);
            L.b_up = take_bias(index, p + "mlp.up_proj.bias", hp.n_ff);
            L.b_down = take_bias(index, p + "mlp.down_proj.bias", d);
        }
    }
    for (const auto &kv : index.tensors) {
        if (index.used.count(kv.first)) {
            int64_t count = 1;
            for (int64_t s : kv.second.shape) count *= s;
            m.n_params += count;
        } else {
            log(EUROLLM_LOG_WARN, "ignoring tensor '", kv.first, "' not used by the ", hp.architecture, " architecture");
        }
    }
}

}  // namespace

const tokenizer &model::require_tokenizer() const {
    if (!tok) fail(EUROLLM_ERR_UNSUPPORTED, path, ": the model has no tokenizer (tokenizer.model is missing)");
    return *tok;
}

namespace {

std::unique_ptr<model> load_as_stored(const std::string &path, const model_load_options &options) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(EUROLLM_ERR_IO, path, ": no such file or directory");
    if (!S_ISDIR(st.st_mode)) {
        if (!is_gguf_file(path)) fail(EUROLLM_ERR_BAD_MODEL, path, ": neither a model directory nor a GGUF file");
        auto m = std::make_unique<model>();
        m->path = path;
        load_gguf_model(*m, path, options);
        return m;
    }
    auto m = std::make_unique<model>();
    m->path = path;
    const std::string dir = path.back() == '/' ? path : path + "/";

    const json config = parse_json_file(dir + "config.json", true);
    const json gen = parse_json_file(dir + "generation_config.json", false);
    const json tok_config = parse_json_file(dir + "tokenizer_config.json", false);
    m->hp = parse_hparams(config, gen);

    // Weights: one file, or the shards named by the index.
    std::vector<std::string> shard_names;
    const std::string index_path = dir + "model.safetensors.index.json";
    if (file_exists(index_path)) {
        const json index = parse_json_file(index_path, true);
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
            fail(EUROLLM_ERR_BAD_MODEL, index_path, ": missing \"weight_map\"");
        std::set<std::string> seen;
        for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
            if (!it.value().is_string()) fail(EUROLLM_ERR_BAD_MODEL, index_path, ": weight_map entries must be file names");
            const std::string shard = it.value();
            if (shard.empty() || shard.find('/') != std::string::npos || shard == "..")
                fail(EUROLLM_ERR_BAD_MODEL, index_path, ": shard name '", shard, "' is not a plain file name");
            if (seen.insert(shard).second) shard_names.push_back(shard);
        }
    } else if (file_exists(dir + "model.safetensors")) {
        shard_names.push_back("model.safetensors");
    } else {
        fail(EUROLLM_ERR_IO, path, ": no model.safetensors or model.safetensors.index.json");
    }
    tensor_index index;
    for (const std::string &shard : shard_names) {
        if (!file_exists(dir + shard)) fail(EUROLLM_ERR_IO, dir + shard, ": shard listed in the index is missing");
        m->files.push_back(std::make_unique<mapped_file>(dir + shard, options.use_mmap));
        for (auto &kv : parse_safetensors(*m->files.back())) {
            if (index.tensors.count(kv.first))
                fail(EUROLLM_ERR_BAD_MODEL, "tensor '", kv.first, "' appears in more than one shard");
            index.tensors.emplace(kv.first, std::move(kv.second));
        }
    }
    load_weights(*m, index);

    if (file_exists(dir + "tokenizer.model")) {
        m->tok = std::make_unique<tokenizer>(dir + "tokenizer.model", tok_config, m->hp.n_vocab);
        if (m->hp.bos_id < 0) m->hp.bos_id = m->tok->bos_id();
    } else {
        log(EUROLLM_LOG_INFO, path, ": no tokenizer.model; the model takes token ids only");
    }
    if (tok_config.is_object() && tok_config.contains("chat_template")) {
        const json &t = tok_config["chat_template"];
        if (t.is_string()) {
            m->chat_template = t.get<std::string>();
            m->has_chat_template = true;
        } else if (t.is_array()) {  // named templates: [{"name": "default", "template": "..."}]
            for (const auto &e : t)
                if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string()) {
                    m->chat_template = e["template"].get<std::string>();
                    m->has_chat_template = true;
                }
        }
    }
    if (!m->has_chat_template && file_exists(dir + "chat_template.jinja")) {  // transformers 5 layout
        m->chat_template = read_text_file(dir + "chat_template.jinja");
        m->has_chat_template = true;
    }
    m->eos_ids = m->hp.eos_ids;
    if (m->tok && m->tok->eos_id() >= 0 &&
        std::find(m->eos_ids.begin(), m->eos_ids.end(), m->tok->eos_id()) == m->eos_ids.end())
        m->eos_ids.push_back(m->tok->eos_id());
    return m;
}

}  // namespace

std::unique_ptr<model> load_model(const std::string &path, const model_load_options &options) {
    auto m = load_as_stored(path, options);
    if (options.weight_type) convert_weights(*m, *options.weight_type);
    pack_weights(*m);
    return m;
}

}  // namespace eurollm
