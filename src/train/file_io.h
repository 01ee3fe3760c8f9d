// The safetensors writer for checkpoints, adapters and merged models (durable, through
// core/file_io's atomic write).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/file_io.h"

namespace eurollm::train {
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
