// Every extern "C" definition of eurollm.h. This file is the exception firewall: each entry point
// validates its handles and arguments, runs the C++ core inside capi::guarded, and returns a
// status. Nothing thrown inside the core crosses this boundary.
#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api_guard.h"
#include "handles.h"
#include "core/error.h"
#include "core/log.h"
#include "core/file_io.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "backend/backend_gpu.h"
#include "chat/conversation.h"
#include "embed/embedder.h"
#include "generate/generator.h"
#include "model/gguf.h"
#include "model/model.h"
#include "runtime/context.h"

using eurollm::fail;
using eurollm::capi::check_version;
using eurollm::capi::enum_value;
using eurollm::capi::params_or_default;
using eurollm::capi::guarded;
using eurollm::capi::registry;

namespace {

template <typename H>
H *checked(H *h, const char *what) {
    if (!h) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " is NULL");
    if (!registry().contains(h)) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " is not a live handle (already freed?)");
    return h;
}
template <typename H>
const H *checked(const H *h, const char *what) {
    return checked(const_cast<H *>(h), what);
}

template <typename T>
void require_out(T **out, const char *what) {
    if (!out) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " (the output pointer) is NULL");
    *out = nullptr;
}

// Copies `src` into a caller buffer of `cap` elements, reporting the needed count.
template <typename T>
eurollm_status copy_out(const T *src, size_t n, T *dst, size_t cap, size_t *n_out, const char *what) {
    if (!n_out) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, ": the size output pointer is NULL");
    *n_out = n;
    if (n > cap || (n > 0 && !dst)) {
        eurollm::capi::set_last_error(std::string(what) + ": buffer holds " + std::to_string(cap) + " but " +
                                      std::to_string(n) + " are needed");
        return EUROLLM_ERR_BUFFER_TOO_SMALL;
    }
    if (n > 0) std::memcpy(dst, src, n * sizeof(T));
    return EUROLLM_OK;
}

// Text outputs are NUL-terminated, so they need len + 1 bytes.
eurollm_status copy_text(const std::string &s, char *dst, size_t cap, size_t *len_out, const char *what) {
    if (!len_out) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, ": len_out is NULL");
    *len_out = s.size();
    if (s.size() + 1 > cap || !dst) {
        eurollm::capi::set_last_error(std::string(what) + ": buffer holds " + std::to_string(cap) + " bytes but " +
                                      std::to_string(s.size() + 1) + " are needed");
        return EUROLLM_ERR_BUFFER_TOO_SMALL;
    }
    std::memcpy(dst, s.data(), s.size());
    dst[s.size()] = '\0';
    return EUROLLM_OK;
}

std::string_view text_arg(const char *text, size_t len, const char *what) {
    if (!text && len > 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " is NULL");
    return text ? std::string_view(text, len) : std::string_view();
}

void destroy_context_locked(eurollm_context *c) {
    eurollm_model *owner = c->owner;
    delete c;
    release_model_child_locked(owner);
}

bool abort_trampoline(void *data) {
    auto *c = static_cast<eurollm_context *>(data);
    return c->abort_cb ? c->abort_cb(c->abort_data) : true;
}

// A caller compiled against an older header passes an older, shorter struct: the bytes of each
// version are the fields up to the first one a later version appended.
size_t generator_params_size(uint32_t version) {
    return version >= 2 ? sizeof(eurollm_generator_params) : offsetof(eurollm_generator_params, seq_id);
}
size_t model_params_size(uint32_t version) {
    return version >= 2 ? sizeof(eurollm_model_params) : offsetof(eurollm_model_params, weight_type);
}
size_t context_params_size(uint32_t version) {
    if (version >= 3) return sizeof(eurollm_context_params);
    return version >= 2 ? offsetof(eurollm_context_params, kv_type) : offsetof(eurollm_context_params, precision);
}

eurollm_generator_params generator_params_or_default(const eurollm_generator_params *params) {
    return params_or_default(params, EUROLLM_GENERATOR_PARAMS_VERSION, generator_params_size,
                             eurollm_generator_params_init, "eurollm_generator_params");
}

// AUTO (keep what is stored) is no type; any other value must be one the header names.
std::optional<eurollm::wtype> weight_type_arg(const eurollm_weight_type &type) {
    switch (enum_value(type)) {
        case EUROLLM_WEIGHT_AUTO: return std::nullopt;
        case EUROLLM_WEIGHT_F32: return eurollm::wtype::f32;
        case EUROLLM_WEIGHT_F16: return eurollm::wtype::f16;
        case EUROLLM_WEIGHT_BF16: return eurollm::wtype::bf16;
        case EUROLLM_WEIGHT_Q8_0: return eurollm::wtype::q8_0;
        case EUROLLM_WEIGHT_Q4_0: return eurollm::wtype::q4_0;
        case EUROLLM_WEIGHT_Q4_K: return eurollm::wtype::q4_k;
        case EUROLLM_WEIGHT_Q6_K: return eurollm::wtype::q6_k;
    }
    fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown weight type ", enum_value(type));
}

eurollm::kernels::act_precision precision_arg(const eurollm_precision &precision) {
    switch (enum_value(precision)) {
        case EUROLLM_PRECISION_EXACT: return eurollm::kernels::act_precision::split;
        case EUROLLM_PRECISION_BF16: return eurollm::kernels::act_precision::round;
    }
    fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown precision ", enum_value(precision));
}

eurollm::wtype kv_type_arg(const eurollm_weight_type &type) {
    switch (enum_value(type)) {
        case EUROLLM_WEIGHT_AUTO:
        case EUROLLM_WEIGHT_F32: return eurollm::wtype::f32;
        case EUROLLM_WEIGHT_F16: return eurollm::wtype::f16;
    }
    fail(EUROLLM_ERR_INVALID_ARGUMENT, "kv_type ", enum_value(type), " is not a KV cache type (F32 or F16)");
}

eurollm::sampler_params to_sampler(const eurollm_generator_params &p, uint64_t context_seed) {
    eurollm::sampler_params s;
    s.temperature = p.temperature;
    s.top_k = p.top_k;
    s.top_p = p.top_p;
    s.min_p = p.min_p;
    s.repetition_penalty = p.repetition_penalty;
    s.frequency_penalty = p.frequency_penalty;
    s.presence_penalty = p.presence_penalty;
    s.penalty_last_n = p.penalty_last_n;
    s.seed = p.seed != 0 ? p.seed : context_seed;
    return s;
}

// A generator or a chat extends one sequence of a context; at most one of them per sequence.
// Called with the lifecycle mutex held.
eurollm::generator_options options_for_free_sequence(eurollm_context *c, const eurollm_generator_params &p) {
    c->impl->check_seq(p.seq_id);
    if (c->gen_seqs & (uint64_t{1} << p.seq_id))
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequence ", p.seq_id, " already has a generator or chat; free it first");
    eurollm::generator_options o;
    o.sampling = to_sampler(p, c->impl->seed());
    o.max_tokens = p.max_tokens;
    o.ignore_eos = p.ignore_eos;
    o.seq = p.seq_id;
    return o;
}

void claim_sequence_locked(eurollm_context *c, int32_t seq) {
    ++c->children;
    c->gen_seqs |= uint64_t{1} << seq;
}

void release_sequence_locked(eurollm_context *c, int32_t seq) {
    c->gen_seqs &= ~(uint64_t{1} << seq);
    if (--c->children == 0 && c->free_requested) destroy_context_locked(c);
}

}  // namespace

extern "C" {

// ---- versions, logging, devices ----

EUROLLM_API int eurollm_version_number(void) { return EUROLLM_VERSION_NUMBER; }
EUROLLM_API const char *eurollm_version_string(void) { return EUROLLM_VERSION_STRING; }

EUROLLM_API void eurollm_log_set(eurollm_log_cb cb, eurollm_log_level min_level, void *user_data) {
    eurollm::log_set(cb, min_level, user_data);
}

EUROLLM_API int eurollm_device_count(eurollm_device_kind kind) {
    int n = 0;
    guarded([&] {
        switch (enum_value(kind)) {
            case EUROLLM_DEVICE_AUTO:
            case EUROLLM_DEVICE_CPU: n = 1; break;
            case EUROLLM_DEVICE_CUDA: n = eurollm::gpu_device_count(eurollm::gpu_kind::cuda); break;
            case EUROLLM_DEVICE_HIP: n = eurollm::gpu_device_count(eurollm::gpu_kind::hip); break;
        }
        return EUROLLM_OK;
    });
    return n;
}

namespace {

// The GPU a (kind, index) pair names; nullopt for the CPU. Throws INVALID_ARGUMENT for anything else.
std::optional<eurollm::gpu_kind> gpu_of(eurollm_device_kind kind, int32_t index) {
    const int k = enum_value(kind);
    if (k == EUROLLM_DEVICE_AUTO || k == EUROLLM_DEVICE_CPU) {
        if (index != 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "the CPU is device 0, not ", index);
        return std::nullopt;
    }
    if (k != EUROLLM_DEVICE_CUDA && k != EUROLLM_DEVICE_HIP) fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown device kind ", k);
    const auto g = k == EUROLLM_DEVICE_CUDA ? eurollm::gpu_kind::cuda : eurollm::gpu_kind::hip;
    const int n = eurollm::gpu_device_count(g);
    if (index < 0 || index >= n)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "no ", eurollm::gpu_kind_name(g), " device ", index, " (", n, " found)");
    return g;
}

}  // namespace

EUROLLM_API eurollm_status eurollm_device_name(eurollm_device_kind kind, int32_t index, char *text, size_t cap,
                                               size_t *len_out) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(len_out, "len_out is NULL");
        *len_out = 0;
        std::string name = "cpu";
        if (const auto g = gpu_of(kind, index)) {
            const eurollm::gpu_device_info info = eurollm::gpu_device_properties(*g, index);
            name = info.name + " (" + info.arch + ")";
        }
        return copy_text(name, text, cap, len_out, "device name");
    });
}

EUROLLM_API eurollm_status eurollm_device_memory(eurollm_device_kind kind, int32_t index, uint64_t *total_bytes,
                                                 uint64_t *free_bytes) {
    return guarded([&] {
        uint64_t total = 0, avail = 0;
        if (const auto g = gpu_of(kind, index)) {
            const eurollm::gpu_device_info info = eurollm::gpu_device_properties(*g, index);
            total = info.total_memory;
            avail = info.free_memory;
        }
        if (total_bytes) *total_bytes = total;
        if (free_bytes) *free_bytes = avail;
        return EUROLLM_OK;
    });
}

// ---- model ----

EUROLLM_API eurollm_status eurollm_model_params_init(eurollm_model_params *params, uint32_t version) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(params, "params is NULL");
        check_version(version, EUROLLM_MODEL_PARAMS_VERSION, "eurollm_model_params");
        std::memset(params, 0, model_params_size(version));
        params->version = version;
        params->device = EUROLLM_DEVICE_AUTO;
        params->device_index = 0;
        params->n_gpu_layers = -1;
        params->use_mmap = true;
        if (version >= 2) params->weight_type = EUROLLM_WEIGHT_AUTO;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_model_load(const char *path, const eurollm_model_params *params, eurollm_model **out) {
    return guarded([&] {
        require_out(out, "out");
        EUROLLM_CHECK_ARG(path, "path is NULL");
        EUROLLM_CHECK_ARG(*path, "path is empty");
        const eurollm_model_params p = params_or_default(params, EUROLLM_MODEL_PARAMS_VERSION, model_params_size,
                                                         eurollm_model_params_init, "eurollm_model_params");
        const int device = enum_value(p.device);
        std::optional<eurollm::gpu_kind> gpu;
        if (device != EUROLLM_DEVICE_AUTO && device != EUROLLM_DEVICE_CPU) {
            if (device != EUROLLM_DEVICE_CUDA && device != EUROLLM_DEVICE_HIP)
                fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown device kind ", device);
            const auto kind = p.device == EUROLLM_DEVICE_CUDA ? eurollm::gpu_kind::cuda : eurollm::gpu_kind::hip;
            const char *name = p.device == EUROLLM_DEVICE_CUDA ? "CUDA" : "HIP";
            if (!eurollm::gpu_compiled(kind)) fail(EUROLLM_ERR_UNSUPPORTED, "this build has no ", name, " backend");
            if (p.device_index < 0 || p.device_index >= eurollm::gpu_device_count(kind))
                fail(EUROLLM_ERR_DEVICE, "no ", name, " device ", p.device_index, " (", eurollm::gpu_device_count(kind),
                     " found)");
            gpu = kind;
        }
        if (p.n_gpu_layers < -1) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_gpu_layers ", p.n_gpu_layers, " is negative (-1 = all)");
        if (p.device_index < 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "device_index must not be negative");
        eurollm::model_load_options o;
        o.use_mmap = p.use_mmap;
        o.weight_type = weight_type_arg(p.weight_type);
        auto handle = std::make_unique<eurollm_model>();
        handle->impl = eurollm::load_model(path, o);
        if (gpu) handle->device = eurollm::place_on_gpu(*handle->impl, *gpu, p.device_index, p.n_gpu_layers);
        *out = handle.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API void eurollm_model_free(eurollm_model *model) {
    if (!model) return;
    std::lock_guard<std::mutex> lock(lifecycle_mutex());
    if (!registry().contains(model)) return;
    registry().remove(model);
    if (model->children > 0) {
        model->free_requested = true;
        eurollm::log(EUROLLM_LOG_WARN, "eurollm_model_free: ", model->children,
                     " context(s) still use the model; it is released with the last of them");
        return;
    }
    destroy_model_locked(model);
}

EUROLLM_API eurollm_status eurollm_model_get_info(const eurollm_model *model, eurollm_model_info key, int64_t *value) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        EUROLLM_CHECK_ARG(value, "value is NULL");
        const auto &hp = m.hp;
        switch (enum_value(key)) {
            case EUROLLM_INFO_N_VOCAB: *value = hp.n_vocab; break;
            case EUROLLM_INFO_N_EMBD: *value = hp.n_embd; break;
            case EUROLLM_INFO_N_LAYER: *value = hp.n_layer; break;
            case EUROLLM_INFO_N_HEAD: *value = hp.n_head; break;
            case EUROLLM_INFO_N_HEAD_KV: *value = hp.n_head_kv; break;
            case EUROLLM_INFO_HEAD_DIM: *value = hp.head_dim; break;
            case EUROLLM_INFO_N_FF: *value = hp.n_ff; break;
            case EUROLLM_INFO_N_CTX_TRAIN: *value = hp.n_ctx_train; break;
            case EUROLLM_INFO_BOS_ID: *value = hp.bos_id; break;
            case EUROLLM_INFO_EOS_ID: *value = m.eos_ids.empty() ? -1 : m.eos_ids[0]; break;
            case EUROLLM_INFO_PAD_ID: *value = hp.pad_id; break;
            case EUROLLM_INFO_N_PARAMS: *value = m.n_params; break;
            case EUROLLM_INFO_SLIDING_WINDOW: *value = hp.sliding_window; break;
            case EUROLLM_INFO_TIED_EMBEDDINGS: *value = hp.tie_embeddings ? 1 : 0; break;
            default: fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown model info key ", enum_value(key));
        }
        return EUROLLM_OK;
    });
}

EUROLLM_API const char *eurollm_model_architecture(const eurollm_model *model) {
    const char *result = "";
    guarded([&] {
        result = checked(model, "model")->impl->hp.architecture.c_str();
        return EUROLLM_OK;
    });
    return result;
}

EUROLLM_API const char *eurollm_model_chat_template(const eurollm_model *model) {
    const char *result = nullptr;
    guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        result = m.has_chat_template ? m.chat_template.c_str() : nullptr;
        return EUROLLM_OK;
    });
    return result;
}

EUROLLM_API eurollm_status eurollm_model_eos_ids(const eurollm_model *model, int32_t *ids, size_t cap, size_t *n_out) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        return copy_out(m.eos_ids.data(), m.eos_ids.size(), ids, cap, n_out, "eos ids");
    });
}

EUROLLM_API eurollm_status eurollm_model_save_gguf(const eurollm_model *model, const char *path,
                                                   eurollm_weight_type type) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        EUROLLM_CHECK_ARG(path, "path is NULL");
        EUROLLM_CHECK_ARG(*path, "path is empty");
        eurollm::save_gguf(m, path, weight_type_arg(type));
        return EUROLLM_OK;
    });
}

// ---- tokenizer ----

EUROLLM_API eurollm_status eurollm_tokenize(const eurollm_model *model, const char *text, size_t text_len, uint32_t flags,
                                            int32_t *tokens, size_t cap, size_t *n_out) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        EUROLLM_CHECK_ARG(n_out, "n_out is NULL");
        *n_out = 0;
        const std::string_view t = text_arg(text, text_len, "text");
        if (flags & ~7u) fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown tokenize flags 0x", std::hex, flags);
        const auto &tok = m.require_tokenizer();
        bool add_bos = (flags & EUROLLM_TOKENIZE_ADD_BOS) != 0;
        bool special = (flags & EUROLLM_TOKENIZE_PARSE_SPECIAL) != 0;
        if (flags & EUROLLM_TOKENIZE_MODEL_DEFAULT) {
            add_bos = add_bos || tok.add_bos_default();
            special = true;
        }
        const std::vector<int32_t> ids = tok.encode(t, add_bos, special);
        return copy_out(ids.data(), ids.size(), tokens, cap, n_out, "tokens");
    });
}

EUROLLM_API eurollm_status eurollm_detokenize(const eurollm_model *model, const int32_t *tokens, size_t n_tokens,
                                              char *text, size_t cap, size_t *len_out) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        EUROLLM_CHECK_ARG(tokens || n_tokens == 0, "tokens is NULL");
        return copy_text(m.require_tokenizer().decode(tokens, n_tokens), text, cap, len_out, "text");
    });
}

EUROLLM_API eurollm_status eurollm_token_to_piece(const eurollm_model *model, int32_t token, char *piece, size_t cap,
                                                  size_t *len_out) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        return copy_text(m.require_tokenizer().piece(token), piece, cap, len_out, "piece");
    });
}

// ---- context ----

EUROLLM_API eurollm_status eurollm_context_params_init(eurollm_context_params *params, uint32_t version) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(params, "params is NULL");
        check_version(version, EUROLLM_CONTEXT_PARAMS_VERSION, "eurollm_context_params");
        std::memset(params, 0, context_params_size(version));
        params->version = version;
        params->n_ctx = 0;
        params->n_batch = 512;
        params->n_threads = 0;
        params->seed = 0;
        if (version >= 2) params->precision = EUROLLM_PRECISION_EXACT;
        if (version >= 3) params->kv_type = EUROLLM_WEIGHT_F32;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_init(eurollm_model *model, const eurollm_context_params *params,
                                                eurollm_context **out) {
    return guarded([&] {
        require_out(out, "out");
        const eurollm_context_params p = params_or_default(
            params, EUROLLM_CONTEXT_PARAMS_VERSION, context_params_size, eurollm_context_params_init,
            "eurollm_context_params");
        eurollm::context_options o;
        o.n_ctx = p.n_ctx;
        o.n_batch = p.n_batch;
        o.n_threads = p.n_threads;
        o.seed = p.seed;
        o.precision = precision_arg(p.precision);
        o.kv_type = kv_type_arg(p.kv_type);
        std::lock_guard<std::mutex> lock(lifecycle_mutex());
        eurollm_model *m = checked(model, "model");
        o.device = m->device;
        auto handle = std::make_unique<eurollm_context>();
        handle->owner = m;
        handle->impl = std::make_unique<eurollm::context>(*m->impl, o);
        ++m->children;
        *out = handle.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API void eurollm_context_free(eurollm_context *ctx) {
    if (!ctx) return;
    std::lock_guard<std::mutex> lock(lifecycle_mutex());
    if (!registry().contains(ctx)) return;
    registry().remove(ctx);
    if (ctx->children > 0) {
        ctx->free_requested = true;
        eurollm::log(EUROLLM_LOG_WARN, "eurollm_context_free: a generator still uses the context; it is released with it");
        return;
    }
    destroy_context_locked(ctx);
}

EUROLLM_API uint32_t eurollm_context_n_ctx(const eurollm_context *ctx) {
    uint32_t n = 0;
    guarded([&] {
        n = static_cast<uint32_t>(checked(ctx, "ctx")->impl->n_ctx());
        return EUROLLM_OK;
    });
    return n;
}

EUROLLM_API uint32_t eurollm_context_n_past(const eurollm_context *ctx) {
    uint32_t n = 0;
    guarded([&] {
        n = static_cast<uint32_t>(checked(ctx, "ctx")->impl->n_past());
        return EUROLLM_OK;
    });
    return n;
}

EUROLLM_API eurollm_status eurollm_context_reset(eurollm_context *ctx) {
    return guarded([&] {
        checked(ctx, "ctx")->impl->reset();
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_decode(eurollm_context *ctx, const int32_t *tokens, size_t n_tokens,
                                                  const float **logits) {
    return guarded([&] {
        if (logits) *logits = nullptr;
        const float *l = checked(ctx, "ctx")->impl->decode(tokens, n_tokens);
        if (logits) *logits = l;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_decode_all(eurollm_context *ctx, const int32_t *tokens, size_t n_tokens,
                                                      float *logits, size_t cap) {
    return guarded([&] {
        auto &c = *checked(ctx, "ctx")->impl;
        const size_t need = n_tokens * static_cast<size_t>(c.get_model().hp.n_vocab);
        EUROLLM_CHECK_ARG(logits, "logits is NULL");
        if (cap < need)
            fail(EUROLLM_ERR_BUFFER_TOO_SMALL, "logits buffer holds ", cap, " floats but ", need, " are needed");
        c.decode(tokens, n_tokens, logits);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_seq_n_past(const eurollm_context *ctx, int32_t seq, uint32_t *n_past) {
    return guarded([&] {
        const auto &c = *checked(ctx, "ctx")->impl;
        EUROLLM_CHECK_ARG(n_past, "n_past is NULL");
        *n_past = static_cast<uint32_t>(c.n_past(seq));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_seq_remove(eurollm_context *ctx, int32_t seq, uint32_t p0) {
    return guarded([&] {
        checked(ctx, "ctx")->impl->seq_remove(seq, static_cast<int32_t>(std::min<uint32_t>(p0, INT32_MAX)));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_seq_copy(eurollm_context *ctx, int32_t src, int32_t dst, int32_t n) {
    return guarded([&] {
        checked(ctx, "ctx")->impl->seq_copy(src, dst, n);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_seq_keep(eurollm_context *ctx, int32_t seq) {
    return guarded([&] {
        checked(ctx, "ctx")->impl->seq_keep(seq);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_decode_seqs(eurollm_context *ctx, const int32_t *seq_ids,
                                                       const int32_t *const *tokens, const size_t *n_tokens,
                                                       size_t n_seqs) {
    return guarded([&] {
        auto &c = *checked(ctx, "ctx")->impl;
        EUROLLM_CHECK_ARG(n_seqs == 0 || (seq_ids && tokens && n_tokens), "seq_ids, tokens and n_tokens must not be NULL");
        std::vector<eurollm::context::decode_item> items(n_seqs);
        for (size_t i = 0; i < n_seqs; ++i) items[i] = {seq_ids[i], tokens[i], n_tokens[i]};
        c.decode_batch(items.data(), items.size());
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_seq_logits(eurollm_context *ctx, int32_t seq, const float **logits) {
    return guarded([&] {
        auto &c = *checked(ctx, "ctx")->impl;
        EUROLLM_CHECK_ARG(logits, "logits is NULL");
        *logits = c.last_logits(seq);
        if (!*logits) fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequence ", seq, " has no evaluated token");
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_state_save(const eurollm_context *ctx, void *buf, size_t cap,
                                                      size_t *size_out) {
    return guarded([&] {
        const auto &c = *checked(ctx, "ctx")->impl;
        const std::vector<uint8_t> blob = c.save_state();
        return copy_out(blob.data(), blob.size(), static_cast<uint8_t *>(buf), cap, size_out, "state");
    });
}

EUROLLM_API eurollm_status eurollm_context_state_load(eurollm_context *ctx, const void *buf, size_t size) {
    return guarded([&] {
        checked(ctx, "ctx")->impl->load_state(static_cast<const uint8_t *>(buf), size);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_state_save_file(const eurollm_context *ctx, const char *path) {
    return guarded([&] {
        const auto &c = *checked(ctx, "ctx")->impl;
        EUROLLM_CHECK_ARG(path && *path, "path is NULL or empty");
        eurollm::write_file_atomic(path, c.save_state());
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_state_load_file(eurollm_context *ctx, const char *path) {
    return guarded([&] {
        auto &c = *checked(ctx, "ctx")->impl;
        EUROLLM_CHECK_ARG(path && *path, "path is NULL or empty");
        eurollm::mapped_file f(path, false);
        c.load_state(f.data(), f.size());
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_context_set_abort(eurollm_context *ctx, eurollm_abort_cb cb, void *user_data) {
    return guarded([&] {
        eurollm_context *c = checked(ctx, "ctx");
        c->abort_cb = cb;
        c->abort_data = user_data;
        c->impl->set_abort(cb ? abort_trampoline : nullptr, c);
        return EUROLLM_OK;
    });
}

// ---- generator ----

EUROLLM_API eurollm_status eurollm_generator_params_init(eurollm_generator_params *params, uint32_t version) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(params, "params is NULL");
        check_version(version, EUROLLM_GENERATOR_PARAMS_VERSION, "eurollm_generator_params");
        std::memset(params, 0, generator_params_size(version));
        const eurollm::sampler_params d;
        params->version = version;
        params->max_tokens = 256;
        params->temperature = d.temperature;
        params->top_k = d.top_k;
        params->top_p = d.top_p;
        params->min_p = d.min_p;
        params->repetition_penalty = d.repetition_penalty;
        params->frequency_penalty = d.frequency_penalty;
        params->presence_penalty = d.presence_penalty;
        params->penalty_last_n = d.penalty_last_n;
        params->seed = 0;
        params->ignore_eos = false;
        if (version >= 2) params->seq_id = 0;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_init(eurollm_context *ctx, const eurollm_generator_params *params,
                                                  eurollm_generator **out) {
    return guarded([&] {
        require_out(out, "out");
        const eurollm_generator_params p = generator_params_or_default(params);
        std::lock_guard<std::mutex> lock(lifecycle_mutex());
        eurollm_context *c = checked(ctx, "ctx");
        const eurollm::generator_options o = options_for_free_sequence(c, p);
        auto handle = std::make_unique<eurollm_generator>();
        handle->owner = c;
        handle->impl = std::make_unique<eurollm::generator>(*c->impl, o);
        claim_sequence_locked(c, p.seq_id);
        *out = handle.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API void eurollm_generator_free(eurollm_generator *gen) {
    if (!gen) return;
    std::lock_guard<std::mutex> lock(lifecycle_mutex());
    if (!registry().contains(gen)) return;
    registry().remove(gen);
    eurollm_context *c = gen->owner;
    const int32_t seq = gen->impl->seq();
    delete gen;
    release_sequence_locked(c, seq);
}

EUROLLM_API eurollm_status eurollm_generator_add_stop_token(eurollm_generator *gen, int32_t token) {
    return guarded([&] {
        checked(gen, "gen")->impl->add_stop_token(token);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_add_stop_string(eurollm_generator *gen, const char *text, size_t text_len) {
    return guarded([&] {
        auto &g = *checked(gen, "gen")->impl;
        g.add_stop_string(std::string(text_arg(text, text_len, "text")));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_set_callback(eurollm_generator *gen, eurollm_token_cb cb, void *user_data) {
    return guarded([&] {
        auto &g = *checked(gen, "gen")->impl;
        if (!cb) {
            g.set_callback(nullptr);
        } else {
            g.set_callback([cb, user_data](int32_t token, const std::string &text) {
                return cb(token, text.c_str(), text.size(), user_data);
            });
        }
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_append_tokens(eurollm_generator *gen, const int32_t *tokens, size_t n_tokens) {
    return guarded([&] {
        checked(gen, "gen")->impl->append(tokens, n_tokens);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_step(eurollm_generator *gen, int32_t *token) {
    if (token) *token = -1;
    return guarded([&] { return checked(gen, "gen")->impl->step(token); });
}

EUROLLM_API eurollm_status eurollm_generator_text_delta(const eurollm_generator *gen, const char **text, size_t *len) {
    return guarded([&] {
        const auto &g = *checked(gen, "gen")->impl;
        EUROLLM_CHECK_ARG(text && len, "text and len must not be NULL");
        *text = g.text_delta().c_str();
        *len = g.text_delta().size();
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_logits(eurollm_generator *gen, const float **logits, size_t *n_vocab) {
    return guarded([&] {
        auto &g = *checked(gen, "gen")->impl;
        EUROLLM_CHECK_ARG(logits, "logits is NULL");
        *logits = g.logits();
        if (n_vocab) *n_vocab = static_cast<size_t>(gen->owner->owner->impl->hp.n_vocab);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_generator_step_batch(eurollm_generator *const *gens, size_t n, int32_t *tokens,
                                                        eurollm_status *statuses) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(n == 0 || (gens && tokens && statuses), "gens, tokens and statuses must not be NULL");
        std::vector<eurollm::generator *> impls(n);
        for (size_t i = 0; i < n; ++i) impls[i] = checked(gens[i], "gens[i]")->impl.get();
        eurollm::generator::step_batch(impls.data(), n, tokens, statuses);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_stop_reason eurollm_generator_stop_reason(const eurollm_generator *gen) {
    eurollm_stop_reason r = EUROLLM_STOP_NONE;
    guarded([&] {
        r = checked(gen, "gen")->impl->stop_reason();
        return EUROLLM_OK;
    });
    return r;
}

EUROLLM_API size_t eurollm_generator_n_generated(const eurollm_generator *gen) {
    size_t n = 0;
    guarded([&] {
        n = checked(gen, "gen")->impl->n_generated();
        return EUROLLM_OK;
    });
    return n;
}

EUROLLM_API eurollm_status eurollm_generate_text(eurollm_context *ctx, const char *prompt, size_t prompt_len,
                                                 const eurollm_generator_params *params, char *text, size_t cap,
                                                 size_t *len_out) {
    return guarded([&] {
        eurollm_context *c = checked(ctx, "ctx");
        EUROLLM_CHECK_ARG(len_out, "len_out is NULL");
        const std::string_view p = text_arg(prompt, prompt_len, "prompt");
        const eurollm_generator_params gp = generator_params_or_default(params);
        {
            std::lock_guard<std::mutex> lock(lifecycle_mutex());
            if (c->gen_seqs & 1u) fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequence 0 already has a generator; free it first");
        }
        const auto &m = *c->owner->impl;
        const auto &tok = m.require_tokenizer();
        std::vector<int32_t> ids = tok.encode(p, tok.add_bos_default(), true);
        if (ids.empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "the prompt is empty and the model has no BOS token");
        eurollm::generator_options o;
        o.sampling = to_sampler(gp, c->impl->seed());
        o.max_tokens = gp.max_tokens;
        o.ignore_eos = gp.ignore_eos;
        eurollm::generator g(*c->impl, o);
        g.append(ids.data(), ids.size());
        std::string out;
        int32_t t;
        while (g.step(&t) == EUROLLM_OK) out += g.text_delta();
        out += g.text_delta();  // text released when generation finished
        return copy_text(out, text, cap, len_out, "text");
    });
}

// ---- chat ----

struct eurollm_chat {
    eurollm_context *owner = nullptr;
    std::unique_ptr<eurollm::chat::conversation> impl;
    int32_t seq = 0;
};

namespace {

nlohmann::ordered_json parse_json_arg(const char *text, const char *what) {
    try {
        return nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::exception &e) {
        fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " is not valid JSON: ", e.what());
    }
}

}  // namespace

EUROLLM_API eurollm_status eurollm_chat_apply_template(const eurollm_model *model, const char *template_source,
                                                       const char *messages_json, const char *extra_json,
                                                       bool add_generation_prompt, char *text, size_t cap,
                                                       size_t *len_out) {
    return guarded([&] {
        const auto &m = *checked(model, "model")->impl;
        EUROLLM_CHECK_ARG(messages_json, "messages_json is NULL");
        EUROLLM_CHECK_ARG(len_out, "len_out is NULL");
        const auto messages = parse_json_arg(messages_json, "messages_json");
        const auto extra = extra_json ? parse_json_arg(extra_json, "extra_json") : nlohmann::ordered_json::object();
        if (!extra.is_object()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "extra_json must be a JSON object");
        const std::string prompt = eurollm::chat::apply_template(m, template_source ? template_source : "", messages,
                                                                 add_generation_prompt, extra);
        return copy_text(prompt, text, cap, len_out, "text");
    });
}

EUROLLM_API eurollm_status eurollm_chat_init(eurollm_context *ctx, const eurollm_generator_params *params,
                                             eurollm_chat **out) {
    return guarded([&] {
        require_out(out, "out");
        const eurollm_generator_params p = generator_params_or_default(params);
        std::lock_guard<std::mutex> lock(lifecycle_mutex());
        eurollm_context *c = checked(ctx, "ctx");
        const eurollm::generator_options o = options_for_free_sequence(c, p);
        auto handle = std::make_unique<eurollm_chat>();
        handle->owner = c;
        handle->seq = p.seq_id;
        handle->impl = std::make_unique<eurollm::chat::conversation>(*c->impl, o);
        claim_sequence_locked(c, p.seq_id);
        *out = handle.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API void eurollm_chat_free(eurollm_chat *chat) {
    if (!chat) return;
    std::lock_guard<std::mutex> lock(lifecycle_mutex());
    if (!registry().contains(chat)) return;
    registry().remove(chat);
    eurollm_context *c = chat->owner;
    const int32_t seq = chat->seq;
    delete chat;
    release_sequence_locked(c, seq);
}

EUROLLM_API eurollm_status eurollm_chat_add_message(eurollm_chat *chat, const char *role, const char *content) {
    return guarded([&] {
        auto &conv = *checked(chat, "chat")->impl;
        EUROLLM_CHECK_ARG(role && content, "role and content must not be NULL");
        if (eurollm::utf8_first_invalid(content) != std::string::npos || eurollm::utf8_first_invalid(role) != std::string::npos)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "chat message is not valid UTF-8");
        conv.add_message(role, content);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_chat_respond(eurollm_chat *chat, eurollm_token_cb cb, void *user_data, char *text,
                                                size_t cap, size_t *len_out) {
    return guarded([&] {
        auto &conv = *checked(chat, "chat")->impl;
        EUROLLM_CHECK_ARG(len_out, "len_out is NULL");
        const std::string reply = conv.respond([&](const std::string &piece) {
            return cb ? cb(-1, piece.c_str(), piece.size(), user_data) : true;
        });
        return copy_text(reply, text, cap, len_out, "text");
    });
}

EUROLLM_API eurollm_status eurollm_chat_n_evaluated(const eurollm_chat *chat, uint64_t *n) {
    return guarded([&] {
        const auto &conv = *checked(chat, "chat")->impl;
        EUROLLM_CHECK_ARG(n, "n is NULL");
        *n = conv.n_evaluated();
        return EUROLLM_OK;
    });
}

// ---- embeddings ----

EUROLLM_API eurollm_status eurollm_embed_params_init(eurollm_embed_params *params, uint32_t version) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(params, "params is NULL");
        check_version(version, EUROLLM_EMBED_PARAMS_VERSION, "eurollm_embed_params");
        std::memset(params, 0, sizeof *params);
        params->version = version;
        params->pooling = EUROLLM_POOLING_MEAN;
        params->normalize = false;
        params->dim = 0;
        params->tokenize_flags = EUROLLM_TOKENIZE_MODEL_DEFAULT;
        return EUROLLM_OK;
    });
}

namespace {

eurollm_status embed_lists(eurollm_context *ctx, const std::vector<std::vector<int32_t>> &lists,
                           const eurollm_embed_params &p, float *out, size_t cap, size_t *n_rows_out, size_t *dim_out) {
    auto &c = *ctx->impl;
    const int pooling = enum_value(p.pooling);
    if (pooling < EUROLLM_POOLING_MEAN || pooling > EUROLLM_POOLING_NONE)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown pooling ", pooling);
    eurollm::embed_options o;
    o.pool = static_cast<eurollm::pooling>(pooling);
    o.normalize = p.normalize;
    o.dim = p.dim;
    const int64_t width = c.get_model().hp.n_embd;
    std::vector<size_t> lengths;
    for (const auto &l : lists) lengths.push_back(l.size());
    const size_t rows = eurollm::pooled_rows(lengths, o.pool);
    const auto dim = static_cast<size_t>(eurollm::pooled_dim(width, o));
    *n_rows_out = rows;
    *dim_out = dim;
    if (cap < rows * dim || (!out && rows * dim > 0)) {
        eurollm::capi::set_last_error("embeddings need " + std::to_string(rows * dim) + " floats but the buffer holds " +
                                      std::to_string(cap));
        return EUROLLM_ERR_BUFFER_TOO_SMALL;
    }
    std::vector<float> hidden;
    c.hidden_states(lists, hidden);
    eurollm::pool_embeddings(hidden.data(), lengths, width, o, out);
    return EUROLLM_OK;
}

eurollm_embed_params embed_params_or_default(const eurollm_embed_params *params) {
    eurollm_embed_params p;
    eurollm_embed_params_init(&p, EUROLLM_EMBED_PARAMS_VERSION);
    if (params) {
        check_version(params->version, EUROLLM_EMBED_PARAMS_VERSION, "eurollm_embed_params");
        p = *params;
    }
    return p;
}

}  // namespace

EUROLLM_API eurollm_status eurollm_embed_texts(eurollm_context *ctx, const char *const *texts, const size_t *text_lens,
                                               size_t n, const eurollm_embed_params *params, float *out, size_t cap,
                                               size_t *n_rows_out, size_t *dim_out) {
    return guarded([&] {
        eurollm_context *c = checked(ctx, "ctx");
        EUROLLM_CHECK_ARG(n_rows_out && dim_out, "n_rows_out and dim_out must not be NULL");
        EUROLLM_CHECK_ARG(n == 0 || texts, "texts is NULL");
        const eurollm_embed_params p = embed_params_or_default(params);
        const auto &tok = c->owner->impl->require_tokenizer();
        if (p.tokenize_flags & ~7u) fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown tokenize flags");
        const bool model_default = (p.tokenize_flags & EUROLLM_TOKENIZE_MODEL_DEFAULT) != 0;
        const bool add_bos = (p.tokenize_flags & EUROLLM_TOKENIZE_ADD_BOS) || (model_default && tok.add_bos_default());
        const bool special = (p.tokenize_flags & EUROLLM_TOKENIZE_PARSE_SPECIAL) || model_default;
        std::vector<std::vector<int32_t>> lists(n);
        for (size_t i = 0; i < n; ++i) {
            if (!texts[i]) fail(EUROLLM_ERR_INVALID_ARGUMENT, "texts[", i, "] is NULL");
            const size_t len = text_lens ? text_lens[i] : std::strlen(texts[i]);
            lists[i] = tok.encode(std::string_view(texts[i], len), add_bos, special);
            if (lists[i].empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "text ", i, " has no tokens (empty and no BOS)");
        }
        return embed_lists(c, lists, p, out, cap, n_rows_out, dim_out);
    });
}

EUROLLM_API eurollm_status eurollm_embed_tokens(eurollm_context *ctx, const int32_t *const *tokens,
                                                const size_t *n_tokens, size_t n, const eurollm_embed_params *params,
                                                float *out, size_t cap, size_t *n_rows_out, size_t *dim_out) {
    return guarded([&] {
        eurollm_context *c = checked(ctx, "ctx");
        EUROLLM_CHECK_ARG(n_rows_out && dim_out, "n_rows_out and dim_out must not be NULL");
        EUROLLM_CHECK_ARG(n == 0 || (tokens && n_tokens), "tokens and n_tokens must not be NULL");
        const eurollm_embed_params p = embed_params_or_default(params);
        std::vector<std::vector<int32_t>> lists(n);
        for (size_t i = 0; i < n; ++i) {
            if (!tokens[i] && n_tokens[i] > 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tokens[", i, "] is NULL");
            lists[i].assign(tokens[i], tokens[i] + n_tokens[i]);
        }
        return embed_lists(c, lists, p, out, cap, n_rows_out, dim_out);
    });
}

EUROLLM_API eurollm_status eurollm_cosine_similarity(const float *a, const float *b, size_t dim, float *out) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(out, "out is NULL");
        EUROLLM_CHECK_ARG(dim == 0 || (a && b), "a and b must not be NULL");
        *out = eurollm::cosine_similarity(a, b, dim);
        return EUROLLM_OK;
    });
}

}  // extern "C"
