// Leveled logging routed to the user's callback (eurollm_log_set); stderr for WARN+ by default.
#pragma once

#include <sstream>
#include <string>

#include "eurollm.h"

namespace eurollm {

void log_set(eurollm_log_cb cb, eurollm_log_level min_level, void *user_data);
bool log_enabled(eurollm_log_level level);
void log_write(eurollm_log_level level, const std::string &message);

template <typename... Parts>
void log(eurollm_log_level level, const Parts &...parts) {
    if (!log_enabled(level)) return;
    std::ostringstream os;
    (os << ... << parts);
    log_write(level, os.str());
}

}  // namespace eurollm
