#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace eurollm {
namespace {

struct log_sink {
    std::mutex mutex;
    eurollm_log_cb cb = nullptr;
    void *user_data = nullptr;
    std::atomic<int> min_level{EUROLLM_LOG_WARN};
};

log_sink &sink() {
    static log_sink s;
    return s;
}

const char *level_name(eurollm_log_level level) {
    switch (level) {
        case EUROLLM_LOG_DEBUG: return "debug";
        case EUROLLM_LOG_INFO: return "info";
        case EUROLLM_LOG_WARN: return "warning";
        default: return "error";
    }
}

}  // namespace

void log_set(eurollm_log_cb cb, eurollm_log_level min_level, void *user_data) {
    log_sink &s = sink();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.cb = cb;
    s.user_data = user_data;
    s.min_level = cb ? min_level : EUROLLM_LOG_WARN;
}

bool log_enabled(eurollm_log_level level) { return level >= sink().min_level.load(std::memory_order_relaxed); }

void log_write(eurollm_log_level level, const std::string &message) {
    log_sink &s = sink();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.cb) {
        s.cb(level, message.c_str(), s.user_data);
    } else {
        std::fprintf(stderr, "eurollm %s: %s\n", level_name(level), message.c_str());
    }
}

}  // namespace eurollm
