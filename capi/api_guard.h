// The exception firewall and handle checks of the C API (used only by eurollm_c.cpp).
#pragma once

#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "core/error.h"
#include "eurollm.h"

namespace eurollm::capi {

// The integer a C caller passed for an enum (a parameter or a params field). C may pass any int;
// reading it as the C++ enum type is undefined for values outside the enum (UBSan reports it), so
// it is copied out as an int. Take enum parameters by reference to pass them here.
template <typename E>
int enum_value(const E &e) {
    static_assert(sizeof(E) == sizeof(int), "C enums are int-sized");
    int v;
    std::memcpy(&v, &e, sizeof v);
    return v;
}

inline void check_version(uint32_t got, uint32_t want, const char *what) {
    if (got == 0 || got > want)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, what, " version ", got, " is not supported (this library knows up to ", want, ")");
}

// The caller's params (any known version) over the current defaults: the fields its version knows
// are taken, the rest keep their defaults. NULL means all defaults.
template <typename P>
P params_or_default(const P *params, uint32_t latest, size_t (*size)(uint32_t), eurollm_status (*init)(P *, uint32_t),
                    const char *what) {
    P p;
    init(&p, latest);
    if (params) {
        check_version(params->version, latest, what);
        std::memcpy(&p, params, size(params->version));
        p.version = latest;
    }
    return p;
}

// The thread's last-error slot (last_error.cpp).
void set_last_error(const std::string &message);
void clear_last_error();

// Live handles of every kind. A pointer that is not registered (NULL, freed, or never ours) is
// rejected before it is dereferenced, so a freed handle is a status, not a use-after-free.
class handle_registry {
public:
    void add(const void *h) {
        std::lock_guard<std::mutex> lock(mutex_);
        live_.insert(h);
    }
    void remove(const void *h) {
        std::lock_guard<std::mutex> lock(mutex_);
        live_.erase(h);
    }
    bool contains(const void *h) {
        std::lock_guard<std::mutex> lock(mutex_);
        return h && live_.count(h) != 0;
    }

private:
    std::mutex mutex_;
    std::unordered_set<const void *> live_;
};

handle_registry &registry();

// Runs `body` and maps whatever it throws to a status plus the thread's last error.
template <typename Body>
eurollm_status guarded(Body &&body) noexcept {
    clear_last_error();
    try {
        return body();
    } catch (const eurollm::error &e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory");
        return EUROLLM_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        set_last_error(std::string("internal error: ") + e.what());
        return EUROLLM_ERR_GENERIC;
    } catch (...) {
        set_last_error("internal error: unknown exception");
        return EUROLLM_ERR_GENERIC;
    }
}

}  // namespace eurollm::capi

#define EUROLLM_CHECK_ARG(cond, msg)                                   \
    do {                                                               \
        if (!(cond)) eurollm::fail(EUROLLM_ERR_INVALID_ARGUMENT, msg); \
    } while (0)
