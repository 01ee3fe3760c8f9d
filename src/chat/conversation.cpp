#include "chat/conversation.h"

#include <algorithm>

#include "chat/chat_template.h"
#include "core/error.h"

namespace eurollm::chat {

std::string apply_template(const model &m, const std::string &template_source, const nlohmann::ordered_json &messages,
                           bool add_generation_prompt, const nlohmann::ordered_json &extra) {
    if (!messages.is_array()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "chat messages must be a JSON array");
    const std::string &source = !template_source.empty() ? template_source : m.chat_template;
    if (source.empty()) return render_chatml(messages, add_generation_prompt);
    render_options o;
    o.add_generation_prompt = add_generation_prompt;
    if (m.tok) {
        if (m.hp.bos_id >= 0) o.bos_token = m.tok->piece(m.hp.bos_id);
        if (!m.eos_ids.empty()) o.eos_token = m.tok->piece(m.eos_ids[0]);
    }
    o.extra = extra.is_object() ? extra : nlohmann::ordered_json::object();
    return chat_template(source).render(messages, o);
}

conversation::conversation(context &ctx, const generator_options &options) : ctx_(ctx), options_(options) {
    const model &m = ctx.get_model();
    const tokenizer &tok = m.require_tokenizer();
    // End-of-turn markers that are single special tokens stop a reply, besides the eos ids.
    for (const char *marker : {"<|im_end|>", "<|eot_id|>", "<|end|>", "</s>"}) {
        const auto ids = tok.encode(marker, false, true);
        if (ids.size() == 1 && tok.is_control(ids[0])) turn_end_tokens_.push_back(ids[0]);
    }
    if (ctx_.n_past(options_.seq) != 0) ctx_.seq_remove(options_.seq, 0);
}

std::vector<int32_t> conversation::tokenize(const std::string &text) const {
    // Templates write BOS themselves where the model wants one (transformers tokenizes chat
    // prompts with add_special_tokens=False); special-token text becomes its id.
    return ctx_.get_model().require_tokenizer().encode(text, false, true);
}

void conversation::add_message(const std::string &role, const std::string &content) {
    if (role.empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "chat message role is empty");
    messages_.push_back({{"role", role}, {"content", content}});
}

std::string conversation::respond(const std::function<bool(const std::string &)> &on_text) {
    if (messages_.empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "the conversation has no messages");
    const model &m = ctx_.get_model();
    const std::string prompt = apply_template(m, std::string(), messages_, true);

    // Feed only what the context does not hold yet. When the new prompt extends the text already
    // fed (the usual case: earlier turns render identically), its suffix is tokenized alone;
    // otherwise the sequence is rewound to the longest common token prefix.
    std::vector<int32_t> fresh;
    if (!fed_text_.empty() && prompt.compare(0, fed_text_.size(), fed_text_) == 0) {
        fresh = tokenize(prompt.substr(fed_text_.size()));
    } else {
        const std::vector<int32_t> all = tokenize(prompt);
        const auto &held = ctx_.history(options_.seq);
        size_t k = 0;
        while (k < held.size() && k < all.size() && held[k] == all[k]) ++k;
        if (k < held.size()) ctx_.seq_remove(options_.seq, static_cast<int32_t>(k));
        fresh.assign(all.begin() + static_cast<long>(k), all.end());
    }

    generator gen(ctx_, options_);
    for (int32_t t : turn_end_tokens_) gen.add_stop_token(t);
    gen.append(fresh.data(), fresh.size());
    const size_t before = static_cast<size_t>(ctx_.n_past(options_.seq));
    std::string reply;
    bool keep_going = true;
    int32_t token = -1;
    while (gen.step(&token) == EUROLLM_OK) {
        reply += gen.text_delta();
        if (on_text && !gen.text_delta().empty() && !on_text(gen.text_delta())) {
            keep_going = false;
            break;
        }
    }
    if (keep_going) {
        reply += gen.text_delta();
        if (on_text && !gen.text_delta().empty()) on_text(gen.text_delta());
    }
    // The sequence now holds the prompt and every generated token that was evaluated (all but
    // the last one sampled); remember the text they stand for, byte for byte.
    const auto &held = ctx_.history(options_.seq);
    n_evaluated_ += held.size() - before;
    const tokenizer &tok = m.require_tokenizer();
    std::string generated;
    for (size_t i = before + fresh.size(); i < held.size(); ++i) generated += tok.token_bytes(held[i]);
    fed_text_ = prompt + generated;
    messages_.push_back({{"role", "assistant"}, {"content", reply}});
    return reply;
}

}  // namespace eurollm::chat
