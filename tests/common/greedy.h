// Greedy generation through the C++ wrapper (eurollm.hpp): the token ids a model picks after a
// prompt, for tests that compare two ways of running the same model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eurollm.hpp"

namespace eurollm_test {

inline std::vector<int32_t> greedy_tokens(const eurollm::Model &model, const std::string &prompt, int n,
                                          const eurollm::ContextParams &cp = eurollm::ContextParams()) {
    eurollm::Context ctx(model, cp);
    eurollm::GeneratorParams gp;
    gp.temperature = 0.0f;
    gp.max_tokens = n;
    gp.ignore_eos = true;
    eurollm::Generator gen(ctx, gp);
    gen.append(model.tokenize(prompt));
    std::vector<int32_t> out;
    while (auto t = gen.step()) out.push_back(*t);
    return out;
}

}  // namespace eurollm_test
