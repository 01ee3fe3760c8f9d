// Where a model runs: the CPU, or a GPU holding its weights (all layers, or the first N with the
// rest on the CPU). Decided at load (eurollm_model_params.device), shared by the model's contexts.
#pragma once

#include <cstdint>
#include <memory>

#include "backend/backend_gpu.h"
#include "model/model.h"

namespace eurollm {

struct device_placement {
    std::shared_ptr<gpu_weight_store> gpu;  // null: the CPU
    int64_t n_gpu_layers = -1;              // -1: every layer
};

// Uploads the weights of the layers placed on the device (the embedding and output head too when
// every layer is) into a new weight store of that device. Throws UNSUPPORTED (kind not built),
// DEVICE (no such device, out of memory).
device_placement place_on_gpu(const model &m, gpu_kind kind, int device, int64_t n_gpu_layers);

// The backend a context on this placement computes with.
std::unique_ptr<backend> make_backend(const model &m, const device_placement &where, int n_threads,
                                      kernels::act_precision precision);

}  // namespace eurollm
