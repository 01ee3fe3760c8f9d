// One query row against the KV cache: scores, a max-subtracted softmax, the weighted sum of values.
#include <cfloat>
#include <cmath>

#include "kernels.h"

namespace eurollm::kernels {

void attention_row(const float *q, const float *k_cache, const float *v_cache, int64_t head_dim,
                   const int32_t *cells, int64_t n_visible, float scale, float *scratch, float *out) {
    float max_score = -FLT_MAX;
    for (int64_t t = 0; t < n_visible; ++t) {
        const float *kr = k_cache + static_cast<int64_t>(cells[t]) * head_dim;
        float s = 0.0f;
        for (int64_t d = 0; d < head_dim; ++d) s += q[d] * kr[d];
        s *= scale;
        scratch[t] = s;
        if (s > max_score) max_score = s;
    }
    double sum = 0.0;
    for (int64_t t = 0; t < n_visible; ++t) {
        scratch[t] = std::exp(scratch[t] - max_score);
        sum += scratch[t];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
    for (int64_t t = 0; t < n_visible; ++t) {
        const float p = scratch[t] * inv;
        const float *vr = v_cache + static_cast<int64_t>(cells[t]) * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) out[d] += p * vr[d];
    }
}

}  // namespace eurollm::kernels
