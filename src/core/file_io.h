// Durable file output: every file is written to a temporary name, fsync'ed, renamed over its final
// name and the directory fsync'ed, so a crash leaves either the old file or the new one, never a
// torn one. Used by context state files, GGUF export, checkpoints and adapters. Plus the few
// directory operations they need. All failures throw EUROLLM_ERR_IO naming the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace eurollm {

// Test hook: when the environment variable EUROLLM__TEST_CRASH_AT equals `point`, the process
// kills itself with SIGKILL right there (used by the kill-during-save tests).
void crash_point(const char *point);

// Writes `path` atomically. `produce` is called with a sink it feeds bytes to; with a crash_tag,
// crash_point(crash_tag) is checked after every write (mid-file crashes for the tests).
using byte_sink = std::function<void(const void *, size_t)>;
void write_file_atomic(const std::string &path, const std::function<void(const byte_sink &)> &produce,
                       const char *crash_tag = nullptr);
void write_file_atomic(const std::string &path, const std::vector<uint8_t> &bytes);
void write_text_atomic(const std::string &path, const std::string &text);

void make_dirs(const std::string &path);  // mkdir -p
void fsync_dir(const std::string &path);
bool is_dir(const std::string &path);
void remove_tree(const std::string &path);  // rm -rf (no error if absent)
std::vector<std::string> list_dir(const std::string &path);

}  // namespace eurollm
