// The exception hierarchy. Every failed library call raises eurollm.Error or one of its
// subclasses, carrying the library's message (eurollm_last_error()) and `.status` (a Status).
// Subclasses also derive from the matching built-in exception, so `except ValueError` or
// `except OSError` catch what they would catch from pure-Python code.
#include "common.h"

namespace eurollm_py {
namespace {

struct ErrorClass {
    eurollm_status status;
    const char *name;
    PyObject *builtin;  // a second base, or nullptr
    const char *doc;
    PyObject *type = nullptr;
};

PyObject *g_error = nullptr;  // eurollm.Error; module-lifetime references
std::vector<ErrorClass> *g_classes = nullptr;

PyObject *class_for(eurollm_status s) {
    for (const ErrorClass &c : *g_classes)
        if (c.status == s) return c.type;
    return g_error;
}

}  // namespace

[[noreturn]] void raise_status(eurollm_status status, const std::string &message) {
    const std::string text = message.empty() ? std::string(eurollm_status_string(status)) : message;
    py::handle cls(class_for(status));
    py::object exc = cls(py::str(text));
    exc.attr("status") = status_enum(status);
    PyErr_SetObject(cls.ptr(), exc.ptr());
    throw py::error_already_set();
}

void register_errors(py::module_ &m) {
    g_error = PyErr_NewExceptionWithDoc("eurollm.Error",
                                        "A libeurollm call failed. `status` is the Status it returned; "
                                        "str(e) is the library's message.",
                                        PyExc_Exception, nullptr);
    if (!g_error) throw py::error_already_set();
    PyObject_SetAttrString(g_error, "status", status_enum(EUROLLM_ERR_GENERIC).ptr());
    m.attr("Error") = py::handle(g_error);

    g_classes = new std::vector<ErrorClass>{
        {EUROLLM_ERR_INVALID_ARGUMENT, "InvalidArgumentError", PyExc_ValueError,
         "A NULL/closed handle, a bad value, invalid UTF-8, a token id outside the vocabulary."},
        {EUROLLM_ERR_OUT_OF_MEMORY, "OutOfMemoryError", PyExc_MemoryError, "Host memory ran out."},
        {EUROLLM_ERR_DEVICE, "DeviceError", nullptr, "A CUDA/HIP failure or device out of memory."},
        {EUROLLM_ERR_IO, "IoError", PyExc_OSError, "A file is missing, unreadable or unwritable."},
        {EUROLLM_ERR_BAD_MODEL, "BadModelError", nullptr, "A model file is malformed or disagrees with its config."},
        {EUROLLM_ERR_BUFFER_TOO_SMALL, "BufferTooSmallError", nullptr,
         "An output buffer was too small (the binding sizes buffers itself; seeing this is a bug)."},
        {EUROLLM_ERR_CONTEXT_FULL, "ContextFullError", nullptr, "The tokens do not fit in the context."},
        {EUROLLM_ERR_ABORTED, "AbortedError", nullptr, "The context's abort callback asked to stop."},
        {EUROLLM_ERR_UNSUPPORTED, "UnsupportedError", nullptr, "A valid request this build cannot serve."},
    };
    for (ErrorClass &c : *g_classes) {
        const std::string qualified = std::string("eurollm.") + c.name;
        PyObject *bases = c.builtin ? PyTuple_Pack(2, g_error, c.builtin) : PyTuple_Pack(1, g_error);
        if (!bases) throw py::error_already_set();
        c.type = PyErr_NewExceptionWithDoc(qualified.c_str(), c.doc, bases, nullptr);
        Py_DECREF(bases);
        if (!c.type) throw py::error_already_set();
        PyObject_SetAttrString(c.type, "status", status_enum(c.status).ptr());
        m.attr(c.name) = py::handle(c.type);
    }

    // eurollm::Error can still come out of eurollm.hpp helpers; give it the same treatment.
    py::register_exception_translator([](std::exception_ptr p) {
        if (!p) return;
        try {
            std::rethrow_exception(p);
        } catch (const eurollm::Error &e) {
            const std::string text = e.what();
            py::handle cls(class_for(e.status()));
            py::object exc = cls(py::str(text));
            exc.attr("status") = status_enum(e.status());
            PyErr_SetObject(cls.ptr(), exc.ptr());
        }
    });
}

}  // namespace eurollm_py
