// eurollm._eurollm: the extension module. The public package is eurollm (eurollm/__init__.py),
// which re-exports these names and adds pure-Python conveniences.
#include "common.h"

PYBIND11_MODULE(_eurollm, m) {
    m.doc() = "Low-level bindings of libeurollm's C API (capi/eurollm.h). Use the eurollm package.";
    eurollm_py::register_enums(m);  // first: the others use the enum classes
    eurollm_py::register_errors(m);
    eurollm_py::register_library(m);
    eurollm_py::register_params(m);
    eurollm_py::register_model(m);
    eurollm_py::register_context(m);
    eurollm_py::register_generator(m);
    eurollm_py::register_trainer(m);
}
