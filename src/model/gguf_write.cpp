// The GGUF writer behind `eurollm quantize`: a loaded model (any input format) to GGUF v3.
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "model/gguf.h"
#include "model/model.h"

namespace eurollm {
namespace {

constexpr size_t kAlign = 32;

struct out_file {
    std::FILE *f = nullptr;
    std::string path;
    ~out_file() {
        if (f) std::fclose(f);
    }
    void write(const void *p, size_t n) {
        if (n && std::fwrite(p, 1, n, f) != n) fail(EUROLLM_ERR_IO, path, ": write failed");
    }
    template <typename T>
    void put(T v) { write(&v, sizeof v); }
    void str(const std::string &s) {
        put<uint64_t>(s.size());
        write(s.data(), s.size());
    }
};

struct kv_writer {
    out_file &o;
    uint64_t count = 0;
    void key(const std::string &k, gguf_type t) {
        o.str(k);
        o.put<uint32_t>(static_cast<uint32_t>(t));
        ++count;
    }
    void u32(const std::string &k, uint32_t v) { key(k, gguf_type::u32), o.put(v); }
    void i32(const std::string &k, int32_t v) { key(k, gguf_type::i32), o.put(v); }
    void f32(const std::string &k, float v) { key(k, gguf_type::f32), o.put(v); }
    void boolean(const std::string &k, bool v) { key(k, gguf_type::boolean), o.put<uint8_t>(v ? 1 : 0); }
    void str(const std::string &k, const std::string &v) { key(k, gguf_type::string), o.str(v); }
};

struct out_tensor {
    std::string name;
    tensor_ref src;
    wtype type;
    int64_t rows, cols;
    bool vector;
    int64_t permute_heads = 0, head_dim = 0;  // q/k: HF -> interleaved row order
    uint64_t offset = 0, nbytes = 0;
};

}  // namespace

bool parse_save_type(const std::string &name, wtype *out) {
    if (name == "f32") *out = wtype::f32;
    else if (name == "f16") *out = wtype::f16;
    else if (name == "bf16") *out = wtype::bf16;
    else if (name == "q8_0") *out = wtype::q8_0;
    else if (name == "q4_0") *out = wtype::q4_0;
    else return false;
    return true;
}

void save_gguf(const model &m, const std::string &path, wtype type) {
    const hparams &hp = m.hp;
    if (type == wtype::q4_k || type == wtype::q6_k)
        fail(EUROLLM_ERR_UNSUPPORTED, "writing Q4_K / Q6_K is not supported (f32, f16, bf16, q8_0, q4_0 are)");
    if (hp.attention_bias || hp.mlp_bias || hp.sliding_window > 0 || hp.rope_scaling == rope_scaling_type::llama3)
        fail(EUROLLM_ERR_UNSUPPORTED, "GGUF export covers llama models without biases, sliding window or llama3 rope");

    std::vector<out_tensor> ts;
    auto add = [&](const std::string &name, const tensor_ref &r, bool vector, int64_t heads = 0) {
        out_tensor t{name, r, vector ? wtype::f32 : type, r.rows, r.cols, vector, heads, hp.head_dim};
        if (!vector && r.cols % wtype_block_elems(type) != 0) t.type = wtype::f16;
        t.nbytes = static_cast<uint64_t>(wtype_row_bytes(t.type, t.cols) * t.rows);
        ts.push_back(t);
    };
    add("token_embd.weight", m.tok_embd, false);
    add("output_norm.weight", m.output_norm, true);
    if (!hp.tie_embeddings) add("output.weight", m.output, false);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const layer_weights &L = m.layers[static_cast<size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", L.attn_norm, true);
        add(p + "attn_q.weight", L.wq, false, hp.n_head);
        add(p + "attn_k.weight", L.wk, false, hp.n_head_kv);
        add(p + "attn_v.weight", L.wv, false);
        add(p + "attn_output.weight", L.wo, false);
        add(p + "ffn_norm.weight", L.ffn_norm, true);
        add(p + "ffn_gate.weight", L.w_gate, false);
        add(p + "ffn_up.weight", L.w_up, false);
        add(p + "ffn_down.weight", L.w_down, false);
    }
    uint64_t off = 0;
    for (auto &t : ts) {
        t.offset = off;
        off = (off + t.nbytes + kAlign - 1) / kAlign * kAlign;
    }

    out_file o;
    o.path = path + ".tmp";
    o.f = std::fopen(o.path.c_str(), "wb");
    if (!o.f) fail(EUROLLM_ERR_IO, o.path, ": cannot create");
    // Header: counts are patched once the metadata is written.
    o.put<uint32_t>(0x46554747u);
    o.put<uint32_t>(3);
    o.put<uint64_t>(ts.size());
    const long kv_count_pos = std::ftell(o.f);
    o.put<uint64_t>(0);

    kv_writer kv{o};
    kv.str("general.architecture", "llama");
    kv.str("general.name", "eurollm export");
    kv.u32("general.file_type", type == wtype::f32 ? 0 : type == wtype::f16 ? 1 : type == wtype::q4_0 ? 2
                                                  : type == wtype::q8_0 ? 7 : 32);
    kv.u32("general.quantization_version", 2);
    kv.u32("general.alignment", kAlign);
    kv.u32("llama.context_length", static_cast<uint32_t>(hp.n_ctx_train));
    kv.u32("llama.embedding_length", static_cast<uint32_t>(hp.n_embd));
    kv.u32("llama.block_count", static_cast<uint32_t>(hp.n_layer));
    kv.u32("llama.feed_forward_length", static_cast<uint32_t>(hp.n_ff));
    kv.u32("llama.rope.dimension_count", static_cast<uint32_t>(hp.head_dim));
    kv.u32("llama.attention.head_count", static_cast<uint32_t>(hp.n_head));
    kv.u32("llama.attention.head_count_kv", static_cast<uint32_t>(hp.n_head_kv));
    if (hp.head_dim != hp.n_embd / hp.n_head) {
        kv.u32("llama.attention.key_length", static_cast<uint32_t>(hp.head_dim));
        kv.u32("llama.attention.value_length", static_cast<uint32_t>(hp.head_dim));
    }
    kv.f32("llama.attention.layer_norm_rms_epsilon", hp.rms_eps);
    kv.f32("llama.rope.freq_base", hp.rope_theta);
    if (hp.rope_scaling == rope_scaling_type::linear) {
        kv.str("llama.rope.scaling.type", "linear");
        kv.f32("llama.rope.scaling.factor", hp.rope_factor);
    }
    kv.u32("llama.vocab_size", static_cast<uint32_t>(hp.n_vocab));
    if (m.tok) {
        const tokenizer &tk = *m.tok;
        kv.str("tokenizer.ggml.model", "llama");
        std::vector<std::string> pieces(static_cast<size_t>(hp.n_vocab));
        std::vector<float> scores(static_cast<size_t>(hp.n_vocab), -1000.0f);
        std::vector<int32_t> types(static_cast<size_t>(hp.n_vocab), 5);
        int32_t unk = -1;
        for (int32_t id = 0; id < hp.n_vocab; ++id) {
            const auto i = static_cast<size_t>(id);
            if (id < tk.sp_size()) {
                int t = 1;
                tk.vocab_entry(id, &pieces[i], &scores[i], &t);
                types[i] = t;
                if (t == 2 && unk < 0) unk = id;
            } else if (!tk.piece(id).empty()) {
                pieces[i] = tk.piece(id);
                types[i] = tk.is_control(id) ? 3 : 4;
            } else {
                pieces[i] = "[PAD" + std::to_string(id) + "]";
            }
        }
        kv.key("tokenizer.ggml.tokens", gguf_type::array);
        o.put<uint32_t>(static_cast<uint32_t>(gguf_type::string));
        o.put<uint64_t>(pieces.size());
        for (const auto &s : pieces) o.str(s);
        kv.key("tokenizer.ggml.scores", gguf_type::array);
        o.put<uint32_t>(static_cast<uint32_t>(gguf_type::f32));
        o.put<uint64_t>(scores.size());
        o.write(scores.data(), scores.size() * 4);
        kv.key("tokenizer.ggml.token_type", gguf_type::array);
        o.put<uint32_t>(static_cast<uint32_t>(gguf_type::i32));
        o.put<uint64_t>(types.size());
        o.write(types.data(), types.size() * 4);
        if (tk.bos_id() >= 0) kv.u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tk.bos_id()));
        if (!m.eos_ids.empty()) kv.u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(m.eos_ids[0]));
        if (unk >= 0) kv.u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(unk));
        kv.boolean("tokenizer.ggml.add_bos_token", tk.add_bos_default());
        kv.boolean("tokenizer.ggml.add_space_prefix", true);
    }
    if (m.has_chat_template) kv.str("tokenizer.chat_template", m.chat_template);

    for (const auto &t : ts) {
        o.str(t.name);
        o.put<uint32_t>(t.vector ? 1 : 2);
        o.put<uint64_t>(static_cast<uint64_t>(t.cols));
        if (!t.vector) o.put<uint64_t>(static_cast<uint64_t>(t.rows));
        o.put<uint32_t>(wtype_to_ggml_type(t.type));
        o.put<uint64_t>(t.offset);
    }
    auto pad = [&] {
        static const char zeros[kAlign] = {};
        const long pos = std::ftell(o.f);
        o.write(zeros, (kAlign - static_cast<size_t>(pos) % kAlign) % kAlign);
    };
    pad();
    std::vector<float> row;
    std::vector<uint8_t> packed;
    for (const auto &t : ts) {
        row.resize(static_cast<size_t>(t.cols));
        packed.resize(static_cast<size_t>(wtype_row_bytes(t.type, t.cols)));
        const int64_t src_row_bytes = wtype_row_bytes(t.src.type, t.cols);
        const int64_t half = t.head_dim / 2;
        for (int64_t r = 0; r < t.rows; ++r) {
            int64_t s = r;  // GGUF row (h, 2i + j) holds the HF row (h, j * half + i)
            if (t.permute_heads) {
                const int64_t h = r / t.head_dim, w = r % t.head_dim;
                s = h * t.head_dim + (w % 2) * half + w / 2;
            }
            kernels::dequantize_row(static_cast<const uint8_t *>(t.src.data) + s * src_row_bytes, t.src.type, t.cols,
                                    row.data());
            kernels::quantize_row(row.data(), t.type, t.cols, packed.data());
            o.write(packed.data(), packed.size());
        }
        pad();
    }
    std::fseek(o.f, kv_count_pos, SEEK_SET);
    o.put<uint64_t>(kv.count);
    if (std::fflush(o.f) != 0 || std::fclose(o.f) != 0) {
        o.f = nullptr;
        fail(EUROLLM_ERR_IO, o.path, ": write failed");
    }
    o.f = nullptr;
    if (std::rename(o.path.c_str(), path.c_str()) != 0) fail(EUROLLM_ERR_IO, path, ": cannot rename the written file");
}

}  // namespace eurollm
