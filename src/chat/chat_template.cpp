#include "chat/chat_template.h"

#include <utility>

#include "chat/jinja_error.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_optimizer.h"
#include "chat/jinja_parser.h"
#include "chat/jinja_value.h"
#include "core/error.h"

namespace eurollm::chat {

namespace {

using jinja::DictData;
using jinja::Value;

[[noreturn]] void invalid(const std::string &msg) {
    throw eurollm::error(EUROLLM_ERR_INVALID_ARGUMENT, "chat template: " + msg);
}

Value convert(const nlohmann::ordered_json &j, const char *what) {
    try {
        return jinja::from_json(j);
    } catch (const jinja::eval_error &e) {
        invalid(std::string(what) + ": " + e.message);
    }
}

// The conversation as render_jinja_template hands it to the template (see the header).
Value prepare_messages(const nlohmann::ordered_json &messages) {
    if (!messages.is_array()) invalid("messages must be a JSON array of message objects");
    if (messages.empty()) invalid("cannot apply a chat template to an empty conversation");
    std::vector<Value> out;
    size_t index = 0;
    for (const auto &m : messages) {
        const std::string where = "message " + std::to_string(index);
        if (!m.is_object()) invalid(where + " is not a JSON object");
        DictData d;
        for (auto it = m.begin(); it != m.end(); ++it) {
            if (it.value().is_null()) continue;  // apply_chat_template drops None values
            d.set(Value::string(it.key()), convert(it.value(), where.c_str()));
        }
        const Value *role = d.find(std::string("role"));
        if (!role) invalid(where + " has no 'role' field");
        if (!role->is_string()) invalid(where + ": 'role' must be a string");
        if (!d.find(std::string("content")) && !d.find(std::string("tool_calls")))
            invalid(where + " (role '" + role->str() + "') has no 'content' field");
        // _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}
        const Value *reasoning = nullptr;
        for (const char *key : {"reasoning_content", "thinking", "reasoning"}) {
            const Value *v = d.find(std::string(key));
            if (v && !v->is_none()) {
                reasoning = v;
                break;
            }
        }
        if (reasoning) {
            const Value r = *reasoning;
            DictData aliased;
            aliased.set(Value::string("thinking"), r);
            for (const auto &kv : d.entries) aliased.set(kv.first, kv.second);
            aliased.set(Value::string("reasoning_content"), r);
            d = std::move(aliased);
        }
        out.push_back(Value::dict(std::move(d)));
        ++index;
    }
    return Value::list(std::move(out));
}

DictData template_vars(const nlohmann::ordered_json &messages, const render_options &opts) {
    if (!opts.extra.is_object()) invalid("render_options.extra must be a JSON object");
    Value tools = Value::none(), documents = Value::none();
    if (opts.extra.contains("tools")) {
        const auto &t = opts.extra["tools"];
        if (!t.is_null()) {
            if (!t.is_array()) invalid("'tools' must be an array of JSON schemas (objects)");
            for (const auto &tool : t)
                if (!tool.is_object()) invalid("'tools' must be an array of JSON schemas (objects)");
            tools = convert(t, "tools");
        }
    }
    if (opts.extra.contains("documents")) {
        const auto &d = opts.extra["documents"];
        if (!d.is_null()) {
            if (!d.is_array()) invalid("'documents' must be an array of objects with 'title' and 'text' keys");
            for (const auto &doc : d)
                if (!doc.is_object()) invalid("'documents' must be an array of objects with 'title' and 'text' keys");
            documents = convert(d, "documents");
        }
    }
    DictData vars;
    vars.set(Value::string("messages"), prepare_messages(messages));
    vars.set(Value::string("tools"), tools);
    vars.set(Value::string("documents"), documents);
    vars.set(Value::string("add_generation_prompt"), Value::boolean(opts.add_generation_prompt));
    // template_kwargs = {**special_tokens_map, **kwargs}
    if (!opts.bos_token.empty()) vars.set(Value::string("bos_token"), Value::string(opts.bos_token));
    if (!opts.eos_token.empty()) vars.set(Value::string("eos_token"), Value::string(opts.eos_token));
    for (auto it = opts.extra.begin(); it != opts.extra.end(); ++it) {
        const std::string &key = it.key();
        if (key == "tools" || key == "documents") continue;
        if (key == "messages" || key == "add_generation_prompt")
            invalid("render_options.extra must not contain '" + key + "'; it is set from the call's arguments");
        vars.set(Value::string(key), convert(it.value(), ("extra['" + key + "']").c_str()));
    }
    return vars;
}

}  // namespace

chat_template::chat_template(std::string source) : source_(std::move(source)) {
    std::shared_ptr<jinja::Program> program = jinja::parse_template(source_);
    jinja::optimize(*program);
    program_ = std::move(program);
}

std::string chat_template::render(const nlohmann::ordered_json &messages, const render_options &opts) const {
    const DictData vars = template_vars(messages, opts);
    jinja::render_limits limits;
    limits.max_output_bytes = opts.max_output_bytes;
    limits.max_loop_iterations = opts.max_loop_iterations;
    limits.max_call_depth = opts.max_call_depth;
    jinja::Interpreter interp(limits);
    try {
        return interp.render(*program_, vars);
    } catch (const jinja::eval_error &e) {  // raised outside any node (should not happen)
        invalid(e.message);
    }
}

std::string chat_template::render(const nlohmann::json &messages, const render_options &opts) const {
    return render(nlohmann::ordered_json(messages), opts);
}

std::string render(const std::string &template_source, const nlohmann::json &messages, const render_options &opts) {
    return chat_template(template_source).render(messages, opts);
}

std::string render(const std::string &template_source, const nlohmann::ordered_json &messages,
                   const render_options &opts) {
    return chat_template(template_source).render(messages, opts);
}

const std::string &chatml_template_source() {
    static const std::string src =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
        "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    return src;
}

namespace {
const chat_template &chatml() {
    static const chat_template t(chatml_template_source());
    return t;
}
}  // namespace

std::string render_chatml(const nlohmann::ordered_json &messages, bool add_generation_prompt) {
    render_options opts;
    opts.add_generation_prompt = add_generation_prompt;
    return chatml().render(messages, opts);
}

std::string render_chatml(const nlohmann::json &messages, bool add_generation_prompt) {
    return render_chatml(nlohmann::ordered_json(messages), add_generation_prompt);
}

}  // namespace eurollm::chat
