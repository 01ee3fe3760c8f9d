// eurollm: the command-line tool. A client of the C API like any other (through eurollm.hpp).
// Generated text goes to stdout; diagnostics to stderr; errors are one line and a non-zero exit.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/cli.h"

namespace {

const char kUsage[] =
    "usage: eurollm COMMAND MODEL [options]\n"
    "\n"
    "commands:\n"
    "  info MODEL                 print the model's architecture and sizes\n"
    "  tokenize MODEL TEXT        print the token ids of TEXT (with BOS, as generate uses them)\n"
    "  generate MODEL [options]   stream generated text to stdout\n"
    "  train MODEL --data F --out DIR [options]   fine-tune (LoRA or full); train --help for options\n"
    "  export-peft MODEL --checkpoint DIR --out ADAPTER   LoRA of a run's checkpoint, PEFT layout\n"
    "  merge MODEL --adapter ADAPTER --out DIR [--scale S]   merge a PEFT LoRA into a new model\n"
    "  bench MODEL [options]      load/prefill/decode speed: --prompt-tokens P --gen-tokens G\n"
    "                             --threads T --reps R --format text|json\n"
    "  embed MODEL [options]      embed each line of stdin: one JSON array per line (or --format npy)\n"
    "  chat MODEL [--system T]    interactive chat with streaming replies (or --messages FILE.json)\n"
    "  template MODEL --messages FILE.json [--no-generation-prompt]   print the rendered prompt\n"
    "  quantize MODEL OUT --type T   write MODEL (directory or GGUF) as a GGUF v3 file llama.cpp loads,\n"
    "                             2-D weights as T = f32|f16|bf16|q8_0|q4_0|q4_k|q6_k, or auto (as\n"
    "                             stored)\n"
    "\n"
    "generate options:\n"
    "  -p, --prompt TEXT          prompt (empty: start from BOS alone); repeat -p to decode several\n"
    "                             prompts together in one batch (outputs printed in order)\n"
    "  -n, --max-tokens N         tokens to generate (default 256)\n"
    "  --temp T                   temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K --top-p P --min-p P\n"
    "  --repeat-penalty R --frequency-penalty F --presence-penalty P --penalty-last-n N\n"
    "  --seed S                   sampling seed (default 0)\n"
    "  --stop TEXT                stop when TEXT is generated (repeatable)\n"
    "  --ignore-eos               do not stop at end-of-sequence tokens\n"
    "  -t, --threads N            CPU threads (default: one per core)\n"
    "  -c, --ctx N                context size in tokens (default: min(model, 4096))\n"
    "  -v, --verbose              print timings to stderr\n"
    "  --weight-type T            convert the 2-D weights at load: f32|f16|bf16|q8_0|q4_0|q4_k|q6_k\n"
    "                             (default: as stored; also for bench)\n"
    "  --precision exact|bf16     bf16 rounds activations meeting bf16 weights, faster on CPUs with\n"
    "                             AVX512-BF16 (default exact; also for embed, chat and bench)\n"
    "  --kv-type f32|f16          KV cache elements: f16 halves its memory and traffic, rounding keys\n"
    "                             and values (default f32; also for chat and bench)\n"
    "  --device cpu|cuda[:N]|hip[:N]  where the model runs (default cpu); the GPU holds the weights\n"
    "                             and the KV cache; also for chat, embed and bench\n"
    "  --gpu-layers N             with a GPU device: the first N layers on it, the rest on the CPU\n"
    "                             (default -1: all)\n"
    "\n"
    "embed options:\n"
    "  --pool mean|last|first     pooling of the final hidden states (default mean)\n"
    "  --normalize                L2-normalise each vector\n"
    "  --dim N                    keep the first N components (Matryoshka truncation)\n"
    "  --format json|npy          output format (default json)\n";

struct command {
    const char *name;
    int (*run)(const std::string &path, cli::args &a);
};

const command kCommands[] = {
    {"info", cli::cmd_info},
    {"tokenize", cli::cmd_tokenize},
    {"generate", cli::cmd_generate},
    {"train", cli::cmd_train},
    {"export-peft", cli::cmd_export_peft},
    {"merge", cli::cmd_merge},
    {"bench", cli::cmd_bench},
    {"embed", cli::cmd_embed},
    {"chat", cli::cmd_chat},
    {"template", cli::cmd_template},
    {"quantize", cli::cmd_quantize},
};

}  // namespace

int main(int argc, char **argv) {
    cli::args a;
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
        const std::string name = a.next("COMMAND");
        for (const command &c : kCommands) {
            if (name != c.name) continue;
            if (a.done()) throw cli::usage_error(name + " needs MODEL");
            const std::string path = a.next("MODEL");
            return c.run(path, a);
        }
        throw cli::usage_error("unknown command '" + name + "'");
    } catch (const cli::usage_error &e) {
        std::fprintf(stderr, "eurollm: %s (see eurollm --help)\n", e.what());
        return 2;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "eurollm: error: %s\n", e.what());
        return 1;
    }
}
