// eurollm.Trainer and eurollm.Dataset: training steps (full fine-tuning and LoRA) through the
// experimental C API (capi/eurollm_experimental.h). A trainer is used by one thread at a time;
// its model stays usable by contexts on other threads meanwhile.
#include "common.h"
#include "params.h"

namespace eurollm_py {
namespace {

struct TrainerObj : LockState {
    eurollm::Model model;  // keeps the model alive; the trainer is freed first (destructor body)
    eurollm_trainer *handle = nullptr;
    py::object py_model;

    explicit TrainerObj(const eurollm::Model &m) : model(m) {}
    ~TrainerObj() { eurollm_trainer_free(handle); }

    eurollm_trainer *get() const {
        if (!handle) throw py::value_error("the trainer is closed");
        return handle;
    }
    void close() {
        if (!handle) return;
        ContextLock lock(*this);
        eurollm_trainer_free(handle);
        handle = nullptr;
    }
};

struct DatasetObj {
    eurollm_dataset *handle = nullptr;
    size_t seq_len = 0;
    ~DatasetObj() { eurollm_dataset_free(handle); }
    eurollm_dataset *get() const {
        if (!handle) throw py::value_error("the dataset is closed");
        return handle;
    }
};

struct TrainResult : eurollm_train_result {};

// A batch of token ids: a 1-D sequence (one row) or a 2-D (n_seqs, seq_len) array-like of ints.
struct Batch {
    std::vector<int32_t> ids;
    size_t n_seqs = 0, seq_len = 0;
};

Batch batch_arg(py::handle x, const char *what) {
    if (PyUnicode_Check(x.ptr()) || PyBytes_Check(x.ptr()))
        throw py::type_error(std::string(what) + " must be token ids, not text");
    py::array a = py::module_::import("numpy").attr("asarray")(x);
    const char kind = a.dtype().kind();
    if (a.size() > 0 && kind != 'i' && kind != 'u')
        throw py::type_error(std::string(what) + " must hold integers (got dtype " +
                             std::string(py::str(a.dtype())) + ")");
    if (a.ndim() != 1 && a.ndim() != 2)
        throw py::value_error(std::string(what) + " must be 1-D (one sequence) or 2-D (n_seqs, seq_len)");
    Batch b;
    b.n_seqs = a.ndim() == 2 ? static_cast<size_t>(a.shape(0)) : 1;
    b.seq_len = static_cast<size_t>(a.shape(a.ndim() - 1));
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> v(a);
    b.ids.reserve(static_cast<size_t>(v.size()));
    for (py::ssize_t i = 0; i < v.size(); ++i) {
        const int64_t t = v.data()[i];
        if (t < INT32_MIN || t > INT32_MAX) throw py::value_error(std::string(what) + ": id " + std::to_string(t) + " is out of range");
        b.ids.push_back(static_cast<int32_t>(t));
    }
    return b;
}

// labels default to the tokens themselves (Hugging Face convention: position t learns labels[t + 1]).
Batch labels_arg(py::handle labels, const Batch &tokens) {
    if (labels.is_none()) return tokens;
    Batch l = batch_arg(labels, "labels");
    if (l.n_seqs != tokens.n_seqs || l.seq_len != tokens.seq_len)
        throw py::value_error("labels must have the shape of tokens");
    return l;
}

void run_dir_call(TrainerObj &self, py::object dir, eurollm_status (*fn)(eurollm_trainer *, const char *)) {
    const std::string d = path_arg(dir);
    ContextLock lock(self);
    eurollm_trainer *h = self.get();
    eurollm_status s;
    {
        py::gil_scoped_release nogil;
        s = fn(h, d.c_str());
    }
    check(s);
}

eurollm_status save_checkpoint(eurollm_trainer *t, const char *d) { return eurollm_trainer_save_checkpoint(t, d); }
eurollm_status load_checkpoint(eurollm_trainer *t, const char *d) { return eurollm_trainer_load_checkpoint(t, d); }
eurollm_status export_peft(eurollm_trainer *t, const char *d) { return eurollm_trainer_export_peft(t, d); }
eurollm_status load_peft(eurollm_trainer *t, const char *d) { return eurollm_trainer_load_peft(t, d); }
eurollm_status save_model(eurollm_trainer *t, const char *d) { return eurollm_trainer_save_model(t, d); }

}  // namespace

void register_trainer(py::module_ &m) {
    py::class_<TrainResult>(m, "TrainResult", "What one training step did (eurollm_train_result).")
        .def_readonly("loss", &TrainResult::loss, "Mean loss of the step's labelled tokens.")
        .def_readonly("grad_norm", &TrainResult::grad_norm, "Global gradient norm before clipping.")
        .def_readonly("lr", &TrainResult::lr, "Learning rate used by this step.")
        .def_readonly("tokens", &TrainResult::tokens, "Tokens processed (n_seqs * seq_len).")
        .def_readonly("loss_tokens", &TrainResult::loss_tokens, "Tokens that carried a label.")
        .def_readonly("step", &TrainResult::step, "Optimizer steps taken so far, this one included.")
        .def("__repr__", [](const TrainResult &r) {
            return "TrainResult(step=" + std::to_string(r.step) + ", loss=" + std::string(py::repr(py::float_(r.loss))) +
                   ", grad_norm=" + std::string(py::repr(py::float_(r.grad_norm))) +
                   ", lr=" + std::string(py::repr(py::float_(r.lr))) + ", tokens=" + std::to_string(r.tokens) +
                   ", loss_tokens=" + std::to_string(r.loss_tokens) + ")";
        });

    py::class_<TrainerObj, std::shared_ptr<TrainerObj>> cls(m, "Trainer", R"pbdoc(Training steps on a model: full fine-tuning or LoRA (EXPERIMENTAL: libeurollm's
training API has no stability promise yet).

    Trainer(model, params=None, **kwargs)

``params`` is a TrainerParams; keywords (mode="lora", lora_rank=16, lr=2e-4, ...) override it.
The model is never written (full fine-tuning trains f32 copies). Batches are token ids of shape
(n_seqs, seq_len) (or one 1-D sequence); labels, the same shape, default to the tokens, in the
Hugging Face convention (position t learns labels[t + 1]; -100 is ignored). One thread at a time.)pbdoc");

    cls.def(py::init([](py::object model, py::object params, py::kwargs kw) {
                if (!py::isinstance<ModelObj>(model)) throw py::type_error("model must be an eurollm.Model");
                const eurollm::Model mdl = model.cast<const ModelObj &>().get();
                const TrainerParams p = params_arg<TrainerParams>(params, kw);
                auto self = std::make_shared<TrainerObj>(mdl);
                self->py_model = model;
                eurollm_status s;
                {
                    py::gil_scoped_release nogil;
                    s = eurollm_trainer_create(mdl.get(), &p, &self->handle);
                }
                check(s);
                return self;
            }),
            py::arg("model"), py::arg("params") = py::none());
    cls.def("close", &TrainerObj::close, "Free the trainer (idempotent).");
    cls.def_property_readonly("closed", [](const TrainerObj &self) { return self.handle == nullptr; });
    cls.def("__enter__", [](py::object self) { return self; });
    cls.def("__exit__", [](TrainerObj &self, py::args) { self.close(); });
    cls.def_readonly("model", &TrainerObj::py_model, "The Model it trains.");

    cls.def("step", [](TrainerObj &self, py::object tokens, py::object labels) {
        const Batch t = batch_arg(tokens, "tokens");
        const Batch l = labels_arg(labels, t);
        ContextLock lock(self);
        eurollm_trainer *h = self.get();
        TrainResult r{};
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_trainer_step(h, t.ids.data(), l.ids.data(), t.n_seqs, t.seq_len, &r);
        }
        check(s);
        return r;
    }, py::arg("tokens"), py::arg("labels") = py::none(),
       R"pbdoc(One optimizer step over a batch; returns a TrainResult. A NaN/Inf loss or gradient raises
Error and leaves weights, moments and step count unchanged; a batch without labels raises
InvalidArgumentError.)pbdoc");

    cls.def("evaluate", [](TrainerObj &self, py::object tokens, py::object labels) {
        const Batch t = batch_arg(tokens, "tokens");
        const Batch l = labels_arg(labels, t);
        ContextLock lock(self);
        eurollm_trainer *h = self.get();
        float loss = 0.0f;
        int64_t n = 0;
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_trainer_eval(h, t.ids.data(), l.ids.data(), t.n_seqs, t.seq_len, &loss, &n);
        }
        check(s);
        return loss;
    }, py::arg("tokens"), py::arg("labels") = py::none(),
       "Mean loss of a batch with the current weights (no dropout, no state change).");

    cls.def("compute_gradients", [](TrainerObj &self, py::object tokens, py::object labels) {
        const Batch t = batch_arg(tokens, "tokens");
        const Batch l = labels_arg(labels, t);
        ContextLock lock(self);
        eurollm_trainer *h = self.get();
        float loss = 0.0f;
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_trainer_compute_gradients(h, t.ids.data(), l.ids.data(), t.n_seqs, t.seq_len, &loss);
        }
        check(s);
        return loss;
    }, py::arg("tokens"), py::arg("labels") = py::none(),
       "Forward and backward only (no update); returns the loss. Read the gradients with "
       "get_tensor(name, TensorPart.GRAD).");

    cls.def("logits", [](TrainerObj &self, py::object tokens) {
        const std::vector<int32_t> ids = tokens_arg(tokens);
        const size_t n_vocab = static_cast<size_t>(self.model.n_vocab());
        py::array_t<float> out({static_cast<py::ssize_t>(ids.size()), static_cast<py::ssize_t>(n_vocab)});
        float *dst = out.mutable_data();
        ContextLock lock(self);
        eurollm_trainer *h = self.get();
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_trainer_logits(h, ids.data(), ids.size(), dst, ids.size() * n_vocab);
        }
        check(s);
        return out;
    }, py::arg("tokens"), "Logits of every position of one sequence with the trained weights: (len, n_vocab) float32.");

    cls.def_property_readonly("tensor_names", [](TrainerObj &self) {
        ContextLock lock(self);
        eurollm_trainer *h = self.get();
        size_t n = 0;
        check(eurollm_trainer_n_tensors(h, &n, nullptr));
        py::list names;
        for (size_t i = 0; i < n; ++i) {
            const char *name = eurollm_trainer_tensor_name(h, i);
            if (!name) check(EUROLLM_ERR_GENERIC);
            names.append(py::str(name));
        }
        return names;
    }, "Names of the trainable tensors: Hugging Face names (full) or PEFT's saved names (LoRA).");

    cls.def_property_readonly("n_elements", [](TrainerObj &self) {
        ContextLock lock(self);
        int64_t n = 0;
        check(eurollm_trainer_n_tensors(self.get(), nullptr, &n));
        return n;
    }, "Total element count of the trainable tensors.");

    cls.def("get_tensor", [](TrainerObj &self, py::object name, int part) {
        const std::string key = text_arg(name, "name");
        ContextLock lock(self);
        eurollm_trainer *h = self.get();
        size_t n = 0;
        eurollm_status s = eurollm_trainer_get_tensor(h, key.c_str(), static_cast<eurollm_tensor_part>(part), nullptr, 0, &n);
        if (s != EUROLLM_ERR_BUFFER_TOO_SMALL) check(s);
        py::array_t<float> out(static_cast<py::ssize_t>(n));
        if (n > 0) check(eurollm_trainer_get_tensor(h, key.c_str(), static_cast<eurollm_tensor_part>(part), out.mutable_data(), n, &n));
        return out;
    }, py::arg("name"), py::arg("part") = static_cast<int>(EUROLLM_TENSOR_VALUE),
       "One array of a trainable tensor (a TensorPart: value, gradient, AdamW moments), flat float32.");

    cls.def_property_readonly("step_count", [](TrainerObj &self) {
        ContextLock lock(self);
        return eurollm_trainer_step_count(self.get());
    }, "Optimizer steps taken so far (after a resume: the checkpoint's).");

    cls.def_property(
        "data_position",
        [](TrainerObj &self) {
            ContextLock lock(self);
            uint64_t epoch = 0, offset = 0, seed = 0;
            check(eurollm_trainer_get_data_position(self.get(), &epoch, &offset, &seed));
            return py::make_tuple(epoch, offset, seed);
        },
        [](TrainerObj &self, py::tuple pos) {
            if (pos.size() != 3) throw py::value_error("data_position is (epoch, offset, seed)");
            const auto epoch = pos[0].cast<uint64_t>(), offset = pos[1].cast<uint64_t>(), seed = pos[2].cast<uint64_t>();
            ContextLock lock(self);
            check(eurollm_trainer_set_data_position(self.get(), epoch, offset, seed));
        },
        "The data loader's (epoch, offset, seed), stored in checkpoints for the caller.");

    cls.def("save_checkpoint", [](TrainerObj &self, py::object dir) { run_dir_call(self, dir, save_checkpoint); },
            py::arg("dir"), "Write a checkpoint under dir/checkpoints/step-N, atomically (keeps the last 2).");
    cls.def("load_checkpoint", [](TrainerObj &self, py::object dir) { run_dir_call(self, dir, load_checkpoint); },
            py::arg("dir"), "Resume from the latest valid checkpoint under dir/checkpoints (IoError if none).");
    cls.def("export_peft", [](TrainerObj &self, py::object dir) { run_dir_call(self, dir, export_peft); },
            py::arg("dir"), "Write the LoRA adapters as a PEFT adapter directory.");
    cls.def("load_peft", [](TrainerObj &self, py::object dir) { run_dir_call(self, dir, load_peft); },
            py::arg("dir"), "Set the LoRA adapters from a PEFT adapter directory (rank, alpha and targets must match).");
    cls.def("save_model", [](TrainerObj &self, py::object dir) { run_dir_call(self, dir, save_model); },
            py::arg("dir"),
            "Write a model directory (trained weights, or the base with the adapters merged) that Model and "
            "transformers load.");

    m.def("adapter_merge", [](py::object base_dir, py::object adapter_dir, py::object out_dir, float scale) {
        const std::string b = path_arg(base_dir), a = path_arg(adapter_dir), o = path_arg(out_dir);
        eurollm_status s;
        {
            py::gil_scoped_release nogil;
            s = eurollm_adapter_merge(b.c_str(), a.c_str(), scale, o.c_str());
        }
        check(s);
    }, py::arg("base_dir"), py::arg("adapter_dir"), py::arg("out_dir"), py::arg("scale") = 1.0f,
       "Merge a PEFT LoRA adapter into a base model directory at `scale` and write a new model directory (experimental).");

    py::class_<DatasetObj, std::shared_ptr<DatasetObj>> ds(m, "Dataset", R"pbdoc(A tokenized training set packed into sequences of seq_len (EXPERIMENTAL).

    Dataset(model, jsonl_path, seq_len)

JSONL lines are {"text": ...} (BOS + text + EOS, every token trained), {"messages": [...]} (the
model's chat template; only assistant turns trained) or {"tokens": [...], "labels": [...]}.)pbdoc");
    ds.def(py::init([](py::object model, py::object path, size_t seq_len) {
               if (!py::isinstance<ModelObj>(model)) throw py::type_error("model must be an eurollm.Model");
               const eurollm::Model mdl = model.cast<const ModelObj &>().get();
               const std::string p = path_arg(path);
               auto self = std::make_shared<DatasetObj>();
               self->seq_len = seq_len;
               eurollm_status s;
               {
                   py::gil_scoped_release nogil;
                   s = eurollm_dataset_load(mdl.get(), p.c_str(), seq_len, &self->handle);
               }
               check(s);
               return self;
           }),
           py::arg("model"), py::arg("jsonl_path"), py::arg("seq_len"));
    ds.def("__len__", [](const DatasetObj &self) { return eurollm_dataset_n_sequences(self.get()); });
    ds.def_readonly("seq_len", &DatasetObj::seq_len);
    ds.def("close", [](DatasetObj &self) {
        eurollm_dataset_free(self.handle);
        self.handle = nullptr;
    });
    ds.def("split", [](DatasetObj &self, size_t n) {
        auto held = std::make_shared<DatasetObj>();
        held->seq_len = self.seq_len;
        check(eurollm_dataset_split(self.get(), n, &held->handle));
        return held;
    }, py::arg("n"), "Move the last n sequences into a new Dataset (a held-out split).");
    ds.def("get", [](const DatasetObj &self, size_t first, size_t n_seqs, uint64_t seed, uint64_t epoch, bool shuffle) {
        eurollm_dataset *h = self.get();
        const auto rows = static_cast<py::ssize_t>(n_seqs), cols = static_cast<py::ssize_t>(self.seq_len);
        py::array_t<int32_t> tokens({rows, cols}), labels({rows, cols});
        check(eurollm_dataset_get(h, seed, epoch, shuffle, first, n_seqs, tokens.mutable_data(), labels.mutable_data()));
        return py::make_tuple(tokens, labels);
    }, py::arg("first"), py::arg("n_seqs"), py::arg("seed") = 0, py::arg("epoch") = 0, py::arg("shuffle") = false,
       "Sequences [first, first + n_seqs) of the order of `epoch` (a permutation of seed and epoch when shuffle): "
       "(tokens, labels), int32 arrays of shape (n_seqs, seq_len).");
}

}  // namespace eurollm_py
