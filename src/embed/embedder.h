// Sentence embeddings from final hidden states: pooling (mean, last, first, or every token),
// Matryoshka truncation, L2 normalisation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace eurollm {

enum class pooling { mean = 0, last = 1, first = 2, none = 3 };

struct embed_options {
    pooling pool = pooling::mean;
    bool normalize = false;
    int64_t dim = 0;  // 0: the model's full width; otherwise keep the first `dim` components
};

// rows: [sum(lengths), width] hidden states of consecutive inputs. Writes [n_out, out_dim] to out,
// where n_out is lengths.size() (or the total token count for pooling::none).
size_t pooled_rows(const std::vector<size_t> &lengths, pooling pool);
int64_t pooled_dim(int64_t width, const embed_options &o);
void pool_embeddings(const float *rows, const std::vector<size_t> &lengths, int64_t width, const embed_options &o,
                     float *out);

// Cosine similarity; 0 when either vector is all zeros.
float cosine_similarity(const float *a, const float *b, size_t dim);

}  // namespace eurollm
