#include "model/arch/llama.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace eurollm {

void llama_scratch::reserve(const hparams &hp, int64_t n) {
    auto grow = [](std::vector<float> &v, int64_t count) {
        if (static_cast<int64_t>(v.size()) < count) v.resize(static_cast<size_t>(count));
    };
    grow(x, n * hp.n_embd);
    grow(h, n * hp.n_embd);
    grow(q, n * hp.n_head * hp.head_dim);
    grow(attn, n * hp.n_head * hp.head_dim);
    grow(k_new, n * hp.n_head_kv * hp.head_dim);
    grow(v_new, n * hp.n_head_kv * hp.head_dim);
    grow(gate, n * hp.n_ff);
    grow(up, n * hp.n_ff);
    if (inv_freq.empty()) inv_freq = hp.rope_inv_freq();
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
    s.reserve(hp, n);
    float *x = s.x.data(), *h = s.h.data();

    be.begin_layer(-1);
    be.embedding(b.tokens, n, m.tok_embd, x);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        if (abort && !abort(abort_data)) fail(EUROLLM_ERR_ABORTED, "aborted by the abort callback");
        const layer_weights &L = m.layers[static_cast<size_t>(l)];
        be.begin_layer(l);

        // Attention block: x += o_proj(attention(rope(q), rope(k), v)) of rms_norm(x).
        be.rms_norm(x, n, L.attn_norm, hp.rms_eps, h);
        be.matmul(h, n, L.wq, bias_or_null(L.bq), s.q.data());
        be.matmul(h, n, L.wk, bias_or_null(L.bk), s.k_new.data());
        be.matmul(h, n, L.wv, bias_or_null(L.bv), s.v_new.data());
        be.rope(s.q.data(), n, hp.n_head, hp.head_dim, pos, s.inv_freq.data());
        be.rope(s.k_new.data(), n, hp.n_head_kv, hp.head_dim, pos, s.inv_freq.data());
        be.store_kv(s.k_new.data(), b.cell, n, hp.n_head_kv, hp.head_dim, cache.stride, cache.type,
                    cache.k[static_cast<size_t>(l)]);
        be.store_kv(s.v_new.data(), b.cell, n, hp.n_head_kv, hp.head_dim, cache.stride, cache.type,
                    cache.v[static_cast<size_t>(l)]);

        backend::attention_args a{};
        a.q = s.q.data();
        a.k = cache.k[static_cast<size_t>(l)];
        a.v = cache.v[static_cast<size_t>(l)];
        a.kv_type = cache.type;
        a.out = s.attn.data();
        a.cells = b.visible;
        a.row_begin = b.visible_begin;
        a.n = n;
        a.n_head = hp.n_head;
        a.n_head_kv = hp.n_head_kv;
        a.head_dim = hp.head_dim;
        a.kv_stride = cache.stride;
        a.scale = scale;
        be.attention(a);
        be.matmul(s.attn.data(), n, L.wo, bias_or_null(L.bo), h);
        be.add(x, h, n * d);

        // MLP block: x += down(silu(gate(h)) * up(h)), h = rms_norm(x).
        be.rms_norm(x, n, L.ffn_norm, hp.rms_eps, h);
        be.matmul(h, n, L.w_gate, bias_or_null(L.b_gate), s.gate.data());
        be.matmul(h, n, L.w_up, bias_or_null(L.b_up), s.up.data());
        be.swiglu(s.gate.data(), s.up.data(), n, hp.n_ff);
        be.matmul(s.gate.data(), n, L.w_down, bias_or_null(L.b_down), h);
        be.add(x, h, n * d);
    }

    be.begin_layer(hp.n_layer);
    // Gather the output rows, normalise them, and project to the vocabulary if logits are wanted.
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!b.output[i]) continue;
        if (n_out != i) std::memcpy(x + n_out * d, x + i * d, static_cast<size_t>(d) * sizeof(float));
        ++n_out;
    }
    if (n_out == 0) return;
    if (what == llama_output::hidden) {
        be.rms_norm(x, n_out, m.output_norm, hp.rms_eps, out);
        return;
    }
    be.rms_norm(x, n_out, m.output_norm, hp.rms_eps, h);
    be.matmul(h, n_out, m.output, nullptr, out);
}

}  // namespace eurollm
