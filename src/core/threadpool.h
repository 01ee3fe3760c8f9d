// A fixed pool of worker threads owned by one context. parallel_for splits [0, n) into chunks that
// the workers and the calling thread take from a shared counter; threads are created once, never
// per op.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
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
    // all threads; returns when every range is done. With one thread, or n <= grain, it is one
    // call fn(0, n) on the caller's thread. If fn throws (on any thread), the ranges not yet
    // started are skipped and the first exception is rethrown here once no thread runs fn. Not
    // reentrant.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> &fn);

private:
    void worker_loop();
    void run_chunks();

    int n_threads_;
    // Decode issues a few hundred short parallel_fors per token: between them the threads poll for
    // a while before sleeping (a futex wake-up costs ~10 us, a poll well under 1). Off when there
    // are more threads than CPUs, where a polling thread would take time from a working one.
    bool poll_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::atomic<uint64_t> generation_{0};  // a new job: bumped under mutex_, after the job's fields
    std::atomic<int> busy_{0};             // workers that have not finished the current job
    int sleepers_ = 0;                     // workers waiting on wake_ (under mutex_)
    std::atomic<bool> stopping_{false};    // set under mutex_, so a sleeping worker cannot miss it

    std::mutex error_mutex_;
    std::exception_ptr error_;  // the current job's first exception (under error_mutex_)

    const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    std::atomic<int64_t> next_{0};
};

// Threads to use when the caller asks for 0 ("one per core").
int default_thread_count();

}  // namespace eurollm
