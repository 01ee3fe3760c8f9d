// The training view of a Llama-family model, llm.c style: a forward pass that keeps every
// activation the backward pass needs, and a hand-written backward pass through the output head,
// the final norm, each block (rms norm, attention with GQA / rope / sliding window, SwiGLU MLP)
// and the embedding. No autograd: each op's backward is a kernel of kernels_backward.h.
//
// The loaded model is never written: trainable tensors are f32 master copies owned here (full
// fine-tuning) or LoRA A/B matrices over the frozen base, which is read as stored (f32/f16/bf16).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "model/model.h"

namespace eurollm::train {

// A trainable tensor: f32 values, gradient and AdamW moments.
struct param {
    std::string name;  // Hugging Face name (full) or PEFT name (LoRA)
    int64_t rows = 1, cols = 0;
    std::vector<float> w, g, m, v;
    std::vector<uint16_t> w16;  // bf16 compute copy of w (BF16 precision, full fine-tuning's matrices)
    bool decay = true;  // AdamW weight decay (matrices yes; norms and biases no)
    bool is_vector = false;
    int64_t size() const { return rows * cols; }
    tensor_ref ref() const { return tensor_ref{w.data(), wtype::f32, rows, cols}; }
};

// LoRA target projections (bit flags, the same values as the experimental C API).
enum lora_target : uint32_t {
    lora_q = 1u << 0,
    lora_k = 1u << 1,
    lora_v = 1u << 2,
    lora_o = 1u << 3,
    lora_gate = 1u << 4,
    lora_up = 1u << 5,
    lora_down = 1u << 6,
    lora_all = 0x7fu,
};
extern const char *const kProjNames[7];     // "q_proj", ... in target-bit order
extern const char *const kProjModules[7];   // "self_attn", "self_attn", ..., "mlp"

// How the products through matrices meet their activations (eurollm_precision).
//   exact: f32 activations (against bf16 weights: exact products on AMX tiles, three bf16 terms
//          per activation; 16 significand bits kept on Zen 4): gradients match float32 autograd
//          to ~1e-5.
//   bf16:  the products through the model's matrices in bf16 (`vdpbf16ps` at full rate):
//          activations and output gradients rounded to bf16, the frozen base as bf16 (f32/f16 ones
//          copied once), full fine-tuning's matrices through a bf16 copy of the f32 master weights.
//          Master weights, LoRA adapters and their products, gradients and moments stay f32.
enum class precision { exact, bf16 };

struct train_config {
    bool lora = false;
    precision compute = precision::exact;
    int64_t lora_rank = 8;
    float lora_alpha = 16.0f;
    float lora_dropout = 0.0f;
    uint32_t lora_targets = lora_q | lora_v;
    int n_threads = 0;  // 0: one per core
    uint64_t seed = 0;  // LoRA initialisation
};

// A linear layer as the training pass sees it: y = x Wᵀ + b + scale * (drop(x) Aᵀ) Bᵀ.
struct linear {
    tensor_ref w;               // frozen model tensor, or the trainable param's values
    param *pw = nullptr;        // trainable weight (full fine-tuning)
    const float *bias = nullptr;
    param *pb = nullptr;        // trainable bias
    param *lora_a = nullptr;    // [r, in]
    param *lora_b = nullptr;    // [out, r]
    float lora_scale = 0.0f;
    int64_t in = 0, out = 0;
};

struct norm {
    tensor_ref w;
    param *p = nullptr;
};

struct train_layer {
    norm attn_norm, ffn_norm;
    linear proj[7];  // q, k, v, o, gate, up, down (kProjNames order)
};

class train_model {
public:
    train_model(const model &m, const train_config &cfg);
    ~train_model();
    train_model(const train_model &) = delete;
    train_model &operator=(const train_model &) = delete;

    const model &base() const { return m_; }
    const train_config &config() const { return cfg_; }
    std::vector<std::unique_ptr<param>> &params() { return params_; }
    const std::vector<std::unique_ptr<param>> &params() const { return params_; }
    param *find(const std::string &name);
    threadpool &pool() { return pool_; }

    // Number of positions that carry a loss for labels [B, T] (Hugging Face convention: position
    // t predicts labels[t + 1]; -100 is ignored).
    static int64_t count_targets(const int32_t *labels, int64_t B, int64_t T);

    // Forward (and, with `backward`, backward) over B sequences of T tokens. Gradients are added
    // to each param's g, with the loss scaled by grad_scale (1 / the tokens of the whole step).
    // Returns the sum of the token losses; *n_counted the tokens that carried one.
    // dropout_seed selects the LoRA dropout masks (counter-based, so it resumes exactly).
    double forward_backward(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T, float grad_scale,
                            bool backward, uint64_t dropout_seed, int64_t *n_counted);

    // Logits of every position ([B * T, n_vocab]) with the current trainable values, no dropout.
    void logits(const int32_t *tokens, int64_t B, int64_t T, float *out);

    void zero_grad();

private:
    struct acts;
    void forward(const int32_t *tokens, int64_t B, int64_t T, uint64_t dropout_seed, bool train);
    void backward(const int32_t *tokens, int64_t B, int64_t T);

    // Threaded helpers.
    bool takes_tiles(const tensor_ref &w, int64_t n) const;
    void mm(const float *x, int64_t n, const tensor_ref &w, const float *bias, float *y);
    void gemm_dx(const float *dy, int64_t n, int64_t m, const tensor_ref &w, float *dx, bool accumulate);
    void gemm_dw(const float *dy, int64_t n, int64_t m, const float *x, int64_t k, float *dw);
    void linear_forward(const linear &L, const float *x, int64_t n, float *y, int layer, int proj,
                        uint64_t dropout_seed, bool train);
    void linear_backward(const linear &L, const float *x, const float *dy, int64_t n, float *dx, bool accumulate,
                         int layer, int proj);
    tensor_ref compute_ref(param *p);
    tensor_ref frozen_ref(const tensor_ref &t);
    void refresh_compute_copies();
    void *prep_buffer(size_t bytes);  // 64-byte aligned scratch for prepared operands

    param *add_param(const std::string &name, int64_t rows, int64_t cols, bool vector);
    param *add_param_from(const std::string &name, const tensor_ref &src, bool vector);

    const model &m_;
    train_config cfg_;
    threadpool pool_;
    std::vector<std::unique_ptr<param>> params_;
    std::vector<train_layer> layers_;
    norm output_norm_;
    tensor_ref tok_embd_, head_;
    param *p_embd_ = nullptr, *p_head_ = nullptr;
    std::vector<float> inv_freq_;
    std::deque<std::vector<uint16_t>> frozen16_;  // bf16 copies of f32/f16 frozen matrices (BF16 precision)
    std::unique_ptr<acts> a_;
};

}  // namespace eurollm::train
