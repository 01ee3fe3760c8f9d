// The step loop of text generation on one context: evaluates pending tokens, samples, detects
// stop tokens and stop strings, and releases text only when it is final (never a broken UTF-8
// sequence, never a prefix of a stop string).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eurollm.h"
#include "generate/sampler.h"
#include "runtime/context.h"

namespace eurollm {

struct generator_options {
    sampler_params sampling;
    int32_t max_tokens = 256;  // <= 0: until the context is full
    bool ignore_eos = false;
    int32_t seq = 0;           // the context sequence this generator extends
};

class generator {
public:
    using token_callback = std::function<bool(int32_t token, const std::string &text)>;

    generator(context &ctx, const generator_options &options);

    void add_stop_token(int32_t token);
    void add_stop_string(const std::string &text);
    void set_callback(token_callback cb) { callback_ = std::move(cb); }
    void append(const int32_t *tokens, size_t n);

    // EUROLLM_OK with *token set, or EUROLLM_DONE (then *token = -1). Throws on errors.
    eurollm_status step(int32_t *token);
    // One step of several generators on the same context, their pending tokens evaluated in one
    // batch: continuous batching, where generators join and leave between calls.
    static void step_batch(generator *const *gens, size_t n, int32_t *tokens, eurollm_status *statuses);

    int32_t seq() const { return opt_.seq; }
    context &ctx() { return ctx_; }

    const std::string &text_delta() const { return delta_; }
    const float *logits();  // evaluates pending tokens first
    eurollm_stop_reason stop_reason() const { return stop_; }
    size_t n_generated() const { return n_generated_; }

private:
    bool finished_before_sampling();  // true (and finished) when this step cannot produce a token
    eurollm_status sample_and_emit(int32_t *token);
    void evaluate_pending();
    void finish(eurollm_stop_reason why);
    void emit_text(const std::string &bytes);
    size_t held_back() const;  // bytes at the end of text_ that may still become a stop string

    context &ctx_;
    generator_options opt_;
    sampler sampler_;
    std::vector<int32_t> stop_tokens_;
    std::vector<std::string> stop_strings_;
    token_callback callback_;

    std::vector<int32_t> pending_;
    std::string text_;       // all generated text (bytes), including what is not released yet
    size_t released_ = 0;    // bytes of text_ released so far
    std::string delta_;
    bool text_started_ = false;  // has any text-producing token preceded? (leading-space rule)
    size_t n_generated_ = 0;
    eurollm_stop_reason stop_ = EUROLLM_STOP_NONE;
    bool finish_next_ = false;
    eurollm_stop_reason finish_next_reason_ = EUROLLM_STOP_NONE;
};

}  // namespace eurollm
