// Process-wide functions: versions, devices, status names, logging.
#include "common.h"

namespace eurollm_py {
namespace {

// The Python log callback. Leaked on purpose (see enums.cpp); guarded by the GIL.
py::object *g_log_fn = nullptr;

void log_trampoline(eurollm_log_level level, const char *message, void *) {
    if (!Py_IsInitialized()) return;
#if PY_VERSION_HEX >= 0x030D0000
    if (Py_IsFinalizing()) return;
#else
    if (_Py_IsFinalizing()) return;
#endif
    py::gil_scoped_acquire gil;
    if (!g_log_fn || !*g_log_fn) return;
    try {
        (*g_log_fn)(log_level_enum(level), utf8_to_str(message, message ? std::strlen(message) : 0));
    } catch (py::error_already_set &e) {
        // A log line has nowhere to send an exception: report it like an exception in __del__.
        e.discard_as_unraisable("eurollm log callback");
    }
}

void set_log_callback(py::object fn, int min_level) {
    if (min_level < EUROLLM_LOG_DEBUG || min_level > EUROLLM_LOG_NONE)
        throw py::value_error("level must be a LogLevel");
    if (!fn.is_none() && !PyCallable_Check(fn.ptr())) throw py::type_error("the log callback must be callable or None");
    if (!g_log_fn) g_log_fn = new py::object();
    if (fn.is_none()) {
        eurollm_log_set(nullptr, static_cast<eurollm_log_level>(min_level), nullptr);
        *g_log_fn = py::object();
    } else {
        *g_log_fn = fn;
        eurollm_log_set(log_trampoline, static_cast<eurollm_log_level>(min_level), nullptr);
    }
}

}  // namespace

void register_library(py::module_ &m) {
    m.def("version", [] { return std::string(eurollm_version_string()); },
          "The version of the libeurollm actually loaded (eurollm_version_string), e.g. '0.1.0'.");
    m.def("version_number", &eurollm_version_number,
          "The loaded library's version as MAJOR*10000 + MINOR*100 + PATCH.");
    m.attr("HEADER_VERSION") = EUROLLM_VERSION_STRING;

    m.def("device_count", [](int kind) { return eurollm_device_count(static_cast<eurollm_device_kind>(kind)); },
          py::arg("kind"),
          "Usable devices of a kind (Device.CPU: 1; a GPU kind this build lacks: 0).");

    m.def(
        "device_name",
        [](int kind, int32_t index) {
            char buf[256];
            size_t len = 0;
            check(eurollm_device_name(static_cast<eurollm_device_kind>(kind), index, buf, sizeof buf, &len));
            return std::string(buf, len);
        },
        py::arg("kind"), py::arg("index") = 0,
        "A device's name: 'cpu', or e.g. 'NVIDIA H100 80GB HBM3 (sm_90)'. InvalidArgumentError for a device "
        "that does not exist.");
    m.def(
        "device_memory",
        [](int kind, int32_t index) {
            uint64_t total = 0, avail = 0;
            check(eurollm_device_memory(static_cast<eurollm_device_kind>(kind), index, &total, &avail));
            return py::make_tuple(total, avail);
        },
        py::arg("kind"), py::arg("index") = 0, "A GPU's memory in bytes as (total, free); the CPU: (0, 0).");

    m.def("status_string", [](int status) { return std::string(eurollm_status_string(static_cast<eurollm_status>(status))); },
          py::arg("status"), "A fixed English name for a Status ('invalid argument').");

    m.def(
        "cosine_similarity",
        [](py::array_t<float, py::array::c_style | py::array::forcecast> a,
           py::array_t<float, py::array::c_style | py::array::forcecast> b) {
            if (a.ndim() != 1 || b.ndim() != 1) throw py::value_error("cosine_similarity takes two vectors");
            if (a.size() != b.size()) throw py::value_error("the vectors have different lengths");
            float out = 0.0f;
            check(eurollm_cosine_similarity(a.data(), b.data(), static_cast<size_t>(a.size()), &out));
            return out;
        },
        py::arg("a"), py::arg("b"), "Cosine similarity of two vectors (0 when either is all zeros).");

    m.def("set_log_callback", &set_log_callback, py::arg("callback"), py::arg("level") = static_cast<int>(EUROLLM_LOG_WARN),
          R"pbdoc(Route the library's log lines to ``callback(level: LogLevel, message: str)``.

Lines below ``level`` are dropped. ``callback=None`` restores the default (WARN and above to
stderr; ``level`` still applies). Process-wide: call it before loading models. The callback may
run on any thread; an exception it raises is reported through sys.unraisablehook.)pbdoc");
}

}  // namespace eurollm_py
