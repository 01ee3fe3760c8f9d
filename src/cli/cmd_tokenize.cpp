// eurollm tokenize MODEL TEXT: the ids generate would feed the model.
#include <cstdio>

#include "cli/cli.h"

namespace cli {

int cmd_tokenize(const std::string &path, args &a) {
    if (a.done()) throw usage_error("tokenize needs TEXT");
    const std::string text = a.next("TEXT");
    auto model = eurollm::Model::load(path);
    const auto ids = model.tokenize(text);
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
    return 0;
}

}  // namespace cli
