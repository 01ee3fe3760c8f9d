// Shared pieces of the eurollm._eurollm extension: the objects behind the Python classes, the
// per-context lock, callback state, and conversions. Everything here is built on capi/eurollm.hpp
// (and eurollm.h for the calls the C++ wrapper does not cover); nothing includes src/.
//
// Ownership: a Python Context keeps its Model's handle alive (ContextCore holds an eurollm::Model,
// which shares the handle), a Python Generator keeps its ContextCore alive. close() drops the
// Python object's own reference; the C handle is freed when the last dependant lets go, so a child
// is always freed before its parent, as eurollm.h requires.
//
// GIL: every call that may run the model (load, decode, step, logits) releases the GIL. Python
// callbacks (token, abort, log) take it back. Objects holding Python references are only ever
// destroyed with the GIL held (they are owned by Python objects).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "eurollm.hpp"
// Training (eurollm.Trainer) is libeurollm's experimental API: no ABI promise, and the binding
// marks it experimental in turn. The bundled library always matches the header compiled here.
#define EUROLLM_EXPERIMENTAL
#include "eurollm_experimental.h"

namespace py = pybind11;

namespace eurollm_py {

// ---- registration, one function per source file (module.cpp calls them in order) ----
void register_enums(py::module_ &m);
void register_errors(py::module_ &m);
void register_library(py::module_ &m);
void register_params(py::module_ &m);
void register_model(py::module_ &m);
void register_context(py::module_ &m);
void register_generator(py::module_ &m);
void register_trainer(py::module_ &m);

// ---- enums (enums.cpp): Python enum.IntEnum / IntFlag classes built from the C values ----
py::object status_enum(int value);
py::object stop_reason_enum(int value);
py::object device_enum(int value);
py::object log_level_enum(int value);
py::object pooling_enum(int value);
py::object enum_value(const char *cls, int value);  // any enum class registered by enums.cpp

// ---- errors (errors.cpp) ----
// Raises the Python exception that matches `status` (which must be negative) with `message`.
[[noreturn]] void raise_status(eurollm_status status, const std::string &message);
// Like eurollm::check: a negative status raises, using eurollm_last_error() of this thread.
inline eurollm_status check(eurollm_status s) {
    if (s < 0) raise_status(s, eurollm_last_error());
    return s;
}

// ---- conversions (convert.cpp) ----
// UTF-8 bytes to str; undecodable bytes become U+FFFD rather than an exception.
py::str utf8_to_str(const char *data, size_t len);
// str (encoded as UTF-8; lone surrogates raise UnicodeEncodeError) or bytes-like (passed as is;
// the library rejects invalid UTF-8) to bytes. Anything else raises TypeError.
std::string text_arg(py::handle text, const char *what);
// A token list from any iterable of ints or an integer NumPy array.
std::vector<int32_t> tokens_arg(py::handle tokens);
// os.PathLike / str / bytes to a filesystem path string.
std::string path_arg(py::handle path);

// ---- a Python callable called from library code ----
// The first exception a callback raises is kept and re-raised when the library call returns.
struct PyCallback {
    py::object fn;
    std::optional<py::error_already_set> error;

    explicit operator bool() const { return static_cast<bool>(fn); }
    // Re-raises (and clears) a stored exception. Needs the GIL.
    void rethrow_pending() {
        if (error) {
            py::error_already_set e = std::move(*error);
            error.reset();
            throw e;
        }
    }
};

// ---- one thread at a time ----
// A context (with the generators on it) and a trainer are used by one thread at a time
// (eurollm.h). Calls from other threads wait (with the GIL released); a call from inside one of
// the object's own callbacks would re-enter the library mid-call and raises RuntimeError instead.
struct LockState {
    std::mutex mutex;
    std::atomic<std::thread::id> owner{};
};

class ContextLock {  // (used for trainers too)
public:
    explicit ContextLock(LockState &state);
    ~ContextLock();
    ContextLock(const ContextLock &) = delete;
    ContextLock &operator=(const ContextLock &) = delete;

private:
    LockState &state_;
};

struct ContextCore : LockState {
    eurollm::Model model;      // keeps the model alive while the context lives
    eurollm::Context context;  // destroyed before `model`
    PyCallback abort_cb;

    ContextCore(const eurollm::Model &m, const eurollm::ContextParams &p) : model(m), context(m, p) {}
    ~ContextCore();
};

// After a library call on a context: an exception raised by the abort callback wins over the
// ABORTED status it caused; otherwise a negative status raises.
eurollm_status finish_context_call(ContextCore &core, eurollm_status s);

// ---- the objects behind the Python classes ----
struct ModelObj {
    std::optional<eurollm::Model> model;
    std::string path;
    bool add_bos_default = false;  // what EUROLLM_TOKENIZE_MODEL_DEFAULT does about BOS

    const eurollm::Model &get() const;  // raises ValueError once closed
};

struct ContextObj {
    std::shared_ptr<ContextCore> core;
    py::object model;  // the Python Model, for Context.model

    std::shared_ptr<ContextCore> get() const;  // raises ValueError once closed
};

}  // namespace eurollm_py
