// eurollm bench MODEL: load time, prefill and decode speed, peak memory, through the public API.
//   --prompt-tokens P (512)  --gen-tokens G (128)  --threads T (0: one per core)  --reps R (3)
//   --format text|json  --weight-type T (convert at load)  --precision exact|bf16  --seqs S (1)
//   --kv-type f32|f16 (the KV cache's elements)  --device cpu|cuda[:N]|hip[:N]  --gpu-layers N
//   --embed-texts E --embed-tokens L (0 0: skip)
// Each repetition starts from an empty cache: prefill evaluates P tokens in one batch, decode then
// evaluates G tokens one at a time. With S > 1 sequences, the prompt is shared by all of them (one
// prefill, then prefix copies) and decode advances the S sequences together, one token each per
// batch: decode_tok_s counts the tokens of all sequences. Embedding embeds E token lists of L
// tokens in one call (mean pooling): embed_tok_s counts E * L tokens. Speeds are medians over the repetitions. The token ids are
// fixed and arbitrary: speed does not depend on them.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace cli {
namespace {

double now_s() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

void check(eurollm_status s, const char *what) {
    if (s != EUROLLM_OK) throw std::runtime_error(std::string(what) + ": " + eurollm_last_error());
}

std::string json_list(const std::vector<double> &v) {
    std::string s = "[";
    char buf[32];
    for (size_t i = 0; i < v.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.4f", i ? ", " : "", v[i]);
        s += buf;
    }
    return s + "]";
}

std::string json_escape(const std::string &s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        o += c;
    }
    return o;
}

}  // namespace

int cmd_bench(const std::string &path, args &a) {
    long long prompt = 512, gen = 128, threads = 0, reps = 3, seqs = 1, embed_texts = 0, embed_tokens = 0;
    std::string format = "text", weight_type = "auto", precision = "exact", kv_type = "f32";
    eurollm_model_params mp;
    check(eurollm_model_params_init(&mp, EUROLLM_MODEL_PARAMS_VERSION), "model params");
    while (!a.done()) {
        const std::string opt = a.next("option");
        if (opt == "--prompt-tokens" || opt == "-p") prompt = to_int(a.next(opt), opt);
        else if (opt == "--gen-tokens" || opt == "-n") gen = to_int(a.next(opt), opt);
        else if (opt == "--threads" || opt == "-t") threads = to_int(a.next(opt), opt);
        else if (opt == "--reps" || opt == "-r") reps = to_int(a.next(opt), opt);
        else if (opt == "--format") format = a.next(opt);
        else if (opt == "--weight-type") weight_type = a.next(opt);
        else if (opt == "--precision") precision = a.next(opt);
        else if (opt == "--kv-type") kv_type = a.next(opt);
        else if (opt == "--seqs") seqs = to_int(a.next(opt), opt);
        else if (opt == "--embed-texts") embed_texts = to_int(a.next(opt), opt);
        else if (opt == "--embed-tokens") embed_tokens = to_int(a.next(opt), opt);
        else if (!device_option(opt, a, mp)) throw usage_error("unknown bench option '" + opt + "'");
    }
    if (prompt < 1 || gen < 0 || reps < 1 || threads < 0 || seqs < 1 || seqs > EUROLLM_MAX_SEQUENCES ||
        prompt + seqs * gen > 1 << 20 || embed_texts < 0 || embed_tokens < 0 || embed_texts > EUROLLM_MAX_SEQUENCES ||
        embed_texts * embed_tokens > 1 << 20)
        throw usage_error("bench: --prompt-tokens >= 1, --gen-tokens >= 0, --reps >= 1, --threads >= 0, "
                          "--seqs and --embed-texts at most " + std::to_string(EUROLLM_MAX_SEQUENCES));
    if (format != "text" && format != "json") throw usage_error("--format is text or json");

    mp.weight_type = to_weight_type(weight_type, "--weight-type");
    const eurollm_precision prec = to_precision(precision, "--precision");
    const eurollm_weight_type kv = to_kv_type(kv_type, "--kv-type");

    const double t0 = now_s();  // load time includes the conversion, if any
    eurollm_model *model = nullptr;
    check(eurollm_model_load(path.c_str(), &mp, &model), "load");
    const double load_s = now_s() - t0;
    const bool on_gpu = mp.device == EUROLLM_DEVICE_CUDA || mp.device == EUROLLM_DEVICE_HIP;
    char device[256];
    size_t device_len = 0;
    check(eurollm_device_name(on_gpu ? mp.device : EUROLLM_DEVICE_CPU, on_gpu ? mp.device_index : 0, device,
                              sizeof device, &device_len),
          "device name");

    int64_t n_vocab = 0;
    check(eurollm_model_get_info(model, EUROLLM_INFO_N_VOCAB, &n_vocab), "model info");
    eurollm_context_params cp;
    check(eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION), "context params");
    cp.n_ctx = static_cast<uint32_t>(std::max(prompt + seqs * gen, embed_texts * embed_tokens));
    cp.n_batch = static_cast<uint32_t>(prompt);
    cp.n_threads = static_cast<int32_t>(threads);
    cp.precision = prec;
    cp.kv_type = kv;
    eurollm_context *ctx = nullptr;
    check(eurollm_context_init(model, &cp, &ctx), "context");

    std::vector<int32_t> tokens(static_cast<size_t>(prompt));
    const int64_t span = std::max<int64_t>(1, std::min<int64_t>(n_vocab - 3, 250));
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(3 + (i * 7919) % span);

    std::vector<double> prefill, decode, embed;
    for (long long r = 0; r < reps; ++r) {
        check(eurollm_context_reset(ctx), "reset");
        const float *logits = nullptr;
        const double p0 = now_s();
        check(eurollm_context_decode(ctx, tokens.data(), tokens.size(), &logits), "prefill");
        prefill.push_back(static_cast<double>(prompt) / (now_s() - p0));
        if (gen == 0) continue;
        for (int32_t s = 1; s < seqs; ++s) check(eurollm_context_seq_copy(ctx, 0, s, -1), "seq copy");
        std::vector<int32_t> ids(static_cast<size_t>(seqs)), next(static_cast<size_t>(seqs));
        std::vector<const int32_t *> runs(static_cast<size_t>(seqs));
        const std::vector<size_t> ones(static_cast<size_t>(seqs), 1);
        for (int32_t s = 0; s < seqs; ++s) ids[s] = s, runs[s] = &next[s];
        const double d0 = now_s();
        for (long long g = 0; g < gen; ++g) {
            for (int32_t s = 0; s < seqs; ++s) next[s] = static_cast<int32_t>(3 + (g * 31 + s * 17) % span);
            if (seqs == 1) check(eurollm_context_decode(ctx, next.data(), 1, &logits), "decode");
            else check(eurollm_context_decode_seqs(ctx, ids.data(), runs.data(), ones.data(), ids.size()), "decode");
        }
        decode.push_back(static_cast<double>(gen * seqs) / (now_s() - d0));
    }
    if (embed_texts > 0 && embed_tokens > 0) {
        eurollm_embed_params ep;
        check(eurollm_embed_params_init(&ep, EUROLLM_EMBED_PARAMS_VERSION), "embed params");
        int64_t dim = 0;
        check(eurollm_model_get_info(model, EUROLLM_INFO_N_EMBD, &dim), "model info");
        std::vector<std::vector<int32_t>> lists(static_cast<size_t>(embed_texts));
        std::vector<const int32_t *> ptrs;
        std::vector<size_t> lens;
        for (size_t t = 0; t < lists.size(); ++t) {
            for (long long i = 0; i < embed_tokens; ++i)
                lists[t].push_back(static_cast<int32_t>(3 + (i * 7919 + t * 13) % span));
            ptrs.push_back(lists[t].data());
            lens.push_back(lists[t].size());
        }
        std::vector<float> vecs(static_cast<size_t>(embed_texts * dim));
        for (long long r = 0; r < reps; ++r) {
            size_t rows = 0, width = 0;
            const double e0 = now_s();
            check(eurollm_embed_tokens(ctx, ptrs.data(), lens.data(), lists.size(), &ep, vecs.data(), vecs.size(),
                                       &rows, &width),
                  "embed");
            embed.push_back(static_cast<double>(embed_texts * embed_tokens) / (now_s() - e0));
        }
    }
    eurollm_context_free(ctx);
    eurollm_model_free(model);

    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    const double peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux

    if (format == "json") {
        std::printf(
            "{\"engine\": \"libeurollm\", \"version\": \"%s\", \"model\": \"%s\", \"weight_type\": \"%s\", "
            "\"precision\": \"%s\", \"kv_type\": \"%s\", \"device\": \"%s\", \"gpu_layers\": %d, "
            "\"threads\": %lld, \"seqs\": %lld, "
            "\"prompt_tokens\": %lld, \"gen_tokens\": %lld, \"reps\": %lld, \"load_s\": %.4f, "
            "\"prefill_tok_s\": %.3f, \"decode_tok_s\": %.3f, \"peak_rss_mb\": %.1f, "
            "\"prefill_tok_s_all\": %s, \"decode_tok_s_all\": %s, \"embed_texts\": %lld, \"embed_tokens\": %lld, "
            "\"embed_tok_s\": %.3f}\n",
            eurollm_version_string(), json_escape(path).c_str(), weight_type.c_str(), precision.c_str(),
            kv_type.c_str(), json_escape(device).c_str(), on_gpu ? mp.n_gpu_layers : 0, threads, seqs, prompt, gen, reps, load_s, median(prefill),
            median(decode), peak_rss_mb, json_list(prefill).c_str(), json_list(decode).c_str(), embed_texts, embed_tokens, median(embed));
    } else {
        std::printf("model         %s\n", path.c_str());
        std::printf("weights       %s%s, precision %s, KV cache %s\n", weight_type.c_str(),
                    weight_type == "auto" ? " (as stored)" : " (converted at load)", precision.c_str(), kv_type.c_str());
        if (on_gpu) std::printf("device        %s, GPU layers %d (-1: all)\n", device, mp.n_gpu_layers);
        std::printf("threads       %lld%s\n", threads, threads == 0 ? " (one per core)" : "");
        std::printf("load          %.3f s\n", load_s);
        std::printf("prefill       %.2f tok/s (%lld tokens, median of %lld)\n", median(prefill), prompt, reps);
        std::printf("decode        %.2f tok/s (%lld tokens x %lld sequences, median of %lld)\n", median(decode), gen, seqs,
                    reps);
        if (!embed.empty())
            std::printf("embed         %.2f tok/s (%lld texts x %lld tokens, median of %lld)\n", median(embed),
                        embed_texts, embed_tokens, reps);
        std::printf("peak RSS      %.1f MiB\n", peak_rss_mb);
    }
    return 0;
}

}  // namespace cli
