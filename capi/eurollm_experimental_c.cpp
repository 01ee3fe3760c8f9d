// The extern "C" definitions of eurollm_experimental.h (training), behind the same firewall as
// eurollm_c.cpp: handles are checked against the registry, everything runs inside capi::guarded.
#define EUROLLM_EXPERIMENTAL
#include "eurollm_experimental.h"

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <unistd.h>

#include "api_guard.h"
#include "core/error.h"
#include "handles.h"
#include "train/data.h"
#include "train/file_io.h"
#include "train/trainer.h"

using eurollm::fail;
using eurollm::capi::check_version;
using eurollm::capi::guarded;
using eurollm::capi::params_or_default;
using eurollm::capi::registry;

struct eurollm_dataset {
    eurollm::train::dataset impl;
};

struct eurollm_trainer {
    eurollm_model *owner = nullptr;
    std::unique_ptr<eurollm::train::trainer> impl;
    eurollm_train_progress_cb progress = nullptr;
    void *progress_data = nullptr;
};

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

// The bytes of eurollm_trainer_params that a caller of `version` allocated.
size_t trainer_params_size(uint32_t version) {
    return version >= 2 ? sizeof(eurollm_trainer_params) : offsetof(eurollm_trainer_params, precision);
}

const char *path_arg(const char *p, const char *what) {
    if (!p || !*p) fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " is NULL or empty");
    return p;
}

void check_batch(const int32_t *tokens, const int32_t *labels, size_t n_seqs, size_t seq_len) {
    EUROLLM_CHECK_ARG(tokens, "tokens is NULL");
    EUROLLM_CHECK_ARG(labels, "labels is NULL");
    if (n_seqs == 0 || seq_len < 2) fail(EUROLLM_ERR_INVALID_ARGUMENT, "a batch needs n_seqs >= 1 and seq_len >= 2");
    if (n_seqs > (size_t{1} << 20) || seq_len > (size_t{1} << 24))
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "batch shape ", n_seqs, " x ", seq_len, " is too large");
}

eurollm::train::trainer &impl(eurollm_trainer *t) { return *checked(t, "trainer")->impl; }
const eurollm::train::trainer &impl(const eurollm_trainer *t) { return *checked(t, "trainer")->impl; }

const eurollm::train::param *find_param(const eurollm::train::trainer &t, const char *name) {
    EUROLLM_CHECK_ARG(name, "name is NULL");
    for (const auto &p : const_cast<eurollm::train::trainer &>(t).net().params())
        if (p->name == name) return p.get();
    fail(EUROLLM_ERR_INVALID_ARGUMENT, "no trainable tensor named '", name, "'");
}

}  // namespace

extern "C" {

EUROLLM_API eurollm_status eurollm_trainer_params_init(eurollm_trainer_params *params, uint32_t version) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(params, "params is NULL");
        check_version(version, EUROLLM_TRAINER_PARAMS_VERSION, "eurollm_trainer_params");
        std::memset(params, 0, trainer_params_size(version));
        const eurollm::train::trainer_options d;
        params->version = version;
        params->mode = EUROLLM_TRAIN_LORA;
        params->lora_rank = static_cast<int32_t>(d.model.lora_rank);
        params->lora_alpha = d.model.lora_alpha;
        params->lora_dropout = d.model.lora_dropout;
        params->lora_targets = d.model.lora_targets;
        params->lr = d.lr;
        params->beta1 = d.beta1;
        params->beta2 = d.beta2;
        params->eps = d.eps;
        params->weight_decay = d.weight_decay;
        params->schedule = EUROLLM_SCHEDULE_COSINE;
        params->warmup_steps = 0;
        params->total_steps = 0;
        params->min_lr_ratio = d.min_lr_ratio;
        params->micro_batch = 0;
        params->max_grad_norm = d.max_grad_norm;
        params->seed = 0;
        params->n_threads = 0;
        if (version >= 2) params->precision = EUROLLM_PRECISION_EXACT;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_create(eurollm_model *model, const eurollm_trainer_params *params,
                                                  eurollm_trainer **out) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(out, "out is NULL");
        *out = nullptr;
        eurollm_trainer_params p = params_or_default(params, EUROLLM_TRAINER_PARAMS_VERSION, trainer_params_size,
                                                     eurollm_trainer_params_init, "eurollm_trainer_params");
        const int mode = eurollm::capi::enum_value(p.mode), schedule = eurollm::capi::enum_value(p.schedule),
                  precision = eurollm::capi::enum_value(p.precision);
        if (mode != EUROLLM_TRAIN_FULL && mode != EUROLLM_TRAIN_LORA)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown training mode ", mode);
        if (schedule != EUROLLM_SCHEDULE_COSINE && schedule != EUROLLM_SCHEDULE_LINEAR &&
            schedule != EUROLLM_SCHEDULE_CONSTANT)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown schedule ", schedule);
        if (p.n_threads < 0 || p.n_threads > 1024) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_threads is out of range");
        if (precision != EUROLLM_PRECISION_EXACT && precision != EUROLLM_PRECISION_BF16)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown precision ", precision);
        eurollm::train::trainer_options o;
        o.model.lora = p.mode == EUROLLM_TRAIN_LORA;
        o.model.lora_rank = p.lora_rank;
        o.model.lora_alpha = p.lora_alpha;
        o.model.lora_dropout = p.lora_dropout;
        o.model.lora_targets = p.lora_targets;
        o.model.n_threads = p.n_threads;
        o.model.compute = p.precision == EUROLLM_PRECISION_BF16 ? eurollm::train::precision::bf16
                                                                 : eurollm::train::precision::exact;
        o.model.seed = p.seed;
        o.lr = p.lr;
        o.beta1 = p.beta1;
        o.beta2 = p.beta2;
        o.eps = p.eps;
        o.weight_decay = p.weight_decay;
        o.schedule = p.schedule == EUROLLM_SCHEDULE_LINEAR     ? eurollm::train::schedule_kind::linear
                     : p.schedule == EUROLLM_SCHEDULE_CONSTANT ? eurollm::train::schedule_kind::constant
                                                               : eurollm::train::schedule_kind::cosine;
        o.warmup_steps = p.warmup_steps;
        o.total_steps = p.total_steps;
        o.min_lr_ratio = p.min_lr_ratio;
        o.micro_batch = p.micro_batch;
        o.max_grad_norm = p.max_grad_norm;
        o.seed = p.seed;
        std::lock_guard<std::mutex> lock(lifecycle_mutex());
        eurollm_model *m = checked(model, "model");
        auto handle = std::make_unique<eurollm_trainer>();
        handle->owner = m;
        handle->impl = std::make_unique<eurollm::train::trainer>(*m->impl, o);
        ++m->children;
        *out = handle.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API void eurollm_trainer_free(eurollm_trainer *trainer) {
    if (!trainer) return;
    std::lock_guard<std::mutex> lock(lifecycle_mutex());
    if (!registry().contains(trainer)) return;
    registry().remove(trainer);
    eurollm_model *owner = trainer->owner;
    delete trainer;
    release_model_child_locked(owner);
}

EUROLLM_API eurollm_status eurollm_trainer_set_progress(eurollm_trainer *trainer, eurollm_train_progress_cb cb,
                                                        void *user_data) {
    return guarded([&] {
        eurollm_trainer *t = checked(trainer, "trainer");
        t->progress = cb;
        t->progress_data = user_data;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_step(eurollm_trainer *trainer, const int32_t *tokens,
                                                const int32_t *labels, size_t n_seqs, size_t seq_len,
                                                eurollm_train_result *result) {
    if (result) std::memset(result, 0, sizeof *result);
    return guarded([&] {
        eurollm_trainer *t = checked(trainer, "trainer");
        check_batch(tokens, labels, n_seqs, seq_len);
        const auto r = t->impl->step(tokens, labels, static_cast<int64_t>(n_seqs), static_cast<int64_t>(seq_len));
        eurollm_train_result c{};
        c.loss = static_cast<float>(r.loss);
        c.grad_norm = static_cast<float>(r.grad_norm);
        c.lr = r.lr;
        c.tokens = r.tokens;
        c.loss_tokens = r.loss_tokens;
        c.step = r.step;
        if (result) *result = c;
        if (t->progress && !t->progress(&c, t->progress_data)) {
            eurollm::capi::set_last_error("the progress callback asked to stop (the step was taken)");
            return EUROLLM_ERR_ABORTED;
        }
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_eval(eurollm_trainer *trainer, const int32_t *tokens,
                                                const int32_t *labels, size_t n_seqs, size_t seq_len, float *loss,
                                                int64_t *loss_tokens) {
    return guarded([&] {
        auto &t = impl(trainer);
        EUROLLM_CHECK_ARG(loss, "loss is NULL");
        check_batch(tokens, labels, n_seqs, seq_len);
        int64_t n = 0;
        *loss = static_cast<float>(t.eval(tokens, labels, static_cast<int64_t>(n_seqs), static_cast<int64_t>(seq_len), &n));
        if (loss_tokens) *loss_tokens = n;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_compute_gradients(eurollm_trainer *trainer, const int32_t *tokens,
                                                             const int32_t *labels, size_t n_seqs, size_t seq_len,
                                                             float *loss) {
    return guarded([&] {
        auto &t = impl(trainer);
        check_batch(tokens, labels, n_seqs, seq_len);
        const double l = t.compute_gradients(tokens, labels, static_cast<int64_t>(n_seqs), static_cast<int64_t>(seq_len));
        if (loss) *loss = static_cast<float>(l);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_logits(eurollm_trainer *trainer, const int32_t *tokens, size_t n,
                                                  float *out, size_t cap) {
    return guarded([&] {
        auto &t = impl(trainer);
        EUROLLM_CHECK_ARG(tokens && n > 0, "tokens is NULL or empty");
        EUROLLM_CHECK_ARG(out, "out is NULL");
        const size_t need = n * static_cast<size_t>(t.net().base().hp.n_vocab);
        if (cap < need) fail(EUROLLM_ERR_BUFFER_TOO_SMALL, "out holds ", cap, " floats but ", need, " are needed");
        t.net().logits(tokens, 1, static_cast<int64_t>(n), out);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_n_tensors(const eurollm_trainer *trainer, size_t *n_tensors,
                                                     int64_t *n_elements) {
    return guarded([&] {
        const auto &t = impl(trainer);
        auto &params = const_cast<eurollm::train::trainer &>(t).net().params();
        if (n_tensors) *n_tensors = params.size();
        if (n_elements) {
            int64_t n = 0;
            for (const auto &p : params) n += p->size();
            *n_elements = n;
        }
        return EUROLLM_OK;
    });
}

EUROLLM_API const char *eurollm_trainer_tensor_name(const eurollm_trainer *trainer, size_t i) {
    const char *name = nullptr;
    guarded([&] {
        const auto &t = impl(trainer);
        auto &params = const_cast<eurollm::train::trainer &>(t).net().params();
        if (i >= params.size()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tensor index ", i, " is out of range");
        name = params[i]->name.c_str();
        return EUROLLM_OK;
    });
    return name;
}

EUROLLM_API eurollm_status eurollm_trainer_get_tensor(const eurollm_trainer *trainer, const char *name,
                                                      eurollm_tensor_part part, float *out, size_t cap,
                                                      size_t *n_out) {
    return guarded([&] {
        const auto *p = find_param(impl(trainer), name);
        EUROLLM_CHECK_ARG(n_out, "n_out is NULL");
        const std::vector<float> *src = nullptr;
        switch (part) {
            case EUROLLM_TENSOR_VALUE: src = &p->w; break;
            case EUROLLM_TENSOR_GRAD: src = &p->g; break;
            case EUROLLM_TENSOR_EXP_AVG: src = &p->m; break;
            case EUROLLM_TENSOR_EXP_AVG_SQ: src = &p->v; break;
            default: fail(EUROLLM_ERR_INVALID_ARGUMENT, "unknown tensor part ", static_cast<int>(part));
        }
        *n_out = src->size();
        if (cap < src->size() || !out) {
            eurollm::capi::set_last_error(std::string("tensor '") + name + "' has " + std::to_string(src->size()) +
                                          " elements; the buffer holds " + std::to_string(cap));
            return EUROLLM_ERR_BUFFER_TOO_SMALL;
        }
        std::memcpy(out, src->data(), src->size() * sizeof(float));
        return EUROLLM_OK;
    });
}

EUROLLM_API int64_t eurollm_trainer_step_count(const eurollm_trainer *trainer) {
    int64_t n = 0;
    guarded([&] {
        n = impl(trainer).step_count();
        return EUROLLM_OK;
    });
    return n;
}

EUROLLM_API eurollm_status eurollm_trainer_set_data_position(eurollm_trainer *trainer, uint64_t epoch,
                                                             uint64_t offset, uint64_t seed) {
    return guarded([&] {
        auto &d = impl(trainer).data();
        d.epoch = epoch;
        d.offset = offset;
        d.seed = seed;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_get_data_position(const eurollm_trainer *trainer, uint64_t *epoch,
                                                             uint64_t *offset, uint64_t *seed) {
    return guarded([&] {
        auto &d = const_cast<eurollm::train::trainer &>(impl(trainer)).data();
        if (epoch) *epoch = d.epoch;
        if (offset) *offset = d.offset;
        if (seed) *seed = d.seed;
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_save_checkpoint(eurollm_trainer *trainer, const char *dir) {
    return guarded([&] {
        impl(trainer).save_checkpoint(path_arg(dir, "dir"));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_load_checkpoint(eurollm_trainer *trainer, const char *dir) {
    return guarded([&] {
        impl(trainer).load_checkpoint(path_arg(dir, "dir"));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_export_peft(const eurollm_trainer *trainer, const char *dir) {
    return guarded([&] {
        impl(trainer).export_peft(path_arg(dir, "dir"));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_load_peft(eurollm_trainer *trainer, const char *dir) {
    return guarded([&] {
        impl(trainer).load_peft(path_arg(dir, "dir"));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_save_model(const eurollm_trainer *trainer, const char *dir) {
    return guarded([&] {
        impl(trainer).save_model(path_arg(dir, "dir"));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_adapter_merge(const char *base_dir, const char *adapter_dir, float scale,
                                                 const char *out_dir) {
    return guarded([&] {
        if (!std::isfinite(scale)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "scale must be finite");
        eurollm::train::merge_adapter(path_arg(base_dir, "base_dir"), path_arg(adapter_dir, "adapter_dir"), scale,
                                      path_arg(out_dir, "out_dir"));
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_model_load_with_adapter(const char *path, const char *adapter_dir, float scale,
                                                           const eurollm_model_params *params, eurollm_model **out) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(out, "out is NULL");
        *out = nullptr;
        if (!std::isfinite(scale)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "scale must be finite");
        path_arg(path, "path");
        path_arg(adapter_dir, "adapter_dir");
        if (params) check_version(params->version, EUROLLM_MODEL_PARAMS_VERSION, "eurollm_model_params");
        // Merge into a private temporary directory, load it (read into memory), remove it.
        const char *tmp_root = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp_root && *tmp_root ? tmp_root : "/tmp") + "/eurollm-merge-XXXXXX";
        if (!::mkdtemp(tmpl.data())) fail(EUROLLM_ERR_IO, tmpl, ": cannot create a temporary directory");
        std::unique_ptr<eurollm::model> m;
        try {
            eurollm::train::merge_adapter(path, adapter_dir, scale, tmpl);
            eurollm::model_load_options o;
            o.use_mmap = false;
            m = eurollm::load_model(tmpl, o);
        } catch (...) {
            eurollm::remove_tree(tmpl);
            throw;
        }
        eurollm::remove_tree(tmpl);
        m->path = path;
        auto handle = std::make_unique<eurollm_model>();
        handle->impl = std::move(m);
        *out = handle.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_dataset_load(const eurollm_model *model, const char *jsonl_path, size_t seq_len,
                                                eurollm_dataset **out) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(out, "out is NULL");
        *out = nullptr;
        const auto &m = *checked(model, "model")->impl;
        if (seq_len < 2 || seq_len > (size_t{1} << 24)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "seq_len is out of range");
        auto h = std::make_unique<eurollm_dataset>();
        h->impl = eurollm::train::load_jsonl(m, path_arg(jsonl_path, "jsonl_path"), static_cast<int64_t>(seq_len));
        *out = h.release();
        registry().add(*out);
        return EUROLLM_OK;
    });
}

EUROLLM_API void eurollm_dataset_free(eurollm_dataset *dataset) {
    if (!dataset || !registry().contains(dataset)) return;
    registry().remove(dataset);
    delete dataset;
}

EUROLLM_API size_t eurollm_dataset_n_sequences(const eurollm_dataset *dataset) {
    size_t n = 0;
    guarded([&] {
        n = static_cast<size_t>(checked(dataset, "dataset")->impl.n_seqs);
        return EUROLLM_OK;
    });
    return n;
}

EUROLLM_API eurollm_status eurollm_dataset_split(eurollm_dataset *dataset, size_t n, eurollm_dataset **heldout_out) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(heldout_out, "heldout_out is NULL");
        *heldout_out = nullptr;
        auto &d = checked(dataset, "dataset")->impl;
        auto h = std::make_unique<eurollm_dataset>();
        h->impl = d.split_tail(static_cast<int64_t>(n));
        *heldout_out = h.release();
        registry().add(*heldout_out);
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_dataset_get(const eurollm_dataset *dataset, uint64_t seed, uint64_t epoch,
                                               bool shuffle, size_t first, size_t n_seqs, int32_t *tokens,
                                               int32_t *labels) {
    return guarded([&] {
        const auto &d = checked(dataset, "dataset")->impl;
        EUROLLM_CHECK_ARG(tokens && labels, "tokens and labels must not be NULL");
        if (first > static_cast<size_t>(d.n_seqs) || n_seqs > static_cast<size_t>(d.n_seqs) - first)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "sequences [", first, ", ", first + n_seqs, ") are outside [0, ", d.n_seqs, ")");
        std::vector<int64_t> order;
        if (shuffle) order = d.order(seed, epoch);
        const size_t T = static_cast<size_t>(d.seq_len);
        for (size_t i = 0; i < n_seqs; ++i) {
            const size_t src = shuffle ? static_cast<size_t>(order[first + i]) : first + i;
            std::memcpy(tokens + i * T, d.tokens.data() + src * T, T * sizeof(int32_t));
            std::memcpy(labels + i * T, d.labels.data() + src * T, T * sizeof(int32_t));
        }
        return EUROLLM_OK;
    });
}

EUROLLM_API eurollm_status eurollm_trainer_params_from_checkpoint(const char *dir, eurollm_trainer_params *params) {
    return guarded([&] {
        EUROLLM_CHECK_ARG(params, "params is NULL");
        check_version(params->version, EUROLLM_TRAINER_PARAMS_VERSION, "eurollm_trainer_params");
        const auto mf = eurollm::train::read_latest_manifest(path_arg(dir, "dir"));
        params->mode = mf.mode == "lora" ? EUROLLM_TRAIN_LORA : EUROLLM_TRAIN_FULL;
        if (mf.mode == "lora") {
            params->lora_rank = static_cast<int32_t>(mf.lora_rank);
            params->lora_alpha = mf.lora_alpha;
            params->lora_dropout = mf.lora_dropout;
            params->lora_targets = mf.lora_targets;
        }
        params->lr = mf.lr;
        params->beta1 = mf.beta1;
        params->beta2 = mf.beta2;
        params->eps = mf.eps;
        params->weight_decay = mf.weight_decay;
        params->max_grad_norm = mf.max_grad_norm;
        params->micro_batch = static_cast<int32_t>(mf.micro_batch);
        params->seed = mf.seed;
        params->schedule = mf.schedule_kind == "linear"     ? EUROLLM_SCHEDULE_LINEAR
                           : mf.schedule_kind == "constant" ? EUROLLM_SCHEDULE_CONSTANT
                                                            : EUROLLM_SCHEDULE_COSINE;
        params->warmup_steps = static_cast<int32_t>(mf.warmup_steps);
        params->total_steps = static_cast<int32_t>(mf.total_steps);
        params->min_lr_ratio = mf.min_lr_ratio;
        if (params->version >= 2)
            params->precision = mf.precision == "bf16" ? EUROLLM_PRECISION_BF16 : EUROLLM_PRECISION_EXACT;
        return EUROLLM_OK;
    });
}

}  // extern "C"
