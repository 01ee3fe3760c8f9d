// eurollm train MODEL --data FILE.jsonl --out DIR [options]: full fine-tuning or LoRA on a JSONL
// file through the experimental training API, with checkpoints and exact resume.
#define EUROLLM_EXPERIMENTAL
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sys/stat.h>

#include "cli/cli.h"
#include "eurollm_experimental.h"

namespace cli {
namespace {

const char kTrainUsage[] =
    "usage: eurollm train MODEL --data FILE.jsonl --out DIR [options]\n"
    "  --steps N            length of the whole schedule in optimizer steps (default 100)\n"
    "  --stop-at K          end this run after step K (checkpoint saved); --resume continues\n"
    "  --resume             continue from the last checkpoint in DIR to step N\n"
    "  --lora SPEC          LoRA, e.g. r=16,alpha=32,targets=q,k,v,o[,dropout=0.05] (the default mode:\n"
    "                       r=8,alpha=16,targets=q,v); targets from q k v o gate up down all\n"
    "  --full               train every weight instead of LoRA adapters\n"
    "  --lr X               peak learning rate (default 2e-4 LoRA, 5e-5 full)\n"
    "  --schedule S         cosine (default), linear or constant; --warmup N steps (default 0)\n"
    "  --min-lr-ratio R     floor of the decay (default 0.1)\n"
    "  --batch B            sequences per step (default 8); --micro-batch M per forward/backward\n"
    "  --seq-len T          tokens per sequence (default 128)\n"
    "  --weight-decay W     (default 0); --clip C global-norm clipping (default 1; 0 = off)\n"
    "  --seed S             initialisation, dropout and data order (default 0)\n"
    "  --save-every N       checkpoint every N steps (default 50; always at the end)\n"
    "  --eval-data FILE     held-out JSONL; or --eval-fraction F of the data (default 0.05)\n"
    "  --eval-every N       evaluate every N steps (default: at the end only)\n"
    "  --log-format F       text (progress bar on a terminal) or json (one object per step on stdout)\n"
    "  -t, --threads N      CPU threads (default: one per core)\n"
    "  --precision P        exact (default: float32 gradients) or bf16 (bf16 products through the bf16\n"
    "                       base, f32 master weights and moments; faster on AVX512-BF16 CPUs);\n"
    "                       recorded in checkpoints: --resume continues in the run's precision\n"
    "Output in DIR: checkpoints/ (resume), adapter/ (LoRA, PEFT layout) or model/ (full) when the\n"
    "schedule is complete.\n";

void check(eurollm_status s) {
    if (s < 0) throw eurollm::Error(s, eurollm_last_error());
}

struct dataset_deleter { void operator()(eurollm_dataset *d) const { eurollm_dataset_free(d); } };
struct trainer_deleter { void operator()(eurollm_trainer *t) const { eurollm_trainer_free(t); } };
using dataset_ptr = std::unique_ptr<eurollm_dataset, dataset_deleter>;
using trainer_ptr = std::unique_ptr<eurollm_trainer, trainer_deleter>;

uint32_t target_bit(const std::string &t) {
    const char *names[7] = {"q", "k", "v", "o", "gate", "up", "down"};
    if (t == "all") return EUROLLM_LORA_ALL;
    for (int j = 0; j < 7; ++j)
        if (t == names[j] || t == std::string(names[j]) + "_proj") return 1u << j;
    throw usage_error("unknown LoRA target '" + t + "' (q k v o gate up down all)");
}

// "r=16,alpha=32,targets=q,k,v,o,dropout=0.05": bare words after targets= are more targets.
void parse_lora(const std::string &spec, eurollm_trainer_params &tp) {
    std::string key;
    bool targets_set = false;
    size_t start = 0;
    while (start <= spec.size()) {
        const size_t comma = spec.find(',', start);
        const std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        std::string value = item;
        if (eq != std::string::npos) {
            key = item.substr(0, eq);
            value = item.substr(eq + 1);
        } else if (key != "targets") {
            throw usage_error("--lora: expected key=value, got '" + item + "'");
        }
        if (key == "r" || key == "rank") tp.lora_rank = static_cast<int32_t>(to_int(value, "--lora r"));
        else if (key == "alpha") tp.lora_alpha = to_float(value, "--lora alpha");
        else if (key == "dropout") tp.lora_dropout = to_float(value, "--lora dropout");
        else if (key == "targets") {
            if (!targets_set) tp.lora_targets = 0;
            targets_set = true;
            tp.lora_targets |= target_bit(value);
        } else {
            throw usage_error("--lora: unknown key '" + key + "' (r, alpha, dropout, targets)");
        }
    }
}

std::string format_eta(double s) {
    char buf[32];
    if (!std::isfinite(s) || s < 0) return "?";
    const long t = static_cast<long>(s + 0.5);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%lds", t);
    return buf;
}

bool dir_exists(const std::string &p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

float evaluate(eurollm_trainer *tr, eurollm_dataset *ds, size_t batch, size_t seq_len) {
    const size_t n = eurollm_dataset_n_sequences(ds);
    std::vector<int32_t> tok(batch * seq_len), lab(batch * seq_len);
    double sum = 0;
    int64_t count = 0;
    for (size_t first = 0; first < n; first += batch) {
        const size_t nb = std::min(batch, n - first);
        check(eurollm_dataset_get(ds, 0, 0, false, first, nb, tok.data(), lab.data()));
        float loss = 0;
        int64_t c = 0;
        check(eurollm_trainer_eval(tr, tok.data(), lab.data(), nb, seq_len, &loss, &c));
        sum += static_cast<double>(loss) * c;
        count += c;
    }
    return count ? static_cast<float>(sum / count) : 0.0f;
}

}  // namespace

int cmd_train(const std::string &path, args &a) {
    std::string data, out, eval_data, log_format = "text";
    long long steps = 100, stop_at = -1, batch = 8, seq_len = 128, save_every = 50, eval_every = 0;
    float eval_fraction = 0.05f;
    bool resume = false, full = false, lr_set = false, precision_given = false;
    eurollm_trainer_params tp;
    check(eurollm_trainer_params_init(&tp, EUROLLM_TRAINER_PARAMS_VERSION));
    tp.min_lr_ratio = 0.1f;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "-h" || opt == "--help") {
            std::fputs(kTrainUsage, stdout);
            return 0;
        }
        if (opt == "--data") data = a.next(opt);
        else if (opt == "--out") out = a.next(opt);
        else if (opt == "--steps") steps = to_int(a.next(opt), opt);
        else if (opt == "--stop-at") stop_at = to_int(a.next(opt), opt);
        else if (opt == "--resume") resume = true;
        else if (opt == "--seed") tp.seed = static_cast<uint64_t>(to_int(a.next(opt), opt));
        else if (opt == "--lora") parse_lora(a.next(opt), tp);
        else if (opt == "--full") full = true;
        else if (opt == "--lr") { tp.lr = to_float(a.next(opt), opt); lr_set = true; }
        else if (opt == "--schedule") {
            const std::string s = a.next(opt);
            if (s == "cosine") tp.schedule = EUROLLM_SCHEDULE_COSINE;
            else if (s == "linear") tp.schedule = EUROLLM_SCHEDULE_LINEAR;
            else if (s == "constant") tp.schedule = EUROLLM_SCHEDULE_CONSTANT;
            else throw usage_error("--schedule: cosine, linear or constant");
        }
        else if (opt == "--warmup") tp.warmup_steps = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--min-lr-ratio") tp.min_lr_ratio = to_float(a.next(opt), opt);
        else if (opt == "--batch") batch = to_int(a.next(opt), opt);
        else if (opt == "--micro-batch") tp.micro_batch = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--seq-len") seq_len = to_int(a.next(opt), opt);
        else if (opt == "--weight-decay") tp.weight_decay = to_float(a.next(opt), opt);
        else if (opt == "--clip") tp.max_grad_norm = to_float(a.next(opt), opt);
        else if (opt == "--save-every") save_every = to_int(a.next(opt), opt);
        else if (opt == "--eval-data") eval_data = a.next(opt);
        else if (opt == "--eval-fraction") eval_fraction = to_float(a.next(opt), opt);
        else if (opt == "--eval-every") eval_every = to_int(a.next(opt), opt);
        else if (opt == "--log-format") log_format = a.next(opt);
        else if (opt == "-t" || opt == "--threads") tp.n_threads = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--precision") {
            const std::string s = a.next(opt);
            precision_given = true;
            if (s == "exact") tp.precision = EUROLLM_PRECISION_EXACT;
            else if (s == "bf16") tp.precision = EUROLLM_PRECISION_BF16;
            else throw usage_error("--precision: exact or bf16");
        }
        else throw usage_error("unknown option " + opt);
    }
    if (data.empty() || out.empty()) throw usage_error("train needs --data FILE.jsonl and --out DIR");
    if (log_format != "text" && log_format != "json") throw usage_error("--log-format: text or json");
    if (steps <= 0 || batch <= 0 || seq_len < 2 || save_every <= 0) throw usage_error("--steps, --batch, --save-every must be positive, --seq-len >= 2");
    if (stop_at < 0 || stop_at > steps) stop_at = steps;
    if (full) tp.mode = EUROLLM_TRAIN_FULL;
    if (!lr_set) tp.lr = full ? 5e-5f : 2e-4f;
    tp.total_steps = static_cast<int32_t>(steps);
    const bool json = log_format == "json";

    auto model = eurollm::Model::load(path);
    eurollm_dataset *raw = nullptr;
    check(eurollm_dataset_load(model.get(), data.c_str(), static_cast<size_t>(seq_len), &raw));
    dataset_ptr train_ds(raw), eval_ds;
    if (!eval_data.empty()) {
        check(eurollm_dataset_load(model.get(), eval_data.c_str(), static_cast<size_t>(seq_len), &raw));
        eval_ds.reset(raw);
    } else if (eval_fraction > 0) {
        const size_t n = eurollm_dataset_n_sequences(train_ds.get());
        const size_t hold = static_cast<size_t>(std::floor(n * eval_fraction));
        if (hold >= 1 && hold < n) {
            check(eurollm_dataset_split(train_ds.get(), hold, &raw));
            eval_ds.reset(raw);
        }
    }
    const size_t n_train = eurollm_dataset_n_sequences(train_ds.get());
    if (static_cast<size_t>(batch) > n_train)
        throw eurollm::Error(EUROLLM_ERR_INVALID_ARGUMENT, "--batch " + std::to_string(batch) + " exceeds the " +
                                                               std::to_string(n_train) + " training sequences");

    const bool have_ckpt = dir_exists(out + "/checkpoints");
    if (resume && have_ckpt) {
        const int32_t threads = tp.n_threads;
        const int32_t total = tp.total_steps;
        const eurollm_precision precision = tp.precision;
        check(eurollm_trainer_params_from_checkpoint(out.c_str(), &tp));  // the run's own precision...
        tp.n_threads = threads;
        tp.total_steps = total;
        if (precision_given) tp.precision = precision;  // ... unless this command names one
    }
    eurollm_trainer *rt = nullptr;
    check(eurollm_trainer_create(model.get(), &tp, &rt));
    trainer_ptr tr(rt);
    uint64_t epoch = 0, offset = 0, data_seed = tp.seed;
    if (resume && have_ckpt) {
        check(eurollm_trainer_load_checkpoint(tr.get(), out.c_str()));
        check(eurollm_trainer_get_data_position(tr.get(), &epoch, &offset, &data_seed));
    } else if (resume) {
        std::fprintf(stderr, "eurollm: no checkpoint in %s; starting from step 0\n", out.c_str());
    }
    int64_t step = eurollm_trainer_step_count(tr.get());
    if (!json)
        std::fprintf(stderr, "training %s (%s) on %zu sequences of %lld tokens, steps %lld -> %lld of %lld\n", path.c_str(),
                     tp.mode == EUROLLM_TRAIN_FULL ? "full" : "LoRA", n_train, seq_len, static_cast<long long>(step) + 1,
                     stop_at, steps);

    const bool tty = !json && ::isatty(2);
    std::vector<int32_t> tok(static_cast<size_t>(batch * seq_len)), lab(tok.size());
    const auto t_start = std::chrono::steady_clock::now();
    const int64_t first_step = step;
    auto save = [&] { check(eurollm_trainer_save_checkpoint(tr.get(), out.c_str())); };
    while (step < stop_at) {
        if (offset + static_cast<uint64_t>(batch) > n_train) {
            ++epoch;
            offset = 0;
        }
        check(eurollm_dataset_get(train_ds.get(), data_seed, epoch, true, offset, static_cast<size_t>(batch), tok.data(), lab.data()));
        offset += static_cast<uint64_t>(batch);
        check(eurollm_trainer_set_data_position(tr.get(), epoch, offset, data_seed));
        const auto t0 = std::chrono::steady_clock::now();
        eurollm_train_result r;
        check(eurollm_trainer_step(tr.get(), tok.data(), lab.data(), static_cast<size_t>(batch), static_cast<size_t>(seq_len), &r));
        const auto t1 = std::chrono::steady_clock::now();
        step = r.step;
        const double dt = std::chrono::duration<double>(t1 - t0).count();
        const double elapsed = std::chrono::duration<double>(t1 - t_start).count();
        const double tps = dt > 0 ? r.tokens / dt : 0.0;
        const double eta = (stop_at - step) * elapsed / static_cast<double>(step - first_step);
        if (json) {
            std::printf("{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens_per_s\": %.1f, "
                        "\"tokens\": %lld, \"elapsed_s\": %.3f}\n",
                        static_cast<long long>(step), r.loss, r.lr, r.grad_norm, tps, static_cast<long long>(r.tokens), elapsed);
            std::fflush(stdout);
        } else {
            const int width = 24, filled = static_cast<int>(width * step / steps);
            std::fprintf(stderr, "%s[%.*s%*s] step %lld/%lld loss %.4f lr %.2e | %.0f tok/s | ETA %s%s",
                         tty ? "\r" : "", filled, "########################", width - filled, "",
                         static_cast<long long>(step), steps, r.loss, r.lr, tps, format_eta(eta).c_str(), tty ? "  " : "\n");
        }
        if (step % save_every == 0 || step == stop_at) save();
        if (eval_ds && eval_every > 0 && step % eval_every == 0 && step != stop_at) {
            const float el = evaluate(tr.get(), eval_ds.get(), static_cast<size_t>(batch), static_cast<size_t>(seq_len));
            if (json) std::printf("{\"step\": %lld, \"eval_loss\": %.6f}\n", static_cast<long long>(step), el);
            else std::fprintf(stderr, "%sstep %lld eval loss %.4f\n", tty ? "\n" : "", static_cast<long long>(step), el);
        }
    }
    if (tty) std::fputc('\n', stderr);
    if (step == first_step) save();  // nothing to do: still leave a checkpoint
    if (eval_ds) {
        const float el = evaluate(tr.get(), eval_ds.get(), static_cast<size_t>(batch), static_cast<size_t>(seq_len));
        if (json) std::printf("{\"step\": %lld, \"eval_loss\": %.6f}\n", static_cast<long long>(step), el);
        else std::fprintf(stderr, "eval loss %.4f (%zu held-out sequences)\n", el, eurollm_dataset_n_sequences(eval_ds.get()));
    }
    if (step >= steps) {
        if (tp.mode == EUROLLM_TRAIN_LORA) {
            check(eurollm_trainer_export_peft(tr.get(), (out + "/adapter").c_str()));
            if (!json) std::fprintf(stderr, "adapter written to %s/adapter\n", out.c_str());
        } else {
            check(eurollm_trainer_save_model(tr.get(), (out + "/model").c_str()));
            if (!json) std::fprintf(stderr, "model written to %s/model\n", out.c_str());
        }
    }
    return 0;
}

}  // namespace cli
