// Durable file output for checkpoints, adapters and merged models: every file is written to a
// temporary name, fsync'ed, renamed over its final name and the directory fsync'ed, so a crash
// leaves either the old file or the new one, never a torn one. Plus a safetensors writer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace eurollm::train {

// Test hook: when the environment variable EUROLLM__TEST_CRASH_AT equals `point`, the process
// kills itself with SIGKILL right there (used by the kill-during-save test).
void crash_point(const char *point);

// Writes `path` atomically. `produce` is called with a sink it feeds bytes to.
using byte_sink = std::function<void(const void *, size_t)>;
void write_file_atomic(const std::string &path, const std::function<void(const byte_sink &)> &produce,
                       const char *crash_tag = nullptr);
void write_text_atomic(const std::string &path, const std::string &text);

void make_dirs(const std::string &path);  // mkdir -p; throws IO
void fsync_dir(const std::string &path);
bool is_dir(const std::string &path);
void remove_tree(const std::string &path);  // rm -rf (no error if absent)
std::vector<std::string> list_dir(const std::string &path);

struct st_tensor {
    std::string name;
    std::string dtype;  // "F32", "BF16", "F16"
    std::vector<int64_t> shape;
    const void *data = nullptr;
    size_t nbytes = 0;
};
// A safetensors file: 8-byte header length, JSON header (names in the given order, 8-byte
// aligned), the raw data. Written atomically.
void write_safetensors(const std::string &path, const std::vector<st_tensor> &tensors,
                       const std::map<std::string, std::string> &metadata, const char *crash_tag = nullptr);

}  // namespace eurollm::train
