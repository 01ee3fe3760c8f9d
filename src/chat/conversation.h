// Chat on a model: rendering messages with the model's template (or ChatML), and a conversation
// that keeps its turns in one context sequence and feeds the model only what is new each turn.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "generate/generator.h"
#include "model/model.h"
#include "runtime/context.h"

namespace eurollm::chat {

// Renders `messages` (a JSON array of {role, content, ...}) with `template_source`, or the
// model's template when it is empty, or ChatML when the model has none.
std::string apply_template(const model &m, const std::string &template_source, const nlohmann::ordered_json &messages,
                           bool add_generation_prompt, const nlohmann::ordered_json &extra = nlohmann::ordered_json::object());

class conversation {
public:
    conversation(context &ctx, const generator_options &options);

    void add_message(const std::string &role, const std::string &content);
    // Renders the conversation with the generation prompt, evaluates what the context does not
    // hold yet, generates the assistant's reply (streamed through `on_text`, which may return
    // false to stop), appends it to the conversation and returns it.
    std::string respond(const std::function<bool(const std::string &)> &on_text);

    uint64_t n_evaluated() const { return n_evaluated_; }  // tokens fed to the model so far
    const nlohmann::ordered_json &messages() const { return messages_; }

private:
    std::vector<int32_t> tokenize(const std::string &text) const;

    context &ctx_;
    generator_options options_;
    nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
    std::string fed_text_;  // the text whose tokens sequence `options_.seq` holds
    uint64_t n_evaluated_ = 0;
    std::vector<int32_t> turn_end_tokens_;
};

}  // namespace eurollm::chat
