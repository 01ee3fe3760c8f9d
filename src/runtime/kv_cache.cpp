#include "runtime/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels.h"

namespace eurollm {

kv_cache::kv_cache(const hparams &hp, int64_t n_ctx, wtype type, backend &mem)
    : mem_(mem), n_ctx_(n_ctx), n_layer_(hp.n_layer), n_head_kv_(hp.n_head_kv), head_dim_(hp.head_dim), type_(type),
      row_bytes_(wtype_row_bytes(type, hp.head_dim)) {
    if (type != wtype::f32 && type != wtype::f16)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "a KV cache holds F32 or F16, not ", wtype_name(type));
    const int64_t per_layer = hp.n_head_kv * n_ctx * row_bytes_;
    pos_.assign(static_cast<size_t>(n_ctx), -1);
    seqs_.assign(static_cast<size_t>(n_ctx), 0);
    layers_.stride = n_ctx;
    layers_.type = type;
    // Each layer's keys and values where that layer's ops run (device memory for offloaded layers).
    try {
        for (int64_t l = 0; l < hp.n_layer; ++l)
            for (std::vector<void *> *side : {&layers_.k, &layers_.v}) {
                side->push_back(mem_.alloc(static_cast<size_t>(per_layer), l));
                mem_.zero(side->back(), static_cast<size_t>(per_layer));
            }
    } catch (const std::bad_alloc &) {
        free_layers();
        fail(EUROLLM_ERR_OUT_OF_MEMORY, "cannot allocate a KV cache of ", n_ctx, " tokens (",
             2 * per_layer * hp.n_layer / (1 << 20), " MiB)");
    } catch (...) {
        free_layers();
        throw;
    }
}

kv_cache::~kv_cache() { free_layers(); }

void kv_cache::free_layers() noexcept {
    for (std::vector<void *> *side : {&layers_.k, &layers_.v}) {
        for (void *p : *side) {
            try {
                mem_.free(p);
            } catch (...) {  // teardown has nobody to report to
            }
        }
        side->clear();
    }
}

int64_t kv_cache::n_used() const {
    return std::count_if(seqs_.begin(), seqs_.end(), [](uint64_t s) { return s != 0; });
}

void kv_cache::place(const int32_t *seq, const int32_t *pos, int64_t n, int64_t window, placement &out) {
    // Lowest free cells first.
    out.cell.clear();
    for (int64_t c = 0; c < n_ctx_ && static_cast<int64_t>(out.cell.size()) < n; ++c)
        if (seqs_[static_cast<size_t>(c)] == 0) out.cell.push_back(static_cast<int32_t>(c));
    if (static_cast<int64_t>(out.cell.size()) < n)
        fail(EUROLLM_ERR_CONTEXT_FULL, n, " tokens do not fit in the context (", n_used(), " of ", n_ctx_,
             " cells used)");
    for (int64_t i = 0; i < n; ++i) {
        const auto c = static_cast<size_t>(out.cell[static_cast<size_t>(i)]);
        pos_[c] = pos[i];
        seqs_[c] = uint64_t{1} << seq[i];
    }
    // Visible cells per token, in position order.
    out.visible.clear();
    out.visible_begin.assign(1, 0);
    std::vector<int32_t> members;
    int32_t members_of = -1;
    for (int64_t i = 0; i < n; ++i) {
        if (seq[i] != members_of) {
            members.clear();
            const uint64_t bit = uint64_t{1} << seq[i];
            for (int64_t c = 0; c < n_ctx_; ++c)
                if (seqs_[static_cast<size_t>(c)] & bit) members.push_back(static_cast<int32_t>(c));
            // Position order, whatever cells the tokens landed in: the sums then run in the same
            // order as for the sequence alone, so batching does not change a single bit.
            std::sort(members.begin(), members.end(),
                      [&](int32_t a, int32_t b) { return pos_[static_cast<size_t>(a)] < pos_[static_cast<size_t>(b)]; });
            members_of = seq[i];
        }
        const int32_t p = pos[i];
        for (int32_t c : members) {
            const int32_t cp = pos_[static_cast<size_t>(c)];
            if (cp <= p && (window <= 0 || cp > p - window)) out.visible.push_back(c);
        }
        out.visible_begin.push_back(static_cast<int64_t>(out.visible.size()));
    }
}

void kv_cache::release(const std::vector<int32_t> &cells) {
    for (int32_t c : cells) {
        seqs_[static_cast<size_t>(c)] = 0;
        pos_[static_cast<size_t>(c)] = -1;
    }
}

void kv_cache::clear() {
    std::fill(seqs_.begin(), seqs_.end(), 0);
    std::fill(pos_.begin(), pos_.end(), -1);
}

void kv_cache::seq_remove(int32_t seq, int32_t p0, int32_t p1) {
    const uint64_t bit = uint64_t{1} << seq;
    for (size_t c = 0; c < seqs_.size(); ++c) {
        if (!(seqs_[c] & bit) || pos_[c] < p0 || (p1 >= 0 && pos_[c] >= p1)) continue;
        seqs_[c] &= ~bit;
        if (seqs_[c] == 0) pos_[c] = -1;
    }
}

void kv_cache::seq_copy(int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    const uint64_t sbit = uint64_t{1} << src, dbit = uint64_t{1} << dst;
    for (size_t c = 0; c < seqs_.size(); ++c)
        if ((seqs_[c] & sbit) && pos_[c] >= p0 && (p1 < 0 || pos_[c] < p1)) seqs_[c] |= dbit;
}

void kv_cache::seq_keep(int32_t seq) {
    const uint64_t bit = uint64_t{1} << seq;
    for (size_t c = 0; c < seqs_.size(); ++c) {
        seqs_[c] &= bit;
        if (seqs_[c] == 0) pos_[c] = -1;
    }
}

// State files hold f32. Per layer and head, the span of rows from the lowest to the highest cell
// asked for is read from wherever the layer lives in one call, then each cell's row is widened from
// it (or rounded into it, and the span written back): a GPU cache moves in a few large copies, and a
// CPU cache copies only the span, not the whole context.
void kv_cache::copy_cells_out(const std::vector<int32_t> &cells, float *dst) const {
    if (cells.empty()) return;
    const int64_t per_cell = 2 * n_layer_ * n_head_kv_ * head_dim_;
    const auto [lo, hi] = std::minmax_element(cells.begin(), cells.end());
    std::vector<uint8_t> span(static_cast<size_t>((*hi - *lo + 1) * row_bytes_));
    int64_t part = 0;  // (side, layer, head): the row's place in a cell record [2, n_layer, n_head_kv]
    for (const std::vector<void *> *side : {&layers_.k, &layers_.v})
        for (int64_t l = 0; l < n_layer_; ++l)
            for (int64_t h = 0; h < n_head_kv_; ++h, ++part) {
                const auto *rows = static_cast<const uint8_t *>((*side)[static_cast<size_t>(l)]) + h * n_ctx_ * row_bytes_;
                mem_.download(span.data(), rows + *lo * row_bytes_, span.size());
                for (size_t i = 0; i < cells.size(); ++i)
                    kernels::dequantize_row(span.data() + (cells[i] - *lo) * row_bytes_, type_, head_dim_,
                                            dst + static_cast<int64_t>(i) * per_cell + part * head_dim_);
            }
}

void kv_cache::copy_cells_in(const std::vector<int32_t> &cells, const float *src) {
    if (cells.empty()) return;
    const int64_t per_cell = 2 * n_layer_ * n_head_kv_ * head_dim_;
    const auto [lo, hi] = std::minmax_element(cells.begin(), cells.end());
    std::vector<uint8_t> span(static_cast<size_t>((*hi - *lo + 1) * row_bytes_));
    int64_t part = 0;
    for (const std::vector<void *> *side : {&layers_.k, &layers_.v})
        for (int64_t l = 0; l < n_layer_; ++l)
            for (int64_t h = 0; h < n_head_kv_; ++h, ++part) {
                auto *rows = static_cast<uint8_t *>((*side)[static_cast<size_t>(l)]) + h * n_ctx_ * row_bytes_;
                mem_.download(span.data(), rows + *lo * row_bytes_, span.size());  // keeps the cells between
                for (size_t i = 0; i < cells.size(); ++i)
                    kernels::quantize_row(src + static_cast<int64_t>(i) * per_cell + part * head_dim_, type_, head_dim_,
                                          span.data() + (cells[i] - *lo) * row_bytes_);
                mem_.upload(rows + *lo * row_bytes_, span.data(), span.size());
            }
}

}  // namespace eurollm
