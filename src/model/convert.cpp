#include "model/convert.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <cstring>
#include <vector>

#include <sys/mman.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "model/model.h"

namespace eurollm {
namespace {

// The weight's source bytes are no longer referenced: free an owned copy (GGUF q/k rows), or drop
// the pages wholly inside the tensor (with mmap off they are heap pages nobody reads again).
void release_source(model &m, const tensor_ref &w) {
    for (auto it = m.owned_weights.begin(); it != m.owned_weights.end(); ++it)
        if (it->data() == w.data) {
            m.owned_weights.erase(it);
            return;
        }
    drop_pages(w.data, static_cast<size_t>(wtype_row_bytes(w.type, w.cols) * w.rows));
}

bool in_file_mapping(const model &m, const void *p) {
    for (const auto &f : m.files)
        if (f->contains(p)) return f->mapped();
    return false;
}

}  // namespace

bool writable_weight_type(wtype type) {
    return type == wtype::f32 || type == wtype::f16 || type == wtype::bf16 || type == wtype::q8_0 ||
           type == wtype::q4_0 || type == wtype::q4_k || type == wtype::q6_k;
}

wtype converted_weight_type(wtype type, const tensor_ref &w, weight_place where) {
    if (type == wtype::q4_0 && where.kind == weight_place::output_head) type = wtype::q8_0;
    if (type == wtype::q4_k) {  // llama.cpp's Q4_K_M (use_more_bits for attn_v and ffn_down)
        const int64_t i = where.layer, n = where.n_layer;
        const bool more_bits = i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
        const bool mixed = where.kind == weight_place::attn_v || where.kind == weight_place::ffn_down;
        if (where.kind == weight_place::output_head || (mixed && more_bits)) type = wtype::q6_k;
    }
    if (w.cols % wtype_block_elems(type) != 0) {
        const bool k_quant = type == wtype::q4_k || type == wtype::q6_k;
        type = k_quant && w.cols % 32 == 0 ? wtype::q8_0 : wtype::f16;
    }
    return type;
}

void convert_rows(const tensor_ref &w, wtype type, const std::function<int64_t(int64_t)> &src_row, int64_t r0,
                  int64_t r1, uint8_t *dst, threadpool &pool) {
    const int64_t src_bytes = wtype_row_bytes(w.type, w.cols), dst_bytes = wtype_row_bytes(type, w.cols);
    const auto *src = static_cast<const uint8_t *>(w.data);
    pool.parallel_for(r1 - r0, 64, [&](int64_t i0, int64_t i1) {
        std::vector<float> row(w.type == type ? 0 : static_cast<size_t>(w.cols));
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t r = r0 + i;
            const uint8_t *s = src + (src_row ? src_row(r) : r) * src_bytes;
            uint8_t *d = dst + i * dst_bytes;
            if (w.type == type) {  // no round trip through f32: the stored bytes are kept exactly
                std::memcpy(d, s, static_cast<size_t>(dst_bytes));
            } else {
                kernels::dequantize_row(s, w.type, w.cols, row.data());
                kernels::quantize_row(row.data(), type, w.cols, d);
            }
        }
    });
}

void convert_weights(model &m, wtype type) {
    if (!writable_weight_type(type))
        fail(EUROLLM_ERR_UNSUPPORTED, "converting weights to ", wtype_name(type),
             " is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K are)");
    threadpool pool(default_thread_count());
    auto convert = [&](tensor_ref &w, weight_place where) {
        const wtype t = converted_weight_type(type, w, where);
        if (t == w.type) return;
        std::vector<uint8_t> out(static_cast<size_t>(wtype_row_bytes(t, w.cols) * w.rows));
        convert_rows(w, t, {}, 0, w.rows, out.data(), pool);
        release_source(m, w);
        m.owned_weights.push_back(std::move(out));  // moving keeps the buffer, so views stay valid
        w.data = m.owned_weights.back().data();
        w.type = t;
    };
    const bool tied = m.output.data == m.tok_embd.data;
    const weight_place head{weight_place::output_head};
    convert(m.tok_embd, tied ? head : weight_place{});
    if (tied) m.output = m.tok_embd;
    else convert(m.output, head);
    const auto n_layer = static_cast<int64_t>(m.layers.size());
    for (int64_t l = 0; l < n_layer; ++l) {
        layer_weights &L = m.layers[static_cast<size_t>(l)];
        for (tensor_ref *w : {&L.wq, &L.wk, &L.wo, &L.w_gate, &L.w_up})
            convert(*w, {weight_place::projection, l, n_layer});
        convert(L.wv, {weight_place::attn_v, l, n_layer});
        convert(L.w_down, {weight_place::ffn_down, l, n_layer});
    }
}

void pack_weights(model &m) {
    std::vector<tensor_ref *> todo;
    for (layer_weights &L : m.layers)
        for (tensor_ref *w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
            if (kernels::pack_at_load(w->type)) todo.push_back(w);
    if (kernels::pack_at_load(m.output.type)) todo.push_back(&m.output);
    // One anonymous region for all of them, 2 MiB aligned and marked for huge pages: filling 1.5 GB
    // in 4 KiB pages cost more page faults than the packing itself.
    constexpr size_t kHuge = size_t(2) << 20;
    size_t total = 0;
    for (const tensor_ref *w : todo) total += (kernels::packed_weight_bytes(w->type, w->rows, w->cols) + 63) / 64 * 64;
    if (total == 0) return;
    const size_t mapped = (total + kHuge - 1) / kHuge * kHuge + kHuge;
    void *region = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw std::bad_alloc();
    m.packed_region = std::shared_ptr<void>(region, [mapped](void *p) { ::munmap(p, mapped); });
    auto *next = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(region) + kHuge - 1) / kHuge * kHuge);
    ::madvise(next, mapped - kHuge, MADV_HUGEPAGE);  // a hint; 4 KiB pages still work
    threadpool pool(default_thread_count());
    for (tensor_ref *wp : todo) {
        tensor_ref &w = *wp;
        const size_t bytes = kernels::packed_weight_bytes(w.type, w.rows, w.cols);
        if (bytes == 0) continue;
        uint8_t *out = next;
        next += (bytes + 63) / 64 * 64;
        const bool release = in_file_mapping(m, w.data);
        const int64_t groups = (w.rows + 15) / 16, row_bytes = wtype_row_bytes(w.type, w.cols);
        // Chunks of about 8 MiB of source, split over the threads in tasks of a few groups and
        // released when done (one call per chunk: each interrupts every CPU to flush its TLB).
        const int64_t chunk = std::max<int64_t>(1, (8 << 20) / (16 * row_bytes));
        for (int64_t c0 = 0; c0 < groups; c0 += chunk) {
            const int64_t c1 = std::min(groups, c0 + chunk);
            pool.parallel_for(c1 - c0, 4, [&](int64_t a, int64_t b) {
                kernels::pack_weight_groups(w.data, w.type, w.rows, w.cols, c0 + a, c0 + b, out);
            });
            if (release) {
                const int64_t r0 = c0 * 16, r1 = std::min(w.rows, c1 * 16);
                drop_pages(static_cast<const uint8_t *>(w.data) + r0 * row_bytes, static_cast<size_t>((r1 - r0) * row_bytes));
            }
        }
        w.packed = out;
    }
    if (m.output.data == m.tok_embd.data) m.tok_embd.packed = m.output.packed;  // tied
}

}  // namespace eurollm
