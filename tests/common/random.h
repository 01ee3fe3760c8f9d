// Seeded normal samples for the kernel tests (the same seed gives the same values everywhere).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace eurollm_test {

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = d(g);
    return v;
}

}  // namespace eurollm_test
