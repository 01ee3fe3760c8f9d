// Training checkpoints: ROOT/checkpoints/step-NNNNNNNN/{params,optimizer}.safetensors + manifest.pb.
//
// Crash safety: a checkpoint is written into step-N.tmp/ (each file temp + fsync + rename), the
// manifest last, then the directory is renamed to step-N and the parent fsync'ed, and only then
// does ROOT/checkpoints/latest name it. A crash at any point leaves the previous checkpoint whole;
// loading verifies the manifest's sizes and SHA-256 hashes and falls back to the newest valid one.
// The manifest's own SHA-256 is in manifest.sha256 beside it: a damaged manifest that still parses
// (a learning rate, an RNG state, a data offset changed) would otherwise resume a different run.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "model/safetensors.h"
#include "train/file_io.h"
#include "train/manifest.h"
#include "train/sha256.h"
#include "train/trainer.h"

namespace eurollm::train {
namespace {

const char *schedule_name(schedule_kind k) {
    switch (k) {
        case schedule_kind::linear: return "linear";
        case schedule_kind::constant: return "constant";
        default: return "cosine";
    }
}

const char *precision_name(precision p) { return p == precision::bf16 ? "bf16" : "exact"; }

std::string step_dir_name(int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
    return buf;
}

// step-00000025 -> 25; -1 if the name is not a checkpoint directory.
int64_t parse_step_dir(const std::string &name) {
    if (name.size() != 13 || name.compare(0, 5, "step-") != 0) return -1;
    int64_t v = 0;
    for (size_t i = 5; i < name.size(); ++i) {
        if (name[i] < '0' || name[i] > '9') return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

struct loaded_checkpoint {
    train::manifest manifest;
    std::map<std::string, std::vector<float>> values, m, v;
};

std::map<std::string, std::vector<float>> read_f32_tensors(const std::string &path, const std::string &suffix_strip,
                                                           std::map<std::string, std::vector<float>> *second,
                                                           const std::string &suffix2) {
    mapped_file f(path, false);
    std::map<std::string, std::vector<float>> out;
    for (const auto &kv : parse_safetensors(f)) {
        const safetensor &t = kv.second;
        if (t.dtype != "F32") fail(EUROLLM_ERR_BAD_MODEL, path, ": tensor '", t.name, "' is not F32");
        std::vector<float> data(t.nbytes / 4);
        std::memcpy(data.data(), t.data, t.nbytes);
        std::string name = t.name;
        auto ends = [&](const std::string &s) {
            return !s.empty() && name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
        };
        if (second && ends(suffix2)) {
            (*second)[name.substr(0, name.size() - suffix2.size())] = std::move(data);
        } else {
            if (ends(suffix_strip)) name = name.substr(0, name.size() - suffix_strip.size());
            out[name] = std::move(data);
        }
    }
    return out;
}

loaded_checkpoint read_checkpoint(const std::string &dir) {
    loaded_checkpoint c;
    const std::string mpath = dir + "/manifest.pb";
    if (!file_exists(mpath)) fail(EUROLLM_ERR_IO, mpath, ": missing");
    const std::string bytes = read_text_file(mpath);
    const std::string dpath = dir + "/manifest.sha256";
    if (file_exists(dpath)) {  // absent in checkpoints written before it existed
        std::string want = read_text_file(dpath);
        while (!want.empty() && (want.back() == '\n' || want.back() == ' ')) want.pop_back();
        if (want != sha256_of(bytes))
            fail(EUROLLM_ERR_BAD_MODEL, mpath, ": SHA-256 differs from manifest.sha256 (corrupt checkpoint)");
    }
    c.manifest = manifest::decode(bytes);
    if (c.manifest.format_version != 1)
        fail(EUROLLM_ERR_UNSUPPORTED, mpath, ": manifest format ", c.manifest.format_version, " is not supported");
    if (c.manifest.files.size() != 2) fail(EUROLLM_ERR_BAD_MODEL, mpath, ": the manifest must list 2 files");
    for (const auto &fe : c.manifest.files) {
        uint64_t size = 0;
        if (fe.name != "params.safetensors" && fe.name != "optimizer.safetensors")
            fail(EUROLLM_ERR_BAD_MODEL, mpath, ": unexpected file '", fe.name, "'");
        const std::string path = dir + "/" + fe.name;
        if (!file_exists(path)) fail(EUROLLM_ERR_IO, path, ": listed in the manifest but missing");
        const std::string h = sha256_file(path, &size);
        if (size != fe.size || h != fe.sha256)
            fail(EUROLLM_ERR_BAD_MODEL, path, ": size or SHA-256 differs from the manifest (corrupt checkpoint)");
    }
    c.values = read_f32_tensors(dir + "/params.safetensors", "", nullptr, "");
    c.m = read_f32_tensors(dir + "/optimizer.safetensors", ".exp_avg", &c.v, ".exp_avg_sq");
    return c;
}

}  // namespace

std::string trainer::save_checkpoint(const std::string &root, int keep_last) {
    const std::string ckdir = root + "/checkpoints";
    make_dirs(ckdir);
    const std::string name = step_dir_name(step_);
    const std::string final_dir = ckdir + "/" + name, tmp_dir = final_dir + ".tmp";
    remove_tree(tmp_dir);
    make_dirs(tmp_dir);

    std::vector<st_tensor> params, moments;
    for (const auto &p : net_.params()) {
        const size_t nb = static_cast<size_t>(p->size()) * 4;
        params.push_back({p->name, "F32", {p->rows, p->cols}, p->w.data(), nb});
        moments.push_back({p->name + ".exp_avg", "F32", {p->rows, p->cols}, p->m.data(), nb});
        moments.push_back({p->name + ".exp_avg_sq", "F32", {p->rows, p->cols}, p->v.data(), nb});
    }
    write_safetensors(tmp_dir + "/params.safetensors", params, {{"format", "pt"}}, "params");
    write_safetensors(tmp_dir + "/optimizer.safetensors", moments, {{"format", "pt"}}, "optimizer");

    manifest mf;
    mf.format_version = 1;
    mf.step = step_;
    mf.mode = o_.model.lora ? "lora" : "full";
    if (o_.model.lora) {
        mf.lora_rank = static_cast<uint32_t>(o_.model.lora_rank);
        mf.lora_alpha = o_.model.lora_alpha;
        mf.lora_dropout = o_.model.lora_dropout;
        mf.lora_targets = o_.model.lora_targets;
    }
    mf.lr = o_.lr;
    mf.beta1 = o_.beta1;
    mf.beta2 = o_.beta2;
    mf.eps = o_.eps;
    mf.weight_decay = o_.weight_decay;
    mf.max_grad_norm = o_.max_grad_norm;
    mf.micro_batch = o_.micro_batch;
    mf.seed = o_.seed;
    mf.precision = precision_name(o_.model.compute);
    mf.schedule_kind = schedule_name(o_.schedule);
    mf.warmup_steps = o_.warmup_steps;
    mf.total_steps = o_.total_steps;
    mf.min_lr_ratio = o_.min_lr_ratio;
    mf.rng_state = rng_.state();
    mf.data_epoch = data_.epoch;
    mf.data_offset = data_.offset;
    mf.data_seed = data_.seed;
    mf.base_model = m_.path;
    for (const auto &p : net_.params()) mf.n_trainable += p->size();
    mf.created_by = std::string("libeurollm ") + EUROLLM_VERSION_STRING;
    mf.tokens_seen = tokens_seen_;
    for (const char *f : {"params.safetensors", "optimizer.safetensors"}) {
        manifest::file_entry fe;
        fe.name = f;
        fe.sha256 = sha256_file(tmp_dir + "/" + f, &fe.size);
        mf.files.push_back(fe);
    }
    const std::string bytes = mf.encode();
    write_file_atomic(tmp_dir + "/manifest.pb", [&](const byte_sink &sink) { sink(bytes.data(), bytes.size()); },
                      "manifest");
    write_text_atomic(tmp_dir + "/manifest.sha256", sha256_of(bytes) + "\n");

    crash_point("before_rename");
    remove_tree(final_dir);  // a re-save of the same step
    if (std::rename(tmp_dir.c_str(), final_dir.c_str()) != 0)
        fail(EUROLLM_ERR_IO, final_dir, ": cannot rename the new checkpoint into place");
    fsync_dir(ckdir);
    crash_point("before_latest");
    write_text_atomic(ckdir + "/latest", name + "\n");

    // Keep the newest `keep_last` checkpoints; drop leftovers of interrupted saves.
    std::vector<int64_t> steps;
    for (const auto &e : list_dir(ckdir)) {
        if (e.size() > 4 && e.compare(e.size() - 4, 4, ".tmp") == 0 && e != "latest.tmp") remove_tree(ckdir + "/" + e);
        const int64_t st = parse_step_dir(e);
        if (st >= 0) steps.push_back(st);
    }
    std::sort(steps.rbegin(), steps.rend());
    for (size_t i = static_cast<size_t>(std::max(1, keep_last)); i < steps.size(); ++i)
        if (steps[i] != step_) remove_tree(ckdir + "/" + step_dir_name(steps[i]));
    return final_dir;
}

namespace {

// Checkpoint directory names under root/checkpoints, the one `latest` names first, then newest first.
std::vector<std::string> checkpoint_candidates(const std::string &ckdir) {
    std::vector<std::string> candidates;
    if (file_exists(ckdir + "/latest")) {
        std::string latest = read_text_file(ckdir + "/latest");
        while (!latest.empty() && (latest.back() == '\n' || latest.back() == ' ')) latest.pop_back();
        if (parse_step_dir(latest) >= 0) candidates.push_back(latest);
    }
    std::vector<int64_t> steps;
    for (const auto &e : list_dir(ckdir))
        if (parse_step_dir(e) >= 0) steps.push_back(parse_step_dir(e));
    std::sort(steps.rbegin(), steps.rend());
    for (int64_t st : steps)
        if (std::find(candidates.begin(), candidates.end(), step_dir_name(st)) == candidates.end())
            candidates.push_back(step_dir_name(st));
    if (candidates.empty()) fail(EUROLLM_ERR_IO, ckdir, ": no checkpoint to resume from");
    return candidates;
}

}  // namespace

manifest read_latest_manifest(const std::string &root) {
    const std::string ckdir = root + "/checkpoints";
    std::string errors;
    for (const auto &c : checkpoint_candidates(ckdir)) {
        try {
            return read_checkpoint(ckdir + "/" + c).manifest;
        } catch (const error &e) {
            errors += std::string("\n  ") + e.what();
        }
    }
    fail(EUROLLM_ERR_IO, ckdir, ": no valid checkpoint:", errors);
}

void trainer::load_checkpoint(const std::string &root) {
    const std::string ckdir = root + "/checkpoints";
    const std::vector<std::string> candidates = checkpoint_candidates(ckdir);
    std::string errors;
    for (const auto &c : candidates) {
        const std::string dir = ckdir + "/" + c;
        loaded_checkpoint ck;
        try {
            ck = read_checkpoint(dir);
        } catch (const error &e) {
            log(EUROLLM_LOG_WARN, "skipping checkpoint ", dir, ": ", e.what());
            errors += std::string("\n  ") + e.what();
            continue;
        }
        const manifest &mf = ck.manifest;
        if (mf.mode != (o_.model.lora ? "lora" : "full"))
            fail(EUROLLM_ERR_INVALID_ARGUMENT, dir, ": the checkpoint is a ", mf.mode, " run; the trainer is not");
        if (o_.model.lora && (mf.lora_rank != o_.model.lora_rank || mf.lora_targets != o_.model.lora_targets))
            fail(EUROLLM_ERR_INVALID_ARGUMENT, dir, ": the checkpoint's LoRA rank/targets differ from the trainer's");
        // Everything is checked before any state changes.
        for (const auto &p : net_.params()) {
            for (auto *mp : {&ck.values, &ck.m, &ck.v}) {
                const auto it = mp->find(p->name);
                if (it == mp->end() || static_cast<int64_t>(it->second.size()) != p->size())
                    fail(EUROLLM_ERR_BAD_MODEL, dir, ": tensor '", p->name, "' is missing or has the wrong size");
            }
        }
        for (auto &p : net_.params()) {
            p->w = ck.values[p->name];
            p->m = ck.m[p->name];
            p->v = ck.v[p->name];
            std::fill(p->g.begin(), p->g.end(), 0.0f);
        }
        step_ = mf.step;
        tokens_seen_ = mf.tokens_seen;
        rng_.set_state(mf.rng_state);
        data_.epoch = mf.data_epoch;
        data_.offset = mf.data_offset;
        data_.seed = mf.data_seed;
        if (mf.lr != o_.lr || mf.total_steps != o_.total_steps)
            log(EUROLLM_LOG_WARN, "resuming ", dir, " with different hyper-parameters than it was saved with");
        const std::string saved = mf.precision.empty() ? "exact" : mf.precision;
        if (saved != precision_name(o_.model.compute))
            log(EUROLLM_LOG_WARN, "resuming ", dir, " (trained in ", saved, " precision) in ",
                precision_name(o_.model.compute), " precision: the losses will not repeat those of an unbroken run");
        return;
    }
    fail(EUROLLM_ERR_IO, ckdir, ": no valid checkpoint:", errors);
}

}  // namespace eurollm::train
