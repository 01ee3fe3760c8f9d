// The GPU backend: backend.h on a CUDA or HIP device through the launchers of kernels/gpu/
// (gpu_kernels.h, plain C++). One stream, one BLAS handle and one caching allocator per backend;
// weights in a gpu_weight_store shared per device; host pointers staged through device memory
// (see backend_gpu.h). Every device call goes through EUROLLM_GPU_CHECK, which throws
// eurollm::error{EUROLLM_ERR_DEVICE, "<call> failed: <reason> at <file>:<line> (<caller>:<line>)"}.
//
// Built in every configuration: without EUROLLM_HAVE_CUDA / EUROLLM_HAVE_HIP only the "none here"
// answers at the end of this file are compiled.
#include "backend/backend_gpu.h"

#include "core/error.h"

#if defined(EUROLLM_HAVE_CUDA) || defined(EUROLLM_HAVE_HIP)

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_set>
#include <vector>

#include "gpu/gpu_kernels.h"

namespace eurollm {
namespace {

#if defined(EUROLLM_HAVE_CUDA)
constexpr gpu_kind kBuiltKind = gpu_kind::cuda;
#else
constexpr gpu_kind kBuiltKind = gpu_kind::hip;
#endif

const char *base_name(const char *path) {
    const char *slash = std::strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void check(const gpu::status &st, const char *file, int line) {
    if (st.ok()) return;
    fail(EUROLLM_ERR_DEVICE, gpu_kind_name(kBuiltKind), ": ", st.call, " failed: ", st.message, " (code ", st.code,
         ") at ", base_name(st.file), ":", st.line, " (", base_name(file), ":", line, ")");
}

#define EUROLLM_GPU_CHECK(expr) check((expr), __FILE__, __LINE__)

void require_kind(gpu_kind kind) {
    if (kind != kBuiltKind)
        fail(EUROLLM_ERR_UNSUPPORTED, "this build has no ", kind == gpu_kind::cuda ? "CUDA" : "HIP", " backend (it has ",
             kBuiltKind == gpu_kind::cuda ? "CUDA" : "HIP", ")");
}

void require_device(gpu_kind kind, int index) {
    require_kind(kind);
    const int n = gpu::device_count();
    if (index < 0 || index >= n)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "no ", gpu_kind_name(kind), " device ", index, " (", n, " present)");
}

size_t dense_elem_bytes(kernels::wtype t) {
    switch (t) {
        case kernels::wtype::f32: return 4;
        case kernels::wtype::f16:
        case kernels::wtype::bf16: return 2;
        default: fail(EUROLLM_ERR_UNSUPPORTED, "quantized weights are not supported by this GPU op");
    }
}

size_t as_size(int64_t v) { return v > 0 ? static_cast<size_t>(v) : 0; }

// ---- the weight store -----------------------------------------------------------------------------

class weight_store_impl final : public gpu_weight_store {
public:
    weight_store_impl(gpu_kind kind, int device) : kind_(kind), device_(device) {}
    ~weight_store_impl() override { release_all(); }

    gpu_kind kind() const override { return kind_; }
    int device() const override { return device_; }

    tensor_ref upload(const tensor_ref &w) override {
        if (!w.data) fail(EUROLLM_ERR_INVALID_ARGUMENT, "upload of an empty weight");
        std::lock_guard<std::mutex> lock(mu_);
        auto it = map_.find(w.data);
        if (it != map_.end()) {
            if (it->second.src_type == w.type && it->second.rows == w.rows && it->second.cols == w.cols)
                return it->second.ref;
            drop(it);  // the same address now holds another tensor
        }
        EUROLLM_GPU_CHECK(gpu::set_device(device_));
        const bool expand = kernels::wtype_is_quantized(w.type);
        const kernels::wtype dev_type = expand ? kernels::wtype::f32 : w.type;
        const size_t row_bytes = expand ? as_size(w.cols) * sizeof(float)
                                        : as_size(kernels::wtype_row_bytes(w.type, w.cols));
        const size_t bytes = row_bytes * as_size(w.rows);
        void *dev = nullptr;
        EUROLLM_GPU_CHECK(gpu::device_malloc(&dev, std::max<size_t>(bytes, 1)));
        try {
            if (!expand) {
                EUROLLM_GPU_CHECK(gpu::copy_to_device(dev, w.data, bytes, nullptr));
            } else {
                // Expanded on the host a slab of rows at a time, then copied.
                const int64_t src_row = kernels::wtype_row_bytes(w.type, w.cols);
                const int64_t slab = std::max<int64_t>(1, (int64_t{16} << 20) / static_cast<int64_t>(row_bytes));
                std::vector<float> buf;
                for (int64_t r0 = 0; r0 < w.rows; r0 += slab) {
                    const int64_t r1 = std::min(w.rows, r0 + slab);
                    buf.resize(as_size((r1 - r0) * w.cols));
                    for (int64_t r = r0; r < r1; ++r)
                        kernels::dequantize_row(static_cast<const uint8_t *>(w.data) + r * src_row, w.type, w.cols,
                                                buf.data() + (r - r0) * w.cols);
                    EUROLLM_GPU_CHECK(gpu::copy_to_device(static_cast<uint8_t *>(dev) + as_size(r0) * row_bytes,
                                                          buf.data(), buf.size() * sizeof(float), nullptr));
                }
            }
            EUROLLM_GPU_CHECK(gpu::stream_synchronize(nullptr));
        } catch (...) {
            gpu::device_free(dev);
            throw;
        }
        entry e;
        e.ref = tensor_ref{dev, dev_type, w.rows, w.cols};
        e.src_type = w.type;
        e.rows = w.rows;
        e.cols = w.cols;
        e.bytes = bytes;
        map_[w.data] = e;
        by_device_[reinterpret_cast<uintptr_t>(dev)] = bytes;
        bytes_ += bytes;
        return e.ref;
    }

    bool owns_device_pointer(const void *p) const override {
        std::lock_guard<std::mutex> lock(mu_);
        const uintptr_t a = reinterpret_cast<uintptr_t>(p);
        auto it = by_device_.upper_bound(a);
        if (it == by_device_.begin()) return false;
        --it;
        return a < it->first + std::max<size_t>(it->second, 1);
    }

    size_t device_bytes() const override {
        std::lock_guard<std::mutex> lock(mu_);
        return bytes_;
    }
    size_t count() const override {
        std::lock_guard<std::mutex> lock(mu_);
        return map_.size();
    }
    void clear() override {
        std::lock_guard<std::mutex> lock(mu_);
        release_all();
    }

private:
    struct entry {
        tensor_ref ref;
        kernels::wtype src_type = kernels::wtype::f32;
        int64_t rows = 0, cols = 0;
        size_t bytes = 0;
    };

    void drop(std::map<const void *, entry>::iterator it) {
        gpu::set_device(device_);
        gpu::device_free(const_cast<void *>(it->second.ref.data));
        by_device_.erase(reinterpret_cast<uintptr_t>(it->second.ref.data));
        bytes_ -= it->second.bytes;
        map_.erase(it);
    }
    void release_all() {
        if (!map_.empty()) gpu::set_device(device_);
        for (auto &kv : map_) gpu::device_free(const_cast<void *>(kv.second.ref.data));  // no throw in teardown
        map_.clear();
        by_device_.clear();
        bytes_ = 0;
    }

    gpu_kind kind_;
    int device_;
    mutable std::mutex mu_;
    std::map<const void *, entry> map_;    // host address -> device copy
    std::map<uintptr_t, size_t> by_device_;  // device address -> bytes
    size_t bytes_ = 0;
};

// ---- the caching allocator ------------------------------------------------------------------------
// Per backend, so per stream: a freed block goes back to the cache and is handed out again; the
// stream orders its old and new uses. Sizes round up to 512 bytes; a cached block is reused for a
// request of at least half its size. When the device is full the cache is released and the
// allocation tried once more.
class device_pool {
public:
    explicit device_pool(int device) : device_(device) {}
    ~device_pool() { trim(); }
    device_pool(const device_pool &) = delete;
    device_pool &operator=(const device_pool &) = delete;

    void *allocate(size_t bytes) {
        const size_t size = std::max<size_t>(512, (bytes + 511) / 512 * 512);
        auto it = cached_.lower_bound(size);
        if (it != cached_.end() && it->first <= 2 * size) {
            void *p = it->second;
            live_[reinterpret_cast<uintptr_t>(p)] = it->first;
            cached_.erase(it);
            return p;
        }
        void *p = nullptr;
        gpu::status st = gpu::device_malloc(&p, size);
        if (!st.ok() && !cached_.empty()) {
            trim();
            st = gpu::device_malloc(&p, size);
        }
        EUROLLM_GPU_CHECK(st);
        live_[reinterpret_cast<uintptr_t>(p)] = size;
        held_ += size;
        return p;
    }

    void release(void *p) {
        if (!p) return;
        auto it = live_.find(reinterpret_cast<uintptr_t>(p));
        if (it == live_.end()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "free of a pointer this GPU backend did not allocate");
        cached_.emplace(it->second, p);
        live_.erase(it);
    }

    bool owns(const void *p) const {
        const uintptr_t a = reinterpret_cast<uintptr_t>(p);
        auto it = live_.upper_bound(a);
        if (it == live_.begin()) return false;
        --it;
        return a < it->first + it->second;
    }

    size_t held() const { return held_; }

    void trim() {
        gpu::set_device(device_);
        for (auto &kv : cached_) {
            gpu::device_free(kv.second);
            held_ -= kv.first;
        }
        cached_.clear();
    }

    void release_everything() {
        trim();
        for (auto &kv : live_) gpu::device_free(reinterpret_cast<void *>(kv.first));
        live_.clear();
        held_ = 0;
    }

private:
    int device_;
    std::multimap<size_t, void *> cached_;  // size -> block
    std::map<uintptr_t, size_t> live_;      // block -> size, handed out
    size_t held_ = 0;
};

// ---- the backend ----------------------------------------------------------------------------------

class gpu_backend_impl;

// The device view of one op's operands: host pointers get a device copy (copied back after the op
// for outputs), device pointers pass through. finish() enqueues the copies back and waits for them;
// temporaries return to the pool when the scope ends (the stream orders any later reuse).
class device_scope {
public:
    explicit device_scope(gpu_backend_impl &be);
    ~device_scope();
    device_scope(const device_scope &) = delete;
    device_scope &operator=(const device_scope &) = delete;

    template <typename T>
    const T *in(const T *p, int64_t count) {
        return static_cast<const T *>(in_bytes(p, as_size(count) * sizeof(T)));
    }
    template <typename T>
    T *out(T *p, int64_t count) {  // written densely by the op: not copied in
        return static_cast<T *>(map(p, as_size(count) * sizeof(T), false));
    }
    template <typename T>
    T *inout(T *p, int64_t count) {  // read, or written only in part: copied in and back
        return static_cast<T *>(map(p, as_size(count) * sizeof(T), true));
    }
    const void *in_bytes(const void *p, size_t bytes);
    void *temp(size_t bytes);
    void finish();

private:
    void *map(void *p, size_t bytes, bool copy_in);

    gpu_backend_impl &be_;
    std::vector<void *> temps_;
    struct copy_back {
        void *host;
        const void *dev;
        size_t bytes;
    };
    std::vector<copy_back> backs_;
};

// The host view for ops that run on the CPU backend (layers not offloaded): the mirror image.
class host_scope {
public:
    explicit host_scope(gpu_backend_impl &be) : be_(be) {}
    template <typename T>
    const T *in(const T *p, int64_t count) {
        return static_cast<const T *>(map(const_cast<T *>(p), as_size(count) * sizeof(T), true, false));
    }
    template <typename T>
    T *out(T *p, int64_t count) {
        return static_cast<T *>(map(p, as_size(count) * sizeof(T), false, true));
    }
    template <typename T>
    T *inout(T *p, int64_t count) {
        return static_cast<T *>(map(p, as_size(count) * sizeof(T), true, true));
    }
    void finish();

private:
    void *map(void *p, size_t bytes, bool copy_in, bool copy_out);

    gpu_backend_impl &be_;
    std::vector<std::vector<unsigned char>> bufs_;
    struct copy_back {
        void *dev;
        const void *host;
        size_t bytes;
    };
    std::vector<copy_back> backs_;
};

class gpu_backend_impl final : public gpu_backend {
public:
    explicit gpu_backend_impl(const gpu_backend_options &o)
        : opts_(o), device_(o.device), pool_(o.device) {
        require_device(o.kind, o.device);
        info_ = gpu_device_properties(o.kind, o.device);
        weights_ = o.weights ? o.weights : make_gpu_weight_store(o.kind, o.device);
        if (weights_->device() != device_)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, "the weight store is on device ", weights_->device(), ", not ", device_);
        EUROLLM_GPU_CHECK(gpu::set_device(device_));
        EUROLLM_GPU_CHECK(gpu::stream_create(&stream_));
        const gpu::status st = gpu::blas_create(&blas_, stream_);
        if (!st.ok()) {
            gpu::stream_destroy(stream_);
            EUROLLM_GPU_CHECK(st);
        }
        all_on_gpu_ = o.n_gpu_layers < 0 || (o.n_layer > 0 && o.n_gpu_layers >= o.n_layer);
    }

    ~gpu_backend_impl() override {
        // Teardown never throws: a failed call here has nobody left to report to.
        gpu::set_device(device_);
        gpu::stream_synchronize(stream_);
        pool_.release_everything();
        for (void *p : host_blocks_) std::free(p);
        gpu::blas_destroy(blas_);
        gpu::stream_destroy(stream_);
    }

    const char *name() const override { return gpu_kind_name(opts_.kind); }

    // ---- memory ----
    void *alloc(size_t bytes, int64_t layer) override {
        if (layer >= 0 && layer_on_cpu(layer)) {  // read by the CPU backend: host memory
            void *p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
            if (!p) throw std::bad_alloc();
            host_blocks_.insert(p);
            return p;
        }
        select();
        return pool_.allocate(bytes);
    }
    void free(void *p) override {
        if (host_blocks_.erase(p)) return std::free(p);
        pool_.release(p);
    }
    // upload/download/zero also serve alloc()'s host memory (layers run on the CPU).
    void upload(void *dst, const void *src, size_t bytes) override {
        if (!is_device_pointer(dst)) {
            std::memcpy(dst, src, bytes);
            return;
        }
        select();
        EUROLLM_GPU_CHECK(gpu::copy_to_device(dst, src, bytes, stream_));
        EUROLLM_GPU_CHECK(gpu::stream_synchronize(stream_));
    }
    void download(void *dst, const void *src, size_t bytes) override {
        if (!is_device_pointer(src)) {
            std::memcpy(dst, src, bytes);
            return;
        }
        select();
        EUROLLM_GPU_CHECK(gpu::copy_to_host(dst, src, bytes, stream_));
        EUROLLM_GPU_CHECK(gpu::stream_synchronize(stream_));
    }
    void zero(void *p, size_t bytes) override {
        if (!is_device_pointer(p)) {
            std::memset(p, 0, bytes);
            return;
        }
        select();
        EUROLLM_GPU_CHECK(gpu::memset_device(p, 0, bytes, stream_));
    }
    void synchronize() override {
        select();
        EUROLLM_GPU_CHECK(gpu::stream_synchronize(stream_));
    }
    bool is_device_pointer(const void *p) const override {
        return p && (pool_.owns(p) || weights_->owns_device_pointer(p));
    }
    size_t pool_bytes() const override { return pool_.held(); }

    const gpu_device_info &device_info() const override { return info_; }
    gpu_weight_store &weights() override { return *weights_; }
    void set_use_blas(bool use) override { use_blas_ = use; }
    void begin_layer(int64_t layer) override { on_cpu_ = layer_on_cpu(layer); }
    bool layer_on_cpu(int64_t layer) const { return !(all_on_gpu_ || (layer >= 0 && layer < opts_.n_gpu_layers)); }

    // ---- backend.h ----
    void matmul(const float *x, int64_t n, const tensor_ref &w, const float *bias, float *y) override {
        if (on_cpu_) {
            host_scope h(*this);
            const float *hx = h.in(x, n * w.cols);
            const float *hb = h.in(bias, bias ? w.rows : 0);
            float *hy = h.out(y, n * w.rows);
            cpu().matmul(hx, n, host_weight(w), hb, hy);
            return h.finish();
        }
        device_scope d(*this);
        const tensor_ref dw = device_weight(w);
        gpu::gemm_desc g;
        g.P = n;
        g.Q = w.cols;
        g.N = w.rows;
        g.A = d.in(x, n * w.cols);
        g.a_sp = w.cols;
        g.a_sq = 1;
        g.B = dw.data;
        g.bt = dw.type;
        g.b_sq = 1;
        g.b_sc = w.cols;
        g.C = d.out(y, n * w.rows);
        g.ldc = w.rows;
        g.bias = d.in(bias, bias ? w.rows : 0);
        run_gemm(d, g);
        d.finish();
    }

    void embedding(const int32_t *ids, int64_t n, const tensor_ref &table, float *out) override {
        if (on_cpu_) {
            host_scope h(*this);
            const int32_t *hi = h.in(ids, n);
            float *ho = h.out(out, n * table.cols);
            cpu().embedding(hi, n, host_weight(table), ho);
            return h.finish();
        }
        device_scope d(*this);
        const tensor_ref dt = device_weight(table);
        EUROLLM_GPU_CHECK(gpu::embedding(stream_, d.in(ids, n), n, dt.data, dt.type, table.cols,
                                         d.out(out, n * table.cols)));
        d.finish();
    }

    void rms_norm(const float *x, int64_t n, const tensor_ref &w, float eps, float *out) override {
        const int64_t dim = w.cols;
        if (on_cpu_) {
            host_scope h(*this);
            const float *hx = h.in(x, n * dim);
            float *ho = h.out(out, n * dim);
            cpu().rms_norm(hx, n, host_weight(w), eps, ho);
            return h.finish();
        }
        device_scope d(*this);
        const tensor_ref dw = device_weight(w);
        EUROLLM_GPU_CHECK(
            gpu::rms_norm(stream_, d.in(x, n * dim), n, dw.data, dw.type, dim, eps, d.out(out, n * dim), nullptr));
        d.finish();
    }

    void rope(float *x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
              const float *inv_freq) override {
        if (on_cpu_) {
            host_scope h(*this);
            float *hx = h.inout(x, n * n_heads * head_dim);
            const int32_t *hp = h.in(pos, n);
            const float *hf = h.in(inv_freq, head_dim / 2);
            cpu().rope(hx, n, n_heads, head_dim, hp, hf);
            return h.finish();
        }
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::rope(stream_, d.inout(x, n * n_heads * head_dim), n, n_heads, head_dim, d.in(pos, n),
                                    d.in(inv_freq, head_dim / 2), head_dim, false));
        d.finish();
    }

    void swiglu(float *gate, const float *up, int64_t n, int64_t dim) override {
        if (on_cpu_) {
            host_scope h(*this);
            float *hg = h.inout(gate, n * dim);
            const float *hu = h.in(up, n * dim);
            cpu().swiglu(hg, hu, n, dim);
            return h.finish();
        }
        device_scope d(*this);
        float *g = d.inout(gate, n * dim);
        EUROLLM_GPU_CHECK(gpu::swiglu(stream_, g, d.in(up, n * dim), g, n * dim));
        d.finish();
    }

    void add(float *y, const float *x, int64_t count) override {
        if (on_cpu_) {
            host_scope h(*this);
            float *hy = h.inout(y, count);
            const float *hx = h.in(x, count);
            cpu().add(hy, hx, count);
            return h.finish();
        }
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::add(stream_, d.inout(y, count), d.in(x, count), count));
        d.finish();
    }

    void attention(const attention_args &a) override {
        if (a.kv_type != wtype::f32 && a.kv_type != wtype::f16)
            fail(EUROLLM_ERR_UNSUPPORTED, "the GPU backend reads an f32 or f16 KV cache, not ", wtype_name(a.kv_type));
        const auto *kb = static_cast<const uint8_t *>(a.k), *vb = static_cast<const uint8_t *>(a.v);
        const int64_t q_count = a.n * a.n_head * a.head_dim;
        const int64_t kv_bytes = a.n_head_kv * a.kv_stride * wtype_row_bytes(a.kv_type, a.head_dim);
        // The row offsets are small and size the score scratch: read them on the host.
        std::vector<int64_t> rb(as_size(a.n + 1), 0);
        if (a.n > 0) {
            if (is_device_pointer(a.row_begin))
                download(rb.data(), a.row_begin, rb.size() * sizeof(int64_t));
            else
                std::memcpy(rb.data(), a.row_begin, rb.size() * sizeof(int64_t));
        }
        int64_t widest = 1;
        for (int64_t i = 0; i < a.n; ++i) widest = std::max(widest, rb[as_size(i + 1)] - rb[as_size(i)]);
        const int64_t n_cells = rb[as_size(a.n)];
        if (on_cpu_) {
            host_scope h(*this);
            attention_args c = a;
            c.q = h.in(a.q, q_count);
            c.k = h.in(kb, kv_bytes);
            c.v = h.in(vb, kv_bytes);
            c.cells = h.in(a.cells, n_cells);
            c.row_begin = rb.data();
            c.out = h.out(a.out, q_count);
            cpu().attention(c);
            return h.finish();
        }
        device_scope d(*this);
        gpu::attention_desc g;
        g.q = d.in(a.q, q_count);
        g.k = d.in(kb, kv_bytes);
        g.v = d.in(vb, kv_bytes);
        g.kv_f16 = a.kv_type == wtype::f16;
        g.cells = d.in(a.cells, n_cells);
        g.row_begin = d.in(rb.data(), a.n + 1);
        g.out = d.out(a.out, q_count);
        g.n = a.n;
        g.n_head = a.n_head;
        g.n_head_kv = a.n_head_kv;
        g.head_dim = a.head_dim;
        g.kv_stride = a.kv_stride;
        g.scale = a.scale;
        g.max_visible = widest;
        float *scratch = static_cast<float *>(d.temp(as_size(a.n * a.n_head * widest) * sizeof(float)));
        EUROLLM_GPU_CHECK(gpu::attention(stream_, g, scratch));
        d.finish();
    }

    void store_kv(const float *rows, const int32_t *cell, int64_t n, int64_t n_head_kv, int64_t head_dim,
                  int64_t stride, wtype type, void *cache) override {
        if (type != wtype::f32 && type != wtype::f16)
            fail(EUROLLM_ERR_UNSUPPORTED, "the GPU backend keeps an f32 or f16 KV cache, not ", wtype_name(type));
        const int64_t count = n * n_head_kv * head_dim;
        if (!is_device_pointer(cache)) {  // a host cache (a layer run on the CPU): the CPU backend's scatter
            host_scope h(*this);
            const float *hr = h.in(rows, count);
            const int32_t *hc = h.in(cell, n);
            cpu().store_kv(hr, hc, n, n_head_kv, head_dim, stride, type, cache);
            return h.finish();
        }
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::store_kv(stream_, d.in(rows, count), d.in(cell, n), n, n_head_kv, head_dim, stride, cache,
                                        type == wtype::f16));
        d.finish();
    }

    void copy_rows(float *dst, const float *src, const int64_t *rows, int64_t n, int64_t dim) override {
        // dst[j, :] = src[rows[j], :]: the output-row gather of llama_forward. Small; staged by row.
        for (int64_t j = 0; j < n; ++j) {
            if (rows[j] == j && dst == src) continue;
            float *to = dst + j * dim;
            const float *from = src + rows[j] * dim;
            const bool dev_to = is_device_pointer(to), dev_from = is_device_pointer(from);
            const size_t bytes = as_size(dim) * sizeof(float);
            select();
            if (dev_to && dev_from)
                EUROLLM_GPU_CHECK(gpu::copy_on_device(to, from, bytes, stream_));
            else if (dev_to)
                EUROLLM_GPU_CHECK(gpu::copy_to_device(to, from, bytes, stream_));
            else if (dev_from)
                EUROLLM_GPU_CHECK(gpu::copy_to_host(to, from, bytes, stream_));
            else
                std::memmove(to, from, bytes);
        }
        synchronize();
    }

    // ---- training ----
    void gemm(int64_t P, int64_t Q, const float *A, int64_t a_sp, int64_t a_sq, const void *B, kernels::wtype bt,
              int64_t ldb, int64_t N, float *C, int64_t ldc, bool accumulate) override {
        if (P <= 0 || N <= 0) return;
        device_scope d(*this);
        const int64_t a_extent = Q > 0 ? (P - 1) * a_sp + (Q - 1) * a_sq + 1 : 0;
        const int64_t b_extent = Q > 0 ? (Q - 1) * ldb + N : 0;
        gpu::gemm_desc g;
        g.P = P;
        g.Q = Q;
        g.N = N;
        g.A = d.in(A, a_extent);
        g.a_sp = a_sp;
        g.a_sq = a_sq;
        g.B = d.in_bytes(B, as_size(b_extent) * dense_elem_bytes(bt));
        g.bt = bt;
        g.b_sq = ldb;
        g.b_sc = 1;
        g.C = d.inout(C, (P - 1) * ldc + N);
        g.ldc = ldc;
        g.accumulate = accumulate;
        run_gemm(d, g);
        d.finish();
    }

    void rms_norm_forward(const float *x, const void *w, kernels::wtype wt, int64_t n, int64_t dim, float eps,
                          float *out, float *rstd) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::rms_norm(stream_, d.in(x, n * dim), n, d.in_bytes(w, as_size(dim) * dense_elem_bytes(wt)),
                                        wt, dim, eps, d.out(out, n * dim), d.out(rstd, n)));
        d.finish();
    }

    void rms_norm_backward(const float *dy, const float *x, const float *rstd, const void *w, kernels::wtype wt,
                           int64_t n, int64_t dim, float *dx, bool accumulate) override {
        device_scope d(*this);
        float *ddx = accumulate ? d.inout(dx, n * dim) : d.out(dx, n * dim);
        EUROLLM_GPU_CHECK(gpu::rms_norm_backward(stream_, d.in(dy, n * dim), d.in(x, n * dim), d.in(rstd, n),
                                                 d.in_bytes(w, as_size(dim) * dense_elem_bytes(wt)), wt, n, dim, ddx,
                                                 accumulate));
        d.finish();
    }

    void rms_norm_backward_weight(const float *dy, const float *x, const float *rstd, int64_t n, int64_t dim,
                                  float *dw) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::rms_norm_backward_weight(stream_, d.in(dy, n * dim), d.in(x, n * dim), d.in(rstd, n), n,
                                                        dim, d.inout(dw, dim)));
        d.finish();
    }

    void rope_backward(float *dx, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t *pos,
                       const float *inv_freq) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::rope(stream_, d.inout(dx, n * n_heads * head_dim), n, n_heads, head_dim, d.in(pos, n),
                                    d.in(inv_freq, head_dim / 2), head_dim, true));
        d.finish();
    }

    void swiglu_forward(const float *gate, const float *up, float *act, int64_t n, int64_t dim) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::swiglu(stream_, d.in(gate, n * dim), d.in(up, n * dim), d.out(act, n * dim), n * dim));
        d.finish();
    }

    void swiglu_backward(const float *dact, const float *gate, const float *up, float *dgate, float *dup, int64_t n,
                         int64_t dim) override {
        device_scope d(*this);
        const int64_t c = n * dim;
        EUROLLM_GPU_CHECK(gpu::swiglu_backward(stream_, d.in(dact, c), d.in(gate, c), d.in(up, c), d.out(dgate, c),
                                               d.out(dup, c), c));
        d.finish();
    }

    void causal_softmax(float *S, int64_t n, float scale, int64_t window) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::causal_softmax(stream_, d.inout(S, n * n), n, scale, window));
        d.finish();
    }

    void softmax_backward(const float *P, const float *dP, float *dS, int64_t n, float scale) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::softmax_backward(stream_, d.in(P, n * n), d.in(dP, n * n), d.out(dS, n * n), n, scale));
        d.finish();
    }

    void attention_forward_head(const float *q, const float *k, const float *v, int64_t n, int64_t head_dim,
                                int64_t q_stride, int64_t kv_stride, float scale, int64_t window, float *P,
                                float *out) override {
        if (n <= 0) return;
        device_scope d(*this);
        const int64_t q_ext = (n - 1) * q_stride + head_dim, kv_ext = (n - 1) * kv_stride + head_dim;
        EUROLLM_GPU_CHECK(gpu::attention_forward_head(stream_, blas(), d.in(q, q_ext), d.in(k, kv_ext), d.in(v, kv_ext),
                                                      n, head_dim, q_stride, kv_stride, scale, window, d.out(P, n * n),
                                                      d.inout(out, q_ext)));
        d.finish();
    }

    void attention_backward_head(const float *dout, const float *q, const float *k, const float *v, const float *P,
                                 int64_t n, int64_t head_dim, int64_t q_stride, int64_t kv_stride, float scale,
                                 float *dq, float *dk, float *dv) override {
        if (n <= 0) return;
        device_scope d(*this);
        const int64_t q_ext = (n - 1) * q_stride + head_dim, kv_ext = (n - 1) * kv_stride + head_dim;
        float *dS = static_cast<float *>(d.temp(as_size(n * n) * sizeof(float)));
        EUROLLM_GPU_CHECK(gpu::attention_backward_head(
            stream_, blas(), d.in(dout, q_ext), d.in(q, q_ext), d.in(k, kv_ext), d.in(v, kv_ext), d.in(P, n * n), n,
            head_dim, q_stride, kv_stride, scale, d.inout(dq, q_ext), d.out(dk, n * head_dim), d.out(dv, n * head_dim),
            dS));
        d.finish();
    }

    void cross_entropy(const float *logits, const int32_t *targets, int64_t n, int64_t n_vocab, float scale,
                       float *losses, float *dlogits) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::cross_entropy(stream_, d.in(logits, n * n_vocab), d.in(targets, n), n, n_vocab, scale,
                                             d.out(losses, n), dlogits ? d.out(dlogits, n * n_vocab) : nullptr));
        d.finish();
    }

    void embedding_backward(const int32_t *ids, const float *dy, int64_t n, int64_t dim, int64_t n_rows,
                            float *dtable) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(
            gpu::embedding_backward(stream_, d.in(ids, n), d.in(dy, n * dim), n, dim, d.inout(dtable, n_rows * dim)));
        d.finish();
    }

    void adamw(float *w, const float *g, float *m, float *v, const kernels::adamw_args &a, int64_t count) override {
        device_scope d(*this);
        EUROLLM_GPU_CHECK(gpu::adamw(stream_, d.inout(w, count), d.in(g, count), d.inout(m, count), d.inout(v, count),
                                     a, count));
        d.finish();
    }

    // ---- used by the scopes ----
    void select() { EUROLLM_GPU_CHECK(gpu::set_device(device_)); }
    device_pool &pool() { return pool_; }
    gpu::stream_t stream() const { return stream_; }

private:
    gpu::blas_t blas() const { return use_blas_ ? blas_ : nullptr; }

    void run_gemm(device_scope &d, gpu::gemm_desc &g) {
        g.allow_blas = use_blas_;
        const size_t bytes = gpu::gemm_scratch_bytes(g, blas());
        void *scratch = bytes ? d.temp(bytes) : nullptr;
        EUROLLM_GPU_CHECK(gpu::gemm(stream_, blas(), g, scratch, bytes));
    }

    tensor_ref device_weight(const tensor_ref &w) {
        if (!w.data) fail(EUROLLM_ERR_INVALID_ARGUMENT, "missing weight");
        if (is_device_pointer(w.data)) return w;
        return weights_->upload(w);
    }

    tensor_ref host_weight(const tensor_ref &w) {
        if (w.data && is_device_pointer(w.data))
            fail(EUROLLM_ERR_UNSUPPORTED, "a layer placed on the CPU was given a weight in device memory");
        return w;
    }

    backend &cpu() {
        if (!cpu_) cpu_ = make_cpu_backend(opts_.n_cpu_threads);
        return *cpu_;
    }

    gpu_backend_options opts_;
    int device_;
    gpu_device_info info_;
    std::shared_ptr<gpu_weight_store> weights_;
    device_pool pool_;
    gpu::stream_t stream_ = nullptr;
    gpu::blas_t blas_ = nullptr;
    bool use_blas_ = true;
    bool all_on_gpu_ = true;
    bool on_cpu_ = false;
    std::unique_ptr<backend> cpu_;
    std::unordered_set<void *> host_blocks_;  // alloc()'s host memory (layers run on the CPU)
};

// ---- scopes ----

device_scope::device_scope(gpu_backend_impl &be) : be_(be) { be_.select(); }

device_scope::~device_scope() {
    for (void *p : temps_) be_.pool().release(p);
}

const void *device_scope::in_bytes(const void *p, size_t bytes) {
    if (!p || bytes == 0 || be_.is_device_pointer(p)) return p;
    void *dev = temp(bytes);
    EUROLLM_GPU_CHECK(gpu::copy_to_device(dev, p, bytes, be_.stream()));
    return dev;
}

void *device_scope::map(void *p, size_t bytes, bool copy_in) {
    if (!p || bytes == 0 || be_.is_device_pointer(p)) return p;
    void *dev = temp(bytes);
    if (copy_in) EUROLLM_GPU_CHECK(gpu::copy_to_device(dev, p, bytes, be_.stream()));
    backs_.push_back({p, dev, bytes});
    return dev;
}

void *device_scope::temp(size_t bytes) {
    void *p = be_.pool().allocate(bytes);
    temps_.push_back(p);
    return p;
}

void device_scope::finish() {
    for (const copy_back &c : backs_) EUROLLM_GPU_CHECK(gpu::copy_to_host(c.host, c.dev, c.bytes, be_.stream()));
    if (!backs_.empty()) EUROLLM_GPU_CHECK(gpu::stream_synchronize(be_.stream()));
    backs_.clear();
}

void *host_scope::map(void *p, size_t bytes, bool copy_in, bool copy_out) {
    if (!p || bytes == 0 || !be_.is_device_pointer(p)) return p;
    bufs_.emplace_back(bytes);
    void *host = bufs_.back().data();
    if (copy_in) be_.download(host, p, bytes);
    if (copy_out) backs_.push_back({p, host, bytes});
    return host;
}

void host_scope::finish() {
    for (const copy_back &c : backs_) be_.upload(c.dev, c.host, c.bytes);
    backs_.clear();
}

}  // namespace

const char *gpu_kind_name(gpu_kind kind) { return kind == gpu_kind::cuda ? "cuda" : "hip"; }

bool gpu_compiled(gpu_kind kind) { return kind == kBuiltKind; }

int gpu_device_count(gpu_kind kind) { return kind == kBuiltKind ? gpu::device_count() : 0; }

gpu_device_info gpu_device_properties(gpu_kind kind, int index) {
    require_device(kind, index);
    gpu::device_props p;
    EUROLLM_GPU_CHECK(gpu::get_device_props(index, &p));
    gpu_device_info info;
    info.name = p.name;
    info.arch = p.arch;
    info.total_memory = p.total_memory;
    info.free_memory = p.free_memory;
    info.warp_size = p.warp_size;
    info.multiprocessors = p.multiprocessors;
    return info;
}

std::shared_ptr<gpu_weight_store> make_gpu_weight_store(gpu_kind kind, int index) {
    require_device(kind, index);
    return std::make_shared<weight_store_impl>(kind, index);
}

std::unique_ptr<gpu_backend> make_gpu_backend(const gpu_backend_options &options) {
    return std::make_unique<gpu_backend_impl>(options);
}

}  // namespace eurollm

#else  // no GPU backend in this build

namespace eurollm {

const char *gpu_kind_name(gpu_kind kind) { return kind == gpu_kind::cuda ? "cuda" : "hip"; }

bool gpu_compiled(gpu_kind) { return false; }

int gpu_device_count(gpu_kind) { return 0; }

namespace {
[[noreturn]] void not_built(gpu_kind kind) {
    fail(EUROLLM_ERR_UNSUPPORTED, "this build has no ", kind == gpu_kind::cuda ? "CUDA" : "HIP",
         " backend (configure with -DEUROLLM_", kind == gpu_kind::cuda ? "CUDA" : "HIP", "=ON)");
}
}  // namespace

gpu_device_info gpu_device_properties(gpu_kind kind, int) { not_built(kind); }

std::shared_ptr<gpu_weight_store> make_gpu_weight_store(gpu_kind kind, int) { not_built(kind); }

std::unique_ptr<gpu_backend> make_gpu_backend(const gpu_backend_options &options) { not_built(options.kind); }

}  // namespace eurollm

#endif
