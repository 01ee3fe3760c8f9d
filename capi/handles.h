// The handle structs of the C API and their lifecycle helpers, shared by eurollm_c.cpp and
// eurollm_experimental_c.cpp (internal; not installed).
#pragma once

#include <memory>
#include <mutex>

#include "eurollm.h"
#include "generate/generator.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/device.h"

// Handles. A parent freed while children live is unregistered at once (so the caller can no
// longer use it) and destroyed when its last child goes.
struct eurollm_model {
    std::unique_ptr<eurollm::model> impl;
    eurollm::device_placement device;  // where its contexts run (CPU, or a GPU holding the weights)
    int children = 0;
    bool free_requested = false;
};

struct eurollm_context {
    eurollm_model *owner = nullptr;
    std::unique_ptr<eurollm::context> impl;
    int children = 0;       // live generators
    uint64_t gen_seqs = 0;  // sequences that have a generator
    bool free_requested = false;
    eurollm_abort_cb abort_cb = nullptr;
    void *abort_data = nullptr;
};

struct eurollm_generator {
    eurollm_context *owner = nullptr;
    std::unique_ptr<eurollm::generator> impl;
};

// Guards the parent/child counts of every handle.
inline std::mutex &lifecycle_mutex() {
    static std::mutex m;
    return m;
}

inline void destroy_model_locked(eurollm_model *m) { delete m; }

// A child (context, trainer) of `m` is gone; destroys m if its free was requested.
inline void release_model_child_locked(eurollm_model *m) {
    if (--m->children == 0 && m->free_requested) destroy_model_locked(m);
}
