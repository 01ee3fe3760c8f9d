#include "runtime/device.h"

#include "core/error.h"

namespace eurollm {

device_placement place_on_gpu(const model &m, gpu_kind kind, int device, int64_t n_gpu_layers) {
    if (n_gpu_layers < -1) fail(EUROLLM_ERR_INVALID_ARGUMENT, "n_gpu_layers ", n_gpu_layers, " is negative (-1 = all)");
    device_placement where;
    where.gpu = make_gpu_weight_store(kind, device);
    where.n_gpu_layers = n_gpu_layers;
    const int64_t n_layer = m.hp.n_layer;
    const int64_t on_gpu = n_gpu_layers < 0 ? n_layer : std::min(n_gpu_layers, n_layer);
    // Uploaded now, so that the first generation does not pay for it and a model too large for the
    // device fails here, at load, with the device's out-of-memory status.
    for (int64_t l = 0; l < on_gpu; ++l) {
        const layer_weights &L = m.layers[static_cast<size_t>(l)];
        for (const tensor_ref *w : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down})
            where.gpu->upload(*w);
    }
    if (on_gpu == n_layer)
        for (const tensor_ref *w : {&m.tok_embd, &m.output_norm, &m.output}) where.gpu->upload(*w);
    return where;
}

std::unique_ptr<backend> make_backend(const model &m, const device_placement &where, int n_threads,
                                      kernels::act_precision precision) {
    if (!where.gpu) return make_cpu_backend(n_threads, precision);
    gpu_backend_options o;
    o.kind = where.gpu->kind();
    o.device = where.gpu->device();
    o.n_gpu_layers = where.n_gpu_layers;
    o.n_layer = m.hp.n_layer;
    o.n_cpu_threads = n_threads;
    o.weights = where.gpu;
    return make_gpu_backend(o);
}

}  // namespace eurollm
