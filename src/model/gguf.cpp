// GGUF parsing, validation and the llama-architecture loader.
#include "model/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "model/model.h"

namespace eurollm {
namespace {

constexpr uint32_t kMagic = 0x46554747u;  // "GGUF" little-endian
constexpr uint64_t kMaxString = 1u << 30;
constexpr uint64_t kMaxDims = 4;

std::string base_name(const std::string &path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A bounds-checked little-endian cursor over the mapped bytes.
class reader {
public:
    reader(const uint8_t *p, size_t n, const std::string &what) : p_(p), n_(n), what_(what) {}

    size_t pos() const { return pos_; }
    size_t left() const { return n_ - pos_; }

    template <typename T>
    T get(const char *field) {
        need(sizeof(T), field);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string str(const char *field) {
        const uint64_t len = get<uint64_t>(field);
        if (len > kMaxString) fail(EUROLLM_ERR_BAD_MODEL, what_, ": ", field, " has an implausible length ", len);
        need(static_cast<size_t>(len), field);
        std::string s(reinterpret_cast<const char *>(p_ + pos_), static_cast<size_t>(len));
        pos_ += static_cast<size_t>(len);
        return s;
    }
    void need(size_t bytes, const char *field) const {
        if (bytes > left())
            fail(EUROLLM_ERR_BAD_MODEL, what_, ": truncated file (", field, " at byte ", pos_, " needs ", bytes,
                 " bytes, ", left(), " left)");
    }

private:
    const uint8_t *p_;
    size_t n_;
    size_t pos_ = 0;
    const std::string &what_;
};

size_t scalar_size(gguf_type t) {
    switch (t) {
        case gguf_type::u8:
        case gguf_type::i8:
        case gguf_type::boolean: return 1;
        case gguf_type::u16:
        case gguf_type::i16: return 2;
        case gguf_type::u32:
        case gguf_type::i32:
        case gguf_type::f32: return 4;
        case gguf_type::u64:
        case gguf_type::i64:
        case gguf_type::f64: return 8;
        case gguf_type::string: return 8;  // at least the length
        case gguf_type::array: return 12;
    }
    return 0;
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(gguf_type::f64); }

// Reads one scalar into (i, f, s). Returns false for arrays (handled by the caller).
void read_scalar(reader &r, gguf_type t, gguf_value &v, const std::string &what, const std::string &key) {
    switch (t) {
        case gguf_type::u8: v.i = r.get<uint8_t>("value"); break;
        case gguf_type::i8: v.i = r.get<int8_t>("value"); break;
        case gguf_type::u16: v.i = r.get<uint16_t>("value"); break;
        case gguf_type::i16: v.i = r.get<int16_t>("value"); break;
        case gguf_type::u32: v.i = r.get<uint32_t>("value"); break;
        case gguf_type::i32: v.i = r.get<int32_t>("value"); break;
        case gguf_type::i64: v.i = r.get<int64_t>("value"); break;
        case gguf_type::u64: {
            const uint64_t u = r.get<uint64_t>("value");
            if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' is out of range");
            v.i = static_cast<int64_t>(u);
            break;
        }
        case gguf_type::boolean: {
            const uint8_t b = r.get<uint8_t>("value");
            if (b > 1) fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' is not a valid bool");
            v.i = b;
            break;
        }
        case gguf_type::f32: v.f = r.get<float>("value"); break;
        case gguf_type::f64: v.f = r.get<double>("value"); break;
        case gguf_type::string: v.s = r.str("string value"); break;
        case gguf_type::array: break;
    }
}

// ggml type ids and block geometry.
struct ggml_type_info {
    uint32_t id;
    const char *name;
    int64_t block_elems, block_bytes;
};
const ggml_type_info kGgmlTypes[] = {
    {0, "F32", 1, 4},      {1, "F16", 1, 2},     {2, "Q4_0", 32, 18},   {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},  {8, "Q8_0", 32, 34},   {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84}, {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {24, "I8", 1, 1},  {25, "I16", 1, 2},
    {26, "I32", 1, 4},     {27, "I64", 1, 8},    {28, "F64", 1, 8},     {30, "BF16", 1, 2},
};
const ggml_type_info *type_info(uint32_t id) {
    for (const auto &t : kGgmlTypes)
        if (t.id == id) return &t;
    return nullptr;
}

}  // namespace

bool gguf_value::is_int() const {
    switch (type) {
        case gguf_type::u8: case gguf_type::i8: case gguf_type::u16: case gguf_type::i16: case gguf_type::u32:
        case gguf_type::i32: case gguf_type::u64: case gguf_type::i64: case gguf_type::boolean: return true;
        default: return false;
    }
}

const gguf_value *gguf_file::find(const std::string &key) const {
    const auto it = kv.find(key);
    return it == kv.end() ? nullptr : &it->second;
}

bool ggml_type_to_wtype(uint32_t t, wtype *out) {
    switch (t) {
        case 0: *out = wtype::f32; return true;
        case 1: *out = wtype::f16; return true;
        case 30: *out = wtype::bf16; return true;
        case 8: *out = wtype::q8_0; return true;
        case 2: *out = wtype::q4_0; return true;
        case 12: *out = wtype::q4_k; return true;
        case 14: *out = wtype::q6_k; return true;
        default: return false;
    }
}

uint32_t wtype_to_ggml_type(wtype t) {
    switch (t) {
        case wtype::f32: return 0;
        case wtype::f16: return 1;
        case wtype::bf16: return 30;
        case wtype::q8_0: return 8;
        case wtype::q4_0: return 2;
        case wtype::q4_k: return 12;
        case wtype::q6_k: return 14;
    }
    return 0;
}

const char *ggml_type_name(uint32_t t) {
    const ggml_type_info *info = type_info(t);
    return info ? info->name : "unknown";
}

bool is_gguf_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    char magic[4] = {};
    return f.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

gguf_file parse_gguf(const mapped_file &file) {
    const std::string what = base_name(file.path());
    reader r(file.data(), file.size(), what);
    gguf_file g;
    if (r.get<uint32_t>("magic") != kMagic) fail(EUROLLM_ERR_BAD_MODEL, what, ": not a GGUF file (bad magic)");
    g.version = r.get<uint32_t>("version");
    if (g.version != 2 && g.version != 3)
        fail(EUROLLM_ERR_BAD_MODEL, what, ": GGUF version ", g.version, " is not supported (2 and 3 are)");
    const uint64_t n_tensors = r.get<uint64_t>("tensor count");
    const uint64_t n_kv = r.get<uint64_t>("metadata count");
    // Each entry takes at least 8 (+4) bytes: counts beyond what the file can hold are corrupt.
    if (n_kv > r.left() / 12) fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata count ", n_kv, " exceeds the file size");
    if (n_tensors > r.left() / 24) fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor count ", n_tensors, " exceeds the file size");

    for (uint64_t e = 0; e < n_kv; ++e) {
        const std::string key = r.str("metadata key");
        const uint32_t t = r.get<uint32_t>("metadata type");
        if (!known_type(t)) fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' has unknown type ", t);
        gguf_value v;
        v.type = static_cast<gguf_type>(t);
        if (v.type == gguf_type::array) {
            const uint32_t et = r.get<uint32_t>("array type");
            if (!known_type(et) || et == static_cast<uint32_t>(gguf_type::array))
                fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' is an array of unsupported type ", et);
            v.elem = static_cast<gguf_type>(et);
            const uint64_t count = r.get<uint64_t>("array length");
            if (count > r.left() / scalar_size(v.elem))
                fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' claims ", count, " items, beyond the file");
            if (v.elem == gguf_type::string) v.strs.reserve(static_cast<size_t>(count));
            else v.nums.reserve(static_cast<size_t>(count));
            for (uint64_t k = 0; k < count; ++k) {
                gguf_value item;
                item.type = v.elem;
                read_scalar(r, v.elem, item, what, key);
                if (v.elem == gguf_type::string) v.strs.push_back(std::move(item.s));
                else v.nums.push_back(item.is_int() ? static_cast<double>(item.i) : item.f);
            }
        } else {
            read_scalar(r, v.type, v, what, key);
        }
        if (!g.kv.emplace(key, std::move(v)).second)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata key '", key, "' appears twice");
    }
    if (const gguf_value *a = g.find("general.alignment")) {
        if (!a->is_int() || a->i <= 0 || a->i > (1 << 20) || (a->i & (a->i - 1)) != 0)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": general.alignment must be a power of two");
        g.alignment = static_cast<size_t>(a->i);
    }

    struct pending {
        gguf_tensor t;
        uint64_t offset;
    };
    std::vector<pending> infos;
    infos.reserve(static_cast<size_t>(n_tensors));
    for (uint64_t e = 0; e < n_tensors; ++e) {
        pending p;
        p.t.name = r.str("tensor name");
        const uint32_t n_dims = r.get<uint32_t>("tensor dimension count");
        if (n_dims == 0 || n_dims > kMaxDims)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' has ", n_dims, " dimensions (1 to 4 allowed)");
        uint64_t count = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = r.get<uint64_t>("tensor dimension");
            if (ne == 0 || ne > (uint64_t(1) << 40) || count > (uint64_t(1) << 48) / ne)
                fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' has an invalid or huge shape");
            count *= ne;
            p.t.ne.push_back(static_cast<int64_t>(ne));
        }
        p.t.ggml_type = r.get<uint32_t>("tensor type");
        const ggml_type_info *info = type_info(p.t.ggml_type);
        if (!info) fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' has unknown type ", p.t.ggml_type);
        if (p.t.ne[0] % info->block_elems != 0)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' rows of ", p.t.ne[0],
                 " are not a whole number of ", info->name, " blocks");
        p.t.nbytes = static_cast<size_t>(count / static_cast<uint64_t>(info->block_elems) *
                                         static_cast<uint64_t>(info->block_bytes));
        p.offset = r.get<uint64_t>("tensor offset");
        if (p.offset % g.alignment != 0)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' offset is not aligned to ", g.alignment);
        infos.push_back(std::move(p));
    }
    g.data_offset = (r.pos() + g.alignment - 1) / g.alignment * g.alignment;
    if (g.data_offset > file.size() && !infos.empty())
        fail(EUROLLM_ERR_BAD_MODEL, what, ": truncated file (no tensor data)");
    const uint64_t data_size = file.size() >= g.data_offset ? file.size() - g.data_offset : 0;

    // Offsets inside the data section, no two tensors overlapping.
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (pending &p : infos) {
        if (p.offset > data_size || p.t.nbytes > data_size - p.offset)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' lies outside the file (offset ", p.offset,
                 ", ", p.t.nbytes, " bytes, data section ", data_size, " bytes)");
        spans.emplace_back(p.offset, p.offset + p.t.nbytes);
        p.t.data = file.data() + g.data_offset + p.offset;
        if (!g.tensors.emplace(p.t.name, p.t).second)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", p.t.name, "' appears twice");
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second) fail(EUROLLM_ERR_BAD_MODEL, what, ": tensors overlap in the file");
    return g;
}

// ---- the SentencePiece model for the embedded vocabulary --------------------------------------------
namespace {

// Protobuf wire-format writer: just what ModelProto needs.
struct pb {
    std::string out;
    void varint(uint64_t v) {
        while (v >= 0x80) {
            out.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        out.push_back(static_cast<char>(v));
    }
    void tag(int field, int wire) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
    void u(int field, uint64_t v) { tag(field, 0), varint(v); }
    void i32(int field, int32_t v) { tag(field, 0), varint(static_cast<uint64_t>(static_cast<int64_t>(v))); }
    void f32(int field, float v) {
        tag(field, 5);
        char b[4];
        std::memcpy(b, &v, 4);
        out.append(b, 4);
    }
    void bytes(int field, const std::string &s) {
        tag(field, 2);
        varint(s.size());
        out += s;
    }
};

}  // namespace

std::string gguf_vocab_to_sentencepiece(const gguf_file &g, const std::string &what) {
    const gguf_value *model = g.find("tokenizer.ggml.model");
    if (!model || model->type != gguf_type::string)
        fail(EUROLLM_ERR_BAD_MODEL, what, ": no tokenizer.ggml.model");
    if (model->s != "llama")
        fail(EUROLLM_ERR_UNSUPPORTED, what, ": tokenizer '", model->s, "' is not supported (the SentencePiece 'llama' one is)");
    const gguf_value *tokens = g.find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != gguf_type::array || tokens->elem != gguf_type::string || tokens->strs.empty())
        fail(EUROLLM_ERR_BAD_MODEL, what, ": tokenizer.ggml.tokens is missing or not a string array");
    const size_t n = tokens->strs.size();
    const gguf_value *scores = g.find("tokenizer.ggml.scores");
    const gguf_value *types = g.find("tokenizer.ggml.token_type");
    if (scores && (scores->type != gguf_type::array || scores->nums.size() != n))
        fail(EUROLLM_ERR_BAD_MODEL, what, ": tokenizer.ggml.scores does not match the token list");
    if (types && (types->type != gguf_type::array || types->nums.size() != n))
        fail(EUROLLM_ERR_BAD_MODEL, what, ": tokenizer.ggml.token_type does not match the token list");
    auto id_of = [&](const char *key, int64_t def) -> int64_t {
        const gguf_value *v = g.find(key);
        if (!v) return def;
        if (!v->is_int() || v->i < 0 || static_cast<size_t>(v->i) >= n)
            fail(EUROLLM_ERR_BAD_MODEL, what, ": ", key, " is not a token id");
        return v->i;
    };
    auto flag = [&](const char *key, bool def) {
        const gguf_value *v = g.find(key);
        return v && v->is_int() ? v->i != 0 : def;
    };

    pb p;
    int64_t unk = -1;
    for (size_t i = 0; i < n; ++i) {
        const int type = types ? static_cast<int>(types->nums[i]) : 1;
        if (type < 1 || type > 6) fail(EUROLLM_ERR_BAD_MODEL, what, ": token ", i, " has unknown type ", type);
        if (type == 2 && unk < 0) unk = static_cast<int64_t>(i);
        pb piece;
        piece.bytes(1, tokens->strs[i]);
        piece.f32(2, scores ? static_cast<float>(scores->nums[i]) : 0.0f);
        piece.u(3, static_cast<uint64_t>(type == 2 && static_cast<int64_t>(i) != unk ? 3 : type));
        p.bytes(1, piece.out);
    }
    unk = id_of("tokenizer.ggml.unknown_token_id", unk);
    if (unk < 0) fail(EUROLLM_ERR_BAD_MODEL, what, ": the vocabulary has no unknown token");
    const int64_t bos = id_of("tokenizer.ggml.bos_token_id", -1), eos = id_of("tokenizer.ggml.eos_token_id", -1);

    pb trainer;
    trainer.u(3, 2);  // model_type: BPE (merges by score, as llama.cpp's SPM tokenizer)
    trainer.i32(4, static_cast<int32_t>(n));
    trainer.u(35, 1);  // byte_fallback
    trainer.i32(40, static_cast<int32_t>(unk));
    trainer.i32(41, static_cast<int32_t>(bos));
    trainer.i32(42, static_cast<int32_t>(eos));
    trainer.i32(43, -1);
    trainer.bytes(45, tokens->strs[static_cast<size_t>(unk)]);
    if (bos >= 0) trainer.bytes(46, tokens->strs[static_cast<size_t>(bos)]);
    if (eos >= 0) trainer.bytes(47, tokens->strs[static_cast<size_t>(eos)]);
    p.bytes(2, trainer.out);

    pb norm;
    norm.bytes(1, "identity");
    norm.u(3, flag("tokenizer.ggml.add_space_prefix", true) ? 1 : 0);
    norm.u(4, 0);
    norm.u(5, 1);
    p.bytes(3, norm.out);
    return p.out;
}

// ---- the llama loader -----------------------------------------------------------------------------------
namespace {

struct gguf_loader {
    const gguf_file &g;
    const std::string &what;
    model &m;
    std::set<std::string> used;

    int64_t get_int(const std::string &key, int64_t def, bool required) const {
        const gguf_value *v = g.find(key);
        if (!v) {
            if (required) fail(EUROLLM_ERR_BAD_MODEL, what, ": missing metadata '", key, "'");
            return def;
        }
        if (!v->is_int()) fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' is not an integer");
        return v->i;
    }
    double get_float(const std::string &key, double def) const {
        const gguf_value *v = g.find(key);
        if (!v) return def;
        if (!v->is_number()) fail(EUROLLM_ERR_BAD_MODEL, what, ": metadata '", key, "' is not a number");
        return v->is_int() ? static_cast<double>(v->i) : v->f;
    }

    // A [rows, cols] (or [cols] vector) weight in GGUF's [ne0 = cols, ne1 = rows] order.
    tensor_ref take(const std::string &name, int64_t rows, int64_t cols, bool vector) {
        const auto it = g.tensors.find(name);
        if (it == g.tensors.end()) fail(EUROLLM_ERR_BAD_MODEL, what, ": missing tensor '", name, "'");
        const gguf_tensor &t = it->second;
        const std::vector<int64_t> want = vector ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
        if (t.ne != want) {
            std::string got;
            for (size_t i = 0; i < t.ne.size(); ++i) got += (i ? ", " : "") + std::to_string(t.ne[i]);
            fail(EUROLLM_ERR_BAD_MODEL, what, ": tensor '", name, "' has shape [", got, "] but the metadata implies [",
                 cols, vector ? "" : ", " + std::to_string(rows), "]");
        }
        tensor_ref r;
        if (!ggml_type_to_wtype(t.ggml_type, &r.type))
            fail(EUROLLM_ERR_UNSUPPORTED, what, ": tensor '", name, "' has type ", ggml_type_name(t.ggml_type),
                 " (F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K are supported)");
        r.data = t.data;
        r.rows = vector ? 1 : rows;
        r.cols = cols;
        used.insert(name);
        m.n_params += rows * cols;
        return r;
    }

    // llama.cpp stores q/k rows of each head interleaved (pair i of the rotation at rows 2i, 2i+1);
    // our rope uses Hugging Face's halves (rows i and i + head_dim/2). Reorder into an owned copy.
    tensor_ref unpermute(const tensor_ref &w, int64_t n_heads, int64_t head_dim) {
        const int64_t row_bytes = wtype_row_bytes(w.type, w.cols);
        m.owned_weights.emplace_back(static_cast<size_t>(row_bytes * w.rows));
        uint8_t *dst = m.owned_weights.back().data();
        const uint8_t *src = static_cast<const uint8_t *>(w.data);
        const int64_t half = head_dim / 2;
        for (int64_t h = 0; h < n_heads; ++h)
            for (int64_t j = 0; j < 2; ++j)
                for (int64_t i = 0; i < half; ++i)
                    std::memcpy(dst + (h * head_dim + j * half + i) * row_bytes, src + (h * head_dim + 2 * i + j) * row_bytes,
                                static_cast<size_t>(row_bytes));
        // The interleaved rows are not read again (GGUF export writes them back from the copy): without
        // this their file pages would stay resident beside the copy and the packed weights.
        if (m.files.back()->mapped()) drop_pages(src, static_cast<size_t>(row_bytes * w.rows));
        tensor_ref r = w;
        r.data = dst;
        return r;
    }
};

}  // namespace

void load_gguf_model(model &m, const std::string &path, const model_load_options &options) {
    m.files.push_back(std::make_unique<mapped_file>(path, options.use_mmap));
    const std::string what = base_name(path);
    const gguf_file g = parse_gguf(*m.files.back());
    gguf_loader L{g, what, m, {}};

    const gguf_value *arch = g.find("general.architecture");
    if (!arch || arch->type != gguf_type::string) fail(EUROLLM_ERR_BAD_MODEL, what, ": no general.architecture");
    if (arch->s != "llama")
        fail(EUROLLM_ERR_UNSUPPORTED, what, ": architecture '", arch->s, "' is not supported (llama is)");
    const std::string a = "llama.";
    hparams &hp = m.hp;
    hp.architecture = "llama";
    hp.n_embd = L.get_int(a + "embedding_length", 0, true);
    hp.n_layer = L.get_int(a + "block_count", 0, true);
    hp.n_ff = L.get_int(a + "feed_forward_length", 0, true);
    hp.n_head = L.get_int(a + "attention.head_count", 0, true);
    hp.n_head_kv = L.get_int(a + "attention.head_count_kv", hp.n_head, false);
    hp.n_ctx_train = L.get_int(a + "context_length", 2048, false);
    if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 ||
        hp.n_ctx_train <= 0 || hp.n_embd > (1 << 20) || hp.n_layer > 4096 || hp.n_ff > (1 << 22) ||
        hp.n_head > 4096 || hp.n_head % hp.n_head_kv != 0)
        fail(EUROLLM_ERR_BAD_MODEL, what, ": inconsistent llama.* sizes");
    hp.head_dim = L.get_int(a + "attention.key_length", hp.n_embd / hp.n_head, false);
    if (hp.head_dim <= 0 || hp.head_dim % 2 != 0 || hp.head_dim > 4096 ||
        L.get_int(a + "attention.value_length", hp.head_dim, false) != hp.head_dim)
        fail(EUROLLM_ERR_BAD_MODEL, what, ": invalid head size");
    if (L.get_int(a + "rope.dimension_count", hp.head_dim, false) != hp.head_dim)
        fail(EUROLLM_ERR_UNSUPPORTED, what, ": partial rotary embeddings are not supported");
    hp.rms_eps = static_cast<float>(L.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
    hp.rope_theta = static_cast<float>(L.get_float(a + "rope.freq_base", 10000.0));
    if (!(hp.rms_eps > 0) || !(hp.rope_theta > 0)) fail(EUROLLM_ERR_BAD_MODEL, what, ": invalid eps or rope base");
    if (const gguf_value *st = g.find(a + "rope.scaling.type")) {
        if (st->type != gguf_type::string) fail(EUROLLM_ERR_BAD_MODEL, what, ": rope.scaling.type is not a string");
        if (st->s == "linear") {
            hp.rope_scaling = rope_scaling_type::linear;
            hp.rope_factor = static_cast<float>(L.get_float(a + "rope.scaling.factor", 1.0));
            if (!(hp.rope_factor > 0)) fail(EUROLLM_ERR_BAD_MODEL, what, ": invalid rope.scaling.factor");
        } else if (st->s != "none") {
            fail(EUROLLM_ERR_UNSUPPORTED, what, ": rope scaling '", st->s, "' is not supported");
        }
    } else if (const gguf_value *sf = g.find(a + "rope.scale_linear")) {
        hp.rope_scaling = rope_scaling_type::linear;
        hp.rope_factor = static_cast<float>(sf->is_int() ? static_cast<double>(sf->i) : sf->f);
        if (!(hp.rope_factor > 0)) fail(EUROLLM_ERR_BAD_MODEL, what, ": invalid rope.scale_linear");
    }
    const auto emb = g.tensors.find("token_embd.weight");
    if (emb == g.tensors.end() || emb->second.ne.size() != 2)
        fail(EUROLLM_ERR_BAD_MODEL, what, ": missing or malformed tensor 'token_embd.weight'");
    hp.n_vocab = L.get_int(a + "vocab_size", emb->second.ne[1], false);
    hp.tie_embeddings = g.tensors.count("output.weight") == 0;
    if (g.tensors.count("blk.0.attn_q.bias") || g.tensors.count("blk.0.ffn_up.bias"))
        fail(EUROLLM_ERR_UNSUPPORTED, what, ": projection biases in GGUF files are not supported");

    const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    m.tok_embd = L.take("token_embd.weight", hp.n_vocab, d, false);
    m.output_norm = L.take("output_norm.weight", 1, d, true);
    m.output = hp.tie_embeddings ? m.tok_embd : L.take("output.weight", hp.n_vocab, d, false);
    m.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        layer_weights &W = m.layers[static_cast<size_t>(l)];
        W.attn_norm = L.take(p + "attn_norm.weight", 1, d, true);
        W.wq = L.unpermute(L.take(p + "attn_q.weight", q_dim, d, false), hp.n_head, hp.head_dim);
        W.wk = L.unpermute(L.take(p + "attn_k.weight", kv_dim, d, false), hp.n_head_kv, hp.head_dim);
        W.wv = L.take(p + "attn_v.weight", kv_dim, d, false);
        W.wo = L.take(p + "attn_output.weight", d, q_dim, false);
        W.ffn_norm = L.take(p + "ffn_norm.weight", 1, d, true);
        W.w_gate = L.take(p + "ffn_gate.weight", hp.n_ff, d, false);
        W.w_up = L.take(p + "ffn_up.weight", hp.n_ff, d, false);
        W.w_down = L.take(p + "ffn_down.weight", d, hp.n_ff, false);
    }
    for (const auto &kv : g.tensors)
        if (!L.used.count(kv.first))
            log(EUROLLM_LOG_WARN, what, ": ignoring tensor '", kv.first, "' not used by the llama architecture");

    // Tokenizer, special ids, chat template.
    if (g.find("tokenizer.ggml.model")) {
        nlohmann::json config = nlohmann::json::object();
        if (const gguf_value *v = g.find("tokenizer.ggml.add_bos_token"); v && v->is_int())
            config["add_bos_token"] = v->i != 0;
        m.tok = std::make_unique<tokenizer>(tokenizer::from_serialized_proto, gguf_vocab_to_sentencepiece(g, what), what,
                                            config, hp.n_vocab);
        hp.bos_id = m.tok->bos_id();
    } else {
        log(EUROLLM_LOG_INFO, what, ": no embedded vocabulary; the model takes token ids only");
    }
    if (const gguf_value *eos = g.find("tokenizer.ggml.eos_token_id"); eos && eos->is_int()) {
        if (eos->i < 0 || eos->i >= hp.n_vocab) fail(EUROLLM_ERR_BAD_MODEL, what, ": eos token id out of range");
        hp.eos_ids.push_back(static_cast<int32_t>(eos->i));
    }
    if (const gguf_value *eot = g.find("tokenizer.ggml.eot_token_id"); eot && eot->is_int() && eot->i >= 0 &&
                                                                       eot->i < hp.n_vocab &&
                                                                       std::find(hp.eos_ids.begin(), hp.eos_ids.end(), eot->i) == hp.eos_ids.end())
        hp.eos_ids.push_back(static_cast<int32_t>(eot->i));
    if (const gguf_value *ct = g.find("tokenizer.chat_template"); ct && ct->type == gguf_type::string) {
        m.chat_template = ct->s;
        m.has_chat_template = true;
    }
    m.eos_ids = hp.eos_ids;
}

}  // namespace eurollm
