// Deterministic random numbers of training: splitmix64. The state is one uint64, saved in
// checkpoints; dropout masks are counter-based (a hash of stream and element index), so they
// need no state at all and a resumed run draws exactly the masks of an uninterrupted one.
#pragma once

#include <cstdint>

namespace eurollm::train {

inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) from element `i` of a stream.
inline float uniform01(uint64_t stream, uint64_t i) {
    return static_cast<float>(mix64(stream + (i + 1) * 0x9E3779B97F4A7C15ULL) >> 40) * (1.0f / 16777216.0f);
}

class rng {
public:
    explicit rng(uint64_t seed = 0) : state_(seed) {}
    uint64_t next() {
        state_ += 0x9E3779B97F4A7C15ULL;
        return mix64(state_);
    }
    float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
    uint64_t state() const { return state_; }
    void set_state(uint64_t s) { state_ = s; }

private:
    uint64_t state_;
};

}  // namespace eurollm::train
