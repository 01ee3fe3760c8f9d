// A read-only file mapped into memory (or read into a buffer when mmap is off). Weight tensors
// point into it, so a model keeps its files alive for its whole life.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace eurollm {

class mapped_file {
public:
    mapped_file(const std::string &path, bool use_mmap);
    ~mapped_file();
    mapped_file(const mapped_file &) = delete;
    mapped_file &operator=(const mapped_file &) = delete;

    const uint8_t *data() const { return data_; }
    size_t size() const { return size_; }
    const std::string &path() const { return path_; }
    // True when the bytes are a file mapping (clean pages the kernel may drop and read again).
    bool mapped() const { return map_ != nullptr; }
    bool contains(const void *p) const {
        const auto *b = static_cast<const uint8_t *>(p);
        return b >= data_ && b < data_ + size_;
    }

private:
    std::string path_;
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
    void *map_ = nullptr;
    std::vector<uint8_t> buffer_;
};

// Lets the kernel drop the pages wholly inside [p, p + bytes) (MADV_DONTNEED): pages of a file
// mapping read back from the file when touched again; private anonymous pages come back as zeros.
void drop_pages(const void *p, size_t bytes);

// Reads a whole (small) text file; throws EUROLLM_ERR_IO naming the path.
std::string read_text_file(const std::string &path);
bool file_exists(const std::string &path);

}  // namespace eurollm
