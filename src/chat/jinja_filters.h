// Jinja2's built-in filters and tests (plus transformers' tojson override), evaluated with
// Python semantics. Names Jinja knows but this implementation does not provide are reported as
// unsupported; names Jinja does not know are reported as unknown -- both when the template is
// compiled, as Jinja does.
#pragma once

#include <string>

#include "chat/jinja_value.h"

namespace eurollm::chat::jinja {

enum class Availability { Supported, Unsupported, Unknown };

Availability filter_availability(const std::string &name);
Availability test_availability(const std::string &name);

// Throws eval_error on bad arguments or types.
Value apply_filter(Interpreter &in, const std::string &name, const Value &input, CallArgs &args);
bool apply_test(Interpreter &in, const std::string &name, const Value &input, CallArgs &args);

// printf-style formatting of Python's `str % args` (%s %r %d %i %f %e %g %x %o %c %%).
// `lenient` is Python's rule for a single mapping-like right operand (list, dict): unused
// arguments are then not an error.
std::string py_percent_format(const std::string &fmt, const std::vector<Value> &args, bool lenient);

}  // namespace eurollm::chat::jinja
