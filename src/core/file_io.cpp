#include "core/file_io.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

namespace eurollm {

void crash_point(const char *point) {
    const char *want = std::getenv("EUROLLM__TEST_CRASH_AT");
    if (want && point && std::strcmp(want, point) == 0) {
        std::raise(SIGKILL);
        std::_Exit(137);
    }
}

namespace {

[[noreturn]] void io_fail(const std::string &path, const char *what) {
    fail(EUROLLM_ERR_IO, path, ": ", what, ": ", std::strerror(errno));
}

}  // namespace

void fsync_dir(const std::string &path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) io_fail(path, "cannot open directory");
    ::fsync(fd);
    ::close(fd);
}

bool is_dir(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dirs(const std::string &path) {
    if (path.empty() || is_dir(path)) return;
    const auto slash = path.find_last_of('/');
    if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash));
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) io_fail(path, "cannot create directory");
}

std::vector<std::string> list_dir(const std::string &path) {
    std::vector<std::string> out;
    DIR *d = ::opendir(path.c_str());
    if (!d) return out;
    while (dirent *e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
    return out;
}

void remove_tree(const std::string &path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        for (const auto &name : list_dir(path)) remove_tree(path + "/" + name);
        ::rmdir(path.c_str());
    } else {
        ::unlink(path.c_str());
    }
}

void write_file_atomic(const std::string &path, const std::function<void(const byte_sink &)> &produce,
                       const char *crash_tag) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) io_fail(tmp, "cannot create");
    uint64_t written = 0;
    auto sink = [&](const void *data, size_t n) {
        const char *p = static_cast<const char *>(data);
        while (n > 0) {
            const ssize_t w = ::write(fd, p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                const int e = errno;
                ::close(fd);
                ::unlink(tmp.c_str());
                errno = e;
                io_fail(tmp, "write failed (disk full?)");
            }
            p += w;
            n -= static_cast<size_t>(w);
            written += static_cast<uint64_t>(w);
        }
        if (crash_tag && written > 0) crash_point(crash_tag);  // mid-file: part of the data is out
    };
    try {
        produce(sink);
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        ::unlink(tmp.c_str());
        io_fail(tmp, "fsync failed");
    }
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        io_fail(tmp, "close failed");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        io_fail(path, "rename failed");
    }
    const auto slash = path.find_last_of('/');
    fsync_dir(slash == std::string::npos ? "." : path.substr(0, slash));
}

void write_file_atomic(const std::string &path, const std::vector<uint8_t> &bytes) {
    write_file_atomic(path, [&](const byte_sink &sink) { sink(bytes.data(), bytes.size()); });
}

void write_text_atomic(const std::string &path, const std::string &text) {
    write_file_atomic(path, [&](const byte_sink &sink) { sink(text.data(), text.size()); });
}

}  // namespace eurollm
