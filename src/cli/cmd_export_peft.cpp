// eurollm export-peft MODEL --checkpoint DIR --out ADAPTER_DIR: the LoRA adapters of the latest
// checkpoint of a training run in Hugging Face PEFT layout.
#define EUROLLM_EXPERIMENTAL
#include <cstdio>

#include "cli/cli.h"
#include "eurollm_experimental.h"

namespace cli {

int cmd_export_peft(const std::string &path, args &a) {
    std::string ckpt, out;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "--checkpoint") ckpt = a.next(opt);
        else if (opt == "--out") out = a.next(opt);
        else if (opt == "-h" || opt == "--help") {
            std::puts("usage: eurollm export-peft MODEL --checkpoint RUN_DIR --out ADAPTER_DIR");
            return 0;
        } else throw usage_error("unknown option " + opt);
    }
    if (ckpt.empty() || out.empty()) throw usage_error("export-peft needs --checkpoint RUN_DIR and --out ADAPTER_DIR");
    auto check = [](eurollm_status s) {
        if (s < 0) throw eurollm::Error(s, eurollm_last_error());
    };
    auto model = eurollm::Model::load(path);
    eurollm_trainer_params tp;
    check(eurollm_trainer_params_init(&tp, EUROLLM_TRAINER_PARAMS_VERSION));
    check(eurollm_trainer_params_from_checkpoint(ckpt.c_str(), &tp));
    if (tp.mode != EUROLLM_TRAIN_LORA) throw eurollm::Error(EUROLLM_ERR_INVALID_ARGUMENT, "the run trains all weights; it has no adapter");
    eurollm_trainer *t = nullptr;
    check(eurollm_trainer_create(model.get(), &tp, &t));
    std::unique_ptr<eurollm_trainer, void (*)(eurollm_trainer *)> tr(t, eurollm_trainer_free);
    check(eurollm_trainer_load_checkpoint(tr.get(), ckpt.c_str()));
    check(eurollm_trainer_export_peft(tr.get(), out.c_str()));
    std::fprintf(stderr, "adapter of step %lld written to %s\n", static_cast<long long>(eurollm_trainer_step_count(tr.get())),
                 out.c_str());
    return 0;
}

}  // namespace cli
