// Weight type conversion shared by quantize-at-load (load_model with a weight_type) and the GGUF
// writer, so that a model converted in memory and the same model written and read back hold the very
// same bytes.
#pragma once

#include <cstdint>
#include <functional>

#include "core/tensor.h"

namespace eurollm {

class model;
class threadpool;

// Where a 2-D weight sits, for the quantize rules that depend on it.
struct weight_place {
    enum kind_t { projection, output_head, attn_v, ffn_down } kind = projection;
    int64_t layer = 0, n_layer = 1;
};

// The type a 2-D weight (token embedding, projections, output head) takes when a model is converted
// to `type`: llama.cpp's quantize rules for the types we write. Q4_0 keeps the output head (the token
// embedding when tied) at Q8_0 (llama.cpp raises it to Q6_K, Q8_0 where Q6_K does not fit). Q4_K is
// llama.cpp's Q4_K_M mix: the output head, and attn_v and ffn_down in the first and last eighth of
// the layers and every third layer between, at Q6_K. Rows the blocks do not divide fall back to Q8_0
// (k-quants, rows of 32; llama.cpp takes Q5_0 for Q4_K) or F16.
wtype converted_weight_type(wtype type, const tensor_ref &w, weight_place where);

// True for the types quantize_row writes (all of them: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K).
bool writable_weight_type(wtype type);

// Rows [r0, r1) of the conversion of `w` to `type`, written to dst (row r at (r - r0) * row bytes).
// Row r comes from source row src_row(r) (identity when empty). Rows already of `type` are copied.
void convert_rows(const tensor_ref &w, wtype type, const std::function<int64_t(int64_t)> &src_row, int64_t r0,
                  int64_t r1, uint8_t *dst, threadpool &pool);

// Converts every 2-D weight of `m` to converted_weight_type(type, ...), one tensor at a time, into
// owned buffers; the source pages of each converted tensor are released when it is done, so the peak
// is the converted weights plus one source tensor. Norms stay as stored. Throws UNSUPPORTED for a
// type the quantizer cannot write.
void convert_weights(model &m, wtype type);

// Gives every q8_0/q4_0 product weight (projections, output head) its packed copy
// (tensor_ref::packed), the layout the CPU kernels stream. Canonical bytes that lie in a file
// mapping are released as they are packed (they read back from the file if ever needed again: GGUF
// export, training, embedding rows), so the peak is the packed weights plus a few MiB. Canonical
// bytes on the heap (quantized at load, or GGUF q/k rows reordered at load) are kept.
void pack_weights(model &m);

}  // namespace eurollm
