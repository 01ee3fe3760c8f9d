// Chat templates: turn a list of messages into the prompt a model was trained on, by running
// the Jinja2 template from the model's tokenizer_config.json ("chat_template") exactly as
// transformers' apply_chat_template(..., tokenize=False) does, byte for byte:
//   - the Jinja2 environment transformers builds (ImmutableSandboxedEnvironment with
//     trim_blocks and lstrip_blocks, loopcontrols, {% generation %}, raise_exception,
//     strftime_now, namespace, the tojson override = json.dumps(ensure_ascii=False));
//   - the variables it passes: messages, tools, documents, add_generation_prompt, the special
//     tokens (bos_token, eos_token) and any extra keyword arguments;
//   - its preprocessing of messages: keys whose value is null are dropped, and reasoning is
//     aliased (reasoning_content / thinking / reasoning) as render_jinja_template does.
// A template that cannot be rendered is an error naming the reason (and the line and column of
// the template, where there is one), never a guess.
//
// Errors: eurollm::error with EUROLLM_ERR_INVALID_ARGUMENT, message "chat template: ...".
// Thread-safety: a chat_template is immutable after construction and may be rendered from
// several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace eurollm::chat {

namespace jinja {
struct Program;
}

struct render_options {
    bool add_generation_prompt = true;
    // Exposed to the template as bos_token / eos_token when non-empty (transformers passes the
    // tokenizer's special tokens that are set).
    std::string bos_token, eos_token;
    // Further template variables: tools, documents, date_string, enable_thinking, ... `tools`
    // and `documents` are passed as transformers passes them (null when absent). This is an
    // ordered_json because key order is observable: tojson must print dict keys in insertion
    // order as Python does (a nlohmann::json value converts implicitly, with its keys sorted).
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    // Guards against runaway templates (templates come from files).
    size_t max_output_bytes = size_t(16) << 20;
    uint64_t max_loop_iterations = 1000000;
    int max_call_depth = 64;
};

// A compiled template, for rendering many conversations with one template.
class chat_template {
public:
    // Compiles `source`; throws on syntax errors, unknown filters or tests, unsupported tags.
    explicit chat_template(std::string source);

    // `messages`: a non-empty array of objects with a string "role" and a "content" (a message
    // with "tool_calls" may omit content). Missing fields are errors naming the message index.
    std::string render(const nlohmann::ordered_json &messages, const render_options &opts) const;
    std::string render(const nlohmann::json &messages, const render_options &opts) const;

    const std::string &source() const { return source_; }

private:
    std::string source_;
    std::shared_ptr<const jinja::Program> program_;
};

std::string render(const std::string &template_source, const nlohmann::json &messages, const render_options &opts);
std::string render(const std::string &template_source, const nlohmann::ordered_json &messages,
                   const render_options &opts);

// Built-in ChatML for models without a template: "<|im_start|>{role}\n{content}<|im_end|>\n" per
// message, and "<|im_start|>assistant\n" as the generation prompt. It is rendered from
// chatml_template_source(), the ChatML template Hugging Face models ship, so it has exactly the
// semantics transformers gives it.
std::string render_chatml(const nlohmann::json &messages, bool add_generation_prompt);
std::string render_chatml(const nlohmann::ordered_json &messages, bool add_generation_prompt);
const std::string &chatml_template_source();

}  // namespace eurollm::chat
