// Conversions between Python values and the C API's buffers.
#include <climits>

#include "common.h"

namespace eurollm_py {

py::str utf8_to_str(const char *data, size_t len) {
    PyObject *s = PyUnicode_DecodeUTF8(data ? data : "", static_cast<Py_ssize_t>(data ? len : 0), "replace");
    if (!s) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(s);
}

std::string text_arg(py::handle text, const char *what) {
    if (PyUnicode_Check(text.ptr())) {
        Py_ssize_t n = 0;
        const char *p = PyUnicode_AsUTF8AndSize(text.ptr(), &n);  // UnicodeEncodeError for lone surrogates
        if (!p) throw py::error_already_set();
        return std::string(p, static_cast<size_t>(n));
    }
    if (PyBytes_Check(text.ptr()) || PyByteArray_Check(text.ptr()) || PyMemoryView_Check(text.ptr())) {
        py::bytes b = py::reinterpret_steal<py::bytes>(PyBytes_FromObject(text.ptr()));
        if (!b) throw py::error_already_set();
        return std::string(b);
    }
    throw py::type_error(std::string(what) + " must be str or bytes, not " +
                         std::string(py::str(py::type::handle_of(text).attr("__name__"))));
}

std::vector<int32_t> tokens_arg(py::handle tokens) {
    if (PyUnicode_Check(tokens.ptr()) || PyBytes_Check(tokens.ptr()))
        throw py::type_error("tokens must be a sequence of ints, not text (use Model.tokenize)");
    std::vector<int32_t> out;
    if (py::isinstance<py::array>(tokens)) {
        py::array a = py::reinterpret_borrow<py::array>(tokens);
        const char kind = a.dtype().kind();
        if (kind != 'i' && kind != 'u') throw py::type_error("a token array must have an integer dtype");
        if (a.ndim() > 1) throw py::value_error("a token array must be one-dimensional");
        py::array_t<int64_t, py::array::c_style | py::array::forcecast> ids(a);
        out.reserve(static_cast<size_t>(ids.size()));
        for (py::ssize_t i = 0; i < ids.size(); ++i) {
            const int64_t v = ids.data()[i];
            if (v < INT32_MIN || v > INT32_MAX) throw py::value_error("token id " + std::to_string(v) + " is out of range");
            out.push_back(static_cast<int32_t>(v));
        }
        return out;
    }
    py::iterator it;
    try {
        it = py::iter(tokens);
    } catch (py::error_already_set &) {
        throw py::type_error("tokens must be an iterable of ints, not " +
                             std::string(py::str(py::type::handle_of(tokens).attr("__name__"))));
    }
    for (py::handle item : it) {
        if (PyFloat_Check(item.ptr()) || !PyIndex_Check(item.ptr()))
            throw py::type_error("token ids must be ints, got " +
                                 std::string(py::str(py::type::handle_of(item).attr("__name__"))));
        py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(item.ptr()));
        if (!v) throw py::error_already_set();
        int overflow = 0;
        const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
        if (overflow || x < INT32_MIN || x > INT32_MAX)
            throw py::value_error("token id " + std::string(py::str(v)) + " is out of range");
        out.push_back(static_cast<int32_t>(x));
    }
    return out;
}

std::string path_arg(py::handle path) {
    // os.fsencode gives the bytes the file system sees (TypeError for non-paths).
    std::string s = py::bytes(py::module_::import("os").attr("fsencode")(path));
    if (s.find('\0') != std::string::npos) throw py::value_error("path contains a NUL character");
    return s;
}

}  // namespace eurollm_py
