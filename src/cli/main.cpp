// eurollm: the command-line tool. A client of the C API like any other (through eurollm.hpp).
//   eurollm info MODEL
//   eurollm generate MODEL -p TEXT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] ...
//   eurollm tokenize MODEL TEXT
// Generated text goes to stdout; diagnostics to stderr; errors are one line and a non-zero exit.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "eurollm.hpp"

namespace {

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

const char *kUsage =
    "usage: eurollm COMMAND MODEL [options]\n"
    "\n"
    "commands:\n"
    "  info MODEL                 print the model's architecture and sizes\n"
    "  tokenize MODEL TEXT        print the token ids of TEXT (with BOS, as generate uses them)\n"
    "  generate MODEL [options]   stream generated text to stdout\n"
    "\n"
    "generate options:\n"
    "  -p, --prompt TEXT          prompt (empty: start from BOS alone)\n"
    "  -n, --max-tokens N         tokens to generate (default 256)\n"
    "  --temp T                   temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K --top-p P --min-p P\n"
    "  --repeat-penalty R --frequency-penalty F --presence-penalty P --penalty-last-n N\n"
    "  --seed S                   sampling seed (default 0)\n"
    "  --stop TEXT                stop when TEXT is generated (repeatable)\n"
    "  --ignore-eos               do not stop at end-of-sequence tokens\n"
    "  -t, --threads N            CPU threads (default: one per core)\n"
    "  -c, --ctx N                context size in tokens (default: min(model, 4096))\n"
    "  -v, --verbose              print timings to stderr\n";

struct args {
    std::vector<std::string> v;
    size_t i = 0;
    bool done() const { return i >= v.size(); }
    const std::string &next(const std::string &opt) {
        if (i >= v.size()) throw usage_error("option " + opt + " needs a value");
        return v[i++];
    }
};

long long to_int(const std::string &s, const std::string &opt) {
    char *end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || errno) throw usage_error("option " + opt + " expects an integer, got '" + s + "'");
    return v;
}

float to_float(const std::string &s, const std::string &opt) {
    char *end = nullptr;
    const float v = std::strtof(s.c_str(), &end);
    if (s.empty() || *end) throw usage_error("option " + opt + " expects a number, got '" + s + "'");
    return v;
}

int cmd_info(const std::string &path) {
    auto model = eurollm::Model::load(path);
    std::printf("architecture   %s\n", model.architecture().c_str());
    const struct { const char *name; eurollm_model_info key; } rows[] = {
        {"parameters", EUROLLM_INFO_N_PARAMS},     {"vocab", EUROLLM_INFO_N_VOCAB},
        {"hidden", EUROLLM_INFO_N_EMBD},           {"layers", EUROLLM_INFO_N_LAYER},
        {"heads", EUROLLM_INFO_N_HEAD},            {"kv_heads", EUROLLM_INFO_N_HEAD_KV},
        {"head_dim", EUROLLM_INFO_HEAD_DIM},       {"ffn", EUROLLM_INFO_N_FF},
        {"context", EUROLLM_INFO_N_CTX_TRAIN},     {"sliding_window", EUROLLM_INFO_SLIDING_WINDOW},
        {"tied_embeddings", EUROLLM_INFO_TIED_EMBEDDINGS}, {"bos_id", EUROLLM_INFO_BOS_ID},
    };
    for (const auto &r : rows) std::printf("%-14s %lld\n", r.name, static_cast<long long>(model.info(r.key)));
    std::printf("eos_ids       ");
    for (int32_t id : model.eos_ids()) std::printf(" %d", id);
    std::printf("\nchat_template  %s\n", model.chat_template() ? "yes" : "no");
    return 0;
}

int cmd_tokenize(const std::string &path, args &a) {
    if (a.done()) throw usage_error("tokenize needs TEXT");
    const std::string text = a.next("TEXT");
    auto model = eurollm::Model::load(path);
    const auto ids = model.tokenize(text);
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
    return 0;
}

int cmd_generate(const std::string &path, args &a) {
    std::string prompt;
    eurollm::GeneratorParams gp;
    eurollm::ContextParams cp;
    std::vector<std::string> stops;
    bool verbose = false;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "-p" || opt == "--prompt") prompt = a.next(opt);
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
        else throw usage_error("unknown option " + opt);
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto model = eurollm::Model::load(path);
    eurollm::Context ctx(model, cp);
    std::vector<int32_t> ids = model.tokenize(prompt);
    if (ids.empty()) {  // an empty prompt means BOS alone
        const int64_t bos = model.info(EUROLLM_INFO_BOS_ID);
        if (bos < 0) throw eurollm::Error(EUROLLM_ERR_INVALID_ARGUMENT, "empty prompt and the model has no BOS token");
        ids.push_back(static_cast<int32_t>(bos));
    }
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
        auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
        std::fprintf(stderr, "load %.3f s | prompt %zu tokens %.3f s | %zu tokens at %.2f tok/s\n", secs(t0, t1),
                     ids.size(), secs(t1, t_first), n, n > 1 ? (n - 1) / secs(t_first, t2) : 0.0);
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    args a;
    for (int i = 1; i < argc; ++i) a.v.emplace_back(argv[i]);
    try {
        if (a.done() || a.v[0] == "-h" || a.v[0] == "--help") {
            std::fputs(kUsage, a.done() ? stderr : stdout);
            return a.done() ? 2 : 0;
        }
        if (a.v[0] == "--version") {
            std::printf("eurollm %s\n", eurollm_version_string());
            return 0;
        }
        const std::string cmd = a.next("COMMAND");
        if (cmd != "info" && cmd != "generate" && cmd != "tokenize") throw usage_error("unknown command '" + cmd + "'");
        if (a.done()) throw usage_error(cmd + " needs MODEL");
        const std::string path = a.next("MODEL");
        if (cmd == "info") return cmd_info(path);
        if (cmd == "tokenize") return cmd_tokenize(path, a);
        return cmd_generate(path, a);
    } catch (const usage_error &e) {
        std::fprintf(stderr, "eurollm: %s (see eurollm --help)\n", e.what());
        return 2;
    } catch (const eurollm::Error &e) {
        std::fprintf(stderr, "eurollm: error: %s\n", e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "eurollm: error: %s\n", e.what());
        return 1;
    }
}
