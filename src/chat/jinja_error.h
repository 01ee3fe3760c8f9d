// Errors of the template interpreter. Every failure becomes an eurollm::error with status
// EUROLLM_ERR_INVALID_ARGUMENT and a message "chat template: ..." naming the line and column of
// the template where it happened, when there is one.
#pragma once

#include <sstream>
#include <string>

#include "core/error.h"

namespace eurollm::chat::jinja {

struct source_pos {
    int line = 0;    // 1-based; 0 = unknown
    int column = 0;  // 1-based, in code points
};

inline std::string where(const source_pos &pos) {
    if (pos.line <= 0) return std::string();
    std::ostringstream os;
    os << "line " << pos.line << ", column " << pos.column << ": ";
    return os.str();
}

// Syntax error found while compiling the template.
template <typename... Parts>
[[noreturn]] void syntax_error(const source_pos &pos, const Parts &...parts) {
    std::ostringstream os;
    os << "chat template: syntax error at " << where(pos);
    (os << ... << parts);
    throw eurollm::error(EUROLLM_ERR_INVALID_ARGUMENT, os.str());
}

// Error while rendering (type errors, undefined values, limits, raise_exception).
template <typename... Parts>
[[noreturn]] void render_error(const source_pos &pos, const Parts &...parts) {
    std::ostringstream os;
    os << "chat template: " << where(pos);
    (os << ... << parts);
    throw eurollm::error(EUROLLM_ERR_INVALID_ARGUMENT, os.str());
}

// Thrown by helpers that do not know the position; the interpreter catches it at the
// innermost node and rethrows it as render_error with that node's position.
struct eval_error {
    std::string message;
};

template <typename... Parts>
[[noreturn]] void type_error(const Parts &...parts) {
    std::ostringstream os;
    (os << ... << parts);
    throw eval_error{os.str()};
}

}  // namespace eurollm::chat::jinja
