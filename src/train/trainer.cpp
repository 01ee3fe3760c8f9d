#include "train/trainer.h"

#include <cmath>

#include "core/error.h"
#include "kernels_backward.h"

namespace eurollm::train {

trainer::trainer(const model &m, const trainer_options &o) : m_(m), o_(o), net_(m, o.model), rng_(o.seed) {
    if (!(o.lr >= 0.0f) || !std::isfinite(o.lr)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "lr must be finite and >= 0");
    if (!(o.beta1 >= 0.0f && o.beta1 < 1.0f) || !(o.beta2 >= 0.0f && o.beta2 < 1.0f))
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "betas must be in [0, 1)");
    if (!(o.eps > 0.0f)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "eps must be positive");
    if (!(o.weight_decay >= 0.0f)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "weight_decay must be >= 0");
    if (o.warmup_steps < 0 || o.total_steps < 0 || o.micro_batch < 0)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "warmup_steps, total_steps and micro_batch must not be negative");
    if (!(o.max_grad_norm >= 0.0f)) fail(EUROLLM_ERR_INVALID_ARGUMENT, "max_grad_norm must be >= 0");
    if (!(o.min_lr_ratio >= 0.0f && o.min_lr_ratio <= 1.0f))
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "min_lr_ratio must be in [0, 1]");
}

float trainer::lr_at(int64_t step) const {
    // Warmup is linear from lr/warmup at step 1 to lr at step `warmup` (Hugging Face starts at 0,
    // which wastes a step); then the decay over the remaining steps down to min_lr_ratio * lr.
    const double base = o_.lr;
    if (o_.warmup_steps > 0 && step <= o_.warmup_steps) return static_cast<float>(base * step / o_.warmup_steps);
    if (o_.total_steps <= o_.warmup_steps || o_.schedule == schedule_kind::constant) return o_.lr;
    const double progress = std::min(1.0, static_cast<double>(step - o_.warmup_steps) /
                                              static_cast<double>(o_.total_steps - o_.warmup_steps));
    const double floor = base * o_.min_lr_ratio;
    const double f = o_.schedule == schedule_kind::cosine ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
    return static_cast<float>(floor + (base - floor) * f);
}

namespace {

void check_batch(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T) {
    if (!tokens || !labels) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tokens and labels must not be NULL");
    if (B <= 0 || T < 2) fail(EUROLLM_ERR_INVALID_ARGUMENT, "a batch needs n_seqs >= 1 and seq_len >= 2");
}

}  // namespace

double trainer::compute_gradients(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T) {
    check_batch(tokens, labels, B, T);
    const int64_t total = train_model::count_targets(labels, B, T);
    if (total == 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, "the batch has no label to learn (all are -100)");
    net_.zero_grad();
    const int64_t mb = o_.micro_batch > 0 ? std::min(o_.micro_batch, B) : B;
    double sum = 0.0;
    int micro = 0;
    for (int64_t b0 = 0; b0 < B; b0 += mb, ++micro) {
        const int64_t nb = std::min(mb, B - b0);
        const uint64_t dseed = mix64(o_.seed ^ mix64(static_cast<uint64_t>(step_) * 1024 + static_cast<uint64_t>(micro)));
        sum += net_.forward_backward(tokens + b0 * T, labels + b0 * T, nb, T, 1.0f / static_cast<float>(total), true,
                                     dseed, nullptr);
    }
    return sum / static_cast<double>(total);
}

step_result trainer::step(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T) {
    const double loss = compute_gradients(tokens, labels, B, T);
    auto refuse = [&](const char *what, double value) {
        net_.zero_grad();
        fail(EUROLLM_ERR_GENERIC, "training step ", step_ + 1, ": the ", what, " is not finite (", value,
             "); the step was skipped and the weights and optimizer state are unchanged");
    };
    if (!std::isfinite(loss)) refuse("loss", loss);
    double ss = 0.0;
    for (const auto &p : net_.params())
        for (float g : p->g) ss += static_cast<double>(g) * g;
    const double norm = std::sqrt(ss);
    if (!std::isfinite(norm)) refuse("gradient norm", norm);

    const int64_t t = step_ + 1;
    kernels::adamw_args a{};
    a.lr = lr_at(t);
    a.beta1 = o_.beta1;
    a.beta2 = o_.beta2;
    a.eps = o_.eps;
    a.bias_correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(o_.beta1), static_cast<double>(t)));
    a.bias_correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(o_.beta2), static_cast<double>(t)));
    a.grad_scale = o_.max_grad_norm > 0.0f && norm > o_.max_grad_norm ? static_cast<float>(o_.max_grad_norm / (norm + 1e-6))
                                                                      : 1.0f;
    for (auto &p : net_.params()) {
        a.weight_decay = p->decay ? o_.weight_decay : 0.0f;
        net_.pool().parallel_for(p->size(), 1 << 15, [&](int64_t e0, int64_t e1) {
            kernels::adamw_update(p->w.data(), p->g.data(), p->m.data(), p->v.data(), a, e0, e1);
        });
    }
    step_ = t;
    tokens_seen_ += B * T;
    step_result r;
    r.loss = loss;
    r.grad_norm = norm;
    r.lr = a.lr;
    r.tokens = B * T;
    r.loss_tokens = train_model::count_targets(labels, B, T);
    r.step = t;
    return r;
}

double trainer::eval(const int32_t *tokens, const int32_t *labels, int64_t B, int64_t T, int64_t *n_tokens) {
    check_batch(tokens, labels, B, T);
    const int64_t mb = o_.micro_batch > 0 ? std::min(o_.micro_batch, B) : B;
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t b0 = 0; b0 < B; b0 += mb) {
        const int64_t nb = std::min(mb, B - b0);
        int64_t c = 0;
        sum += net_.forward_backward(tokens + b0 * T, labels + b0 * T, nb, T, 0.0f, false, 0, &c);
        count += c;
    }
    if (n_tokens) *n_tokens = count;
    return count > 0 ? sum / static_cast<double>(count) : 0.0;
}

}  // namespace eurollm::train
