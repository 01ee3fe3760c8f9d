// The CPU backend: the kernels of kernels/cpu split over a per-context thread pool.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "backend/backend.h"
#include "common/aligned_buffer.h"
#include "core/threadpool.h"
#include "kernels.h"
#include "kernels_backward.h"

namespace eurollm {
namespace {

class cpu_backend final : public backend {
public:
    cpu_backend(int n_threads, kernels::act_precision precision)
        : pool_(n_threads > 0 ? n_threads : default_thread_count()), precision_(precision) {}

    const char *name() const override { return "cpu"; }

    void matmul(const float *x, int64_t n, const tensor_ref &w, const float *bias, float *y) override {
        const product p{&w, bias, y};
        matmuls(x, n, &p, 1);
    }

    // The activations are converted once per run of products that take them in the same form (the
    // tile kernels' terms, or the form the weight type's kernel consumes), then each product's
    // output columns are split over the threads.
    void matmuls(const float *x, int64_t n, const product *ps, size_t count) override {
        for (size_t i = 0; i < count;) {
            const input_form f = form_of(*ps[i].w, n);
            const int64_t k = ps[i].w->cols;
            size_t j = i + 1;
            while (j < count && form_of(*ps[j].w, n) == f && ps[j].w->cols == k) ++j;
            const void *prep = prepare(x, n, k, f);
            for (; i < j; ++i) {
                if (f.tiles) multiply_tiles(prep, n, *ps[i].w, ps[i].bias, ps[i].y);
                else multiply(prep, n, *ps[i].w, ps[i].bias, ps[i].y);
            }
        }
    }

    // Products of 8 rows or more through bf16 weights go through the tile kernels, which use AMX
    // where the CPU has them. Rounded activations (BF16 precision) take the training mode's bf16
    // kernel, which is the vdpbf16ps product on CPUs without AMX (measured on a Xeon with AMX: 75
    // against 55 GFLOP per CPU-second at 8 rows, 370 against 58 at 512; below 8 rows the vdpbf16ps
    // GEMV is faster). EXACT precision takes the three-term split (kernels_backward.h): products as
    // exact as the f32 FMAs', only the sums' order differs (1.7B shapes, 2 threads, GFLOP/s tiles /
    // f32 FMAs: 4 rows 73-90 / 91-114, 8 rows 113-153 / 68-118, 512 rows 715-990 / 117-119). Either
    // way a row's last bits may differ between products of fewer and more than kTileRows rows.
    // f16 weights (f16 GGUF files) take the same tiles where the CPU has AMX, each weight split
    // exactly into two bf16 terms: exact products in EXACT precision, exact weights in BF16.
    static constexpr int64_t kTileRows = kernels::kTileMinRows;
    // q8_0 / q4_0 weights take the same tiles in BF16 precision, dequantized per panel (see
    // kernels_backward.h), from this many rows: the conversion costs the same whatever the row
    // count, so below it the integer kernels are faster (1.7B q8_0 prefill, 2 threads, tok/s
    // integer / tiles: 16 rows 140 / 75, 32 rows 198 / 140-210, 64 rows 254 / 248, 512 rows 225 / 410).
    static constexpr int64_t kQuantTileRows = 64;
    bool exact() const { return precision_ == kernels::act_precision::split; }
    bool takes_tiles(const tensor_ref &w, int64_t n) const {
        if (w.type == wtype::bf16) return n >= kTileRows && (!exact() || kernels::exact_tiles_supported());
        if (w.type == wtype::f16) return n >= kTileRows && kernels::exact_tiles_supported();
        if (exact()) return false;
        return w.packed && n >= kQuantTileRows && kernels::bf16_packed_supported(w.type);
    }

    // The form a product takes its activations in: the tiles' (one form for every weight type they
    // take), or the one of the weight type's kernel.
    struct input_form {
        bool tiles;
        wtype type;
        bool operator==(const input_form &o) const { return tiles == o.tiles && (tiles || type == o.type); }
    };
    input_form form_of(const tensor_ref &w, int64_t n) const { return {takes_tiles(w, n), w.type}; }

    const void *prepare(const float *x, int64_t n, int64_t k, input_form f) {
        const size_t bytes = !f.tiles ? kernels::matmul_prep_bytes(f.type, n, k, precision_)
                             : exact() ? kernels::exact_tiles_prep_bytes(n, k)
                                       : kernels::bf16_prep_bytes(n, k);
        void *prep = prep_.get(bytes);
        if (!prep) throw std::bad_alloc();
        pool_.parallel_for(n, std::max<int64_t>(1, n / (pool_.size() * 4)), [&](int64_t i0, int64_t i1) {
            if (!f.tiles) kernels::matmul_prepare(x, k, f.type, i0, i1, prep, precision_);
            else if (exact()) kernels::exact_tiles_prepare(x, k, n, k, i0, i1, prep);
            else kernels::bf16_prepare(x, k, n, k, i0, i1, prep);
        });
        return prep;
    }

    // The output columns (weight rows) are split so each weight byte is read by one thread. Decode
    // takes small chunks for balance; prefill large ones, since each chunk streams the activation
    // blocks past its weight rows once more.
    void multiply(const void *prep, int64_t n, const tensor_ref &w, const float *bias, float *y) {
        const int64_t m = w.rows, k = w.cols;
        const int64_t chunks = pool_.size() * (n == 1 ? 16 : 4);
        const int64_t grain = std::max<int64_t>(16, (m / chunks + 15) / 16 * 16);
        pool_.parallel_for(m, grain, [&](int64_t j0, int64_t j1) {
            if (w.packed) kernels::matmul_packed(prep, n, k, w.packed, w.type, bias, j0, j1, y, m);
            else kernels::matmul_prepared(prep, n, k, w.data, w.type, bias, j0, j1, y, m, precision_);
        });
    }

    void multiply_tiles(const void *prep, int64_t n, const tensor_ref &w, const float *bias, float *y) {
        const int64_t m = w.rows, k = w.cols;
        // Column ranges in whole 256-column panels (the kernel packs W in panels of that width).
        const int64_t grain = std::max<int64_t>(256, (m / (pool_.size() * 2) + 255) / 256 * 256);
        const auto *wb = static_cast<const uint16_t *>(w.data);
        pool_.parallel_for(m, grain, [&](int64_t j0, int64_t j1) {
            if (w.type == wtype::f16) kernels::f16_tiles_matmul(prep, exact() ? 3 : 1, n, k, wb, bias, j0, j1, y, m);
            else if (exact()) kernels::exact_tiles_matmul(prep, n, k, wb, bias, j0, j1, y, m);
            else if (w.type == wtype::bf16) kernels::bf16_matmul(prep, n, k, wb, bias, j0, j1, y, m);
            else kernels::bf16_matmul_packed(prep, n, k, w.packed, w.type, m, bias, j0, j1, y, m);
        });
    }

    void embedding(const int32_t *ids, int64_t n, const tensor_ref &table, float *out) override {
        kernels::embedding_rows(ids, table.data, table.type, table.cols, 0, n, out);
    }

    void rms_norm(const float *x, int64_t n, const tensor_ref &w, float eps, float *out) override {
        pool_.parallel_for(n, 8, [&](int64_t i0, int64_t i1) {
            kernels::rms_norm_rows(x, w.data, w.type, w.cols, eps, i0, i1, out);
        });
    }

    void rope(float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
              const float *inv_freq) override {
        pool_.parallel_for(n, 8, [&](int64_t i0, int64_t i1) {
            kernels::rope_rows(x, n_heads, head_dim, pos, inv_freq, head_dim, i0, i1);
        });
    }

    void swiglu(float *gate, const float *up, int64_t n, int64_t dim) override {
        pool_.parallel_for(n, 4, [&](int64_t i0, int64_t i1) { kernels::swiglu_rows(gate, up, dim, i0, i1); });
    }

    void add(float *y, const float *x, int64_t count) override {
        pool_.parallel_for(count, 1 << 14, [&](int64_t e0, int64_t e1) { kernels::add_inplace(y, x, e0, e1); });
    }

    void attention(const attention_args &a) override {
        const int64_t group = a.n_head / a.n_head_kv;
        std::vector<char> tiled(static_cast<size_t>(a.n), 0);
        if (a.n >= kAttentionTileRows && kernels::attention_tiles_supported()) attention_tiles(a, tiled);
        int64_t widest = 1;
        for (int64_t i = 0; i < a.n; ++i) widest = std::max(widest, a.row_begin[i + 1] - a.row_begin[i]);
        // One task per (row, kv head): the query heads sharing a kv head read its cache rows once.
        pool_.parallel_for(a.n * a.n_head_kv, 1, [&](int64_t t0, int64_t t1) {
            thread_local std::vector<float> scratch;
            if (static_cast<int64_t>(scratch.size()) < group * widest) scratch.resize(static_cast<size_t>(group * widest));
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t i = t / a.n_head_kv, kvh = t % a.n_head_kv, h = kvh * group;
                if (tiled[static_cast<size_t>(i)]) continue;
                const int64_t off = kvh * a.kv_stride * wtype_row_bytes(a.kv_type, a.head_dim);
                const auto *kh = static_cast<const uint8_t *>(a.k) + off, *vh = static_cast<const uint8_t *>(a.v) + off;
                kernels::attention_heads(a.q + (i * a.n_head + h) * a.head_dim, group, kh, vh, a.kv_type, a.head_dim,
                                         a.cells + a.row_begin[i], a.row_begin[i + 1] - a.row_begin[i], a.scale,
                                         scratch.data(), a.out + (i * a.n_head + h) * a.head_dim);
            }
        });
    }

    // Prompts' attention runs on the tile products (kernels_backward.h) for blocks of up to
    // kAttentionBlock rows whose cells are prefixes of the block's last row's (one sequence's
    // causal prompt; not sliding windows or rows of different sequences, which stay on
    // attention_heads): bf16 operands in BF16 precision, three exact terms each in EXACT. 1.7B
    // shapes, 2 threads: in BF16 precision attention was ~22% of a 512-token q8_0 prefill on f32
    // FMAs and ~5% on the tiles (prefill 8-19% faster, libraries alternated, 7 rounds); in EXACT
    // it was 48% of a 2048-token bf16 prefill on f32 FMAs.
    static constexpr int64_t kAttentionTileRows = 16, kAttentionBlock = 32;
    void attention_tiles(const attention_args &a, std::vector<char> &tiled) {
        const int64_t group = a.n_head / a.n_head_kv;
        std::vector<int64_t> starts, len(static_cast<size_t>(a.n));
        const auto at = [](auto &v, int64_t i) -> auto & { return v[static_cast<size_t>(i)]; };
        for (int64_t i = 0; i < a.n; ++i) at(len, i) = a.row_begin[i + 1] - a.row_begin[i];
        // Row i's list is a prefix of row j's (len[i] <= len[j]).
        const auto prefix_of = [&](int64_t i, int64_t j) {
            return at(len, i) <= at(len, j) &&
                   std::equal(a.cells + a.row_begin[i], a.cells + a.row_begin[i + 1], a.cells + a.row_begin[j]);
        };
        for (int64_t i0 = 0; i0 < a.n; i0 += kAttentionBlock) {
            const int64_t i1 = std::min(a.n, i0 + kAttentionBlock);
            bool nested = true;
            for (int64_t i = i0; i < i1 && nested; ++i)
                nested = at(len, i) > 0 && (i == i0 || at(len, i) >= at(len, i - 1)) && prefix_of(i, i1 - 1);
            if (!nested) continue;
            starts.push_back(i0);
            std::fill(tiled.begin() + i0, tiled.begin() + i1, 1);
        }
        const auto last_row = [&](size_t b) { return std::min(a.n, starts[b] + kAttentionBlock) - 1; };
        // Runs of blocks whose lists extend one another (one sequence's prompt: all of them) share
        // one gathered K and V per kv head, the longest list's.
        const int64_t terms = exact() ? 3 : 1;
        for (size_t r0 = 0; r0 < starts.size();) {
            size_t r1 = r0 + 1;
            while (r1 < starts.size() && prefix_of(last_row(r1 - 1), last_row(r1))) ++r1;
            const int64_t top = last_row(r1 - 1), L = at(len, top);
            const int32_t *cells = a.cells + a.row_begin[top];
            const size_t elems = static_cast<size_t>(terms * L * a.head_dim);
            if (gathered_k_.size() < elems) gathered_k_.resize(elems), gathered_v_.resize(elems);
            for (int64_t kvh = 0; kvh < a.n_head_kv; ++kvh) {
                const int64_t off = kvh * a.kv_stride * wtype_row_bytes(a.kv_type, a.head_dim);
                const auto *kc = static_cast<const uint8_t *>(a.k) + off, *vc = static_cast<const uint8_t *>(a.v) + off;
                pool_.parallel_for(L, 64, [&](int64_t t0, int64_t t1) {
                    kernels::attention_tiles_gather(kc, a.kv_type, a.head_dim, cells, t0, t1, L, exact(),
                                                    gathered_k_.data());
                    kernels::attention_tiles_gather(vc, a.kv_type, a.head_dim, cells, t0, t1, L, exact(),
                                                    gathered_v_.data());
                });
                // Later blocks see more cells: hand them out first.
                pool_.parallel_for(static_cast<int64_t>(r1 - r0), 1, [&](int64_t b0, int64_t b1) {
                    thread_local kernels::aligned_buffer scratch;
                    for (int64_t b = b0; b < b1; ++b) {
                        const size_t blk = r1 - 1 - static_cast<size_t>(b);
                        const int64_t i0 = starts[blk], i1 = last_row(blk) + 1, h = kvh * group;
                        void *base = scratch.get(kernels::attention_block_tiles_scratch_bytes(
                            i1 - i0, group, at(len, i1 - 1), a.head_dim, exact()));
                        if (!base) throw std::bad_alloc();
                        kernels::attention_block_tiles(a.q + (i0 * a.n_head + h) * a.head_dim, a.n_head * a.head_dim,
                                                       i1 - i0, group, gathered_k_.data(), gathered_v_.data(), L,
                                                       a.head_dim, len.data() + i0, a.scale, exact(),
                                                       a.out + (i0 * a.n_head + h) * a.head_dim, base);
                    }
                });
            }
            r0 = r1;
        }
    }

    void *alloc(size_t bytes, int64_t) override {
        // 64-byte aligned for the vector kernels; at least one byte so that null means failure.
        void *p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
        if (!p) throw std::bad_alloc();
        return p;
    }
    void free(void *p) override { std::free(p); }
    void upload(void *dst, const void *src, size_t bytes) override { std::memcpy(dst, src, bytes); }
    void download(void *dst, const void *src, size_t bytes) override { std::memcpy(dst, src, bytes); }
    void zero(void *p, size_t bytes) override { std::memset(p, 0, bytes); }
    void copy_rows(float *dst, const float *src, const int64_t *rows, int64_t n, int64_t dim) override {
        for (int64_t j = 0; j < n; ++j)
            if (dst + j * dim != src + rows[j] * dim)
                std::memmove(dst + j * dim, src + rows[j] * dim, static_cast<size_t>(dim) * sizeof(float));
    }
    void store_kv(const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim,
                  int64_t stride, wtype type, void *cache) override {
        const int64_t row_bytes = wtype_row_bytes(type, head_dim);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t h = 0; h < n_head_kv; ++h) {
                const float *src = rows + (i * n_head_kv + h) * head_dim;
                uint8_t *dst = static_cast<uint8_t *>(cache) + (h * stride + cell[i]) * row_bytes;
                if (type == wtype::f32) std::memcpy(dst, src, static_cast<size_t>(row_bytes));
                else kernels::quantize_row(src, type, head_dim, dst);
            }
    }
    void begin_layer(int64_t) override {}

private:
    threadpool pool_;
    kernels::act_precision precision_;
    kernels::aligned_buffer prep_;  // prepared activations, grown on demand
    std::vector<uint16_t> gathered_k_, gathered_v_;  // the prompt attention's K and V on the tiles
};

}  // namespace

std::unique_ptr<backend> make_cpu_backend(int n_threads, kernels::act_precision precision) {
    return std::make_unique<cpu_backend>(n_threads, precision);
}

}  // namespace eurollm
