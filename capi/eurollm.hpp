// eurollm.hpp -- header-only C++17 RAII wrapper over eurollm.h. Errors become eurollm::Error.
//
//     auto model = eurollm::Model::load("models/EuroLLM-1.7B");
//     eurollm::Context ctx(model);
//     eurollm::GeneratorParams gp;             // eurollm_generator_params with defaults
//     gp.temperature = 0.0f;
//     eurollm::Generator gen(ctx, gp);
//     gen.append(model.tokenize("Once upon a time"));
//     while (auto tok = gen.step()) std::cout << gen.text_delta();
//
// Ownership follows the C API: a Context must not outlive its Model, nor a Generator its Context.
#ifndef EUROLLM_HPP
#define EUROLLM_HPP

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "eurollm.h"

namespace eurollm {

class Error : public std::runtime_error {
public:
    Error(eurollm_status status, const std::string &message)
        : std::runtime_error(message.empty() ? eurollm_status_string(status) : message), status_(status) {}
    eurollm_status status() const noexcept { return status_; }

private:
    eurollm_status status_;
};

inline eurollm_status check(eurollm_status s) {
    if (s < 0) throw Error(s, eurollm_last_error());
    return s;
}

struct ModelDeleter { void operator()(eurollm_model *m) const noexcept { eurollm_model_free(m); } };
struct ContextDeleter { void operator()(eurollm_context *c) const noexcept { eurollm_context_free(c); } };
struct GeneratorDeleter { void operator()(eurollm_generator *g) const noexcept { eurollm_generator_free(g); } };

struct ModelParams : eurollm_model_params {
    ModelParams() { eurollm_model_params_init(this, EUROLLM_MODEL_PARAMS_VERSION); }
};
struct ContextParams : eurollm_context_params {
    ContextParams() { eurollm_context_params_init(this, EUROLLM_CONTEXT_PARAMS_VERSION); }
};
struct GeneratorParams : eurollm_generator_params {
    GeneratorParams() { eurollm_generator_params_init(this, EUROLLM_GENERATOR_PARAMS_VERSION); }
};

class Model {
public:
    static Model load(const std::string &path, const ModelParams &params = ModelParams()) {
        eurollm_model *m = nullptr;
        check(eurollm_model_load(path.c_str(), &params, &m));
        return Model(m);
    }

    eurollm_model *get() const noexcept { return handle_.get(); }

    int64_t info(eurollm_model_info key) const {
        int64_t v = 0;
        check(eurollm_model_get_info(get(), key, &v));
        return v;
    }
    int64_t n_vocab() const { return info(EUROLLM_INFO_N_VOCAB); }
    std::string architecture() const { return eurollm_model_architecture(get()); }
    std::optional<std::string> chat_template() const {
        const char *t = eurollm_model_chat_template(get());
        return t ? std::optional<std::string>(t) : std::nullopt;
    }
    std::vector<int32_t> eos_ids() const {
        size_t n = 0;
        eurollm_model_eos_ids(get(), nullptr, 0, &n);
        std::vector<int32_t> ids(n);
        check(eurollm_model_eos_ids(get(), ids.data(), ids.size(), &n));
        return ids;
    }

    std::vector<int32_t> tokenize(std::string_view text, uint32_t flags = EUROLLM_TOKENIZE_MODEL_DEFAULT) const {
        std::vector<int32_t> ids(text.size() + 8);
        size_t n = 0;
        eurollm_status s = eurollm_tokenize(get(), text.data(), text.size(), flags, ids.data(), ids.size(), &n);
        if (s == EUROLLM_ERR_BUFFER_TOO_SMALL) {
            ids.resize(n);
            s = eurollm_tokenize(get(), text.data(), text.size(), flags, ids.data(), ids.size(), &n);
        }
        check(s);
        ids.resize(n);
        return ids;
    }

    std::string detokenize(const std::vector<int32_t> &tokens) const {
        size_t len = 0;
        eurollm_status s = eurollm_detokenize(get(), tokens.data(), tokens.size(), nullptr, 0, &len);
        if (s != EUROLLM_ERR_BUFFER_TOO_SMALL) check(s);
        std::string out(len + 1, '\0');
        check(eurollm_detokenize(get(), tokens.data(), tokens.size(), out.data(), out.size(), &len));
        out.resize(len);
        return out;
    }

    // Writes the model as a GGUF v3 file (eurollm_model_save_gguf); AUTO keeps each tensor's type.
    void save_gguf(const std::string &path, eurollm_weight_type type = EUROLLM_WEIGHT_AUTO) const {
        check(eurollm_model_save_gguf(get(), path.c_str(), type));
    }

    std::string token_to_piece(int32_t token) const {
        size_t len = 0;
        eurollm_status s = eurollm_token_to_piece(get(), token, nullptr, 0, &len);
        if (s != EUROLLM_ERR_BUFFER_TOO_SMALL) check(s);
        std::string out(len + 1, '\0');
        check(eurollm_token_to_piece(get(), token, out.data(), out.size(), &len));
        out.resize(len);
        return out;
    }

private:
    explicit Model(eurollm_model *m) : handle_(m, ModelDeleter()) {}
    std::shared_ptr<eurollm_model> handle_;  // shared: a model may be handed to many threads
};

class Context {
public:
    explicit Context(const Model &model, const ContextParams &params = ContextParams()) {
        eurollm_context *c = nullptr;
        check(eurollm_context_init(model.get(), &params, &c));
        handle_.reset(c);
    }
    eurollm_context *get() const noexcept { return handle_.get(); }
    uint32_t n_ctx() const { return eurollm_context_n_ctx(get()); }
    uint32_t n_past() const { return eurollm_context_n_past(get()); }
    void reset() { check(eurollm_context_reset(get())); }
    const float *decode(const std::vector<int32_t> &tokens) {
        const float *logits = nullptr;
        check(eurollm_context_decode(get(), tokens.data(), tokens.size(), &logits));
        return logits;
    }

private:
    std::unique_ptr<eurollm_context, ContextDeleter> handle_;
};

class Generator {
public:
    explicit Generator(Context &ctx, const GeneratorParams &params = GeneratorParams()) {
        eurollm_generator *g = nullptr;
        check(eurollm_generator_init(ctx.get(), &params, &g));
        handle_.reset(g);
    }
    eurollm_generator *get() const noexcept { return handle_.get(); }

    void append(const std::vector<int32_t> &tokens) {
        check(eurollm_generator_append_tokens(get(), tokens.data(), tokens.size()));
    }
    void add_stop_string(std::string_view s) { check(eurollm_generator_add_stop_string(get(), s.data(), s.size())); }
    void add_stop_token(int32_t t) { check(eurollm_generator_add_stop_token(get(), t)); }

    // The next token, or nullopt when generation is done.
    std::optional<int32_t> step() {
        int32_t tok = -1;
        if (check(eurollm_generator_step(get(), &tok)) == EUROLLM_DONE) return std::nullopt;
        return tok;
    }
    std::string text_delta() const {
        const char *t = nullptr;
        size_t n = 0;
        check(eurollm_generator_text_delta(get(), &t, &n));
        return std::string(t, n);
    }
    eurollm_stop_reason stop_reason() const { return eurollm_generator_stop_reason(get()); }

private:
    std::unique_ptr<eurollm_generator, GeneratorDeleter> handle_;
};

}  // namespace eurollm

#endif  // EUROLLM_HPP
