// Turns logits into a token: penalties, temperature, top-k, top-p, min-p, then a seeded draw
// (or argmax when temperature is 0). Same seed, same logits -> same token on every platform.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace eurollm {

struct sampler_params {
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repetition_penalty = 1.0f;
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    int32_t penalty_last_n = 64;
    uint64_t seed = 0;
};

// Throws INVALID_ARGUMENT naming the first bad field.
void validate(const sampler_params &p);

class sampler {
public:
    explicit sampler(const sampler_params &p);

    // `history`: tokens already in the sequence (prompt and generated), for the penalties.
    int32_t sample(const float *logits, int64_t n_vocab, const std::vector<int32_t> &history);

private:
    double uniform();  // [0, 1) from the engine's bits, independent of the standard library's distributions

    sampler_params p_;
    std::mt19937_64 rng_;
    std::vector<float> work_;
    std::vector<int32_t> ids_;
};

}  // namespace eurollm
