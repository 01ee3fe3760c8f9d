// A loaded Llama-family model: hyper-parameters, weight views into the mapped files, tokenizer.
// Immutable after load, so any number of contexts on any threads may share it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"
#include "model/hparams.h"
#include "tokenizer/tokenizer.h"

namespace eurollm {

struct layer_weights {
    tensor_ref attn_norm, wq, wk, wv, wo;
    tensor_ref ffn_norm, w_gate, w_up, w_down;
    // Biases, converted to f32 at load (tiny); empty when the config has no bias.
    std::vector<float> bq, bk, bv, bo, b_gate, b_up, b_down;
};

struct model_load_options {
    bool use_mmap = true;
    // Convert the 2-D weights to this type at load (see convert_weights); none: keep them as stored.
    std::optional<wtype> weight_type;
};

class model {
public:
    hparams hp;
    tensor_ref tok_embd;     // [n_vocab, n_embd]
    tensor_ref output_norm;  // [n_embd]
    tensor_ref output;       // [n_vocab, n_embd]; tok_embd when tied
    std::vector<layer_weights> layers;
    std::unique_ptr<tokenizer> tok;  // null when the directory has no tokenizer.model
    std::string chat_template;       // empty when none
    bool has_chat_template = false;
    std::string path;
    int64_t n_params = 0;

    // Every id that ends generation: generation_config, config and the tokenizer's EOS.
    std::vector<int32_t> eos_ids;

    const tokenizer &require_tokenizer() const;

    std::vector<std::unique_ptr<mapped_file>> files;  // keeps the weight views alive
    std::vector<std::vector<uint8_t>> owned_weights;  // weights rewritten at load (GGUF q/k row order)
    std::shared_ptr<void> packed_region;  // holds every tensor_ref::packed (see pack_weights)
};

// Loads a Hugging Face model directory or a GGUF file. Throws eurollm::error naming the file and the problem.
std::unique_ptr<model> load_model(const std::string &path, const model_load_options &options);

}  // namespace eurollm
