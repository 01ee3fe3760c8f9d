// eurollm.Model: a loaded model and its tokenizer. Immutable and thread-safe: its methods may run
// from any number of threads at once (the long ones release the GIL).
#include "common.h"
#include "params.h"

namespace eurollm_py {

const eurollm::Model &ModelObj::get() const {
    if (!model) throw py::value_error("the model is closed");
    return *model;
}

namespace {

int64_t info(const eurollm::Model &m, int key) {
    int64_t v = 0;
    check(eurollm_model_get_info(m.get(), static_cast<eurollm_model_info>(key), &v));
    return v;
}

uint32_t tokenize_flags(const ModelObj &self, py::object add_bos, py::object parse_special, py::object flags) {
    if (!flags.is_none()) {
        if (!add_bos.is_none() || !parse_special.is_none())
            throw py::type_error("pass either flags or add_bos/parse_special, not both");
        const long long f = flags.cast<long long>();
        if (f < 0 || f > 0xffffffffLL) throw py::value_error("flags out of range");
        return static_cast<uint32_t>(f);
    }
    if (add_bos.is_none() && parse_special.is_none()) return EUROLLM_TOKENIZE_MODEL_DEFAULT;
    const bool bos = add_bos.is_none() ? self.add_bos_default : add_bos.cast<bool>();
    const bool special = parse_special.is_none() ? true : parse_special.cast<bool>();
    return (bos ? EUROLLM_TOKENIZE_ADD_BOS : 0u) | (special ? EUROLLM_TOKENIZE_PARSE_SPECIAL : 0u);
}

std::vector<int32_t> tokenize(const eurollm::Model &m, const std::string &text, uint32_t flags) {
    std::vector<int32_t> ids(text.size() + 8);
    size_t n = 0;
    eurollm_status s;
    {
        py::gil_scoped_release nogil;
        s = eurollm_tokenize(m.get(), text.data(), text.size(), flags, ids.data(), ids.size(), &n);
        if (s == EUROLLM_ERR_BUFFER_TOO_SMALL) {
            ids.resize(n);
            s = eurollm_tokenize(m.get(), text.data(), text.size(), flags, ids.data(), ids.size(), &n);
        }
    }
    check(s);
    ids.resize(n);
    return ids;
}

std::string detokenize(const eurollm::Model &m, const std::vector<int32_t> &tokens) {
    size_t len = 0;
    std::string out(tokens.size() * 8 + 16, '\0');
    eurollm_status s;
    {
        py::gil_scoped_release nogil;
        s = eurollm_detokenize(m.get(), tokens.data(), tokens.size(), out.data(), out.size(), &len);
        if (s == EUROLLM_ERR_BUFFER_TOO_SMALL) {
            out.assign(len + 1, '\0');
            s = eurollm_detokenize(m.get(), tokens.data(), tokens.size(), out.data(), out.size(), &len);
        }
    }
    check(s);
    out.resize(len);
    return out;
}

}  // namespace

void register_model(py::module_ &m) {
    py::class_<ModelObj, std::shared_ptr<ModelObj>> cls(m, "Model", R"pbdoc(A loaded model: weights, hyper-parameters, tokenizer.

    Model(path, params=None, **kwargs)

``path`` is a Hugging Face model directory (config.json, *.safetensors, tokenizer.model) or,
where supported, a GGUF file. ``params`` is a ModelParams; keyword arguments (device="cpu",
use_mmap=False, ...) override its fields. Raises IoError, BadModelError, UnsupportedError.

A model is immutable and may be shared by any number of threads and contexts. close() (or a
``with`` block) releases it; contexts still open keep the weights alive until they close.)pbdoc");

    cls.def(py::init([](py::object path, py::object params, py::kwargs kw) {
                auto self = std::make_shared<ModelObj>();
                self->path = path_arg(path);
                const ModelParams p = params_arg<ModelParams>(params, kw);
                {
                    py::gil_scoped_release nogil;  // eurollm::Error raised here becomes a Python error
                    self->model.emplace(eurollm::Model::load(self->path, p));
                }
                // What EUROLLM_TOKENIZE_MODEL_DEFAULT does about BOS (tokenizer_config add_bos_token),
                // so tokenize(parse_special=False) can keep the model's BOS choice.
                self->add_bos_default = !tokenize(*self->model, std::string(), EUROLLM_TOKENIZE_MODEL_DEFAULT).empty();
                return self;
            }),
            py::arg("path"), py::arg("params") = py::none());

    cls.def("close", [](ModelObj &self) { self.model.reset(); },
            "Release this object's hold on the model (idempotent). Contexts still open keep it alive.");
    cls.def_property_readonly("closed", [](const ModelObj &self) { return !self.model; });
    cls.def("__enter__", [](py::object self) { return self; });
    cls.def("__exit__", [](ModelObj &self, py::args) { self.model.reset(); });
    cls.def_property_readonly("path", [](const ModelObj &self) { return self.path; }, "The path it was loaded from.");
    cls.def("__repr__", [](const ModelObj &self) {
        if (!self.model) return std::string("<eurollm.Model closed>");
        return "<eurollm.Model " + self.model->architecture() + " '" + self.path + "' n_params=" +
               std::to_string(info(*self.model, EUROLLM_INFO_N_PARAMS)) + ">";
    });

    cls.def("info", [](const ModelObj &self, int key) { return info(self.get(), key); }, py::arg("key"),
            "An integer property (a ModelInfo key).");
    struct Prop {
        const char *name;
        eurollm_model_info key;
        const char *doc;
    };
    static const Prop props[] = {
        {"n_vocab", EUROLLM_INFO_N_VOCAB, "Vocabulary size."},
        {"n_embd", EUROLLM_INFO_N_EMBD, "Hidden size (embedding dimension)."},
        {"n_layer", EUROLLM_INFO_N_LAYER, "Decoder layers."},
        {"n_head", EUROLLM_INFO_N_HEAD, "Attention heads."},
        {"n_head_kv", EUROLLM_INFO_N_HEAD_KV, "Key/value heads."},
        {"head_dim", EUROLLM_INFO_HEAD_DIM, "Dimension of one head."},
        {"n_ff", EUROLLM_INFO_N_FF, "MLP intermediate size."},
        {"n_ctx_train", EUROLLM_INFO_N_CTX_TRAIN, "max_position_embeddings."},
        {"n_params", EUROLLM_INFO_N_PARAMS, "Total parameter count."},
        {"sliding_window", EUROLLM_INFO_SLIDING_WINDOW, "Attention window; 0 if not windowed."},
    };
    for (const Prop &p : props) {
        const eurollm_model_info key = p.key;
        cls.def_property_readonly(p.name, [key](const ModelObj &self) { return info(self.get(), key); }, p.doc);
    }
    auto optional_id = [](eurollm_model_info key) {
        return [key](const ModelObj &self) -> py::object {
            const int64_t v = info(self.get(), key);
            return v < 0 ? py::object(py::none()) : py::object(py::int_(v));
        };
    };
    cls.def_property_readonly("bos_id", optional_id(EUROLLM_INFO_BOS_ID), "The BOS token id, or None.");
    cls.def_property_readonly("eos_id", optional_id(EUROLLM_INFO_EOS_ID), "The first end-of-sequence id, or None.");
    cls.def_property_readonly("pad_id", optional_id(EUROLLM_INFO_PAD_ID), "The padding id, or None.");
    cls.def_property_readonly("tied_embeddings",
                              [](const ModelObj &self) { return info(self.get(), EUROLLM_INFO_TIED_EMBEDDINGS) != 0; },
                              "True if the output head is the embedding matrix.");
    cls.def_property_readonly("architecture", [](const ModelObj &self) { return self.get().architecture(); },
                              "Architecture name from config.json ('llama', 'mistral').");
    cls.def_property_readonly("chat_template", [](const ModelObj &self) { return self.get().chat_template(); },
                              "The chat template from tokenizer_config.json, or None.");
    cls.def_property_readonly("eos_ids", [](const ModelObj &self) { return self.get().eos_ids(); },
                              "All end-of-generation token ids (config, generation_config, tokenizer).");

    cls.def(
        "tokenize",
        [](const ModelObj &self, py::object text, py::object add_bos, py::object parse_special, py::object flags) {
            const eurollm::Model m = self.get();  // a reference of our own while the GIL is released
            return tokenize(m, text_arg(text, "text"), tokenize_flags(self, add_bos, parse_special, flags));
        },
        py::arg("text"), py::arg("add_bos") = py::none(), py::arg("parse_special") = py::none(), py::kw_only(),
        py::arg("flags") = py::none(),
        R"pbdoc(Text (str, or UTF-8 bytes) to a list of token ids.

By default the model's own rules apply (EUROLLM_TOKENIZE_MODEL_DEFAULT: BOS as
tokenizer_config.json says, special-token strings such as "<|im_start|>" parsed).
``add_bos`` / ``parse_special`` override one rule each (None keeps the model's);
``flags`` passes TokenizeFlags as they are. Invalid UTF-8 raises InvalidArgumentError.)pbdoc");
    cls.def(
        "detokenize",
        [](const ModelObj &self, py::object tokens) {
            const eurollm::Model m = self.get();
            const std::string s = detokenize(m, tokens_arg(tokens));
            return utf8_to_str(s.data(), s.size());
        },
        py::arg("tokens"),
        "Token ids to text (control tokens give no text). Bytes that do not form UTF-8 (a sequence cut "
        "between tokens) become U+FFFD; detokenize_bytes gives them exactly. Out-of-range ids raise "
        "InvalidArgumentError.");
    cls.def(
        "detokenize_bytes",
        [](const ModelObj &self, py::object tokens) {
            const eurollm::Model m = self.get();
            return py::bytes(detokenize(m, tokens_arg(tokens)));
        },
        py::arg("tokens"), "Token ids to the exact UTF-8 bytes of their text.");
    cls.def(
        "token_to_piece",
        [](const ModelObj &self, py::object token) {
            const eurollm::Model m = self.get();
            const std::vector<int32_t> one = tokens_arg(py::make_tuple(token));
            const std::string s = m.token_to_piece(one[0]);
            return utf8_to_str(s.data(), s.size());
        },
        py::arg("token"), "The vocabulary piece of one token as stored ('▁the', '<0x0A>').");
    cls.def(
        "save_gguf",
        [](const ModelObj &self, py::object path, py::object type) {
            const eurollm::Model m = self.get();
            const std::string p = path_arg(path);
            const auto t = static_cast<eurollm_weight_type>(enum_arg(type, enum_value("WeightType", 0), "type"));
            py::gil_scoped_release nogil;
            m.save_gguf(p, t);
        },
        py::arg("path"), py::arg("type") = static_cast<int>(EUROLLM_WEIGHT_AUTO),
        R"pbdoc(Write the model as a GGUF v3 file that llama.cpp loads (eurollm_model_save_gguf).

``type`` is a WeightType or its name ('q8_0', 'q4_0', 'q4_k', 'q6_k', 'bf16', 'f16', 'f32'); AUTO (the default)
keeps each tensor's stored type. Written atomically: a failure leaves no partial file. Raises
IoError, InvalidArgumentError, UnsupportedError.)pbdoc");
}

}  // namespace eurollm_py
