// The key/value cache of one context, shared by up to 64 sequences. Each cell holds one token's
// keys and values for every layer, its position, and the set of sequences it belongs to (a set,
// so sequences can share a common prefix without copying it).
#pragma once

#include <cstdint>
#include <vector>

#include "model/arch/llama.h"
#include "model/hparams.h"

namespace eurollm {

constexpr int kMaxSequences = 64;

class kv_cache {
public:
    // type: f32 (exact) or f16 (half the memory; keys and values rounded to nearest even). The
    // layers' memory comes from `mem` (the backend whose ops read it), which must outlive the cache.
    kv_cache(const hparams &hp, int64_t n_ctx, wtype type, backend &mem);
    ~kv_cache();
    kv_cache(const kv_cache &) = delete;
    kv_cache &operator=(const kv_cache &) = delete;

    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_used() const;
    kv_layers &layers() { return layers_; }

    // Assigns a free cell to each of n tokens (seq[i], pos[i]) and lists, per token, the cells it
    // attends to: cells of its sequence with position <= its own (and inside the sliding window).
    // Throws CONTEXT_FULL, changing nothing, when there are not enough free cells.
    struct placement {
        std::vector<int32_t> cell;
        std::vector<int32_t> visible;
        std::vector<int64_t> visible_begin;
    };
    void place(const int32_t *seq, const int32_t *pos, int64_t n, int64_t window, placement &out);
    // Frees cells placed by a batch that did not complete.
    void release(const std::vector<int32_t> &cells);

    void clear();
    void seq_remove(int32_t seq, int32_t p0, int32_t p1);  // positions [p0, p1); p1 < 0 = to the end
    void seq_copy(int32_t src, int32_t dst, int32_t p0, int32_t p1);
    void seq_keep(int32_t seq);

    // Raw access for state save/restore.
    std::vector<int32_t> &cell_pos() { return pos_; }
    std::vector<uint64_t> &cell_seqs() { return seqs_; }
    int64_t floats_per_cell_per_layer() const { return n_head_kv_ * head_dim_; }
    // Per cell, in the order given: all layers' K then V ([2, n_layer, n_head_kv, head_dim]), as f32
    // whatever the cache's type (f16 widens exactly; copying in rounds to the cache's type). Rows
    // move to and from the backend's memory as one span per layer and head (lowest to highest cell).
    void copy_cells_out(const std::vector<int32_t> &cells, float *dst) const;
    void copy_cells_in(const std::vector<int32_t> &cells, const float *src);

private:
    void free_layers() noexcept;

    backend &mem_;
    int64_t n_ctx_, n_layer_, n_head_kv_, head_dim_;
    wtype type_;
    int64_t row_bytes_;  // one head's keys (or values) of one cell
    std::vector<int32_t> pos_;    // -1 when free
    std::vector<uint64_t> seqs_;  // bit s set: the cell belongs to sequence s
    kv_layers layers_;
};

}  // namespace eurollm
