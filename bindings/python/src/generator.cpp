// eurollm.Generator: prepare (append tokens) / step / finalize on one context.
#include "common.h"
#include "params.h"

namespace eurollm_py {
namespace {

struct GeneratorObj {
    std::shared_ptr<ContextCore> core;  // declared first: destroyed after the generator
    py::object context;                 // the Python Context, for Generator.context
    std::optional<eurollm::Generator> gen;
    PyCallback token_cb;
    std::vector<int32_t> tokens;  // generated so far
    GeneratorParams params;

    eurollm::Generator &get() {
        if (!gen) throw py::value_error("the generator is closed");
        return *gen;
    }
    void close() {
        if (!gen) return;
        ContextLock lock(*core);
        gen.reset();
    }
};

bool token_trampoline(int32_t token, const char *text, size_t len, void *user_data) {
    auto *self = static_cast<GeneratorObj *>(user_data);
    py::gil_scoped_acquire gil;
    if (self->token_cb.error) return false;
    if (!self->token_cb) return true;
    try {
        py::object r = self->token_cb.fn(token, utf8_to_str(text, len));
        return r.is_none() || PyObject_IsTrue(r.ptr()) == 1;
    } catch (py::error_already_set &e) {
        self->token_cb.error = std::move(e);
        return false;
    }
}

// After a call that may have run callbacks: their exceptions first, then the status.
eurollm_status finish(GeneratorObj &self, eurollm_status s) {
    self.token_cb.rethrow_pending();
    return finish_context_call(*self.core, s);
}

}  // namespace

void register_generator(py::module_ &m) {
    py::class_<GeneratorObj, std::shared_ptr<GeneratorObj>> cls(m, "Generator", R"pbdoc(Token-by-token generation on a context.

    Generator(context, params=None, **kwargs)

``params`` is a GeneratorParams; keyword arguments (temperature=0.0, max_tokens=64, ...) override
its fields. The context's cache is kept: appended tokens continue the cached sequence (call
context.reset() first for a fresh one). A context has at most one generator at a time: close()
it (or use ``with``) before making the next. Iterating yields the text as it becomes final.)pbdoc");

    cls.def(py::init([](py::object context, py::object params, py::kwargs kw) {
                if (!py::isinstance<ContextObj>(context)) throw py::type_error("context must be an eurollm.Context");
                auto self = std::make_shared<GeneratorObj>();
                self->core = context.cast<const ContextObj &>().get();
                self->context = context;
                self->params = params_arg<GeneratorParams>(params, kw);
                ContextLock lock(*self->core);
                self->gen.emplace(self->core->context, self->params);
                return self;
            }),
            py::arg("context"), py::arg("params") = py::none());

    cls.def("close", &GeneratorObj::close, "Free the generator (idempotent); the context can then take another.");
    cls.def_property_readonly("closed", [](const GeneratorObj &self) { return !self.gen; });
    cls.def("__enter__", [](py::object self) { return self; });
    cls.def("__exit__", [](GeneratorObj &self, py::args) { self.close(); });
    cls.def_readonly("context", &GeneratorObj::context, "The Context it runs on.");

    cls.def("add_stop_token", [](GeneratorObj &self, py::object token) {
        const std::vector<int32_t> one = tokens_arg(py::make_tuple(token));
        ContextLock lock(*self.core);
        check(eurollm_generator_add_stop_token(self.get().get(), one[0]));
    }, py::arg("token"), "Stop when this token is sampled (besides the model's eos ids).");

    cls.def("add_stop_string", [](GeneratorObj &self, py::object text) {
        const std::string s = text_arg(text, "text");
        ContextLock lock(*self.core);
        check(eurollm_generator_add_stop_string(self.get().get(), s.data(), s.size()));
    }, py::arg("text"),
       "Stop when the generated text contains ``text`` (it may span tokens); it and what follows are not streamed.");

    cls.def("set_callback", [](GeneratorObj &self, py::object fn) {
        if (!fn.is_none() && !PyCallable_Check(fn.ptr())) throw py::type_error("the callback must be callable or None");
        ContextLock lock(*self.core);
        self.token_cb.error.reset();
        if (fn.is_none()) {
            check(eurollm_generator_set_callback(self.get().get(), nullptr, nullptr));
            self.token_cb.fn = py::object();
        } else {
            self.token_cb.fn = fn;
            check(eurollm_generator_set_callback(self.get().get(), token_trampoline, &self));
        }
    }, py::arg("callback"),
       R"pbdoc(Install ``callback(token: int, text: str)``, called for each generated token with the text it
completes (never a broken UTF-8 sequence, maybe ""); at the end, text held back is flushed with
token -1. Return False to stop (None or True continue). An exception it raises stops generation
and is raised by the step() that ran it. None removes the callback.)pbdoc");

    cls.def("append", [](GeneratorObj &self, py::object tokens) {
        const std::vector<int32_t> ids = tokens_arg(tokens);
        ContextLock lock(*self.core);
        check(eurollm_generator_append_tokens(self.get().get(), ids.data(), ids.size()));
    }, py::arg("tokens"),
       "Append prompt tokens (evaluated by the next step); may be called between steps. Raises "
       "ContextFullError if they would not fit, InvalidArgumentError for ids outside the vocabulary.");

    cls.def("step", [](GeneratorObj &self) -> py::object {
        ContextLock lock(*self.core);
        eurollm::Generator &g = self.get();
        int32_t tok = -1;
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_generator_step(g.get(), &tok);
        }
        if (finish(self, s) == EUROLLM_DONE) return py::none();
        self.tokens.push_back(tok);
        return py::int_(tok);
    }, R"pbdoc(Generate one token: its id, or None when generation has ended (a stop token or string,
max_tokens, a full context, the callback). Read text_delta after each call, including the one
that returns None (it may release text held back).)pbdoc");

    cls.def("read_all", [](GeneratorObj &self) {
        ContextLock lock(*self.core);
        eurollm::Generator &g = self.get();
        std::string text;
        std::vector<int32_t> toks;
        eurollm_status s;
        {
            py::gil_scoped_release nogil;  // the whole loop runs without the GIL (callbacks take it)
            for (;;) {
                int32_t tok = -1;
                s = eurollm_generator_step(g.get(), &tok);
                if (s < 0) break;
                const char *delta = nullptr;
                size_t len = 0;
                s = eurollm_generator_text_delta(g.get(), &delta, &len) < 0 ? EUROLLM_ERR_GENERIC : s;
                if (s < 0) break;
                text.append(delta, len);
                if (s == EUROLLM_DONE) break;
                toks.push_back(tok);
            }
        }
        self.tokens.insert(self.tokens.end(), toks.begin(), toks.end());
        finish(self, s);
        return utf8_to_str(text.data(), text.size());
    }, R"pbdoc(Step until generation ends and return the text released meanwhile (the C loop runs with
the GIL released, so other Python threads keep running). Equivalent to ``"".join(generator)``.)pbdoc");

    cls.def_property_readonly("text_delta", [](GeneratorObj &self) {
        ContextLock lock(*self.core);
        const char *text = nullptr;
        size_t len = 0;
        check(eurollm_generator_text_delta(self.get().get(), &text, &len));
        return utf8_to_str(text, len);
    }, "Text made final by the last step ('' if none).");

    cls.def("logits", [](GeneratorObj &self) {
        ContextLock lock(*self.core);
        eurollm::Generator &g = self.get();
        const float *logits = nullptr;
        size_t n = 0;
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_generator_logits(g.get(), &logits, &n);
        }
        finish(self, s);
        py::array_t<float> out(static_cast<py::ssize_t>(n));
        std::memcpy(out.mutable_data(), logits, n * sizeof(float));
        return out;
    }, "The logits the next token will be sampled from (before sampling controls), evaluating pending tokens "
       "first: a new float32 array of n_vocab values.");

    cls.def_property_readonly("stop_reason", [](GeneratorObj &self) {
        ContextLock lock(*self.core);
        return stop_reason_enum(eurollm_generator_stop_reason(self.get().get()));
    }, "Why generation ended (StopReason.NONE while it runs).");
    cls.def_property_readonly("n_generated", [](GeneratorObj &self) {
        ContextLock lock(*self.core);
        return eurollm_generator_n_generated(self.get().get());
    }, "Tokens generated so far.");
    cls.def_property_readonly("tokens", [](const GeneratorObj &self) { return self.tokens; },
                              "The token ids generated so far (a copy).");
    cls.def_property_readonly("params", [](const GeneratorObj &self) { return self.params; },
                              "The GeneratorParams it was made with (a copy).");
    cls.def_property_readonly("seq_id", [](const GeneratorObj &self) { return self.params.seq_id; },
                              "The context sequence it extends.");

    cls.def_static(
        "step_batch",
        [](py::sequence generators) {
            std::vector<std::shared_ptr<GeneratorObj>> objs;
            for (py::handle g : generators) {
                if (!py::isinstance<GeneratorObj>(g)) throw py::type_error("step_batch takes a list of Generators");
                objs.push_back(g.cast<std::shared_ptr<GeneratorObj>>());
            }
            py::list result;
            if (objs.empty()) return result;
            std::shared_ptr<ContextCore> core = objs[0]->core;
            for (const auto &o : objs)
                if (o->core != core) throw py::value_error("step_batch: all generators must be on one context");
            ContextLock lock(*core);
            std::vector<eurollm_generator *> handles;
            for (const auto &o : objs) handles.push_back(o->get().get());
            std::vector<int32_t> toks(objs.size(), -1);
            std::vector<eurollm_status> statuses(objs.size(), EUROLLM_OK);
            eurollm_status s;
            {
                py::gil_scoped_release nogil;
                s = eurollm_generator_step_batch(handles.data(), handles.size(), toks.data(), statuses.data());
            }
            if (s >= 0)
                for (size_t i = 0; i < objs.size(); ++i)
                    if (statuses[i] == EUROLLM_OK) objs[i]->tokens.push_back(toks[i]);
            for (const auto &o : objs) o->token_cb.rethrow_pending();
            finish_context_call(*core, s);
            for (size_t i = 0; i < objs.size(); ++i)
                result.append(statuses[i] == EUROLLM_OK ? py::object(py::int_(toks[i])) : py::object(py::none()));
            return result;
        },
        py::arg("generators"),
        R"pbdoc(One step of several generators of one context, evaluated in a single batch (continuous
batching: generators may join or leave between calls; each must be on its own sequence).
Returns each one's new token, or None for those that are done; read text_delta per generator.)pbdoc");
}

}  // namespace eurollm_py
