// eurollm::error -- the one exception type of the core. The C API firewall (capi/eurollm_c.cpp)
// turns it into an eurollm_status plus the thread's last-error message; nothing else crosses it.
#pragma once

#include <stdexcept>
#include <string>

#include "eurollm.h"

namespace eurollm {

class error : public std::runtime_error {
public:
    error(eurollm_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    eurollm_status status() const noexcept { return status_; }

private:
    eurollm_status status_;
};

// Builds the message from any streamable parts: fail(EUROLLM_ERR_BAD_MODEL, "tensor ", name, " ...").
template <typename... Parts>
[[noreturn]] void fail(eurollm_status status, const Parts &...parts);

}  // namespace eurollm

#include <sstream>

template <typename... Parts>
[[noreturn]] void eurollm::fail(eurollm_status status, const Parts &...parts) {
    std::ostringstream os;
    (os << ... << parts);
    throw error(status, os.str());
}
