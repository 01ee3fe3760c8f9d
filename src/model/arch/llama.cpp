#include "model/arch/llama.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace eurollm {

llama_scratch::~llama_scratch() { release(); }

void llama_scratch::release() noexcept {
    if (be_ && block_) {
        try {
            be_->free(block_);
        } catch (...) {  // teardown has nobody to report to
        }
    }
    block_ = nullptr;
    rows_ = 0;
}

void llama_scratch::reserve(backend &be, const hparams &hp, int64_t n) {
    if (inv_freq.empty()) inv_freq = hp.rope_inv_freq();
    if (&be == be_ && n <= rows_) return;
    release();
    be_ = &be;
    // Each buffer starts on a 64-byte boundary (16 floats).
    auto padded = [](int64_t count) { return (count + 15) / 16 * 16; };
    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    const int64_t sizes[8] = {n * hp.n_embd, n * hp.n_embd, n * q_dim, n * q_dim, n * kv_dim, n * kv_dim,
                              n * hp.n_ff, n * hp.n_ff};
    int64_t total = 0;
    for (int64_t c : sizes) total += padded(c);
    block_ = be.alloc(static_cast<size_t>(total) * sizeof(float), -1);
    rows_ = n;
    float *p = static_cast<float *>(block_);
    float **bufs[8] = {&x, &h, &q, &attn, &k_new, &v_new, &gate, &up};
    for (int i = 0; i < 8; ++i) {
        *bufs[i] = p;
        p += padded(sizes[i]);
    }
}

namespace {

const float *bias_or_null(const std::vector<float> &b) { return b.empty() ? nullptr : b.data(); }

}  // namespace

void llama_forward(const model &m, backend &be, const llama_batch &b, kv_layers &cache, llama_scratch &s,
                   llama_output what, float *out, bool (*abort)(void *), void *abort_data) {
    const hparams &hp = m.hp;
    const int64_t n = b.n;
    const int32_t *pos = b.pos;
    const int64_t d = hp.n_embd;
    s.reserve(be, hp, n);
    float *x = s.x, *h = s.h;

    be.begin_layer(-1);
    be.embedding(b.tokens, n, m.tok_embd, x);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        if (abort && !abort(abort_data)) fail(EUROLLM_ERR_ABORTED, "aborted by the abort callback");
        const layer_weights &L = m.layers[static_cast<size_t>(l)];
        be.begin_layer(l);

        // Attention block: x += o_proj(attention(rope(q), rope(k), v)) of rms_norm(x).
        be.rms_norm(x, n, L.attn_norm, hp.rms_eps, h);
        const backend::product qkv[] = {{&L.wq, bias_or_null(L.bq), s.q},
                                        {&L.wk, bias_or_null(L.bk), s.k_new},
                                        {&L.wv, bias_or_null(L.bv), s.v_new}};
        be.matmuls(h, n, qkv, 3);
        be.rope(s.q, n, hp.n_head, hp.head_dim, pos, s.inv_freq.data());
        be.rope(s.k_new, n, hp.n_head_kv, hp.head_dim, pos, s.inv_freq.data());
        be.store_kv(s.k_new, b.cell, n, hp.n_head_kv, hp.head_dim, cache.stride, cache.type,
                    cache.k[static_cast<size_t>(l)]);
        be.store_kv(s.v_new, b.cell, n, hp.n_head_kv, hp.head_dim, cache.stride, cache.type,
                    cache.v[static_cast<size_t>(l)]);

        backend::attention_args a{};
        a.q = s.q;
        a.k = cache.k[static_cast<size_t>(l)];
        a.v = cache.v[static_cast<size_t>(l)];
        a.kv_type = cache.type;
        a.out = s.attn;
        a.cells = b.visible;
        a.row_begin = b.visible_begin;
        a.n = n;
        a.n_head = hp.n_head;
        a.n_head_kv = hp.n_head_kv;
        a.head_dim = hp.head_dim;
        a.kv_stride = cache.stride;
        a.scale = scale;
        be.attention(a);
        be.matmul(s.attn, n, L.wo, bias_or_null(L.bo), h);
        be.add(x, h, n * d);

        // MLP block: x += down(silu(gate(h)) * up(h)), h = rms_norm(x).
        be.rms_norm(x, n, L.ffn_norm, hp.rms_eps, h);
        const backend::product gate_up[] = {{&L.w_gate, bias_or_null(L.b_gate), s.gate},
                                            {&L.w_up, bias_or_null(L.b_up), s.up}};
        be.matmuls(h, n, gate_up, 2);
        be.swiglu(s.gate, s.up, n, hp.n_ff);
        be.matmul(s.gate, n, L.w_down, bias_or_null(L.b_down), h);
        be.add(x, h, n * d);
    }

    be.begin_layer(hp.n_layer);
    // Gather the output rows, normalise them, and project to the vocabulary if logits are wanted.
    std::vector<int64_t> &rows = s.out_rows;
    rows.clear();
    for (int64_t i = 0; i < n; ++i)
        if (b.output[i]) rows.push_back(i);
    const auto n_out = static_cast<int64_t>(rows.size());
    if (n_out == 0) return;
    be.copy_rows(x, x, rows.data(), n_out, d);
    if (what == llama_output::hidden) {
        be.rms_norm(x, n_out, m.output_norm, hp.rms_eps, out);
        return;
    }
    be.rms_norm(x, n_out, m.output_norm, hp.rms_eps, h);
    be.matmul(h, n_out, m.output, nullptr, out);
}

}  // namespace eurollm
