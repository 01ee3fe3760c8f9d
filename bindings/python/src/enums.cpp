// Python enum classes (enum.IntEnum / enum.IntFlag) whose members take their values from eurollm.h,
// so Python code compares and prints them by name and they stay plain ints for the C API.
#include "common.h"

namespace eurollm_py {
namespace {

using Members = std::vector<std::pair<const char *, long>>;

// Built once at import; deliberately leaked so no Python object outlives the interpreter in a
// static destructor.
py::object *g_status = nullptr;
py::object *g_stop_reason = nullptr;
py::object *g_device = nullptr;
py::object *g_log_level = nullptr;
py::object *g_pooling = nullptr;
std::vector<std::pair<std::string, py::object *>> *g_all = nullptr;  // every class, by name

py::object *make_enum(py::module_ &m, const char *kind, const char *name, const Members &members, const char *doc) {
    py::list items;
    for (const auto &[key, value] : members) items.append(py::make_tuple(key, value));
    py::object cls = py::module_::import("enum").attr(kind)(name, items, py::arg("module") = "eurollm");
    cls.attr("__doc__") = doc;
    m.attr(name) = cls;
    auto *held = new py::object(cls);
    if (!g_all) g_all = new std::vector<std::pair<std::string, py::object *>>();
    g_all->emplace_back(name, held);
    return held;
}

py::object lookup(py::object *cls, int value) {
    try {
        return (*cls)(value);
    } catch (py::error_already_set &) {  // a value newer than this binding: keep the int
        PyErr_Clear();
        return py::int_(value);
    }
}

}  // namespace

py::object status_enum(int value) { return lookup(g_status, value); }
py::object stop_reason_enum(int value) { return lookup(g_stop_reason, value); }
py::object device_enum(int value) { return lookup(g_device, value); }
py::object log_level_enum(int value) { return lookup(g_log_level, value); }
py::object pooling_enum(int value) { return lookup(g_pooling, value); }
py::object enum_value(const char *cls, int value) {
    for (auto &[name, obj] : *g_all)
        if (name == cls) return lookup(obj, value);
    return py::int_(value);
}

void register_enums(py::module_ &m) {
    g_status = make_enum(m, "IntEnum", "Status",
                         {{"OK", EUROLLM_OK},
                          {"DONE", EUROLLM_DONE},
                          {"ERR_GENERIC", EUROLLM_ERR_GENERIC},
                          {"ERR_INVALID_ARGUMENT", EUROLLM_ERR_INVALID_ARGUMENT},
                          {"ERR_OUT_OF_MEMORY", EUROLLM_ERR_OUT_OF_MEMORY},
                          {"ERR_DEVICE", EUROLLM_ERR_DEVICE},
                          {"ERR_IO", EUROLLM_ERR_IO},
                          {"ERR_BAD_MODEL", EUROLLM_ERR_BAD_MODEL},
                          {"ERR_BUFFER_TOO_SMALL", EUROLLM_ERR_BUFFER_TOO_SMALL},
                          {"ERR_CONTEXT_FULL", EUROLLM_ERR_CONTEXT_FULL},
                          {"ERR_ABORTED", EUROLLM_ERR_ABORTED},
                          {"ERR_UNSUPPORTED", EUROLLM_ERR_UNSUPPORTED}},
                         "eurollm_status: 0 = OK, negative = error, positive = a non-error state.");
    g_device = make_enum(m, "IntEnum", "Device",
                         {{"AUTO", EUROLLM_DEVICE_AUTO},
                          {"CPU", EUROLLM_DEVICE_CPU},
                          {"CUDA", EUROLLM_DEVICE_CUDA},
                          {"HIP", EUROLLM_DEVICE_HIP}},
                         "eurollm_device_kind: where a model runs (AUTO = the CPU for now; a GPU only when asked for).");
    g_log_level = make_enum(m, "IntEnum", "LogLevel",
                            {{"DEBUG", EUROLLM_LOG_DEBUG},
                             {"INFO", EUROLLM_LOG_INFO},
                             {"WARN", EUROLLM_LOG_WARN},
                             {"ERROR", EUROLLM_LOG_ERROR},
                             {"NONE", EUROLLM_LOG_NONE}},
                            "eurollm_log_level.");
    g_stop_reason = make_enum(m, "IntEnum", "StopReason",
                              {{"NONE", EUROLLM_STOP_NONE},
                               {"EOS", EUROLLM_STOP_EOS},
                               {"STRING", EUROLLM_STOP_STRING},
                               {"MAX_TOKENS", EUROLLM_STOP_MAX_TOKENS},
                               {"CONTEXT_FULL", EUROLLM_STOP_CONTEXT_FULL},
                               {"CALLBACK", EUROLLM_STOP_CALLBACK}},
                              "eurollm_stop_reason: why a generator finished (NONE while it runs).");
    make_enum(m, "IntEnum", "ModelInfo",
              {{"N_VOCAB", EUROLLM_INFO_N_VOCAB},
               {"N_EMBD", EUROLLM_INFO_N_EMBD},
               {"N_LAYER", EUROLLM_INFO_N_LAYER},
               {"N_HEAD", EUROLLM_INFO_N_HEAD},
               {"N_HEAD_KV", EUROLLM_INFO_N_HEAD_KV},
               {"HEAD_DIM", EUROLLM_INFO_HEAD_DIM},
               {"N_FF", EUROLLM_INFO_N_FF},
               {"N_CTX_TRAIN", EUROLLM_INFO_N_CTX_TRAIN},
               {"BOS_ID", EUROLLM_INFO_BOS_ID},
               {"EOS_ID", EUROLLM_INFO_EOS_ID},
               {"PAD_ID", EUROLLM_INFO_PAD_ID},
               {"N_PARAMS", EUROLLM_INFO_N_PARAMS},
               {"SLIDING_WINDOW", EUROLLM_INFO_SLIDING_WINDOW},
               {"TIED_EMBEDDINGS", EUROLLM_INFO_TIED_EMBEDDINGS}},
              "eurollm_model_info: integer properties of a loaded model (Model.info).");
    g_pooling = make_enum(m, "IntEnum", "Pooling",
                          {{"MEAN", EUROLLM_POOLING_MEAN},
                           {"LAST", EUROLLM_POOLING_LAST},
                           {"FIRST", EUROLLM_POOLING_FIRST},
                           {"NONE", EUROLLM_POOLING_NONE}},
                          "eurollm_pooling: how token states become an embedding (NONE: one row per token).");
    make_enum(m, "IntEnum", "WeightType",
              {{"AUTO", EUROLLM_WEIGHT_AUTO},
               {"F32", EUROLLM_WEIGHT_F32},
               {"F16", EUROLLM_WEIGHT_F16},
               {"BF16", EUROLLM_WEIGHT_BF16},
               {"Q8_0", EUROLLM_WEIGHT_Q8_0},
               {"Q4_0", EUROLLM_WEIGHT_Q4_0},
               {"Q4_K", EUROLLM_WEIGHT_Q4_K},
               {"Q6_K", EUROLLM_WEIGHT_Q6_K}},
              "eurollm_weight_type: how 2-D weights are stored (ModelParams.weight_type, Model.save_gguf); "
              "AUTO keeps each tensor's type.");
    make_enum(m, "IntEnum", "Precision", {{"EXACT", EUROLLM_PRECISION_EXACT}, {"BF16", EUROLLM_PRECISION_BF16}},
              "eurollm_precision: how activations meet bf16 weights (ContextParams.precision); EXACT by default.");
    m.attr("MAX_SEQUENCES") = EUROLLM_MAX_SEQUENCES;
    make_enum(m, "IntEnum", "TrainMode", {{"FULL", EUROLLM_TRAIN_FULL}, {"LORA", EUROLLM_TRAIN_LORA}},
              "eurollm_train_mode (experimental): train every weight, or LoRA adapters over a frozen base.");
    make_enum(m, "IntEnum", "LrSchedule",
              {{"COSINE", EUROLLM_SCHEDULE_COSINE}, {"LINEAR", EUROLLM_SCHEDULE_LINEAR},
               {"CONSTANT", EUROLLM_SCHEDULE_CONSTANT}},
              "eurollm_lr_schedule (experimental): after the linear warmup.");
    make_enum(m, "IntFlag", "LoraTarget",
              {{"Q", EUROLLM_LORA_Q}, {"K", EUROLLM_LORA_K}, {"V", EUROLLM_LORA_V}, {"O", EUROLLM_LORA_O},
               {"GATE", EUROLLM_LORA_GATE}, {"UP", EUROLLM_LORA_UP}, {"DOWN", EUROLLM_LORA_DOWN},
               {"ALL", EUROLLM_LORA_ALL}},
              "EUROLLM_LORA_* (experimental): projections that get LoRA adapters, OR-ed together.");
    make_enum(m, "IntEnum", "TensorPart",
              {{"VALUE", EUROLLM_TENSOR_VALUE}, {"GRAD", EUROLLM_TENSOR_GRAD}, {"EXP_AVG", EUROLLM_TENSOR_EXP_AVG},
               {"EXP_AVG_SQ", EUROLLM_TENSOR_EXP_AVG_SQ}},
              "eurollm_tensor_part (experimental): which array of a trainable tensor.");
    make_enum(m, "IntFlag", "TokenizeFlags",
              {{"NONE", 0},
               {"ADD_BOS", EUROLLM_TOKENIZE_ADD_BOS},
               {"PARSE_SPECIAL", EUROLLM_TOKENIZE_PARSE_SPECIAL},
               {"MODEL_DEFAULT", EUROLLM_TOKENIZE_MODEL_DEFAULT}},
              "EUROLLM_TOKENIZE_* flags for Model.tokenize(flags=...).");
}

}  // namespace eurollm_py
