// The per-thread last-error slot and the fixed status names.
#include <cstring>
#include <string>

#include "api_guard.h"

namespace eurollm::capi {
namespace {
thread_local std::string last_error;
}

void set_last_error(const std::string &message) { last_error = message; }
void clear_last_error() { last_error.clear(); }

handle_registry &registry() {
    static handle_registry r;
    return r;
}

}  // namespace eurollm::capi

extern "C" {

EUROLLM_API const char *eurollm_last_error(void) { return eurollm::capi::last_error.c_str(); }

EUROLLM_API const char *eurollm_status_string(eurollm_status status) {
    int value;  // any int may arrive from C: read it as an int, not as the enum
    std::memcpy(&value, &status, sizeof value);
    switch (value) {
        case EUROLLM_OK: return "ok";
        case EUROLLM_DONE: return "done";
        case EUROLLM_ERR_GENERIC: return "error";
        case EUROLLM_ERR_INVALID_ARGUMENT: return "invalid argument";
        case EUROLLM_ERR_OUT_OF_MEMORY: return "out of memory";
        case EUROLLM_ERR_DEVICE: return "device error";
        case EUROLLM_ERR_IO: return "i/o error";
        case EUROLLM_ERR_BAD_MODEL: return "bad model";
        case EUROLLM_ERR_BUFFER_TOO_SMALL: return "buffer too small";
        case EUROLLM_ERR_CONTEXT_FULL: return "context full";
        case EUROLLM_ERR_ABORTED: return "aborted";
        case EUROLLM_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

}  // extern "C"
