// eurollm quantize MODEL OUT --type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k|auto: writes MODEL (a Hugging Face
// directory or a GGUF file) as a GGUF v3 file that llama.cpp loads (eurollm_model_save_gguf).
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "cli/cli.h"

namespace cli {

int cmd_quantize(const std::string &path, args &a) {
    std::string out;
    std::optional<eurollm_weight_type> type;
    std::string type_name;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "--type") {
            type_name = a.next(opt);
            type = to_weight_type(type_name, opt);
        } else if (!opt.empty() && opt[0] == '-') {
            throw usage_error("unknown quantize option " + opt);
        } else if (out.empty()) {
            out = opt;
        } else {
            throw usage_error("quantize takes one OUT path, got '" + out + "' and '" + opt + "'");
        }
    }
    if (out.empty()) throw usage_error("quantize needs OUT, the GGUF file to write");
    if (!type) throw usage_error("quantize needs --type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k|auto");
    const auto t0 = std::chrono::steady_clock::now();
    const auto model = eurollm::Model::load(path);
    model.save_gguf(out, *type);
    struct stat st {};
    const double mib = ::stat(out.c_str(), &st) == 0 ? static_cast<double>(st.st_size) / (1 << 20) : 0.0;
    std::fprintf(stderr, "wrote %s (%s, %.1f MiB) in %.2f s\n", out.c_str(), type_name.c_str(), mib,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
}

}  // namespace cli
