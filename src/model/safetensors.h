// The safetensors format: an 8-byte little-endian header length, a JSON header mapping tensor names
// to {dtype, shape, data_offsets}, then the raw data. Every field is checked against the file before
// any byte of tensor data is touched.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace eurollm {

struct safetensor {
    std::string name;
    std::string dtype;  // as written: "F32", "BF16", "I64", ...
    std::vector<int64_t> shape;
    const uint8_t *data = nullptr;
    size_t nbytes = 0;
    const mapped_file *file = nullptr;
};

// Parses and validates the header of `file`; tensors point into the file's bytes.
// Throws BAD_MODEL naming the file and the offending tensor.
std::map<std::string, safetensor> parse_safetensors(const mapped_file &file);

// Bytes per element of a safetensors dtype, 0 if unknown.
size_t safetensors_dtype_size(const std::string &dtype);

}  // namespace eurollm
