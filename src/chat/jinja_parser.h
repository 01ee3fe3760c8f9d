// Parser for the Jinja2 statement and expression grammar, following jinja2/parser.py:
// the same operator precedence (filters bind tighter than arithmetic, `not x is y` is
// `not (x is y)`, `**` is left-associative), implicit tuples, slices, keyword arguments,
// filter/test names checked at compile time. Supported statements: for (with else, loop
// filter), if/elif/else, set (plain, tuple, namespace attribute, block), macro, filter,
// with, print, break/continue, generation. Unsupported ones are rejected with their name.
#pragma once

#include <memory>
#include <string>

#include "chat/jinja_ast.h"

namespace eurollm::chat::jinja {

// Throws eurollm::error ("chat template: syntax error at line L, column C: ...").
std::shared_ptr<Program> parse_template(const std::string &source);

}  // namespace eurollm::chat::jinja
