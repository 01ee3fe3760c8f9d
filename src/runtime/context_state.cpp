// Saving and restoring a context: every sequence's tokens and last logits, and the KV cells in use.
// The blob starts with a fingerprint of the model, so loading it into another model is refused.
//
// Layout (little-endian): "EUROLLMS" u32 version u64 fingerprint i64 n_layer i64 n_head_kv i64 head_dim
//   per sequence (64): u64 n_tokens, i32[n_tokens], u64 n_logits, f32[n_logits]
//   u64 n_cells, per cell: i32 cell, i32 pos, u64 seqs, f32[2 * n_layer * n_head_kv * head_dim]
#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "runtime/context.h"

namespace eurollm {
namespace {

constexpr char kMagic[8] = {'E', 'U', 'R', 'O', 'L', 'L', 'M', 'S'};
constexpr uint32_t kVersion = 1;

uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const auto *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

size_t tensor_bytes(const tensor_ref &t) {
    return static_cast<size_t>(t.rows * kernels::wtype_row_bytes(t.type, t.cols));
}

// Hashes 64 bytes at the start, middle and end of a tensor.
uint64_t sample_tensor(uint64_t h, const tensor_ref &t) {
    if (!t) return h;
    const size_t n = tensor_bytes(t);
    const auto *p = static_cast<const uint8_t *>(t.data);
    const size_t k = std::min<size_t>(n, 64);
    h = fnv1a(h, p, k);
    h = fnv1a(h, p + (n - k) / 2, k);
    return fnv1a(h, p + n - k, k);
}

// Hyper-parameters plus samples of every weight tensor: cheap at 3 GB, and different for any two
// real models (a full hash would cost a second per load).
uint64_t fingerprint(const model &m) {
    const hparams &hp = m.hp;
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, hp.architecture.data(), hp.architecture.size());
    for (int64_t v : {hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff, m.n_params})
        h = fnv1a(h, &v, sizeof v);
    for (const tensor_ref *t : {&m.tok_embd, &m.output_norm, &m.output}) h = sample_tensor(h, *t);
    for (const layer_weights &L : m.layers)
        for (const tensor_ref *t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down})
            h = sample_tensor(h, *t);
    return h;
}

struct writer {
    std::vector<uint8_t> buf;
    void bytes(const void *p, size_t n) {
        const auto *b = static_cast<const uint8_t *>(p);
        buf.insert(buf.end(), b, b + n);
    }
    template <typename T>
    void pod(T v) { bytes(&v, sizeof v); }
};

struct reader {
    const uint8_t *p, *end;
    void bytes(void *dst, size_t n) {
        if (static_cast<size_t>(end - p) < n) fail(EUROLLM_ERR_INVALID_ARGUMENT, "context state is truncated");
        if (n == 0) return;  // dst may be the null data() of an empty vector
        std::memcpy(dst, p, n);
        p += n;
    }
    template <typename T>
    T pod() {
        T v;
        bytes(&v, sizeof v);
        return v;
    }
};

}  // namespace

std::vector<uint8_t> context::save_state() const {
    const hparams &hp = model_.hp;
    writer w;
    w.bytes(kMagic, sizeof kMagic);
    w.pod(kVersion);
    w.pod(fingerprint(model_));
    for (int64_t v : {hp.n_layer, hp.n_head_kv, hp.head_dim}) w.pod(v);
    for (int32_t s = 0; s < kMaxSequences; ++s) {
        const auto &h = history_[static_cast<size_t>(s)];
        const auto &l = logits_[static_cast<size_t>(s)];
        w.pod(static_cast<uint64_t>(h.size()));
        w.bytes(h.data(), h.size() * sizeof(int32_t));
        w.pod(static_cast<uint64_t>(l.size()));
        w.bytes(l.data(), l.size() * sizeof(float));
    }
    auto &cache = const_cast<kv_cache &>(cache_);
    const auto &pos = cache.cell_pos();
    const auto &seqs = cache.cell_seqs();
    w.pod(static_cast<uint64_t>(cache.n_used()));
    std::vector<int32_t> used;
    for (size_t c = 0; c < seqs.size(); ++c)
        if (seqs[c]) used.push_back(static_cast<int32_t>(c));
    const size_t per_cell = static_cast<size_t>(2 * hp.n_layer * cache.floats_per_cell_per_layer());
    std::vector<float> kv(used.size() * per_cell);
    cache.copy_cells_out(used, kv.data());
    for (size_t i = 0; i < used.size(); ++i) {
        const auto c = static_cast<size_t>(used[i]);
        w.pod(used[i]);
        w.pod(pos[c]);
        w.pod(seqs[c]);
        w.bytes(kv.data() + i * per_cell, per_cell * sizeof(float));
    }
    return std::move(w.buf);
}

void context::load_state(const uint8_t *data, size_t size) {
    if (!data && size > 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "state is NULL");
    const hparams &hp = model_.hp;
    reader r{data, data + size};
    char magic[8];
    r.bytes(magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof magic) != 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "not a libeurollm context state");
    const auto version = r.pod<uint32_t>();
    if (version != kVersion) fail(EUROLLM_ERR_UNSUPPORTED, "context state version ", version, " is not supported");
    if (r.pod<uint64_t>() != fingerprint(model_))
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "the context state was saved from a different model");
    for (int64_t want : {hp.n_layer, hp.n_head_kv, hp.head_dim})
        if (r.pod<int64_t>() != want) fail(EUROLLM_ERR_INVALID_ARGUMENT, "the context state was saved from a different model");

    // Parse everything before touching the context, so a bad blob leaves it unchanged.
    std::vector<std::vector<int32_t>> history(kMaxSequences);
    std::vector<std::vector<float>> logits(kMaxSequences);
    for (int32_t s = 0; s < kMaxSequences; ++s) {
        const auto n = r.pod<uint64_t>();
        if (n > static_cast<uint64_t>(n_ctx())) fail(EUROLLM_ERR_INVALID_ARGUMENT, "context state holds more tokens than the context");
        history[static_cast<size_t>(s)].resize(n);
        r.bytes(history[static_cast<size_t>(s)].data(), n * sizeof(int32_t));
        validate_tokens(history[static_cast<size_t>(s)].data(), n);
        const auto nl = r.pod<uint64_t>();
        if (nl != 0 && nl != static_cast<uint64_t>(hp.n_vocab)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "context state logits have the wrong size");
        logits[static_cast<size_t>(s)].resize(nl);
        r.bytes(logits[static_cast<size_t>(s)].data(), nl * sizeof(float));
    }
    const auto n_cells = r.pod<uint64_t>();
    if (n_cells > static_cast<uint64_t>(n_ctx())) fail(EUROLLM_ERR_INVALID_ARGUMENT, "context state needs ", n_cells, " cells but the context has ", n_ctx());
    // Read straight into the layout copy_cells_in takes: the cells' ids and their rows, in order.
    const size_t floats = static_cast<size_t>(2 * hp.n_layer * cache_.floats_per_cell_per_layer());
    // Sized from the bytes actually there, so a damaged count cannot ask for a large allocation.
    const size_t record = 2 * sizeof(int32_t) + sizeof(uint64_t) + floats * sizeof(float);
    if (static_cast<size_t>(r.end - r.p) != n_cells * record)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "context state is truncated or has trailing bytes");
    std::vector<int32_t> ids(n_cells), cell_pos(n_cells);
    std::vector<uint64_t> cell_seqs(n_cells);
    std::vector<float> kv(n_cells * floats);
    for (size_t i = 0; i < n_cells; ++i) {
        ids[i] = r.pod<int32_t>();
        cell_pos[i] = r.pod<int32_t>();
        cell_seqs[i] = r.pod<uint64_t>();
        if (ids[i] < 0 || ids[i] >= n_ctx() || cell_pos[i] < 0 || cell_seqs[i] == 0)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "context state has an invalid cache cell");
        r.bytes(kv.data() + i * floats, floats * sizeof(float));
    }

    reset();
    for (size_t i = 0; i < n_cells; ++i) {
        cache_.cell_pos()[static_cast<size_t>(ids[i])] = cell_pos[i];
        cache_.cell_seqs()[static_cast<size_t>(ids[i])] = cell_seqs[i];
    }
    cache_.copy_cells_in(ids, kv.data());
    history_ = std::move(history);
    logits_ = std::move(logits);
}

}  // namespace eurollm
