// Where the test fixtures live. EUROLLM_STORIES_DIR (environment) overrides the path CMake baked in.
#pragma once

#include <cstdlib>
#include <string>

#include <sys/stat.h>

namespace eurollm_test {

inline std::string stories_dir() {
    if (const char *env = std::getenv("EUROLLM_STORIES_DIR")) return env;
#ifdef EUROLLM_STORIES_DIR_DEFAULT
    return EUROLLM_STORIES_DIR_DEFAULT;
#else
    return "../shared/models/stories260K";
#endif
}

inline bool stories_available() {
    struct stat st {};
    return ::stat((stories_dir() + "/model.safetensors").c_str(), &st) == 0;
}

}  // namespace eurollm_test

#define EUROLLM_REQUIRE_STORIES()                                                            \
    do {                                                                                     \
        if (!eurollm_test::stories_available())                                              \
            GTEST_SKIP() << "stories260K not found at " << eurollm_test::stories_dir()       \
                         << " (set EUROLLM_STORIES_DIR)";                                    \
    } while (0)
