// The GGUF writer behind `eurollm quantize` and eurollm_model_save_gguf: a loaded model (any input
// format) to GGUF v3. The header (metadata and tensor table, a few MB at most) is assembled in memory;
// tensor data is converted in chunks and streamed to the atomic writer, so a model of any size is
// written with a few MB of scratch.
#include <algorithm>
#include <functional>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"
#include "model/convert.h"
#include "model/gguf.h"
#include "model/model.h"
#include "core/file_io.h"

namespace eurollm {
namespace {

constexpr size_t kAlign = 32;

struct byte_buffer {
    std::vector<uint8_t> b;
    void write(const void *p, size_t n) {
        const auto *c = static_cast<const uint8_t *>(p);
        b.insert(b.end(), c, c + n);
    }
    template <typename T>
    void put(T v) { write(&v, sizeof v); }
    void str(const std::string &s) {
        put<uint64_t>(s.size());
        write(s.data(), s.size());
    }
    void pad() { b.resize((b.size() + kAlign - 1) / kAlign * kAlign, 0); }
};

struct kv_writer {
    byte_buffer &o;
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
    bool vector;
    int64_t permute_heads = 0, head_dim = 0;  // q/k: HF -> interleaved row order
    uint64_t offset = 0, nbytes = 0;
};

// llama.cpp's general.file_type (llama_ftype) for the type most weights have.
uint32_t llama_file_type(wtype t) {
    switch (t) {
        case wtype::f32: return 0;
        case wtype::f16: return 1;
        case wtype::q4_0: return 2;
        case wtype::q8_0: return 7;
        case wtype::q4_k: return 15;  // MOSTLY_Q4_K_M
        case wtype::q6_k: return 18;
        case wtype::bf16: return 32;
    }
    return 0;
}

}  // namespace

bool parse_save_type(const std::string &name, wtype *out) {
    if (name == "f32") *out = wtype::f32;
    else if (name == "f16") *out = wtype::f16;
    else if (name == "bf16") *out = wtype::bf16;
    else if (name == "q8_0") *out = wtype::q8_0;
    else if (name == "q4_0") *out = wtype::q4_0;
    else if (name == "q4_k") *out = wtype::q4_k;
    else if (name == "q6_k") *out = wtype::q6_k;
    else return false;
    return true;
}

void save_gguf(const model &m, const std::string &path, std::optional<wtype> type) {
    const hparams &hp = m.hp;
    if (type && !writable_weight_type(*type))
        fail(EUROLLM_ERR_UNSUPPORTED, "writing ", wtype_name(*type),
             " is not supported (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k are)");
    if (hp.attention_bias || hp.mlp_bias || hp.sliding_window > 0 || hp.rope_scaling == rope_scaling_type::llama3)
        fail(EUROLLM_ERR_UNSUPPORTED, "GGUF export covers llama models without biases, sliding window or llama3 rope");

    std::vector<out_tensor> ts;
    // Norms are F32 as llama.cpp writes them; 2-D weights follow the conversion rules that
    // quantize-at-load uses, or keep their stored type (AUTO).
    auto add = [&](const std::string &name, const tensor_ref &r, bool vector, int64_t heads = 0,
                   weight_place where = {}) {
        const wtype t = vector ? wtype::f32 : type ? converted_weight_type(*type, r, where) : r.type;
        out_tensor o{name, r, t, vector, heads, hp.head_dim};
        o.nbytes = static_cast<uint64_t>(wtype_row_bytes(t, r.cols) * r.rows);
        ts.push_back(o);
    };
    const weight_place head{weight_place::output_head};
    add("token_embd.weight", m.tok_embd, false, 0, hp.tie_embeddings ? head : weight_place{});
    add("output_norm.weight", m.output_norm, true);
    if (!hp.tie_embeddings) add("output.weight", m.output, false, 0, head);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const layer_weights &L = m.layers[static_cast<size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", L.attn_norm, true);
        add(p + "attn_q.weight", L.wq, false, hp.n_head);
        add(p + "attn_k.weight", L.wk, false, hp.n_head_kv);
        add(p + "attn_v.weight", L.wv, false, 0, {weight_place::attn_v, l, hp.n_layer});
        add(p + "attn_output.weight", L.wo, false);
        add(p + "ffn_norm.weight", L.ffn_norm, true);
        add(p + "ffn_gate.weight", L.w_gate, false);
        add(p + "ffn_up.weight", L.w_up, false);
        add(p + "ffn_down.weight", L.w_down, false, 0, {weight_place::ffn_down, l, hp.n_layer});
    }
    uint64_t off = 0;
    for (auto &t : ts) {
        t.offset = off;
        off = (off + t.nbytes + kAlign - 1) / kAlign * kAlign;
    }

    byte_buffer o;  // the metadata; the header before it needs its count
    kv_writer kv{o};
    kv.str("general.architecture", "llama");
    kv.str("general.name", "eurollm export");
    const tensor_ref &typical = m.layers.front().w_up;
    kv.u32("general.file_type", llama_file_type(type ? converted_weight_type(*type, typical, {}) : typical.type));
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
        o.put<uint64_t>(static_cast<uint64_t>(t.src.cols));
        if (!t.vector) o.put<uint64_t>(static_cast<uint64_t>(t.src.rows));
        o.put<uint32_t>(wtype_to_ggml_type(t.type));
        o.put<uint64_t>(t.offset);
    }
    byte_buffer header;
    header.put<uint32_t>(0x46554747u);  // "GGUF"
    header.put<uint32_t>(3);
    header.put<uint64_t>(ts.size());
    header.put<uint64_t>(kv.count);
    header.write(o.b.data(), o.b.size());
    header.pad();  // the data section starts aligned

    threadpool pool(default_thread_count());
    write_file_atomic(path, [&](const byte_sink &sink) {
        sink(header.b.data(), header.b.size());
        std::vector<uint8_t> chunk;
        for (const auto &t : ts) {
            const int64_t row_bytes = wtype_row_bytes(t.type, t.src.cols), half = t.head_dim / 2;
            // GGUF row (h, 2i + j) holds the HF row (h, j * half + i).
            std::function<int64_t(int64_t)> src_row;
            if (t.permute_heads)
                src_row = [&t, half](int64_t r) {
                    const int64_t h = r / t.head_dim, w = r % t.head_dim;
                    return h * t.head_dim + (w % 2) * half + w / 2;
                };
            const tensor_ref &src = t.src;
            const int64_t step = std::max<int64_t>(1, (int64_t{4} << 20) / row_bytes);  // ~4 MB per write
            for (int64_t r0 = 0; r0 < src.rows; r0 += step) {
                const int64_t r1 = std::min(src.rows, r0 + step);
                chunk.resize(static_cast<size_t>((r1 - r0) * row_bytes));
                convert_rows(src, t.type, src_row, r0, r1, chunk.data(), pool);
                sink(chunk.data(), chunk.size());
            }
            static const uint8_t zeros[kAlign] = {};
            sink(zeros, (kAlign - t.nbytes % kAlign) % kAlign);
        }
    });
}

}  // namespace eurollm
