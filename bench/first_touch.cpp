// How fast this machine backs fresh anonymous memory: maps MB mebibytes, optionally marked for
// transparent huge pages, and writes one byte per 4 KiB page from T threads. Loading a q8_0/q4_0
// model writes its packed weights into such memory, so on a VM whose host backs guest memory only
// when first touched this rate bounds the load time (see BENCHMARKS.md, session 10).
//   c++ -O2 -pthread bench/first_touch.cpp -o /tmp/first_touch && /tmp/first_touch 1500 huge 2
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

int main(int argc, char **argv) {
    const size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1500;
    const bool huge = argc > 2 && std::strcmp(argv[2], "huge") == 0;
    const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    const size_t bytes = mib << 20, align = size_t(2) << 20;
    const auto t0 = std::chrono::steady_clock::now();
    void *map = mmap(nullptr, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || threads < 1) return 1;
    auto *base = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(map) + align - 1) / align * align);
    madvise(base, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([=] {
            for (size_t o = bytes / threads * t; o < bytes / threads * (t + 1); o += 4096) base[o] = 1;
        });
    for (auto &th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"mib\": %zu, \"pages\": \"%s\", \"threads\": %d, \"seconds\": %.3f, \"gb_s\": %.2f}\n", mib,
                huge ? "huge" : "4k", threads, s, bytes / s / 1e9);
    munmap(map, bytes + align);
    return 0;
}
