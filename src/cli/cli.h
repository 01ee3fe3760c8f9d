// Shared pieces of the eurollm command-line tool: argument cursor, number parsing, errors.
// Each command lives in its own cmd_<name>.cpp and registers in main.cpp's table.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "eurollm.hpp"

namespace cli {

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct args {
    std::vector<std::string> v;
    size_t i = 0;
    bool done() const { return i >= v.size(); }
    const std::string &next(const std::string &opt) {
        if (i >= v.size()) throw usage_error("option " + opt + " needs a value");
        return v[i++];
    }
};

inline long long to_int(const std::string &s, const std::string &opt) {
    char *end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || errno) throw usage_error("option " + opt + " expects an integer, got '" + s + "'");
    return v;
}

inline float to_float(const std::string &s, const std::string &opt) {
    char *end = nullptr;
    const float v = std::strtof(s.c_str(), &end);
    if (s.empty() || *end) throw usage_error("option " + opt + " expects a number, got '" + s + "'");
    return v;
}

// Commands: MODEL is the path after the command name, `a` holds the remaining arguments.
int cmd_info(const std::string &path, args &a);
int cmd_tokenize(const std::string &path, args &a);
int cmd_generate(const std::string &path, args &a);
int cmd_train(const std::string &path, args &a);
int cmd_export_peft(const std::string &path, args &a);
int cmd_merge(const std::string &path, args &a);
int cmd_bench(const std::string &path, args &a);
int cmd_embed(const std::string &path, args &a);
int cmd_chat(const std::string &path, args &a);
int cmd_template(const std::string &path, args &a);

}  // namespace cli
