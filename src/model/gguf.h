// GGUF (llama.cpp's single-file format, versions 2 and 3): a header, typed key/value metadata, tensor
// descriptors, then the aligned tensor data. Every count, length, type and offset is checked against
// the file before it is used; anything malformed is BAD_MODEL naming the file and the problem.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace eurollm {

// GGUF metadata value types.
enum class gguf_type : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
    u64 = 10, i64 = 11, f64 = 12,
};

struct gguf_value {
    gguf_type type = gguf_type::u8;
    // Scalars: integers in `i` (u64 beyond INT64_MAX is rejected), floats in `f`, strings in `s`.
    int64_t i = 0;
    double f = 0.0;
    std::string s;
    // Arrays: element type and the items (numbers in `nums`, strings in `strs`).
    gguf_type elem = gguf_type::u8;
    std::vector<double> nums;
    std::vector<std::string> strs;

    bool is_int() const;
    bool is_number() const { return is_int() || type == gguf_type::f32 || type == gguf_type::f64; }
};

struct gguf_tensor {
    std::string name;
    uint32_t ggml_type = 0;
    std::vector<int64_t> ne;  // ggml order: ne[0] is the innermost (contiguous) dimension
    const uint8_t *data = nullptr;
    size_t nbytes = 0;
};

struct gguf_file {
    uint32_t version = 0;
    std::map<std::string, gguf_value> kv;
    std::map<std::string, gguf_tensor> tensors;
    size_t data_offset = 0;
    size_t alignment = 32;

    const gguf_value *find(const std::string &key) const;
};

// The ggml tensor types this build reads, as weight types; false for the others.
bool ggml_type_to_wtype(uint32_t ggml_type, wtype *out);
// And back (for writers).
uint32_t wtype_to_ggml_type(wtype t);
const char *ggml_type_name(uint32_t ggml_type);

// Parses and validates `file` (metadata, tensor table, offsets). `what` names it in messages.
gguf_file parse_gguf(const mapped_file &file);

// True if the file starts with the GGUF magic.
bool is_gguf_file(const std::string &path);

class model;
struct model_load_options;
// Fills `m` (hparams, weights, tokenizer, chat template) from a GGUF file of the llama architecture.
void load_gguf_model(model &m, const std::string &path, const model_load_options &options);

// The SentencePiece ModelProto (serialized) for a GGUF `llama` vocabulary: BPE-style merging by
// score (what llama.cpp's SPM tokenizer does), byte fallback, the dummy-prefix rule of the file.
std::string gguf_vocab_to_sentencepiece(const gguf_file &g, const std::string &path);

}  // namespace eurollm

namespace eurollm {

// Writes `m` as a GGUF v3 file llama.cpp reads: llama metadata, the SentencePiece vocabulary
// (padded with [PADn] up to n_vocab), the chat template, 2-D weights as converted_weight_type(type)
// (model/convert.h) or, with no type, as stored; norms as F32, q/k rows in llama.cpp's interleaved
// order. Written atomically (temporary file, fsync, rename), so a failure leaves no partial file.
// Throws IO / UNSUPPORTED.
void save_gguf(const model &m, const std::string &path, std::optional<wtype> type);

// "f32", "f16", "bf16", "q8_0", "q4_0" -> the type; false for the others.
bool parse_save_type(const std::string &name, wtype *out);

}  // namespace eurollm
