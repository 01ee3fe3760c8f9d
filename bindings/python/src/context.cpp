// eurollm.Context: a KV cache and scratch space on a model; one thread at a time (the lock in
// common.h enforces it). Also the context lock and the abort callback.
#include "common.h"
#include "params.h"

namespace eurollm_py {

// ---- lock ----

ContextLock::ContextLock(LockState &state) : state_(state) {
    if (state.owner.load() == std::this_thread::get_id())
        throw std::runtime_error("the object is already in use on this thread (a callback may not call back into "
                                 "its own context, generator or trainer)");
    if (!state.mutex.try_lock()) {
        py::gil_scoped_release nogil;  // let the thread that holds it finish
        state.mutex.lock();
    }
    state.owner.store(std::this_thread::get_id());
}

ContextLock::~ContextLock() {
    state_.owner.store(std::thread::id());
    state_.mutex.unlock();
}

ContextCore::~ContextCore() {
    // No callback may run into a Python object that is being destroyed.
    eurollm_context_set_abort(context.get(), nullptr, nullptr);
}

eurollm_status finish_context_call(ContextCore &core, eurollm_status s) {
    core.abort_cb.rethrow_pending();
    return check(s);
}

std::shared_ptr<ContextCore> ContextObj::get() const {
    if (!core) throw py::value_error("the context is closed");
    return core;
}

namespace {

bool abort_trampoline(void *user_data) {
    auto *core = static_cast<ContextCore *>(user_data);
    py::gil_scoped_acquire gil;
    if (core->abort_cb.error) return false;
    if (!core->abort_cb) return true;
    try {
        // The callback answers "should we stop?": True stops (eurollm_abort_cb returns "continue").
        const bool stop = py::bool_(core->abort_cb.fn());
        return !stop;
    } catch (py::error_already_set &e) {
        core->abort_cb.error = std::move(e);
        return false;
    }
}

py::array_t<float> copy_logits(const float *logits, size_t n) {
    py::array_t<float> out(static_cast<py::ssize_t>(n));
    std::memcpy(out.mutable_data(), logits, n * sizeof(float));
    return out;
}

int32_t seq_arg(py::handle v) {
    const std::vector<int32_t> one = tokens_arg(py::make_tuple(v));  // an int32, TypeError otherwise
    return one[0];
}

// Text inputs of embed(): one str/bytes, or an iterable of them.
std::vector<std::string> texts_arg(py::handle texts, bool &single) {
    std::vector<std::string> out;
    single = PyUnicode_Check(texts.ptr()) || PyBytes_Check(texts.ptr()) || PyByteArray_Check(texts.ptr());
    if (single) {
        out.push_back(text_arg(texts, "text"));
        return out;
    }
    for (py::handle t : py::iter(texts)) out.push_back(text_arg(t, "each text"));
    return out;
}

// Token-list inputs of embed_tokens(): an iterable of token lists (or a 2-D integer array).
std::vector<std::vector<int32_t>> token_lists_arg(py::handle lists) {
    if (PyUnicode_Check(lists.ptr()) || PyBytes_Check(lists.ptr()))
        throw py::type_error("expected a list of token lists, not text (use embed)");
    std::vector<std::vector<int32_t>> out;
    for (py::handle l : py::iter(lists)) out.push_back(tokens_arg(l));
    return out;
}

// Runs an eurollm_embed_* call twice: once to learn the shape (nothing is computed when the
// buffer is short), once into a NumPy array the library fills directly.
template <typename Call>
py::array_t<float> embed_into_array(ContextCore &core, Call call) {
    size_t rows = 0, dim = 0;
    eurollm_status s;
    {
        py::gil_scoped_release nogil;
        s = call(nullptr, 0, &rows, &dim);
    }
    if (s != EUROLLM_ERR_BUFFER_TOO_SMALL) finish_context_call(core, s);
    py::array_t<float> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(dim)});
    if (rows * dim == 0 && s == EUROLLM_OK) return out;
    float *dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        s = call(dst, rows * dim, &rows, &dim);
    }
    finish_context_call(core, s);
    return out;
}

}  // namespace

void register_context(py::module_ &m) {
    py::class_<ContextObj, std::shared_ptr<ContextObj>> cls(m, "Context", R"pbdoc(A KV cache, scratch space and threads on a model.

    Context(model, params=None, **kwargs)

``params`` is a ContextParams; keyword arguments (n_ctx=2048, n_threads=4, seed=7) override its
fields. A context and its generator are used by one thread at a time: calls from another thread
wait their turn. close() (or a ``with`` block) frees it once no Generator uses it.)pbdoc");

    cls.def(py::init([](py::object model, py::object params, py::kwargs kw) {
                if (!py::isinstance<ModelObj>(model)) throw py::type_error("model must be an eurollm.Model");
                const eurollm::Model mdl = model.cast<const ModelObj &>().get();
                const ContextParams p = params_arg<ContextParams>(params, kw);
                auto self = std::make_shared<ContextObj>();
                {
                    py::gil_scoped_release nogil;
                    self->core = std::make_shared<ContextCore>(mdl, p);
                }
                self->model = model;
                return self;
            }),
            py::arg("model"), py::arg("params") = py::none());

    cls.def("close", [](ContextObj &self) { self.core.reset(); },
            "Release this object's hold on the context (idempotent); a live Generator keeps it until it closes.");
    cls.def_property_readonly("closed", [](const ContextObj &self) { return !self.core; });
    cls.def("__enter__", [](py::object self) { return self; });
    cls.def("__exit__", [](ContextObj &self, py::args) { self.core.reset(); });
    cls.def("__repr__", [](const ContextObj &self) {
        if (!self.core) return std::string("<eurollm.Context closed>");
        return "<eurollm.Context n_ctx=" + std::to_string(self.core->context.n_ctx()) +
               " n_past=" + std::to_string(self.core->context.n_past()) + ">";
    });
    cls.def_readonly("model", &ContextObj::model, "The Model this context runs.");
    cls.def_property_readonly("n_ctx", [](const ContextObj &self) { return self.get()->context.n_ctx(); },
                              "Capacity of the KV cache in tokens.");
    cls.def_property_readonly("n_past", [](const ContextObj &self) {
        auto core = self.get();
        ContextLock lock(*core);
        return core->context.n_past();
    }, "Tokens currently held in the KV cache.");

    cls.def("reset", [](const ContextObj &self) {
        auto core = self.get();
        ContextLock lock(*core);
        check(eurollm_context_reset(core->context.get()));
    }, "Forget every cached token.");

    cls.def(
        "decode",
        [](const ContextObj &self, py::object tokens) {
            auto core = self.get();
            const std::vector<int32_t> ids = tokens_arg(tokens);
            const size_t n_vocab = static_cast<size_t>(core->model.n_vocab());
            ContextLock lock(*core);
            const float *logits = nullptr;
            eurollm_status s;
            {
                py::gil_scoped_release nogil;
                s = eurollm_context_decode(core->context.get(), ids.data(), ids.size(), &logits);
            }
            finish_context_call(*core, s);
            if (!logits) throw std::runtime_error("eurollm_context_decode returned no logits");
            return copy_logits(logits, n_vocab);  // borrowed until the next call: copy while locked
        },
        py::arg("tokens"),
        R"pbdoc(Evaluate tokens after those already cached; return the logits of the last one.

Returns a new float32 NumPy array of n_vocab values. Raises ContextFullError if the tokens do not
fit, InvalidArgumentError for ids outside the vocabulary, AbortedError if the abort callback stopped it.)pbdoc");

    cls.def(
        "decode_all",
        [](const ContextObj &self, py::object tokens) {
            auto core = self.get();
            const std::vector<int32_t> ids = tokens_arg(tokens);
            const size_t n_vocab = static_cast<size_t>(core->model.n_vocab());
            py::array_t<float> out({static_cast<py::ssize_t>(ids.size()), static_cast<py::ssize_t>(n_vocab)});
            float *dst = out.mutable_data();
            ContextLock lock(*core);
            eurollm_status s;
            {
                py::gil_scoped_release nogil;  // the library writes straight into the array
                s = eurollm_context_decode_all(core->context.get(), ids.data(), ids.size(), dst, ids.size() * n_vocab);
            }
            finish_context_call(*core, s);
            return out;
        },
        py::arg("tokens"),
        "Like decode, but return the logits of every token: a float32 array of shape (len(tokens), n_vocab).");

    // ---- several sequences ----
    cls.def("seq_n_past", [](const ContextObj &self, py::object seq) {
        auto core = self.get();
        const int32_t id = seq_arg(seq);
        ContextLock lock(*core);
        uint32_t n = 0;
        check(eurollm_context_seq_n_past(core->context.get(), id, &n));
        return n;
    }, py::arg("seq"), "Tokens held for sequence ``seq`` (0 .. MAX_SEQUENCES - 1).");

    cls.def("seq_remove", [](const ContextObj &self, py::object seq, py::object p0) {
        auto core = self.get();
        const int32_t id = seq_arg(seq);
        const int32_t from = seq_arg(p0);
        if (from < 0) throw py::value_error("p0 must not be negative");
        ContextLock lock(*core);
        check(eurollm_context_seq_remove(core->context.get(), id, static_cast<uint32_t>(from)));
    }, py::arg("seq"), py::arg("p0") = 0, "Forget positions [p0, end) of a sequence (p0 = 0 removes it).");

    cls.def("seq_copy", [](const ContextObj &self, py::object src, py::object dst, py::object n) {
        auto core = self.get();
        const int32_t a = seq_arg(src), b = seq_arg(dst), count = seq_arg(n);
        ContextLock lock(*core);
        check(eurollm_context_seq_copy(core->context.get(), a, b, count));
    }, py::arg("src"), py::arg("dst"), py::arg("n") = -1,
       "Make the empty sequence ``dst`` share the first ``n`` positions of ``src`` (n < 0: all) without re-evaluating them.");

    cls.def("seq_keep", [](const ContextObj &self, py::object seq) {
        auto core = self.get();
        const int32_t id = seq_arg(seq);
        ContextLock lock(*core);
        check(eurollm_context_seq_keep(core->context.get(), id));
    }, py::arg("seq"), "Forget every sequence except ``seq``.");

    cls.def(
        "decode_seqs",
        [](const ContextObj &self, py::object batch) {
            auto core = self.get();
            py::object items = py::isinstance<py::dict>(batch) ? batch.attr("items")() : batch;
            std::vector<int32_t> ids;
            std::vector<std::vector<int32_t>> lists;
            for (py::handle item : py::iter(items)) {
                py::tuple pair = py::reinterpret_borrow<py::object>(item).cast<py::tuple>();
                if (pair.size() != 2) throw py::type_error("decode_seqs takes {seq: tokens} or (seq, tokens) pairs");
                ids.push_back(seq_arg(pair[0]));
                lists.push_back(tokens_arg(pair[1]));
            }
            std::vector<const int32_t *> ptrs;
            std::vector<size_t> counts;
            for (const auto &l : lists) {
                ptrs.push_back(l.data());
                counts.push_back(l.size());
            }
            const size_t n_vocab = static_cast<size_t>(core->model.n_vocab());
            ContextLock lock(*core);
            eurollm_status s;
            {
                py::gil_scoped_release nogil;
                s = eurollm_context_decode_seqs(core->context.get(), ids.data(), ptrs.data(), counts.data(), ids.size());
            }
            finish_context_call(*core, s);
            py::dict out;
            for (size_t i = 0; i < ids.size(); ++i) {
                if (counts[i] == 0) continue;
                const float *logits = nullptr;
                check(eurollm_context_seq_logits(core->context.get(), ids[i], &logits));
                out[py::int_(ids[i])] = copy_logits(logits, n_vocab);
            }
            return out;
        },
        py::arg("batch"),
        R"pbdoc(Evaluate runs of tokens for several sequences in one batch.

``batch`` is ``{seq: tokens}`` or an iterable of ``(seq, tokens)`` pairs; each run continues its
sequence. Returns ``{seq: logits of its last token}`` (float32 arrays). Raises ContextFullError
(nothing evaluated) when they do not fit, InvalidArgumentError for a repeated or bad id.)pbdoc");

    cls.def("seq_logits", [](const ContextObj &self, py::object seq) {
        auto core = self.get();
        const int32_t id = seq_arg(seq);
        const size_t n_vocab = static_cast<size_t>(core->model.n_vocab());
        ContextLock lock(*core);
        const float *logits = nullptr;
        check(eurollm_context_seq_logits(core->context.get(), id, &logits));
        return copy_logits(logits, n_vocab);
    }, py::arg("seq"), "Logits of the last evaluated token of a sequence (a new float32 array).");

    // ---- state ----
    cls.def("state_save", [](const ContextObj &self) {
        auto core = self.get();
        ContextLock lock(*core);
        size_t size = 0;
        eurollm_status s = eurollm_context_state_save(core->context.get(), nullptr, 0, &size);
        if (s != EUROLLM_ERR_BUFFER_TOO_SMALL) check(s);
        PyObject *raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
        if (!raw) throw py::error_already_set();
        py::bytes out = py::reinterpret_steal<py::bytes>(raw);
        char *dst = PyBytes_AS_STRING(raw);  // written in place: the bytes object is not shared yet
        {
            py::gil_scoped_release nogil;
            s = eurollm_context_state_save(core->context.get(), dst, size, &size);
        }
        check(s);
        return out;
    }, "Every sequence's tokens, last logits and KV cache as bytes (generators are not part of it).");

    cls.def("state_load", [](const ContextObj &self, py::object data) {
        auto core = self.get();
        // A contiguous bytes-like object, read in place (TypeError / BufferError otherwise).
        Py_buffer view;
        if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
        std::unique_ptr<Py_buffer, void (*)(Py_buffer *)> release(&view, PyBuffer_Release);
        ContextLock lock(*core);
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_context_state_load(core->context.get(), view.buf, static_cast<size_t>(view.len));
        }
        check(s);
    }, py::arg("data"),
       "Replace the context's state with one from state_save (bytes-like). On error the context is unchanged; "
       "a state from another model raises InvalidArgumentError.");

    cls.def("state_save_file", [](const ContextObj &self, py::object path) {
        auto core = self.get();
        const std::string p = path_arg(path);
        ContextLock lock(*core);
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_context_state_save_file(core->context.get(), p.c_str());
        }
        check(s);
    }, py::arg("path"), "Save the state to a file, atomically (temporary file, then rename).");

    cls.def("state_load_file", [](const ContextObj &self, py::object path) {
        auto core = self.get();
        const std::string p = path_arg(path);
        ContextLock lock(*core);
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_context_state_load_file(core->context.get(), p.c_str());
        }
        check(s);
    }, py::arg("path"), "Load a state saved by state_save_file.");

    // ---- embeddings ----
    cls.def(
        "embed",
        [](const ContextObj &self, py::object texts, py::object params, py::kwargs kw) -> py::object {
            auto core = self.get();
            bool single = false;
            const std::vector<std::string> items = texts_arg(texts, single);
            const EmbedParams p = params_arg<EmbedParams>(params, kw);
            std::vector<const char *> ptrs;
            std::vector<size_t> lens;
            for (const auto &t : items) {
                ptrs.push_back(t.data());
                lens.push_back(t.size());
            }
            ContextLock lock(*core);
            py::array_t<float> out = embed_into_array(*core, [&](float *dst, size_t cap, size_t *rows, size_t *dim) {
                return eurollm_embed_texts(core->context.get(), ptrs.data(), lens.data(), ptrs.size(), &p, dst, cap,
                                           rows, dim);
            });
            if (single && p.pooling != EUROLLM_POOLING_NONE) return out[py::int_(0)];
            return std::move(out);
        },
        py::arg("texts"), py::arg("params") = py::none(),
        R"pbdoc(Embeddings of texts: final hidden states (after the last norm), pooled.

``texts`` is one str (a 1-D vector back, or (n_tokens, dim) with Pooling.NONE) or a list of str
(an (n, dim) array; Pooling.NONE: one row per token of all texts). ``params`` is an EmbedParams;
keywords (pooling="last", normalize=True, dim=256) override it. Each text is embedded as if
alone; every sequence of the context is cleared (its cache is the scratch space).)pbdoc");

    cls.def(
        "embed_tokens",
        [](const ContextObj &self, py::object lists, py::object params, py::kwargs kw) {
            auto core = self.get();
            const std::vector<std::vector<int32_t>> items = token_lists_arg(lists);
            const EmbedParams p = params_arg<EmbedParams>(params, kw);
            std::vector<const int32_t *> ptrs;
            std::vector<size_t> counts;
            for (const auto &l : items) {
                ptrs.push_back(l.data());
                counts.push_back(l.size());
            }
            ContextLock lock(*core);
            return embed_into_array(*core, [&](float *dst, size_t cap, size_t *rows, size_t *dim) {
                return eurollm_embed_tokens(core->context.get(), ptrs.data(), counts.data(), ptrs.size(), &p, dst, cap,
                                            rows, dim);
            });
        },
        py::arg("token_lists"), py::arg("params") = py::none(),
        "Like embed, from a list of token lists; always returns a 2-D array.");

    cls.def(
        "set_abort_callback",
        [](const ContextObj &self, py::object fn) {
            auto core = self.get();
            if (!fn.is_none() && !PyCallable_Check(fn.ptr())) throw py::type_error("the abort callback must be callable or None");
            ContextLock lock(*core);
            core->abort_cb.error.reset();
            if (fn.is_none()) {
                check(eurollm_context_set_abort(core->context.get(), nullptr, nullptr));
                core->abort_cb.fn = py::object();
            } else {
                core->abort_cb.fn = fn;
                check(eurollm_context_set_abort(core->context.get(), abort_trampoline, core.get()));
            }
        },
        py::arg("callback"),
        R"pbdoc(Install ``callback() -> bool``, polled between layers and tokens: return True to stop.

The work then raises AbortedError (or, if the callback raised, that exception). None removes it.)pbdoc");
}

}  // namespace eurollm_py
