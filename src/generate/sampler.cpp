#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "core/error.h"

namespace eurollm {

void validate(const sampler_params &p) {
    auto check = [](bool ok, const char *what) {
        if (!ok) fail(EUROLLM_ERR_INVALID_ARGUMENT, what);
    };
    check(std::isfinite(p.temperature) && p.temperature >= 0.0f, "temperature must be a finite number >= 0");
    check(p.top_k >= 0, "top_k must be >= 0");
    check(std::isfinite(p.top_p) && p.top_p > 0.0f && p.top_p <= 1.0f, "top_p must be in (0, 1]");
    check(std::isfinite(p.min_p) && p.min_p >= 0.0f && p.min_p <= 1.0f, "min_p must be in [0, 1]");
    check(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f, "repetition_penalty must be > 0");
    check(std::isfinite(p.frequency_penalty), "frequency_penalty must be finite");
    check(std::isfinite(p.presence_penalty), "presence_penalty must be finite");
    check(p.penalty_last_n >= -1, "penalty_last_n must be >= -1");
}

sampler::sampler(const sampler_params &p) : p_(p), rng_(p.seed) { validate(p); }

double sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t sampler::sample(const float *logits, int64_t n_vocab, const std::vector<int32_t> &history) {
    work_.assign(logits, logits + n_vocab);

    // Penalties over the last penalty_last_n tokens: HF repetition penalty, OpenAI frequency/presence.
    const bool penalise = p_.repetition_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f;
    if (penalise && p_.penalty_last_n != 0) {
        const size_t n_hist = history.size();
        const size_t window = p_.penalty_last_n < 0 ? n_hist : std::min<size_t>(n_hist, static_cast<size_t>(p_.penalty_last_n));
        std::unordered_map<int32_t, int> counts;
        for (size_t i = n_hist - window; i < n_hist; ++i) ++counts[history[i]];
        for (const auto &kv : counts) {
            if (kv.first < 0 || kv.first >= n_vocab) continue;
            float &l = work_[static_cast<size_t>(kv.first)];
            l = l > 0.0f ? l / p_.repetition_penalty : l * p_.repetition_penalty;
            l -= static_cast<float>(kv.second) * p_.frequency_penalty + p_.presence_penalty;
        }
    }

    if (p_.temperature == 0.0f) {  // greedy: the first maximum, as torch.argmax picks
        return static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());
    }

    // Candidates sorted by logit; temperature, then top-k, top-p and min-p cut the tail.
    ids_.resize(static_cast<size_t>(n_vocab));
    std::iota(ids_.begin(), ids_.end(), 0);
    size_t n = ids_.size();
    if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
        std::partial_sort(ids_.begin(), ids_.begin() + p_.top_k, ids_.end(),
                          [&](int32_t a, int32_t b) { return work_[a] > work_[b] || (work_[a] == work_[b] && a < b); });
        n = static_cast<size_t>(p_.top_k);
    } else {
        std::sort(ids_.begin(), ids_.end(),
                  [&](int32_t a, int32_t b) { return work_[a] > work_[b] || (work_[a] == work_[b] && a < b); });
    }
    std::vector<double> probs(n);
    const double max_l = work_[static_cast<size_t>(ids_[0])];
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        probs[i] = std::exp((work_[static_cast<size_t>(ids_[i])] - max_l) / p_.temperature);
        sum += probs[i];
    }
    for (double &pr : probs) pr /= sum;
    if (p_.top_p < 1.0f) {
        double cum = 0.0;
        for (size_t i = 0; i < n; ++i) {
            cum += probs[i];
            if (cum >= p_.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p_.min_p > 0.0f) {
        const double floor = probs[0] * p_.min_p;
        size_t keep = 1;
        while (keep < n && probs[keep] >= floor) ++keep;
        n = keep;
    }
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += probs[i];
    double r = uniform() * total;
    for (size_t i = 0; i < n; ++i) {
        r -= probs[i];
        if (r < 0.0) return ids_[i];
    }
    return ids_[n - 1];
}

}  // namespace eurollm
