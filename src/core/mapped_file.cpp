#include "core/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

namespace eurollm {

mapped_file::mapped_file(const std::string &path, bool use_mmap) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(EUROLLM_ERR_IO, "cannot open ", path, ": ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(EUROLLM_ERR_IO, path, " is not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) {
        ::close(fd);
        return;  // an empty file maps to nothing; parsers reject it with a clear message
    }
    if (use_mmap) {
        void *p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            map_ = p;
            data_ = static_cast<const uint8_t *>(p);
            ::close(fd);
            return;
        }
    }
    try {
        buffer_.resize(size_);
    } catch (const std::bad_alloc &) {
        ::close(fd);
        fail(EUROLLM_ERR_OUT_OF_MEMORY, "cannot allocate ", size_, " bytes to read ", path);
    }
    size_t done = 0;
    while (done < size_) {
        const ssize_t r = ::read(fd, buffer_.data() + done, size_ - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            ::close(fd);
            fail(EUROLLM_ERR_IO, "cannot read ", path, ": ", r < 0 ? std::strerror(errno) : "unexpected end of file");
        }
        done += static_cast<size_t>(r);
    }
    ::close(fd);
    data_ = buffer_.data();
}

mapped_file::~mapped_file() {
    if (map_) ::munmap(map_, size_);
}

void drop_pages(const void *p, size_t bytes) {
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<uintptr_t>(p);
    const uintptr_t b = (begin + page - 1) / page * page, e = (begin + bytes) / page * page;
    if (e > b) ::madvise(reinterpret_cast<void *>(b), e - b, MADV_DONTNEED);
}

std::string read_text_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(EUROLLM_ERR_IO, "cannot open ", path);
    std::ostringstream os;
    os << in.rdbuf();
    if (in.bad()) fail(EUROLLM_ERR_IO, "cannot read ", path);
    return os.str();
}

bool file_exists(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace eurollm
