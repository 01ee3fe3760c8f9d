// eurollm merge MODEL --adapter ADAPTER_DIR --out OUT_DIR [--scale S]: a PEFT LoRA adapter merged
// into the base weights, written as a new model directory.
#define EUROLLM_EXPERIMENTAL
#include <cstdio>

#include "cli/cli.h"
#include "eurollm_experimental.h"

namespace cli {

int cmd_merge(const std::string &path, args &a) {
    std::string adapter, out;
    float scale = 1.0f;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "--adapter") adapter = a.next(opt);
        else if (opt == "--out") out = a.next(opt);
        else if (opt == "--scale") scale = to_float(a.next(opt), opt);
        else if (opt == "-h" || opt == "--help") {
            std::puts("usage: eurollm merge MODEL --adapter ADAPTER_DIR --out OUT_DIR [--scale S (default 1)]");
            return 0;
        } else throw usage_error("unknown option " + opt);
    }
    if (adapter.empty() || out.empty()) throw usage_error("merge needs --adapter ADAPTER_DIR and --out OUT_DIR");
    const eurollm_status s = eurollm_adapter_merge(path.c_str(), adapter.c_str(), scale, out.c_str());
    if (s < 0) throw eurollm::Error(s, eurollm_last_error());
    std::fprintf(stderr, "merged model written to %s\n", out.c_str());
    return 0;
}

}  // namespace cli
