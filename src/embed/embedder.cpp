#include "embed/embedder.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace eurollm {

size_t pooled_rows(const std::vector<size_t> &lengths, pooling pool) {
    if (pool != pooling::none) return lengths.size();
    size_t total = 0;
    for (size_t n : lengths) total += n;
    return total;
}

int64_t pooled_dim(int64_t width, const embed_options &o) {
    if (o.dim < 0 || o.dim > width) fail(EUROLLM_ERR_INVALID_ARGUMENT, "embedding dim ", o.dim, " is outside [0, ", width, "]");
    return o.dim == 0 ? width : o.dim;
}

namespace {

void finish_row(float *v, int64_t dim, bool normalize) {
    if (!normalize) return;
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(v[i]) * v[i];
    if (ss <= 0.0) return;
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss));
    for (int64_t i = 0; i < dim; ++i) v[i] *= inv;
}

}  // namespace

void pool_embeddings(const float *rows, const std::vector<size_t> &lengths, int64_t width, const embed_options &o,
                     float *out) {
    const int64_t dim = pooled_dim(width, o);
    size_t first_row = 0;
    for (size_t n : lengths) {
        const float *r = rows + first_row * static_cast<size_t>(width);
        switch (o.pool) {
            case pooling::mean: {
                std::vector<double> acc(static_cast<size_t>(dim), 0.0);
                for (size_t t = 0; t < n; ++t)
                    for (int64_t i = 0; i < dim; ++i) acc[static_cast<size_t>(i)] += r[t * static_cast<size_t>(width) + static_cast<size_t>(i)];
                for (int64_t i = 0; i < dim; ++i) out[i] = static_cast<float>(acc[static_cast<size_t>(i)] / static_cast<double>(n));
                finish_row(out, dim, o.normalize);
                out += dim;
                break;
            }
            case pooling::last:
            case pooling::first: {
                const float *src = r + (o.pool == pooling::last ? n - 1 : 0) * static_cast<size_t>(width);
                std::memcpy(out, src, static_cast<size_t>(dim) * sizeof(float));
                finish_row(out, dim, o.normalize);
                out += dim;
                break;
            }
            case pooling::none:
                for (size_t t = 0; t < n; ++t) {
                    std::memcpy(out, r + t * static_cast<size_t>(width), static_cast<size_t>(dim) * sizeof(float));
                    finish_row(out, dim, o.normalize);
                    out += dim;
                }
                break;
        }
        first_row += n;
    }
}

float cosine_similarity(const float *a, const float *b, size_t dim) {
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < dim; ++i) {
        ab += static_cast<double>(a[i]) * b[i];
        aa += static_cast<double>(a[i]) * a[i];
        bb += static_cast<double>(b[i]) * b[i];
    }
    if (aa <= 0.0 || bb <= 0.0) return 0.0f;
    return static_cast<float>(ab / std::sqrt(aa * bb));
}

}  // namespace eurollm
