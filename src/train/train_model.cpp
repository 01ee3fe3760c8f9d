#include "train/train_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/math.h"
#include "core/error.h"
#include "kernels.h"
#include "kernels_backward.h"
#include "train/rng.h"

namespace eurollm::train {

const char *const kProjNames[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const char *const kProjModules[7] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};

namespace {

void resize(std::vector<float> &v, int64_t n) {
    if (static_cast<int64_t>(v.size()) != n) v.assign(static_cast<size_t>(n), 0.0f);
}

// The first 64-byte boundary in a float buffer (allocated 16 floats larger).
void *align64(float *p) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    return reinterpret_cast<uint8_t *>(p) + (64 - at % 64) % 64;
}

// Rows of B*T tokens: splits of at least `grain` rows.
int64_t row_grain(int64_t n, int threads) { return std::max<int64_t>(1, n / (threads * 4)); }

}  // namespace

// Everything the backward pass reads, for the current batch shape.
struct train_model::acts {
    int64_t B = 0, T = 0;
    struct layer {
        std::vector<float> x, h1, rstd1, q, k, v, att, ao, x_mid, h2, rstd2, gate, up, act;
        std::vector<float> lora_u[7];     // scale * drop(x) Aᵀ: [n, r]
        std::vector<float> lora_mask[7];  // dropout multipliers of x (empty without dropout)
    };
    std::vector<layer> layers;
    std::vector<float> x_final, hf, rstdf, logits, losses;
    std::vector<int32_t> pos, targets;
    // Backward scratch.
    std::vector<float> dx, dh, dq, dk, dv, dff1, dff2, dao, dkh, dvh, tmp, lora_du;
    std::vector<float> prep;  // prepared operands of one product (see prep_buffer)
};

param *train_model::add_param(const std::string &name, int64_t rows, int64_t cols, bool vector) {
    auto p = std::make_unique<param>();
    p->name = name;
    p->rows = rows;
    p->cols = cols;
    p->is_vector = vector;
    p->decay = !vector;
    const size_t n = static_cast<size_t>(rows * cols);
    p->w.assign(n, 0.0f);
    p->g.assign(n, 0.0f);
    p->m.assign(n, 0.0f);
    p->v.assign(n, 0.0f);
    params_.push_back(std::move(p));
    return params_.back().get();
}

param *train_model::add_param_from(const std::string &name, const tensor_ref &src, bool vector) {
    param *p = add_param(name, src.rows, src.cols, vector);
    // The f32 master copy: embedding_rows converts any stored type row by row.
    std::vector<int32_t> ids(static_cast<size_t>(src.rows));
    for (int64_t r = 0; r < src.rows; ++r) ids[static_cast<size_t>(r)] = static_cast<int32_t>(r);
    kernels::embedding_rows(ids.data(), src.data, src.type, src.cols, 0, src.rows, p->w.data());
    return p;
}

param *train_model::find(const std::string &name) {
    for (auto &p : params_)
        if (p->name == name) return p.get();
    return nullptr;
}

// The tensor the products read for a trainable matrix: its f32 values, or in BF16 precision a bf16
// copy (refreshed from the f32 master before each forward pass).
tensor_ref train_model::compute_ref(param *p) {
    if (cfg_.compute != precision::bf16) return p->ref();
    p->w16.resize(p->w.size());
    return tensor_ref{p->w16.data(), wtype::bf16, p->rows, p->cols};
}

// A frozen matrix as the products read it: as stored, or in BF16 precision an f32/f16 one as a bf16
// copy made once here (bf16 and quantized ones are read as stored).
tensor_ref train_model::frozen_ref(const tensor_ref &t) {
    if (cfg_.compute != precision::bf16 || (t.type != wtype::f32 && t.type != wtype::f16)) return t;
    frozen16_.emplace_back(static_cast<size_t>(t.rows * t.cols));
    std::vector<uint16_t> &dst = frozen16_.back();
    pool_.parallel_for(t.rows, 16, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(t.cols));
        for (int64_t r = r0; r < r1; ++r) {
            const int32_t id = static_cast<int32_t>(r);
            kernels::embedding_rows(&id, t.data, t.type, t.cols, 0, 1, row.data());
            uint16_t *out = dst.data() + r * t.cols;
            for (int64_t c = 0; c < t.cols; ++c) out[c] = kmath::f32_to_bf16(row[static_cast<size_t>(c)]);
        }
    });
    return tensor_ref{dst.data(), wtype::bf16, t.rows, t.cols};
}

void train_model::refresh_compute_copies() {
    for (auto &p : params_) {
        if (p->w16.empty()) continue;
        pool_.parallel_for(p->size(), 1 << 16, [&](int64_t e0, int64_t e1) {
            for (int64_t e = e0; e < e1; ++e)
                p->w16[static_cast<size_t>(e)] = kmath::f32_to_bf16(p->w[static_cast<size_t>(e)]);
        });
    }
}

void *train_model::prep_buffer(size_t bytes) {
    std::vector<float> &b = a_->prep;
    if (b.size() < bytes / sizeof(float) + 17) b.resize(bytes / sizeof(float) + 17);
    return align64(b.data());
}

train_model::train_model(const model &m, const train_config &cfg)
    : m_(m), cfg_(cfg), pool_(cfg.n_threads > 0 ? cfg.n_threads : default_thread_count()), a_(std::make_unique<acts>()) {
    const hparams &hp = m.hp;
    const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    inv_freq_ = hp.rope_inv_freq();
    if (cfg.lora) {
        if (cfg.lora_rank <= 0 || cfg.lora_rank > 4096) fail(EUROLLM_ERR_INVALID_ARGUMENT, "lora rank ", cfg.lora_rank, " is out of range");
        if ((cfg.lora_targets & lora_all) == 0 || (cfg.lora_targets & ~uint32_t(lora_all)))
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "lora targets must be a non-empty set of q, k, v, o, gate, up, down");
        if (!(cfg.lora_dropout >= 0.0f && cfg.lora_dropout < 1.0f))
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "lora dropout must be in [0, 1)");
    }
    const bool full = !cfg.lora;

    tok_embd_ = m.tok_embd;
    if (full) {
        p_embd_ = add_param_from("model.embed_tokens.weight", m.tok_embd, false);
        tok_embd_ = p_embd_->ref();
    }
    const int64_t out_dims[7] = {q_dim, kv_dim, kv_dim, d, hp.n_ff, hp.n_ff, d};
    const int64_t in_dims[7] = {d, d, d, q_dim, d, d, hp.n_ff};
    layers_.resize(static_cast<size_t>(hp.n_layer));
    rng init_rng(cfg.seed ^ 0x10a4a11ce5eedULL);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const layer_weights &W = m.layers[static_cast<size_t>(l)];
        train_layer &L = layers_[static_cast<size_t>(l)];
        const std::string pre = "model.layers." + std::to_string(l) + ".";
        const tensor_ref *wts[7] = {&W.wq, &W.wk, &W.wv, &W.wo, &W.w_gate, &W.w_up, &W.w_down};
        const std::vector<float> *biases[7] = {&W.bq, &W.bk, &W.bv, &W.bo, &W.b_gate, &W.b_up, &W.b_down};
        L.attn_norm.w = W.attn_norm;
        if (full) {
            L.attn_norm.p = add_param_from(pre + "input_layernorm.weight", W.attn_norm, true);
            L.attn_norm.w = L.attn_norm.p->ref();
        }
        for (int j = 0; j < 7; ++j) {
            linear &P = L.proj[j];
            P.in = in_dims[j];
            P.out = out_dims[j];
            P.w = frozen_ref(*wts[j]);
            const std::string name = pre + kProjModules[j] + "." + kProjNames[j];
            if (full) {
                P.pw = add_param_from(name + ".weight", *wts[j], false);
                P.w = compute_ref(P.pw);
            }
            if (!biases[j]->empty()) {
                if (full) {
                    P.pb = add_param(name + ".bias", 1, P.out, true);
                    std::copy(biases[j]->begin(), biases[j]->end(), P.pb->w.begin());
                    P.bias = P.pb->w.data();
                } else {
                    P.bias = biases[j]->data();
                }
            }
            if (j == 3) {  // the MLP norm sits between o_proj and gate_proj in checkpoint order
                L.ffn_norm.w = W.ffn_norm;
                if (full) {
                    L.ffn_norm.p = add_param_from(pre + "post_attention_layernorm.weight", W.ffn_norm, true);
                    L.ffn_norm.w = L.ffn_norm.p->ref();
                }
            }
            if (cfg.lora && (cfg.lora_targets & (1u << j))) {
                const std::string peft = "base_model.model." + name;
                P.lora_a = add_param(peft + ".lora_A.weight", cfg.lora_rank, P.in, false);
                P.lora_b = add_param(peft + ".lora_B.weight", P.out, cfg.lora_rank, false);
                P.lora_scale = cfg.lora_alpha / static_cast<float>(cfg.lora_rank);
                // PEFT's default: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); B = 0.
                const float bound = 1.0f / std::sqrt(static_cast<float>(P.in));
                for (float &x : P.lora_a->w) x = init_rng.uniform(-bound, bound);
            }
        }
    }
    output_norm_.w = m.output_norm;
    if (full) {
        output_norm_.p = add_param_from("model.norm.weight", m.output_norm, true);
        output_norm_.w = output_norm_.p->ref();
    }
    head_ = full ? m.output : frozen_ref(m.output);
    if (full) {
        if (hp.tie_embeddings) {
            p_head_ = p_embd_;
        } else {
            p_head_ = add_param_from("lm_head.weight", m.output, false);
        }
        head_ = compute_ref(p_head_);
    }
}

train_model::~train_model() = default;

void train_model::zero_grad() {
    for (auto &p : params_) std::fill(p->g.begin(), p->g.end(), 0.0f);
}

int64_t train_model::count_targets(const int32_t *labels, int64_t B, int64_t T) {
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 1; t < T; ++t) n += labels[b * T + t] >= 0 ? 1 : 0;
    return n;
}

// ---- threaded products ----

// Products through a bf16 matrix (a frozen base, or weights cast for the BF16 mode) take the tile
// kernels: in BF16 precision always, in EXACT precision from kTileMinRows rows where the CPU has
// AMX (the three-term split: products as exact as the f32 kernels', sums in another order; 6-8x
// their speed at the 1.7B model's shapes, see backend_cpu.cpp).
bool train_model::takes_tiles(const tensor_ref &w, int64_t n) const {
    if (w.type != wtype::bf16) return false;
    return cfg_.compute == precision::bf16 || (n >= kernels::kTileMinRows && kernels::exact_tiles_supported());
}

void train_model::mm(const float *x, int64_t n, const tensor_ref &w, const float *bias, float *y) {
    const int64_t m = w.rows, k = w.cols;
    const int nt = pool_.size();
    // Column chunks start at multiples of 16: matmul_prepared groups columns in fours from the
    // start of its range, so any thread count then gives the same bits.
    const int64_t grain = std::max<int64_t>(16, m / (nt * 8) / 16 * 16);
    if (takes_tiles(w, n)) {
        const bool exact = cfg_.compute == precision::exact;
        void *prep = prep_buffer(exact ? kernels::exact_tiles_prep_bytes(n, k) : kernels::bf16_prep_bytes(n, k));
        pool_.parallel_for(n, row_grain(n, nt), [&](int64_t i0, int64_t i1) {
            if (exact) kernels::exact_tiles_prepare(x, k, n, k, i0, i1, prep);
            else kernels::bf16_prepare(x, k, n, k, i0, i1, prep);
        });
        // Chunks of whole 256-column panels of the tile kernel (multiples of 16 as above).
        const int64_t panels = std::max<int64_t>(256, m / (nt * 4) / 256 * 256);
        const auto *wb = static_cast<const uint16_t *>(w.data);
        pool_.parallel_for(m, panels, [&](int64_t j0, int64_t j1) {
            if (exact) kernels::exact_tiles_matmul(prep, n, k, wb, bias, j0, j1, y, m);
            else kernels::bf16_matmul(prep, n, k, wb, bias, j0, j1, y, m);
        });
        return;
    }
    if (m >= 64 * nt) {
        // Prepare the activations once (not once per thread), then split the output columns.
        void *prep = prep_buffer(kernels::matmul_prep_bytes(w.type, n, k));
        pool_.parallel_for(n, row_grain(n, nt), [&](int64_t i0, int64_t i1) {
            kernels::matmul_prepare(x, k, w.type, i0, i1, prep);
        });
        pool_.parallel_for(m, grain, [&](int64_t j0, int64_t j1) {
            // A quantized base packed at load is read as packed (same bits; no repacking per step).
            if (w.packed) kernels::matmul_packed(prep, n, k, w.packed, w.type, bias, j0, j1, y, m);
            else kernels::matmul_prepared(prep, n, k, w.data, w.type, bias, j0, j1, y, m);
        });
    } else {
        pool_.parallel_for(n, row_grain(n, nt), [&](int64_t i0, int64_t i1) {
            kernels::matmul_rows(x + i0 * k, i1 - i0, k, w.data, w.type, bias, 0, m, y + i0 * m, m);
        });
    }
}

// dx[n, k] (+)= dy[n, m] · W[m, k]
void train_model::gemm_dx(const float *dy, int64_t n, int64_t m, const tensor_ref &w, float *dx, bool accumulate) {
    const int64_t k = w.cols;
    const int nt = pool_.size();
    if (kernels::wtype_is_quantized(w.type)) {
        // A quantized frozen base: dequantize blocks of 64 weight rows to f32, then the product.
        constexpr int64_t kRows = 64;
        std::vector<float> rows(static_cast<size_t>(kRows * k));
        const int64_t row_bytes = kernels::wtype_row_bytes(w.type, k);
        for (int64_t q0 = 0; q0 < m; q0 += kRows) {
            const int64_t q1 = std::min(m, q0 + kRows);
            pool_.parallel_for(q1 - q0, 1, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r)
                    kernels::dequantize_row(static_cast<const uint8_t *>(w.data) + (q0 + r) * row_bytes, w.type, k,
                                            rows.data() + r * k);
            });
            const tensor_ref block{rows.data(), wtype::f32, q1 - q0, k};
            // dx (+)= dy[:, q0:q1] · rows
            const int64_t blocks = (k + 63) / 64;
            const bool acc = accumulate || q0 > 0;
            pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
                kernels::gemm_rows(0, n, q1 - q0, dy + q0, m, 1, block.data, wtype::f32, k, b0 * 64, std::min(k, b1 * 64),
                                   dx, k, acc);
            });
        }
        return;
    }
    if (takes_tiles(w, n)) {
        // dy rounded to bf16 (or split into three bf16 terms) once, then the columns of dx split
        // over the threads.
        const bool exact = cfg_.compute == precision::exact;
        void *prep = prep_buffer(exact ? kernels::exact_tiles_prep_bytes(n, m) : kernels::bf16_prep_bytes(n, m));
        pool_.parallel_for(n, row_grain(n, nt), [&](int64_t i0, int64_t i1) {
            if (exact) kernels::exact_tiles_prepare(dy, m, n, m, i0, i1, prep);
            else kernels::bf16_prepare(dy, m, n, m, i0, i1, prep);
        });
        // Blocks of 256 columns: one packed panel of the tile kernel each.
        const int64_t blocks = (k + 255) / 256;
        const auto *wb = static_cast<const uint16_t *>(w.data);
        pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
            const int64_t c0 = b0 * 256, c1 = std::min(k, b1 * 256);
            if (exact) kernels::exact_tiles_gemm_dx(prep, n, m, wb, k, c0, c1, dx, k, accumulate);
            else kernels::gemm_dx_bf16(dy, m, prep, n, m, wb, k, c0, c1, dx, k, accumulate);
        });
        return;
    }
    if (k >= 64 * nt * 2) {
        const int64_t blocks = (k + 63) / 64;
        pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
            kernels::gemm_rows(0, n, m, dy, m, 1, w.data, w.type, k, b0 * 64, std::min(k, b1 * 64), dx, k, accumulate);
        });
    } else {
        pool_.parallel_for(n, std::max<int64_t>(4, row_grain(n, nt)), [&](int64_t i0, int64_t i1) {
            kernels::gemm_rows(i0, i1, m, dy, m, 1, w.data, w.type, k, 0, k, dx, k, accumulate);
        });
    }
}

// dw[m, k] += dy[n, m]ᵀ · x[n, k]
void train_model::gemm_dw(const float *dy, int64_t n, int64_t m, const float *x, int64_t k, float *dw) {
    const int nt = pool_.size();
    if (m >= 8 * nt) {
        pool_.parallel_for(m, std::max<int64_t>(4, (m / (nt * 4)) & ~int64_t(3)), [&](int64_t j0, int64_t j1) {
            kernels::gemm_rows(j0, j1, n, dy, 1, m, x, wtype::f32, k, 0, k, dw, k, true);
        });
    } else {
        const int64_t blocks = (k + 63) / 64;
        pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
            kernels::gemm_rows(0, m, n, dy, 1, m, x, wtype::f32, k, b0 * 64, std::min(k, b1 * 64), dw, k, true);
        });
    }
}

void train_model::linear_forward(const linear &L, const float *x, int64_t n, float *y, int layer, int proj,
                                 uint64_t dropout_seed, bool train) {
    mm(x, n, L.w, L.bias, y);
    if (!L.lora_a) return;
    acts::layer &A = a_->layers[static_cast<size_t>(layer)];
    const int64_t r = L.lora_a->rows, in = L.in, out = L.out;
    std::vector<float> &u = A.lora_u[proj];
    std::vector<float> &mask = A.lora_mask[proj];
    resize(u, n * r);
    const float p_drop = cfg_.lora_dropout;
    const float *xin = x;
    std::vector<float> xd;
    if (train && p_drop > 0.0f) {
        resize(mask, n * in);
        xd.resize(static_cast<size_t>(n * in));
        const float keep = 1.0f / (1.0f - p_drop);
        const uint64_t stream = mix64(dropout_seed ^ mix64(static_cast<uint64_t>(layer) * 8 + proj + 1));
        pool_.parallel_for(n, row_grain(n, pool_.size()), [&](int64_t i0, int64_t i1) {
            for (int64_t e = i0 * in; e < i1 * in; ++e) {
                const float mval = uniform01(stream, static_cast<uint64_t>(e)) < p_drop ? 0.0f : keep;
                mask[static_cast<size_t>(e)] = mval;
                xd[static_cast<size_t>(e)] = x[e] * mval;
            }
        });
        xin = xd.data();
    } else {
        mask.clear();
    }
    // u = scale * (xin Aᵀ); y += u Bᵀ
    const float s = L.lora_scale;
    pool_.parallel_for(n, row_grain(n, pool_.size()), [&](int64_t i0, int64_t i1) {
        kernels::matmul_rows(xin + i0 * in, i1 - i0, in, L.lora_a->w.data(), wtype::f32, nullptr, 0, r,
                             u.data() + i0 * r, r);
        for (int64_t e = i0 * r; e < i1 * r; ++e) u[static_cast<size_t>(e)] *= s;
    });
    // y += u Bᵀ as r rank-1 updates over Bᵀ [r, out] (a dot product of only r terms per output
    // would spend more on the horizontal sums than on the products).
    std::vector<float> &bt = a_->tmp;
    resize(bt, r * out);
    const float *bw = L.lora_b->w.data();
    for (int64_t o = 0; o < out; ++o)
        for (int64_t j = 0; j < r; ++j) bt[static_cast<size_t>(j * out + o)] = bw[o * r + j];
    pool_.parallel_for(n, row_grain(n, pool_.size()), [&](int64_t i0, int64_t i1) {
        kernels::gemm_rows(i0, i1, r, u.data(), r, 1, bt.data(), wtype::f32, out, 0, out, y, out, true);
    });
}

void train_model::linear_backward(const linear &L, const float *x, const float *dy, int64_t n, float *dx,
                                  bool accumulate, int layer, int proj) {
    const int64_t in = L.in, out = L.out;
    if (L.pw) gemm_dw(dy, n, out, x, in, L.pw->g.data());
    if (L.pb) {
        float *db = L.pb->g.data();
        pool_.parallel_for(out, std::max<int64_t>(64, out / (pool_.size() * 4)), [&](int64_t j0, int64_t j1) {
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = j0; j < j1; ++j) db[j] += dy[i * out + j];
        });
    }
    gemm_dx(dy, n, out, L.w, dx, accumulate);
    if (!L.lora_a) return;
    acts::layer &A = a_->layers[static_cast<size_t>(layer)];
    const int64_t r = L.lora_a->rows;
    const std::vector<float> &u = A.lora_u[proj];
    const std::vector<float> &mask = A.lora_mask[proj];
    // dB += dyᵀ u (u already carries the scale)
    gemm_dw(dy, n, out, u.data(), r, L.lora_b->g.data());
    // du = scale * dy · B  [n, r]
    std::vector<float> &du = a_->lora_du;
    resize(du, n * r);
    const float s = L.lora_scale;
    pool_.parallel_for(n, row_grain(n, pool_.size()), [&](int64_t i0, int64_t i1) {
        kernels::gemm_rows(i0, i1, out, dy, out, 1, L.lora_b->w.data(), wtype::f32, r, 0, r, du.data(), r, false);
        for (int64_t e = i0 * r; e < i1 * r; ++e) du[static_cast<size_t>(e)] *= s;
    });
    // dA += duᵀ drop(x)
    const float *xin = x;
    std::vector<float> xd;
    if (!mask.empty()) {
        xd.resize(static_cast<size_t>(n * in));
        for (int64_t e = 0; e < n * in; ++e) xd[static_cast<size_t>(e)] = x[e] * mask[static_cast<size_t>(e)];
        xin = xd.data();
    }
    gemm_dw(du.data(), n, r, xin, in, L.lora_a->g.data());
    // dx += (du · A) * mask
    if (mask.empty()) {
        gemm_dx(du.data(), n, r, L.lora_a->ref(), dx, true);
    } else {
        std::vector<float> &tmp = a_->tmp;
        resize(tmp, n * in);
        gemm_dx(du.data(), n, r, L.lora_a->ref(), tmp.data(), false);
        for (int64_t e = 0; e < n * in; ++e) dx[e] += tmp[static_cast<size_t>(e)] * mask[static_cast<size_t>(e)];
    }
}

// ---- forward ----

void train_model::forward(const int32_t *tokens, int64_t B, int64_t T, uint64_t dropout_seed, bool train) {
    const hparams &hp = m_.hp;
    const int64_t n = B * T, d = hp.n_embd, nh = hp.n_head, nkv = hp.n_head_kv, hd = hp.head_dim;
    const int64_t q_dim = nh * hd, kv_dim = nkv * hd, ff = hp.n_ff, V = hp.n_vocab;
    for (int64_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= V)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "token id ", tokens[i], " at index ", i, " is outside the vocabulary [0, ", V, ")");
    if (T > hp.n_ctx_train)
        fail(EUROLLM_ERR_CONTEXT_FULL, "sequence length ", T, " exceeds the model's context (", hp.n_ctx_train, ")");
    acts &a = *a_;
    a.B = B;
    a.T = T;
    a.layers.resize(static_cast<size_t>(hp.n_layer));
    a.pos.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) a.pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
    const int nt = pool_.size();
    const int64_t rg = row_grain(n, nt);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

    refresh_compute_copies();
    std::vector<float> *x = &a.layers[0].x;
    resize(*x, n * d);
    kernels::embedding_rows(tokens, tok_embd_.data, tok_embd_.type, d, 0, n, x->data());
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const train_layer &L = layers_[static_cast<size_t>(l)];
        acts::layer &A = a.layers[static_cast<size_t>(l)];
        resize(A.h1, n * d);
        resize(A.rstd1, n);
        resize(A.q, n * q_dim);
        resize(A.k, n * kv_dim);
        resize(A.v, n * kv_dim);
        resize(A.att, B * nh * T * T);
        resize(A.ao, n * q_dim);
        resize(A.x_mid, n * d);
        resize(A.h2, n * d);
        resize(A.rstd2, n);
        resize(A.gate, n * ff);
        resize(A.up, n * ff);
        resize(A.act, n * ff);
        const float *xl = A.x.data();
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            kernels::rms_norm_forward_rows(xl, L.attn_norm.w.data, L.attn_norm.w.type, d, hp.rms_eps, i0, i1,
                                           A.h1.data(), A.rstd1.data());
        });
        const int li = static_cast<int>(l);
        linear_forward(L.proj[0], A.h1.data(), n, A.q.data(), li, 0, dropout_seed, train);
        linear_forward(L.proj[1], A.h1.data(), n, A.k.data(), li, 1, dropout_seed, train);
        linear_forward(L.proj[2], A.h1.data(), n, A.v.data(), li, 2, dropout_seed, train);
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            kernels::rope_rows(A.q.data(), nh, hd, a.pos.data(), inv_freq_.data(), hd, i0, i1);
            kernels::rope_rows(A.k.data(), nkv, hd, a.pos.data(), inv_freq_.data(), hd, i0, i1);
        });
        const int64_t group = nh / nkv;
        pool_.parallel_for(B * nh, 1, [&](int64_t t0, int64_t t1) {
            thread_local std::vector<float> scratch;
            const bool bf16 = cfg_.compute == precision::bf16;
            const size_t need = bf16 ? kernels::attention_bf16_scratch_bytes(T, hd) / sizeof(float) + 16
                                     : static_cast<size_t>(T * hd);
            if (scratch.size() < need) scratch.resize(need);
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t b = t / nh, h = t % nh, kvh = h / group;
                const float *q = A.q.data() + b * T * q_dim + h * hd, *k = A.k.data() + b * T * kv_dim + kvh * hd,
                            *v = A.v.data() + b * T * kv_dim + kvh * hd;
                float *P = A.att.data() + t * T * T, *o = A.ao.data() + b * T * q_dim + h * hd;
                if (bf16)
                    kernels::attention_forward_head_bf16(q, k, v, T, hd, q_dim, kv_dim, scale, hp.sliding_window, P, o,
                                                         align64(scratch.data()));
                else
                    kernels::attention_forward_head(q, k, v, T, hd, q_dim, kv_dim, scale, hp.sliding_window, P, o,
                                                    scratch.data());
            }
        });
        linear_forward(L.proj[3], A.ao.data(), n, A.x_mid.data(), li, 3, dropout_seed, train);
        pool_.parallel_for(n * d, 1 << 14, [&](int64_t e0, int64_t e1) {
            for (int64_t e = e0; e < e1; ++e) A.x_mid[static_cast<size_t>(e)] += xl[e];
        });
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            kernels::rms_norm_forward_rows(A.x_mid.data(), L.ffn_norm.w.data, L.ffn_norm.w.type, d, hp.rms_eps, i0, i1,
                                           A.h2.data(), A.rstd2.data());
        });
        linear_forward(L.proj[4], A.h2.data(), n, A.gate.data(), li, 4, dropout_seed, train);
        linear_forward(L.proj[5], A.h2.data(), n, A.up.data(), li, 5, dropout_seed, train);
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            kernels::swiglu_forward_rows(A.gate.data(), A.up.data(), A.act.data(), ff, i0, i1);
        });
        std::vector<float> &next = l + 1 < hp.n_layer ? a.layers[static_cast<size_t>(l + 1)].x : a.x_final;
        resize(next, n * d);
        linear_forward(L.proj[6], A.act.data(), n, next.data(), li, 6, dropout_seed, train);
        pool_.parallel_for(n * d, 1 << 14, [&](int64_t e0, int64_t e1) {
            for (int64_t e = e0; e < e1; ++e) next[static_cast<size_t>(e)] += A.x_mid[static_cast<size_t>(e)];
        });
    }
    resize(a.hf, n * d);
    resize(a.rstdf, n);
    pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
        kernels::rms_norm_forward_rows(a.x_final.data(), output_norm_.w.data, output_norm_.w.type, d, hp.rms_eps, i0, i1,
                                       a.hf.data(), a.rstdf.data());
    });
    resize(a.logits, n * V);
    mm(a.hf.data(), n, head_, nullptr, a.logits.data());
}

void train_model::logits(const int32_t *tokens, int64_t B, int64_t T, float *out) {
    forward(tokens, B, T, 0, false);
    std::memcpy(out, a_->logits.data(), a_->logits.size() * sizeof(float));
}

double train_model::forward_backward(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T,
                                     float grad_scale, bool backward_pass, uint64_t dropout_seed, int64_t *n_counted) {
    forward(tokens, B, T, dropout_seed, backward_pass);
    acts &a = *a_;
    const int64_t n = B * T, V = m_.hp.n_vocab;
    a.targets.resize(static_cast<size_t>(n));
    int64_t counted = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
            int32_t y = t + 1 < T ? labels[b * T + t + 1] : -100;
            if (y >= V) fail(EUROLLM_ERR_INVALID_ARGUMENT, "label ", y, " is outside the vocabulary [0, ", V, ")");
            if (y < 0) y = -100;
            a.targets[static_cast<size_t>(b * T + t)] = y;
            counted += y >= 0 ? 1 : 0;
        }
    a.losses.resize(static_cast<size_t>(n));
    float *dlogits = backward_pass ? a.logits.data() : nullptr;
    pool_.parallel_for(n, row_grain(n, pool_.size()), [&](int64_t i0, int64_t i1) {
        kernels::cross_entropy_rows(a.logits.data(), a.targets.data(), V, grad_scale, i0, i1, a.losses.data(), dlogits);
    });
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += a.losses[static_cast<size_t>(i)];
    if (n_counted) *n_counted = counted;
    if (backward_pass && std::isfinite(sum)) backward(tokens, B, T);
    return sum;
}

// ---- backward ----

void train_model::backward(const int32_t *tokens, int64_t B, int64_t T) {
    const hparams &hp = m_.hp;
    acts &a = *a_;
    const int64_t n = B * T, d = hp.n_embd, nh = hp.n_head, nkv = hp.n_head_kv, hd = hp.head_dim;
    const int64_t q_dim = nh * hd, kv_dim = nkv * hd, ff = hp.n_ff, V = hp.n_vocab;
    const int nt = pool_.size();
    const int64_t rg = row_grain(n, nt);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const float *dlogits = a.logits.data();

    resize(a.dx, n * d);
    resize(a.dh, n * d);
    resize(a.dq, n * q_dim);
    resize(a.dk, n * kv_dim);
    resize(a.dv, n * kv_dim);
    resize(a.dff1, n * ff);
    resize(a.dff2, n * ff);
    resize(a.dao, n * q_dim);
    resize(a.dkh, B * nh * T * hd);
    resize(a.dvh, B * nh * T * hd);
    float *dx = a.dx.data(), *dh = a.dh.data();

    // Head and final norm.
    if (p_head_) gemm_dw(dlogits, n, V, a.hf.data(), d, p_head_->g.data());
    gemm_dx(dlogits, n, V, head_, dh, false);
    auto norm_backward = [&](const norm &N, const float *x, const float *rstd, bool accumulate) {
        if (N.p) {
            float *dw = N.p->g.data();
            pool_.parallel_for(d, std::max<int64_t>(16, d / (nt * 2)), [&](int64_t c0, int64_t c1) {
                kernels::rms_norm_backward_weight(dh, x, rstd, n, d, c0, c1, dw);
            });
        }
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            kernels::rms_norm_backward_rows(dh, x, rstd, N.w.data, N.w.type, d, i0, i1, dx, accumulate);
        });
    };
    norm_backward(output_norm_, a.x_final.data(), a.rstdf.data(), false);

    const int64_t group = nh / nkv;
    for (int64_t l = hp.n_layer - 1; l >= 0; --l) {
        const train_layer &L = layers_[static_cast<size_t>(l)];
        acts::layer &A = a.layers[static_cast<size_t>(l)];
        const int li = static_cast<int>(l);
        // MLP: x_next = x_mid + down(silu(gate(h2)) * up(h2)); dx holds d x_next.
        linear_backward(L.proj[6], A.act.data(), dx, n, a.dff1.data(), false, li, 6);
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            kernels::swiglu_backward_rows(a.dff1.data(), A.gate.data(), A.up.data(), a.dff1.data(), a.dff2.data(), ff, i0, i1);
        });
        linear_backward(L.proj[4], A.h2.data(), a.dff1.data(), n, dh, false, li, 4);
        linear_backward(L.proj[5], A.h2.data(), a.dff2.data(), n, dh, true, li, 5);
        norm_backward(L.ffn_norm, A.x_mid.data(), A.rstd2.data(), true);  // dx is now d x_mid

        // Attention: x_mid = x + o(attention(rope(q(h1)), rope(k(h1)), v(h1))).
        linear_backward(L.proj[3], A.ao.data(), dx, n, a.dao.data(), false, li, 3);
        pool_.parallel_for(B * nh, 1, [&](int64_t t0, int64_t t1) {
            thread_local std::vector<float> scratch;
            const bool bf16 = cfg_.compute == precision::bf16;
            const size_t need = bf16 ? kernels::attention_bf16_scratch_bytes(T, hd) / sizeof(float) + 16
                                     : static_cast<size_t>(T * T + T * hd);
            if (scratch.size() < need) scratch.resize(need);
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t b = t / nh, h = t % nh, kvh = h / group;
                const float *dout = a.dao.data() + b * T * q_dim + h * hd, *q = A.q.data() + b * T * q_dim + h * hd,
                            *k = A.k.data() + b * T * kv_dim + kvh * hd, *v = A.v.data() + b * T * kv_dim + kvh * hd,
                            *P = A.att.data() + t * T * T;
                float *dq = a.dq.data() + b * T * q_dim + h * hd, *dk = a.dkh.data() + t * T * hd,
                      *dv = a.dvh.data() + t * T * hd;
                if (bf16)
                    kernels::attention_backward_head_bf16(dout, q, k, v, P, T, hd, q_dim, kv_dim, scale, dq, dk, dv,
                                                          align64(scratch.data()));
                else
                    kernels::attention_backward_head(dout, q, k, v, P, T, hd, q_dim, kv_dim, scale, dq, dk, dv,
                                                     scratch.data());
            }
        });
        // Sum the query heads of each kv head, in head order.
        pool_.parallel_for(n, rg, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) {
                const int64_t b = i / T, t = i % T;
                for (int64_t kvh = 0; kvh < nkv; ++kvh) {
                    float *dk = a.dk.data() + i * kv_dim + kvh * hd;
                    float *dv = a.dv.data() + i * kv_dim + kvh * hd;
                    for (int64_t c = 0; c < hd; ++c) dk[c] = dv[c] = 0.0f;
                    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
                        const float *sk = a.dkh.data() + ((b * nh + h) * T + t) * hd;
                        const float *sv = a.dvh.data() + ((b * nh + h) * T + t) * hd;
                        for (int64_t c = 0; c < hd; ++c) {
                            dk[c] += sk[c];
                            dv[c] += sv[c];
                        }
                    }
                }
            }
            kernels::rope_backward_rows(a.dq.data(), nh, hd, a.pos.data(), inv_freq_.data(), hd, i0, i1);
            kernels::rope_backward_rows(a.dk.data(), nkv, hd, a.pos.data(), inv_freq_.data(), hd, i0, i1);
        });
        linear_backward(L.proj[0], A.h1.data(), a.dq.data(), n, dh, false, li, 0);
        linear_backward(L.proj[1], A.h1.data(), a.dk.data(), n, dh, true, li, 1);
        linear_backward(L.proj[2], A.h1.data(), a.dv.data(), n, dh, true, li, 2);
        norm_backward(L.attn_norm, A.x.data(), A.rstd1.data(), true);  // dx is now d x (the block input)
    }
    if (p_embd_) {
        float *dt = p_embd_->g.data();
        pool_.parallel_for(d, std::max<int64_t>(16, d / (nt * 2)), [&](int64_t c0, int64_t c1) {
            kernels::embedding_backward(tokens, dx, n, d, c0, c1, dt);
        });
    }
}

}  // namespace eurollm::train
