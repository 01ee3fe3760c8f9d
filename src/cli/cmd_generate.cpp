// eurollm generate MODEL [options]: streams generated text to stdout.
#include <chrono>
#include <memory>
#include <cstdio>

#include "cli/cli.h"

namespace cli {

int cmd_generate(const std::string &path, args &a) {
    std::vector<std::string> prompts;
    eurollm::GeneratorParams gp;
    eurollm::ContextParams cp;
    eurollm::ModelParams mp;
    std::vector<std::string> stops;
    bool verbose = false;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "-p" || opt == "--prompt") prompts.push_back(a.next(opt));
        else if (opt == "-n" || opt == "--max-tokens") gp.max_tokens = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--temp") gp.temperature = to_float(a.next(opt), opt);
        else if (opt == "--top-k") gp.top_k = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--top-p") gp.top_p = to_float(a.next(opt), opt);
        else if (opt == "--min-p") gp.min_p = to_float(a.next(opt), opt);
        else if (opt == "--repeat-penalty") gp.repetition_penalty = to_float(a.next(opt), opt);
        else if (opt == "--frequency-penalty") gp.frequency_penalty = to_float(a.next(opt), opt);
        else if (opt == "--presence-penalty") gp.presence_penalty = to_float(a.next(opt), opt);
        else if (opt == "--penalty-last-n") gp.penalty_last_n = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--seed") gp.seed = static_cast<uint64_t>(to_int(a.next(opt), opt));
        else if (opt == "--stop") stops.push_back(a.next(opt));
        else if (opt == "--ignore-eos") gp.ignore_eos = true;
        else if (opt == "-t" || opt == "--threads") cp.n_threads = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "-c" || opt == "--ctx") cp.n_ctx = static_cast<uint32_t>(to_int(a.next(opt), opt));
        else if (opt == "-v" || opt == "--verbose") verbose = true;
        else if (opt == "--weight-type") mp.weight_type = to_weight_type(a.next(opt), opt);
        else if (opt == "--precision") cp.precision = to_precision(a.next(opt), opt);
        else if (opt == "--kv-type") cp.kv_type = to_kv_type(a.next(opt), opt);
        else if (!device_option(opt, a, mp)) throw usage_error("unknown option " + opt);
    }
    if (prompts.empty()) prompts.emplace_back();
    const auto t0 = std::chrono::steady_clock::now();
    auto model = eurollm::Model::load(path, mp);
    eurollm::Context ctx(model, cp);
    auto prompt_ids = [&](const std::string &prompt) {
        std::vector<int32_t> ids = model.tokenize(prompt);
        if (ids.empty()) {  // an empty prompt means BOS alone
            const int64_t bos = model.info(EUROLLM_INFO_BOS_ID);
            if (bos < 0) throw eurollm::Error(EUROLLM_ERR_INVALID_ARGUMENT, "empty prompt and the model has no BOS token");
            ids.push_back(static_cast<int32_t>(bos));
        }
        return ids;
    };
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };

    if (prompts.size() > 1) {  // several prompts: one generator per sequence, stepped as one batch
        if (prompts.size() > EUROLLM_MAX_SEQUENCES) throw usage_error("at most 64 prompts");
        std::vector<std::unique_ptr<eurollm::Generator>> gens;
        std::vector<eurollm_generator *> raw;
        for (size_t i = 0; i < prompts.size(); ++i) {
            eurollm::GeneratorParams p = gp;
            p.seq_id = static_cast<int32_t>(i);
            gens.push_back(std::make_unique<eurollm::Generator>(ctx, p));
            for (const auto &s : stops) gens.back()->add_stop_string(s);
            gens.back()->append(prompt_ids(prompts[i]));
            raw.push_back(gens.back()->get());
        }
        std::vector<std::string> texts(prompts.size());
        std::vector<int32_t> toks(raw.size());
        std::vector<eurollm_status> st(raw.size());
        size_t n = 0;
        const auto t1 = std::chrono::steady_clock::now();
        for (bool any = true; any;) {
            eurollm::check(eurollm_generator_step_batch(raw.data(), raw.size(), toks.data(), st.data()));
            any = false;
            for (size_t i = 0; i < raw.size(); ++i) {
                texts[i] += gens[i]->text_delta();
                if (st[i] == EUROLLM_OK) {
                    any = true;
                    ++n;
                }
            }
        }
        for (size_t i = 0; i < texts.size(); ++i) std::printf("### %zu\n%s\n", i + 1, texts[i].c_str());
        if (verbose)
            std::fprintf(stderr, "%zu sequences | %zu tokens in %.3f s (%.2f tok/s)\n", prompts.size(), n,
                         secs(t1, std::chrono::steady_clock::now()), n / secs(t1, std::chrono::steady_clock::now()));
        return 0;
    }

    const std::vector<int32_t> ids = prompt_ids(prompts[0]);
    eurollm::Generator gen(ctx, gp);
    for (const auto &s : stops) gen.add_stop_string(s);
    gen.append(ids);
    const auto t1 = std::chrono::steady_clock::now();
    size_t n = 0;
    std::chrono::steady_clock::time_point t_first = t1;
    while (gen.step()) {
        if (n++ == 0) t_first = std::chrono::steady_clock::now();
        const std::string piece = gen.text_delta();
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    }
    const std::string tail = gen.text_delta();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::printf("\n");
    const auto t2 = std::chrono::steady_clock::now();
    if (verbose) {
        std::fprintf(stderr, "load %.3f s | prompt %zu tokens %.3f s | %zu tokens at %.2f tok/s\n", secs(t0, t1),
                     ids.size(), secs(t1, t_first), n, n > 1 ? (n - 1) / secs(t_first, t2) : 0.0);
    }
    return 0;
}

}  // namespace cli
