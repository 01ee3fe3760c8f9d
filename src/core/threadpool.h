// A fixed pool of worker threads owned by one context. parallel_for splits [0, n) into chunks that
// the workers and the calling thread take from a shared counter; threads are created once, never
// per op.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace eurollm {

class threadpool {
public:
    explicit threadpool(int n_threads);
    ~threadpool();
    threadpool(const threadpool &) = delete;
    threadpool &operator=(const threadpool &) = delete;

    int size() const { return n_threads_; }

    // Calls fn(begin, end) over disjoint ranges covering [0, n), each at most `grain` long, on
    // all threads; returns when every range is done. Not reentrant.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> &fn);

private:
    void worker_loop();
    void run_chunks();

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    uint64_t generation_ = 0;
    int busy_ = 0;
    bool stop_ = false;

    const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    std::atomic<int64_t> next_{0};
};

// Threads to use when the caller asks for 0 ("one per core").
int default_thread_count();

}  // namespace eurollm
