// A growable 64-byte-aligned scratch buffer (the kernels' thread-local scratch, the CPU backend's
// prepared activations). get() returns null when the memory cannot be allocated; the caller
// decides what that means.
#pragma once

#include <cstddef>
#include <cstdlib>

namespace eurollm::kernels {

class aligned_buffer {
public:
    aligned_buffer() = default;
    aligned_buffer(const aligned_buffer &) = delete;
    aligned_buffer &operator=(const aligned_buffer &) = delete;
    ~aligned_buffer() { std::free(p_); }
    void *get(size_t bytes) {
        if (bytes > cap_) {
            std::free(p_);
            cap_ = (bytes + 63) / 64 * 64;
            p_ = std::aligned_alloc(64, cap_);
            if (!p_) cap_ = 0;
        }
        return p_;
    }

private:
    void *p_ = nullptr;
    size_t cap_ = 0;
};

}  // namespace eurollm::kernels
