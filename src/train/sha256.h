// SHA-256 (FIPS 180-4), for the file hashes of checkpoint manifests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace eurollm::train {

class sha256 {
public:
    sha256();
    void update(const void *data, size_t n);
    std::string hex();  // finishes; lowercase hex digest

private:
    void block(const uint8_t *p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

// Digest of bytes in memory.
std::string sha256_of(const std::string &bytes);
// Digest of a whole file; throws IO on failure.
std::string sha256_file(const std::string &path, uint64_t *size = nullptr);

}  // namespace eurollm::train
