// Raw-pointer kernels. They know nothing of src/: no model, no tensor class, no threads. Each CPU
// kernel computes a caller-given range so that the backend can split the work over its threads.
//
// Shapes are written [rows, cols], row-major, innermost last.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace eurollm::kernels {

// Storage types of weights. Block-quantized types (the GGUF/ggml layouts, bit for bit) hold a row
// of `cols` elements as cols / block_elems blocks; cols must be a multiple of block_elems.
//   q8_0: 32 elements = f16 scale d + 32 x int8               (34 bytes), x = d * q
//   q4_0: 32 elements = f16 scale d + 16 bytes of nibbles     (18 bytes), x = d * (q - 8);
//         element i < 16 is the low nibble of byte i, element i + 16 its high nibble
//   q4_k, q6_k: 256-element super-blocks (144 / 210 bytes), dequantized by dequantize_row.
enum class wtype : int { f32 = 0, f16 = 1, bf16 = 2, q8_0 = 3, q4_0 = 4, q4_k = 5, q6_k = 6 };

// Elements per block (1 for f32/f16/bf16) and bytes per block.
int64_t wtype_block_elems(wtype wt);
int64_t wtype_block_bytes(wtype wt);
// Bytes of a row of `cols` elements (cols a multiple of the block size).
inline int64_t wtype_row_bytes(wtype wt, int64_t cols) { return cols / wtype_block_elems(wt) * wtype_block_bytes(wt); }
bool wtype_is_quantized(wtype wt);

// out[0, n) = the first n elements of a row of type wt as f32 (n a multiple of the block size).
void dequantize_row(const void *row, wtype wt, int64_t n, float *out);
// Quantizes n f32 values (n a multiple of the block size) into `out` (wtype_row_bytes bytes),
// round-to-nearest as ggml's reference quantizers do (q4_k / q6_k: the best of several grids per
// sub-block, see quant.cpp). Supports every wtype.
void quantize_row(const float *x, wtype wt, int64_t n, void *out);

// The instruction set the CPU kernels dispatch to (chosen once, at first use).
const char *cpu_isa_name();

// How f32 activations meet bf16 weights in a product (other weight types ignore it).
//   split: the float32-exact default that the reference tests against transformers rely on:
//          f32 FMAs on the weights converted to f32, or (bf16split, Zen 4) x = hi + lo as two bf16
//          terms, 16 mantissa bits kept (relative error ~2^-17). Products of many rows on AMX
//          use the three-term exact split instead (kernels_backward.h, exact_tiles_*).
//   round: x rounded to one bf16 (8 mantissa bits), as PyTorch's bf16 autocast and llama.cpp's
//          bf16 path do: twice the `vdpbf16ps` rate, for compute-bound prefill and training.
// The result of a row never depends on the other rows of the product in either mode.
enum class act_precision : int { split = 0, round = 1 };

// y[i, j] = sum_k x[i, k] * w[j, k] (+ bias[j]) for i in [0, n), j in [j0, j1).
//   x: [n, k] f32, w: [m, k] of type wt (rows of wtype_row_bytes(wt, k) bytes), bias: [m] f32 or
//   null, y: [n, ldy] f32. Accumulates in f32; f32/f16/bf16 weights keep the activations to
//   within 2^-16 relative, q8_0/q4_0 quantize them to 8 bits per 32-element block and q4_k/q6_k
//   per 256-element super-block (as ggml does), with exact integer sums inside a block.
// Convenience form: prepares the activations itself (see below) on every call, in a thread-local
// buffer; throws std::bad_alloc when that buffer cannot be allocated (the two-step form below
// leaves the allocation to the caller).
void matmul_rows(const float *x, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                 int64_t j1, float *y, int64_t ldy, act_precision p = act_precision::split);

// The two-step form, for callers that split one product over threads: convert the activations
// once (rows [i0, i1) of x into `prep`, matmul_prep_bytes(wt, n, k) bytes, 64-byte aligned), then
// let each thread compute its output columns from the prepared rows. All three take the same `p`.
size_t matmul_prep_bytes(wtype wt, int64_t n, int64_t k, act_precision p = act_precision::split);
void matmul_prepare(const float *x, int64_t k, wtype wt, int64_t i0, int64_t i1, void *prep,
                    act_precision p = act_precision::split);
void matmul_prepared(const void *prep, int64_t n, int64_t k, const void *w, wtype wt, const float *bias, int64_t j0,
                     int64_t j1, float *y, int64_t ldy, act_precision p = act_precision::split);

// Packed q8_0 / q4_0 weights: the CPU kernels' own layout of a [rows, cols] matrix (rows in groups
// of 16, four bytes of each row side by side; see kernels/cpu/matmul_quant.cpp), made at load where
// pack_at_load says it pays, and otherwise by the products themselves, a group at a time.
// matmul_packed gives the same result, bit for bit, as matmul_prepared on the canonical rows, from
// the same prepared activations.
//   packed_weight_bytes: the packed size (0 unless wt is q8_0 or q4_0 and cols a multiple of 32).
//   pack_weight_groups: packs row groups [g0, g1) (rows 16 g .. 16 g + 15) of the canonical rows w.
//   matmul_packed: as matmul_prepared; j0 a multiple of 16 avoids computing a group twice.
//   pack_at_load: whether packing wt at load pays on this CPU: where products of 16 rows or more
//   run on AMX tiles, which take the packed groups. Elsewhere the kernels read the canonical rows
//   in place, decode as fast as from the packed copy and batches and prompts transposing each
//   group as they reach it, and a model loads without copying its weights (Zen 4, 1.7B q8_0:
//   2-4 s -> 0.2 s).
size_t packed_weight_bytes(wtype wt, int64_t rows, int64_t cols);
bool pack_at_load(wtype wt);
void pack_weight_groups(const void *w, wtype wt, int64_t rows, int64_t cols, int64_t g0, int64_t g1, void *out);
void matmul_packed(const void *prep, int64_t n, int64_t k, const void *packed, wtype wt, const float *bias,
                   int64_t j0, int64_t j1, float *y, int64_t ldy);

// out[i, :] = row `ids[i]` of the table [n_rows, dim] as f32, for i in [i0, i1).
void embedding_rows(const int32_t *ids, const void *table, wtype wt, int64_t dim, int64_t i0, int64_t i1,
                    float *out);

// out[i, :] = x[i, :] * rms_inv(x[i, :]) * w  for i in [i0, i1). x, out: [n, dim]; may alias.
void rms_norm_rows(const float *x, const void *w, wtype wt, int64_t dim, float eps, int64_t i0, int64_t i1,
                   float *out);

// Rotates heads in place. x: [n, n_heads * head_dim]; pos[i] is the position of row i;
// inv_freq: [rotary_dim/2] (scaling already applied). Rows [i0, i1).
void rope_rows(float *x, int64_t n_heads, int64_t head_dim, const int32_t *pos, const float *inv_freq,
               int64_t rotary_dim, int64_t i0, int64_t i1);

// gate[i, j] = silu(gate[i, j]) * up[i, j], rows [i0, i1) of [n, dim].
void swiglu_rows(float *gate, const float *up, int64_t dim, int64_t i0, int64_t i1);

// y += x, elements [e0, e1).
void add_inplace(float *y, const float *x, int64_t e0, int64_t e1);

// Attention of one query row's heads that share a kv head, against the cache cells it may see.
//   q: [n_heads, head_dim]; k_cache, v_cache: [n_cells, head_dim] for their kv head (row stride
//   head_dim), of kv_type f32 or f16; cells[0..n_visible) are the visible cell indices, in
//   position order. out: [n_heads, head_dim]. scratch: at least n_heads * n_visible floats.
// A head's result has the same bits whatever n_heads it was computed with.
void attention_heads(const float *q, int64_t n_heads, const void *k_cache, const void *v_cache, wtype kv_type,
                     int64_t head_dim, const int32_t *cells, int64_t n_visible, float scale, float *scratch,
                     float *out);

}  // namespace eurollm::kernels
