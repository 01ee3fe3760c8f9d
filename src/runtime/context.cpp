#include "runtime/context.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace eurollm {
namespace {

int64_t resolve_n_ctx(const hparams &hp, int64_t requested) {
    if (requested < 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_ctx must not be negative");
    if (requested == 0) return std::min<int64_t>(hp.n_ctx_train, 4096);
    if (requested > (int64_t{1} << 22)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_ctx ", requested, " is too large");
    return requested;
}

int check_threads(int n) {
    if (n < 0 || n > 1024) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_threads ", n, " is out of range");
    return n;
}

}  // namespace

context::context(const model &m, const context_options &o)
    : model_(m),
      backend_(make_backend(m, o.device, check_threads(o.n_threads), o.precision)),
      cache_(m.hp, resolve_n_ctx(m.hp, o.n_ctx), o.kv_type, *backend_),
      n_batch_(o.n_batch > 0 ? o.n_batch : 512),
      seed_(o.seed),
      history_(kMaxSequences),
      logits_(kMaxSequences) {}

void context::check_seq(int32_t seq) const {
    if (seq < 0 || seq >= kMaxSequences)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequence id ", seq, " is out of range [0, ", kMaxSequences, ")");
}

const std::vector<int32_t> &context::history(int32_t seq) const {
    check_seq(seq);
    return history_[static_cast<size_t>(seq)];
}

void context::reset() {
    cache_.clear();
    for (auto &h : history_) h.clear();
    for (auto &l : logits_) l.clear();
}

void context::seq_remove(int32_t seq, int32_t p0) {
    check_seq(seq);
    auto &h = history_[static_cast<size_t>(seq)];
    if (p0 < 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "position ", p0, " is negative");
    if (static_cast<size_t>(p0) >= h.size()) return;
    cache_.seq_remove(seq, p0, -1);
    h.resize(static_cast<size_t>(p0));
    logits_[static_cast<size_t>(seq)].clear();  // the last token changed; its logits are unknown
}

void context::seq_copy(int32_t src, int32_t dst, int32_t n) {
    check_seq(src);
    check_seq(dst);
    if (src == dst) fail(EUROLLM_ERR_INVALID_ARGUMENT, "cannot copy sequence ", src, " onto itself");
    if (!history_[static_cast<size_t>(dst)].empty())
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequence ", dst, " is not empty; remove it first");
    const auto &h = history_[static_cast<size_t>(src)];
    const size_t count = n < 0 ? h.size() : std::min(h.size(), static_cast<size_t>(n));
    cache_.seq_copy(src, dst, 0, static_cast<int32_t>(count));
    history_[static_cast<size_t>(dst)].assign(h.begin(), h.begin() + static_cast<long>(count));
    logits_[static_cast<size_t>(dst)] = count == h.size() ? logits_[static_cast<size_t>(src)] : std::vector<float>();
}

void context::seq_keep(int32_t seq) {
    check_seq(seq);
    cache_.seq_keep(seq);
    for (int32_t s = 0; s < kMaxSequences; ++s) {
        if (s == seq) continue;
        history_[static_cast<size_t>(s)].clear();
        logits_[static_cast<size_t>(s)].clear();
    }
}

void context::validate_tokens(const int32_t *tokens, size_t n) const {
    if (n > 0 && !tokens) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tokens is NULL");
    for (size_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= model_.hp.n_vocab)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "token id ", tokens[i], " at index ", i, " is outside the vocabulary [0, ",
                 model_.hp.n_vocab, ")");
}

void context::run(const std::vector<int32_t> &tokens, const std::vector<int32_t> &seq, const std::vector<int32_t> &pos,
                  const std::vector<uint8_t> &output, llama_output what, float *out) {
    const int64_t width = what == llama_output::logits ? model_.hp.n_vocab : model_.hp.n_embd;
    const size_t total = tokens.size();
    for (size_t done = 0; done < total;) {
        const size_t chunk = std::min<size_t>(total - done, static_cast<size_t>(n_batch_));
        cache_.place(seq.data() + done, pos.data() + done, static_cast<int64_t>(chunk), model_.hp.sliding_window,
                     placement_);
        llama_batch b;
        b.tokens = tokens.data() + done;
        b.pos = pos.data() + done;
        b.cell = placement_.cell.data();
        b.visible = placement_.visible.data();
        b.visible_begin = placement_.visible_begin.data();
        b.output = output.data() + done;
        b.n = static_cast<int64_t>(chunk);
        try {
            llama_forward(model_, *backend_, b, cache_.layers(), scratch_, what, out, abort_, abort_data_);
        } catch (...) {
            cache_.release(placement_.cell);  // the cache keeps only completed batches
            throw;
        }
        for (size_t i = done; i < done + chunk; ++i) {
            history_[static_cast<size_t>(seq[i])].push_back(tokens[i]);
            if (output[i]) out += width;
        }
        done += chunk;
    }
}

void context::decode_batch(const decode_item *items, size_t n_items) {
    if (n_items > 0 && !items) fail(EUROLLM_ERR_INVALID_ARGUMENT, "items is NULL");
    std::vector<int32_t> tokens, seq, pos;
    std::vector<uint8_t> output;
    uint64_t seen = 0;
    for (size_t k = 0; k < n_items; ++k) {
        const decode_item &it = items[k];
        check_seq(it.seq);
        if (seen & (uint64_t{1} << it.seq)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequence ", it.seq, " appears twice in the batch");
        seen |= uint64_t{1} << it.seq;
        if (it.n == 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "no tokens to evaluate for sequence ", it.seq);
        validate_tokens(it.tokens, it.n);
        const auto start = static_cast<int32_t>(history_[static_cast<size_t>(it.seq)].size());
        for (size_t j = 0; j < it.n; ++j) {
            tokens.push_back(it.tokens[j]);
            seq.push_back(it.seq);
            pos.push_back(start + static_cast<int32_t>(j));
            output.push_back(j + 1 == it.n ? 1 : 0);
        }
    }
    if (static_cast<int64_t>(tokens.size()) > n_free())
        fail(EUROLLM_ERR_CONTEXT_FULL, tokens.size(), " tokens do not fit in the context (", n_ctx() - n_free(), " of ",
             n_ctx(), " positions used)");
    const int64_t n_vocab = model_.hp.n_vocab;
    out_.resize(n_items * static_cast<size_t>(n_vocab));
    for (size_t k = 0; k < n_items; ++k) logits_[static_cast<size_t>(items[k].seq)].clear();
    run(tokens, seq, pos, output, llama_output::logits, out_.data());
    // Output rows come in batch order; with chunking an item's last token may land in any chunk,
    // but rows stay in the order of the tokens that produced them.
    size_t row = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (!output[i]) continue;
        const float *r = out_.data() + row++ * static_cast<size_t>(n_vocab);
        logits_[static_cast<size_t>(seq[i])].assign(r, r + n_vocab);
    }
}

const float *context::decode(const int32_t *tokens, size_t n, float *all_out, int32_t seq) {
    check_seq(seq);
    if (n == 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "no tokens to evaluate");
    if (!all_out) {
        const decode_item item{seq, tokens, n};
        decode_batch(&item, 1);
        return logits_[static_cast<size_t>(seq)].data();
    }
    validate_tokens(tokens, n);
    if (static_cast<int64_t>(n) > n_free())
        fail(EUROLLM_ERR_CONTEXT_FULL, n, " tokens do not fit in the context (", n_ctx() - n_free(), " of ", n_ctx(),
             " positions used)");
    const auto start = static_cast<int32_t>(history_[static_cast<size_t>(seq)].size());
    std::vector<int32_t> toks(tokens, tokens + n), seqs(n, seq), pos(n);
    for (size_t j = 0; j < n; ++j) pos[j] = start + static_cast<int32_t>(j);
    logits_[static_cast<size_t>(seq)].clear();
    run(toks, seqs, pos, std::vector<uint8_t>(n, 1), llama_output::logits, all_out);
    const int64_t n_vocab = model_.hp.n_vocab;
    const float *last = all_out + (n - 1) * static_cast<size_t>(n_vocab);
    logits_[static_cast<size_t>(seq)].assign(last, last + n_vocab);
    return logits_[static_cast<size_t>(seq)].data();
}

const float *context::last_logits(int32_t seq) const {
    check_seq(seq);
    const auto &l = logits_[static_cast<size_t>(seq)];
    return l.empty() ? nullptr : l.data();
}

void context::hidden_states(const std::vector<std::vector<int32_t>> &lists, std::vector<float> &rows) {
    size_t total = 0;
    for (size_t i = 0; i < lists.size(); ++i) {
        if (lists[i].empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "input ", i, " has no tokens");
        if (static_cast<int64_t>(lists[i].size()) > n_ctx())
            fail(EUROLLM_ERR_CONTEXT_FULL, "input ", i, " has ", lists[i].size(), " tokens but the context holds ", n_ctx());
        validate_tokens(lists[i].data(), lists[i].size());
        total += lists[i].size();
    }
    const int64_t d = model_.hp.n_embd;
    rows.resize(total * static_cast<size_t>(d));
    reset();
    // Pack as many inputs as fit (cells and sequence ids) into each round; each starts at position 0.
    size_t next = 0, row = 0;
    while (next < lists.size()) {
        std::vector<int32_t> tokens, seq, pos;
        int32_t s = 0;
        while (next < lists.size() && s < kMaxSequences &&
               static_cast<int64_t>(tokens.size() + lists[next].size()) <= n_ctx()) {
            for (size_t j = 0; j < lists[next].size(); ++j) {
                tokens.push_back(lists[next][j]);
                seq.push_back(s);
                pos.push_back(static_cast<int32_t>(j));
            }
            ++s;
            ++next;
        }
        run(tokens, seq, pos, std::vector<uint8_t>(tokens.size(), 1), llama_output::hidden,
            rows.data() + row * static_cast<size_t>(d));
        row += tokens.size();
        reset();
    }
}

}  // namespace eurollm
