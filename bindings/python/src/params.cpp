// ModelParams, ContextParams, GeneratorParams: the versioned C structs, with the library's own
// defaults (eurollm_*_params_init), readable/writable attributes, and keyword construction:
//     eurollm.GeneratorParams(temperature=0.0, max_tokens=64)
// Model/Context/Generator accept either a params object or the same keywords.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <type_traits>

#include "common.h"
#include "params.h"

namespace eurollm_py {
namespace {

template <typename P>
struct FieldTable {
    std::vector<std::pair<std::string, std::function<void(P &, py::handle)>>> setters;
    std::vector<std::pair<std::string, std::function<py::object(const P &)>>> getters;
};

template <typename P>
FieldTable<P> &table() {
    static FieldTable<P> t;
    return t;
}

// Converting a value: a wrong type raises TypeError, an out-of-range integer OverflowError-like
// ValueError; value checks (e.g. a negative temperature) are the library's, when the params are used.
template <typename T>
T convert(py::handle v, const std::string &name) {
    if constexpr (std::is_enum_v<T>) {
        return static_cast<T>(convert<std::underlying_type_t<T>>(v, name));
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!PyBool_Check(v.ptr())) throw py::type_error(name + " must be a bool");
        return v.ptr() == Py_True;
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!PyFloat_Check(v.ptr()) && !PyLong_Check(v.ptr()) && !PyIndex_Check(v.ptr()))
            throw py::type_error(name + " must be a number");
        return static_cast<T>(py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>());
    } else {
        if (PyFloat_Check(v.ptr()) || !PyIndex_Check(v.ptr())) throw py::type_error(name + " must be an int");
        py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
        if (!i) throw py::error_already_set();
        int overflow = 0;
        const long long x = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
        if (overflow == 0 && x == -1 && PyErr_Occurred()) throw py::error_already_set();
        if (std::is_unsigned_v<T>) {
            if (overflow < 0 || (overflow == 0 && x < 0)) throw py::value_error(name + " must not be negative");
            const unsigned long long ux = PyLong_AsUnsignedLongLong(i.ptr());
            if (PyErr_Occurred()) throw py::error_already_set();
            if (ux > static_cast<unsigned long long>(std::numeric_limits<T>::max()))
                throw py::value_error(name + " is too large");
            return static_cast<T>(ux);
        } else {
            if (overflow || x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max())
                throw py::value_error(name + " is out of range");
            return static_cast<T>(x);
        }
    }
}

// The shortest decimal that reads back as the same float: 0.95f shows as 0.95, not 0.949999988.
double shortest(float v) {
    char buf[32];
    for (int prec = 1; prec <= 9; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(v));
        if (std::strtof(buf, nullptr) == v) return std::strtod(buf, nullptr);
    }
    return static_cast<double>(v);
}

template <typename P, typename B, typename T>
void add_field(py::class_<P> &cls, const char *name, T B::*member, const char *doc,
               std::function<py::object(T)> to_py = nullptr, std::function<T(py::handle)> from_py = nullptr) {
    const std::string n = name;
    auto get = [member, to_py](const P &p) -> py::object {
        if (to_py) return to_py(p.*member);
        if constexpr (std::is_same_v<T, float>) return py::float_(shortest(p.*member));
        return py::cast(p.*member);
    };
    auto set = [member, n, from_py](P &p, py::handle v) { p.*member = from_py ? from_py(v) : convert<T>(v, n); };
    table<P>().getters.emplace_back(n, get);
    table<P>().setters.emplace_back(n, set);
    cls.def_property(
        name, [get](const P &p) { return get(p); }, [set](P &p, py::object v) { set(p, v); }, doc);
}

template <typename P>
void add_common(py::class_<P> &cls, const char *name) {
    const std::string cname = name;
    cls.def(py::init([](py::kwargs kw) {
                P p;
                apply_kwargs(p, kw);
                return p;
            }),
            "Library defaults, overridden by keyword arguments.");
    cls.def("copy", [](const P &p) { return P(p); }, "A copy of these parameters.");
    cls.def("__copy__", [](const P &p) { return P(p); });
    cls.def("__deepcopy__", [](const P &p, py::handle) { return P(p); }, py::arg("memo"));
    cls.def("to_dict", [](const P &p) {
        py::dict d;
        for (auto &[n, get] : table<P>().getters) d[py::str(n)] = get(p);
        return d;
    }, "The fields as a dict.");
    cls.def("__eq__", [](const P &a, py::object b) -> py::object {
        if (!py::isinstance<P>(b)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
        const P &pb = b.cast<const P &>();
        for (auto &[n, get] : table<P>().getters)
            if (!get(a).equal(get(pb))) return py::bool_(false);
        return py::bool_(true);
    });
    cls.attr("__hash__") = py::none();
    cls.def("__repr__", [cname](const P &p) {
        std::string s = cname + "(";
        bool first = true;
        for (auto &[n, get] : table<P>().getters) {
            if (!first) s += ", ";
            first = false;
            s += n + "=" + std::string(py::repr(get(p)));
        }
        return s + ")";
    });
}

}  // namespace

int enum_arg(py::handle v, py::object member, const char *what) {
    if (PyUnicode_Check(v.ptr())) {
        std::string name = py::str(v);
        for (char &c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        py::object cls = py::reinterpret_borrow<py::object>(py::type::handle_of(member));
        py::object members = cls.attr("__members__");
        if (!members.contains(py::str(name)))
            throw py::value_error(std::string("unknown ") + what + " '" + std::string(py::str(v)) + "'");
        return members[py::str(name)].cast<int>();
    }
    return convert<int>(v, what);
}

template <typename P>
void apply_kwargs(P &p, const py::kwargs &kw) {
    for (auto item : kw) {
        const std::string key = py::str(item.first);
        bool found = false;
        for (auto &[n, set] : table<P>().setters) {
            if (n == key) {
                set(p, item.second);
                found = true;
                break;
            }
        }
        if (!found) throw py::type_error("unexpected parameter '" + key + "'");
    }
}

template <typename P>
P params_arg(py::handle params, const py::kwargs &kw) {
    P p;
    if (!params.is_none()) {
        if (!py::isinstance<P>(params)) throw py::type_error("params has the wrong type");
        p = params.cast<const P &>();
    }
    apply_kwargs(p, kw);
    return p;
}

template void apply_kwargs(ModelParams &, const py::kwargs &);
template void apply_kwargs(ContextParams &, const py::kwargs &);
template void apply_kwargs(GeneratorParams &, const py::kwargs &);
template void apply_kwargs(EmbedParams &, const py::kwargs &);
template void apply_kwargs(TrainerParams &, const py::kwargs &);
template TrainerParams params_arg(py::handle, const py::kwargs &);
template EmbedParams params_arg(py::handle, const py::kwargs &);
template ModelParams params_arg(py::handle, const py::kwargs &);
template ContextParams params_arg(py::handle, const py::kwargs &);
template GeneratorParams params_arg(py::handle, const py::kwargs &);

void register_params(py::module_ &m) {
    py::class_<ModelParams> mp(m, "ModelParams", "eurollm_model_params: how a model is loaded.");
    add_common(mp, "ModelParams");
    add_field<ModelParams, eurollm_model_params, eurollm_device_kind>(
        mp, "device", &ModelParams::device, "Device kind: a Device or its name ('cpu', 'cuda'); default Device.AUTO.",
        [](eurollm_device_kind d) { return device_enum(d); },
        [](py::handle v) { return static_cast<eurollm_device_kind>(enum_arg(v, device_enum(EUROLLM_DEVICE_AUTO), "device")); });
    add_field(mp, "device_index", &ModelParams::device_index, "Which device of that kind (default 0).");
    add_field(mp, "n_gpu_layers", &ModelParams::n_gpu_layers, "Layers placed on the GPU; -1 = all (default).");
    add_field(mp, "use_mmap", &ModelParams::use_mmap, "Map weight files instead of reading them (default True).");
    add_field<ModelParams, eurollm_model_params, eurollm_weight_type>(
        mp, "weight_type", &ModelParams::weight_type,
        "Convert the 2-D weights at load: a WeightType or its name ('q8_0', 'bf16'); default WeightType.AUTO (as stored).",
        [](eurollm_weight_type v) { return enum_value("WeightType", v); },
        [](py::handle v) {
            return static_cast<eurollm_weight_type>(enum_arg(v, enum_value("WeightType", 0), "weight_type"));
        });

    py::class_<ContextParams> cp(m, "ContextParams", "eurollm_context_params: KV cache size, batch, threads, seed.");
    add_common(cp, "ContextParams");
    add_field(cp, "n_ctx", &ContextParams::n_ctx, "Tokens the KV cache holds; 0 = min(n_ctx_train, 4096) (default).");
    add_field(cp, "n_batch", &ContextParams::n_batch, "Most tokens evaluated in one pass (default 512).");
    add_field(cp, "n_threads", &ContextParams::n_threads, "CPU threads; 0 = one per core (default).");
    add_field(cp, "seed", &ContextParams::seed, "Default seed for samplers on this context (default 0).");
    add_field<ContextParams, eurollm_context_params, eurollm_precision>(
        cp, "precision", &ContextParams::precision,
        "How activations meet bf16 weights: a Precision or its name ('exact', 'bf16'); default Precision.EXACT.",
        [](eurollm_precision v) { return enum_value("Precision", v); },
        [](py::handle v) { return static_cast<eurollm_precision>(enum_arg(v, enum_value("Precision", 0), "precision")); });
    add_field<ContextParams, eurollm_context_params, eurollm_weight_type>(
        cp, "kv_type", &ContextParams::kv_type,
        "KV cache elements: WeightType.F32 (default, exact) or WeightType.F16 ('f16': half the memory, "
        "keys and values rounded to f16).",
        [](eurollm_weight_type v) { return enum_value("WeightType", v); },
        [](py::handle v) { return static_cast<eurollm_weight_type>(enum_arg(v, enum_value("WeightType", 0), "kv_type")); });

    py::class_<GeneratorParams> gp(m, "GeneratorParams", "eurollm_generator_params: sampling and stopping.");
    add_common(gp, "GeneratorParams");
    add_field(gp, "max_tokens", &GeneratorParams::max_tokens, "New tokens at most (default 256); <= 0: until the context is full.");
    add_field(gp, "temperature", &GeneratorParams::temperature, "Default 0.8; 0 = greedy (argmax).");
    add_field(gp, "top_k", &GeneratorParams::top_k, "Default 40; 0 = off.");
    add_field(gp, "top_p", &GeneratorParams::top_p, "Default 0.95; 1 = off.");
    add_field(gp, "min_p", &GeneratorParams::min_p, "Default 0.05; 0 = off.");
    add_field(gp, "repetition_penalty", &GeneratorParams::repetition_penalty, "Default 1.0 (off); > 1 penalises seen tokens.");
    add_field(gp, "frequency_penalty", &GeneratorParams::frequency_penalty, "Default 0 (off); OpenAI style.");
    add_field(gp, "presence_penalty", &GeneratorParams::presence_penalty, "Default 0 (off); OpenAI style.");
    add_field(gp, "penalty_last_n", &GeneratorParams::penalty_last_n, "Tokens the penalties look back over (default 64; -1 = all).");
    add_field(gp, "seed", &GeneratorParams::seed, "Sampling seed; 0 (default) = the context's seed.");
    add_field(gp, "ignore_eos", &GeneratorParams::ignore_eos, "Keep going past the model's end-of-generation ids (default False).");
    add_field(gp, "seq_id", &GeneratorParams::seq_id, "The context sequence the generator extends (default 0).");

    py::class_<EmbedParams> ep(m, "EmbedParams", "eurollm_embed_params: pooling and shape of embeddings.");
    add_common(ep, "EmbedParams");
    add_field<EmbedParams, eurollm_embed_params, eurollm_pooling>(
        ep, "pooling", &EmbedParams::pooling, "A Pooling or its name ('mean', 'last', 'first', 'none'); default Pooling.MEAN.",
        [](eurollm_pooling v) { return pooling_enum(v); },
        [](py::handle v) { return static_cast<eurollm_pooling>(enum_arg(v, pooling_enum(0), "pooling")); });
    add_field(ep, "normalize", &EmbedParams::normalize, "L2-normalise each row (default False).");
    add_field(ep, "dim", &EmbedParams::dim, "Keep the first dim components (Matryoshka); 0 = all (default).");
    add_field(ep, "tokenize_flags", &EmbedParams::tokenize_flags,
              "TokenizeFlags for text inputs (default TokenizeFlags.MODEL_DEFAULT).");

    py::class_<TrainerParams> tp(m, "TrainerParams",
                                 "eurollm_trainer_params (experimental): what a Trainer trains and how.");
    add_common(tp, "TrainerParams");
    add_field<TrainerParams, eurollm_trainer_params, eurollm_train_mode>(
        tp, "mode", &TrainerParams::mode, "TrainMode (or 'full' / 'lora'); default TrainMode.LORA.",
        [](eurollm_train_mode v) { return enum_value("TrainMode", v); },
        [](py::handle v) { return static_cast<eurollm_train_mode>(enum_arg(v, enum_value("TrainMode", 0), "mode")); });
    add_field(tp, "lora_rank", &TrainerParams::lora_rank, "LoRA rank (default 8).");
    add_field(tp, "lora_alpha", &TrainerParams::lora_alpha, "LoRA alpha (default 16); the update is scaled by alpha / rank.");
    add_field(tp, "lora_dropout", &TrainerParams::lora_dropout, "Dropout on the adapter's input (default 0).");
    add_field(tp, "lora_targets", &TrainerParams::lora_targets, "LoraTarget flags (default Q | V).");
    add_field(tp, "lr", &TrainerParams::lr, "Peak learning rate (default 1e-4).");
    add_field(tp, "beta1", &TrainerParams::beta1, "AdamW beta1 (default 0.9).");
    add_field(tp, "beta2", &TrainerParams::beta2, "AdamW beta2 (default 0.999).");
    add_field(tp, "eps", &TrainerParams::eps, "AdamW epsilon (default 1e-8).");
    add_field(tp, "weight_decay", &TrainerParams::weight_decay, "Decoupled weight decay (default 0).");
    add_field<TrainerParams, eurollm_trainer_params, eurollm_lr_schedule>(
        tp, "schedule", &TrainerParams::schedule, "LrSchedule (or its name); default LrSchedule.COSINE.",
        [](eurollm_lr_schedule v) { return enum_value("LrSchedule", v); },
        [](py::handle v) {
            return static_cast<eurollm_lr_schedule>(enum_arg(v, enum_value("LrSchedule", 0), "schedule"));
        });
    add_field(tp, "warmup_steps", &TrainerParams::warmup_steps, "Linear warmup steps (default 0).");
    add_field(tp, "total_steps", &TrainerParams::total_steps, "Schedule length; 0 = constant lr after warmup (default).");
    add_field(tp, "min_lr_ratio", &TrainerParams::min_lr_ratio, "Floor of the decay as a fraction of lr (default 0).");
    add_field(tp, "micro_batch", &TrainerParams::micro_batch, "Sequences per forward/backward; 0 = all (default).");
    add_field(tp, "max_grad_norm", &TrainerParams::max_grad_norm, "Global-norm clipping (default 1.0; 0 = off).");
    add_field(tp, "seed", &TrainerParams::seed, "LoRA initialisation and dropout seed (default 0).");
    add_field(tp, "n_threads", &TrainerParams::n_threads, "CPU threads; 0 = one per core.");
    add_field<TrainerParams, eurollm_trainer_params, eurollm_precision>(
        tp, "precision", &TrainerParams::precision,
        "Precision.EXACT (float32 gradients, default) or Precision.BF16 (bf16 products, float32 master "
        "weights and moments); recorded in checkpoints (from_checkpoint reads it back).",
        [](eurollm_precision v) { return enum_value("Precision", v); },
        [](py::handle v) { return static_cast<eurollm_precision>(enum_arg(v, enum_value("Precision", 0), "precision")); });
    tp.def_static("from_checkpoint", [](py::object dir) {
        TrainerParams p;
        const std::string d = path_arg(dir);
        check(eurollm_trainer_params_from_checkpoint(d.c_str(), &p));
        return p;
    }, py::arg("dir"), "The mode, LoRA shape, hyper-parameters and precision recorded in the latest checkpoint under "
       "dir/checkpoints.");
}

}  // namespace eurollm_py
