#include "generate/generator.h"

#include <algorithm>

#include "core/error.h"
#include "core/utf8.h"

namespace eurollm {

generator::generator(context &ctx, const generator_options &options)
    : ctx_(ctx), opt_(options), sampler_(options.sampling) {
    if (!opt_.ignore_eos) stop_tokens_ = ctx.get_model().eos_ids;
    const tokenizer *tok = ctx.get_model().tok.get();
    for (int32_t t : ctx.history(opt_.seq))
        if (tok && !tok->token_bytes(t).empty()) text_started_ = true;
}

void generator::add_stop_token(int32_t token) {
    if (token < 0 || token >= ctx_.get_model().hp.n_vocab)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "stop token ", token, " is outside the vocabulary");
    stop_tokens_.push_back(token);
}

void generator::add_stop_string(const std::string &text) {
    if (text.empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "stop string is empty");
    if (utf8_first_invalid(text) != std::string::npos) fail(EUROLLM_ERR_INVALID_ARGUMENT, "stop string is not valid UTF-8");
    stop_strings_.push_back(text);
}

void generator::append(const int32_t *tokens, size_t n) {
    if (stop_ != EUROLLM_STOP_NONE) fail(EUROLLM_ERR_INVALID_ARGUMENT, "the generator has finished; create a new one");
    if (n > 0 && !tokens) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tokens is NULL");
    std::vector<int32_t> all(pending_);
    all.insert(all.end(), tokens, tokens + n);
    ctx_.validate_tokens(all.data(), all.size());
    if (static_cast<int64_t>(all.size()) > ctx_.n_free())
        fail(EUROLLM_ERR_CONTEXT_FULL, all.size(), " tokens do not fit in the context (", ctx_.n_ctx() - ctx_.n_free(),
             " of ", ctx_.n_ctx(), " positions used)");
    const tokenizer *tok = ctx_.get_model().tok.get();
    for (size_t i = 0; i < n; ++i)
        if (tok && !tok->token_bytes(tokens[i]).empty()) text_started_ = true;
    pending_ = std::move(all);
}

void generator::evaluate_pending() {
    if (pending_.empty()) return;
    ctx_.decode(pending_.data(), pending_.size(), nullptr, opt_.seq);
    pending_.clear();
}

const float *generator::logits() {
    evaluate_pending();
    const float *l = ctx_.last_logits(opt_.seq);
    if (!l) fail(EUROLLM_ERR_INVALID_ARGUMENT, "no tokens evaluated yet: append prompt tokens first");
    return l;
}

size_t generator::held_back() const {
    // The longest suffix of the unreleased text that is a proper prefix of a stop string.
    size_t hold = 0;
    const size_t avail = text_.size() - released_;
    for (const std::string &s : stop_strings_) {
        for (size_t len = std::min(avail, s.size() - 1); len > hold; --len) {
            if (text_.compare(text_.size() - len, len, s, 0, len) == 0) {
                hold = len;
                break;
            }
        }
    }
    return hold;
}

void generator::emit_text(const std::string &bytes) {
    text_ += bytes;
    // A complete stop string ends generation; its text and everything after it are dropped.
    size_t cut = std::string::npos;
    for (const std::string &s : stop_strings_) {
        const size_t from = released_ > s.size() ? released_ - s.size() : 0;
        const size_t at = text_.find(s, from);
        if (at != std::string::npos && at < cut) cut = at;
    }
    size_t end;
    if (cut != std::string::npos) {
        text_.resize(cut);
        end = std::max(released_, cut);
        finish_next_ = true;
        finish_next_reason_ = EUROLLM_STOP_STRING;
    } else {
        end = text_.size() - held_back();
        end = released_ + utf8_complete_prefix(std::string_view(text_).substr(released_, end - released_));
    }
    if (end > released_) {
        delta_ = utf8_sanitize(std::string_view(text_).substr(released_, end - released_));
        released_ = end;
    }
}

void generator::finish(eurollm_stop_reason why) {
    stop_ = why;
    // Release what was held back: a stop-string prefix that never completed, a trailing byte run.
    if (why != EUROLLM_STOP_STRING && released_ < text_.size()) {
        delta_ = utf8_sanitize(std::string_view(text_).substr(released_));
        released_ = text_.size();
        if (callback_ && !delta_.empty()) callback_(-1, delta_);
    }
}

bool generator::finished_before_sampling() {
    delta_.clear();
    if (stop_ != EUROLLM_STOP_NONE) return true;
    if (finish_next_) {
        finish(finish_next_reason_);
        return true;
    }
    if (opt_.max_tokens > 0 && n_generated_ >= static_cast<size_t>(opt_.max_tokens)) {
        finish(EUROLLM_STOP_MAX_TOKENS);
        return true;
    }
    if (static_cast<int64_t>(pending_.size()) > ctx_.n_free()) {
        finish(EUROLLM_STOP_CONTEXT_FULL);  // the last sampled token has no cell left to be evaluated in
        return true;
    }
    return false;
}

eurollm_status generator::sample_and_emit(int32_t *token) {
    const float *l = logits();
    const model &m = ctx_.get_model();
    const int32_t tok = sampler_.sample(l, m.hp.n_vocab, ctx_.history(opt_.seq));
    if (std::find(stop_tokens_.begin(), stop_tokens_.end(), tok) != stop_tokens_.end()) {
        finish(EUROLLM_STOP_EOS);
        return EUROLLM_DONE;
    }
    ++n_generated_;
    pending_.assign(1, tok);
    if (m.tok) {
        std::string bytes = m.tok->token_bytes(tok);
        if (!text_started_ && !bytes.empty()) {
            if (m.tok->strips_leading_space() && bytes[0] == ' ') bytes.erase(0, 1);
            text_started_ = true;
        }
        emit_text(bytes);
    }
    if (token) *token = tok;
    if (callback_ && !callback_(tok, delta_)) {
        finish_next_ = true;
        finish_next_reason_ = EUROLLM_STOP_CALLBACK;
    }
    return EUROLLM_OK;
}

eurollm_status generator::step(int32_t *token) {
    if (token) *token = -1;
    if (finished_before_sampling()) return EUROLLM_DONE;
    return sample_and_emit(token);
}

void generator::step_batch(generator *const *gens, size_t n, int32_t *tokens, eurollm_status *statuses) {
    if (n == 0) return;
    context &ctx = gens[0]->ctx_;
    uint64_t seqs = 0;
    for (size_t i = 0; i < n; ++i) {
        if (&gens[i]->ctx_ != &ctx) fail(EUROLLM_ERR_INVALID_ARGUMENT, "generators in one batch must share a context");
        const uint64_t bit = uint64_t{1} << gens[i]->opt_.seq;
        if (seqs & bit) fail(EUROLLM_ERR_INVALID_ARGUMENT, "two generators in the batch extend sequence ", gens[i]->opt_.seq);
        seqs |= bit;
    }
    // Collect what still needs evaluating; a generator whose tokens no longer fit ends with
    // CONTEXT_FULL and the others go on.
    std::vector<context::decode_item> items;
    std::vector<bool> active(n, false);
    int64_t free_cells = ctx.n_free();
    for (size_t i = 0; i < n; ++i) {
        tokens[i] = -1;
        generator &g = *gens[i];
        if (g.finished_before_sampling()) {
            statuses[i] = EUROLLM_DONE;
            continue;
        }
        if (static_cast<int64_t>(g.pending_.size()) > free_cells) {
            g.finish(EUROLLM_STOP_CONTEXT_FULL);
            statuses[i] = EUROLLM_DONE;
            continue;
        }
        free_cells -= static_cast<int64_t>(g.pending_.size());
        active[i] = true;
        if (!g.pending_.empty()) items.push_back({g.opt_.seq, g.pending_.data(), g.pending_.size()});
    }
    ctx.decode_batch(items.data(), items.size());
    for (size_t i = 0; i < n; ++i) {
        if (!active[i]) continue;
        gens[i]->pending_.clear();
        statuses[i] = gens[i]->sample_and_emit(&tokens[i]);
    }
}

}  // namespace eurollm
