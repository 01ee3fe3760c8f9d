// eurollm info MODEL: architecture, sizes, special ids.
#include <cstdio>

#include "cli/cli.h"

namespace cli {

int cmd_info(const std::string &path, args &a) {
    if (!a.done()) throw usage_error("info takes no options");
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

}  // namespace cli
