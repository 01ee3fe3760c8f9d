// The contract a GPU backend relies on, checked on the CPU: the forward pass and the KV cache touch
// the memory a backend allocates only through that backend (its ops, upload, download, zero,
// copy_rows), never directly from the host. The fenced backend below hands out memory that is
// inaccessible (PROT_NONE) except while one of its own calls runs, so a stray host access faults
// here as it would on device memory; every op is delegated to the CPU backend, so the results
// must equal the plain CPU backend's bit for bit.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "backend/backend.h"
#include "common/fixtures.h"
#include "common/forward.h"
#include "model/arch/llama.h"
#include "model/model.h"
#include "runtime/kv_cache.h"

namespace eurollm {
namespace {

class fenced_backend final : public backend {
public:
    explicit fenced_backend(backend &cpu) : cpu_(cpu) {}
    ~fenced_backend() override {
        for (auto &b : blocks_) ::munmap(b.first, b.second);
    }

    const char *name() const override { return "fenced"; }
    std::vector<int64_t> layers_begun, layers_allocated;

    void matmul(const float *x, int64_t n, const tensor_ref &w, const float *bias, float *y) override {
        open_scope s(*this);
        cpu_.matmul(x, n, w, bias, y);
    }
    void embedding(const int32_t *ids, int64_t n, const tensor_ref &table, float *out) override {
        open_scope s(*this);
        cpu_.embedding(ids, n, table, out);
    }
    void rms_norm(const float *x, int64_t n, const tensor_ref &w, float eps, float *out) override {
        open_scope s(*this);
        cpu_.rms_norm(x, n, w, eps, out);
    }
    void rope(float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos, const float *inv_freq) override {
        open_scope s(*this);
        cpu_.rope(x, n, n_heads, head_dim, pos, inv_freq);
    }
    void swiglu(float *gate, const float *up, int64_t n, int64_t dim) override {
        open_scope s(*this);
        cpu_.swiglu(gate, up, n, dim);
    }
    void add(float *y, const float *x, int64_t count) override {
        open_scope s(*this);
        cpu_.add(y, x, count);
    }
    void attention(const attention_args &a) override {
        open_scope s(*this);
        cpu_.attention(a);
    }
    void *alloc(size_t bytes, int64_t layer) override {
        const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
        const size_t size = (std::max<size_t>(bytes, 1) + page - 1) / page * page;
        void *p = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        blocks_[p] = size;
        layers_allocated.push_back(layer);
        return p;
    }
    void free(void *p) override {
        auto it = blocks_.find(p);
        ASSERT_NE(it, blocks_.end()) << "free of memory this backend did not allocate";
        ::munmap(it->first, it->second);
        blocks_.erase(it);
    }
    void upload(void *dst, const void *src, size_t bytes) override {
        open_scope s(*this);
        std::memcpy(dst, src, bytes);
    }
    void download(void *dst, const void *src, size_t bytes) override {
        open_scope s(*this);
        std::memcpy(dst, src, bytes);
    }
    void zero(void *p, size_t bytes) override {
        open_scope s(*this);
        std::memset(p, 0, bytes);
    }
    void copy_rows(float *dst, const float *src, const int64_t *rows, int64_t n, int64_t dim) override {
        open_scope s(*this);
        cpu_.copy_rows(dst, src, rows, n, dim);
    }
    void store_kv(const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim, int64_t stride,
                  wtype type, void *cache) override {
        open_scope s(*this);
        cpu_.store_kv(rows, cell, n, n_head_kv, head_dim, stride, type, cache);
    }
    void begin_layer(int64_t layer) override { layers_begun.push_back(layer); }

    size_t live_blocks() const { return blocks_.size(); }

private:
    // The memory is readable and writable only inside the backend's own calls.
    struct open_scope {
        explicit open_scope(fenced_backend &b) : b_(b) { b_.protect(PROT_READ | PROT_WRITE); }
        ~open_scope() { b_.protect(PROT_NONE); }
        fenced_backend &b_;
    };
    void protect(int prot) {
        for (auto &b : blocks_) ::mprotect(b.first, b.second, prot);
    }

    backend &cpu_;
    std::map<void *, size_t> blocks_;
};

std::vector<float> forward(const model &m, backend &be, kv_cache &cache, llama_scratch &s,
                           const std::vector<int32_t> &tokens, int32_t pos0) {
    std::vector<float> logits(static_cast<size_t>(m.hp.n_vocab));
    eurollm_test::forward_last(m, be, cache, s, tokens, pos0, logits.data());
    return logits;
}

TEST(BackendMemory, ForwardPassAndKvCacheReachBackendMemoryOnlyThroughTheBackend) {
    EUROLLM_REQUIRE_STORIES();
    const auto m = load_model(eurollm_test::stories_dir(), model_load_options{});
    auto cpu = make_cpu_backend(2);
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 300}, next = {289};
    for (wtype kv : {wtype::f32, wtype::f16}) {
        SCOPED_TRACE(wtype_name(kv));
        kv_cache plain_cache(m->hp, 32, kv, *cpu);
        llama_scratch plain_scratch;
        const std::vector<float> want1 = forward(*m, *cpu, plain_cache, plain_scratch, prompt, 0);
        const std::vector<float> want2 = forward(*m, *cpu, plain_cache, plain_scratch, next, 6);

        fenced_backend fenced(*cpu);
        {
            kv_cache cache(m->hp, 32, kv, fenced);
            llama_scratch s;
            EXPECT_EQ(forward(*m, fenced, cache, s, prompt, 0), want1);
            EXPECT_EQ(forward(*m, fenced, cache, s, next, 6), want2);
            // One allocation per layer for keys and one for values, tagged with their layer; then the scratch.
            std::vector<int64_t> want_layers;
            for (int64_t l = 0; l < m->hp.n_layer; ++l) want_layers.insert(want_layers.end(), {l, l});
            want_layers.push_back(-1);
            EXPECT_EQ(fenced.layers_allocated, want_layers);
            // Every pass announces the embedding, each layer in order, then the output head.
            std::vector<int64_t> pass = {-1};
            for (int64_t l = 0; l < m->hp.n_layer; ++l) pass.push_back(l);
            pass.push_back(m->hp.n_layer);
            std::vector<int64_t> two_passes = pass;
            two_passes.insert(two_passes.end(), pass.begin(), pass.end());
            EXPECT_EQ(fenced.layers_begun, two_passes);
            // State rows travel through download/upload: a cell read back equals the CPU cache's.
            const int64_t per_cell = 2 * m->hp.n_layer * cache.floats_per_cell_per_layer();
            const std::vector<int32_t> cells = {3, 0, 6};
            std::vector<float> a(cells.size() * static_cast<size_t>(per_cell)), b(a.size());
            cache.copy_cells_out(cells, a.data());
            plain_cache.copy_cells_out(cells, b.data());
            EXPECT_EQ(a, b);
            // Written into other cells (as a state load does), read back the same.
            const std::vector<int32_t> others = {10, 5, 20};
            cache.copy_cells_in(others, a.data());
            cache.copy_cells_out(others, b.data());
            EXPECT_EQ(a, b);
            std::vector<float> c(static_cast<size_t>(per_cell));
            cache.copy_cells_out({6}, c.data());
            EXPECT_TRUE(std::equal(c.begin(), c.end(), a.begin() + 2 * per_cell)) << "cell 6 moved by the write";
        }
        EXPECT_EQ(fenced.live_blocks(), 0u) << "the cache and the scratch must free what they allocated";
    }
}

}  // namespace
}  // namespace eurollm
