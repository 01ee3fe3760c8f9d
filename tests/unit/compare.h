// Comparing logits of two runs of a model (shared by the unit tests).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace eurollm_test {

// The worst absolute difference over the largest magnitude of the reference `b`.
inline double max_rel(const std::vector<float> &a, const std::vector<float> &b) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, double(std::fabs(a[i] - b[i])));
        scale = std::max(scale, double(std::fabs(b[i])));
    }
    return worst / scale;
}

}  // namespace eurollm_test
