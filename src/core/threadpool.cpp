#include "core/threadpool.h"

#include <algorithm>
#include <chrono>

#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace eurollm {
namespace {

// How long a thread polls before it sleeps: longer than the gaps between the ops of one decode
// step, short enough that an idle context costs nothing measurable. After the first kSpinFor it
// yields between polls, so that other threads wanting the CPU (several contexts, or processes, on
// the same cores) get it, and it stops polling once a yield shows that one did.
constexpr auto kPollFor = std::chrono::microseconds(50);
constexpr auto kSpinFor = std::chrono::microseconds(2);
constexpr auto kBusyCpu = std::chrono::microseconds(10);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Polls `ready` for up to kPollFor; true when it became true.
template <class Ready>
bool poll(const Ready &ready) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
        const auto now = std::chrono::steady_clock::now();
        if (now - start >= kPollFor) return ready();
        if (now - start >= kSpinFor) {
            // A yield that took long means another thread had this CPU: the cores are shared, and
            // polling on would only delay that thread. Sleep instead.
            std::this_thread::yield();
            if (std::chrono::steady_clock::now() - now >= kBusyCpu) return ready();
        }
    }
}

}  // namespace

int default_thread_count() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

threadpool::threadpool(int n_threads)
    : n_threads_(std::max(1, n_threads)), poll_(n_threads_ <= default_thread_count()) {
    workers_.reserve(static_cast<size_t>(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

threadpool::~threadpool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto &t : workers_) t.join();
}

void threadpool::run_chunks() {
    for (;;) {
        const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
        if (begin >= n_) break;
        try {
            (*fn_)(begin, std::min(n_, begin + grain_));
        } catch (...) {
            // An exception must not leave a worker thread (std::terminate) nor let parallel_for
            // return while other threads still run fn: keep the first, skip the ranges not yet
            // taken, and let parallel_for rethrow it on the caller's thread once all have stopped.
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
            next_.store(n_, std::memory_order_relaxed);
        }
    }
}

void threadpool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        const auto news = [&] {
            return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
        };
        if (!poll_ || !poll(news)) {
            std::unique_lock<std::mutex> lock(mutex_);
            ++sleepers_;
            wake_.wait(lock, news);
            --sleepers_;
        }
        if (stopping_.load(std::memory_order_acquire)) return;
        // Acquire: the job's fields were written before the generation was bumped.
        seen = generation_.load(std::memory_order_acquire);
        run_chunks();
        if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // The caller may be asleep on done_; notifying under the mutex cannot be lost.
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_one();
        }
    }
}

void threadpool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> &fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    if (workers_.empty() || n <= grain) {
        fn(0, n);
        return;
    }
    bool sleeping;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fn_ = &fn;
        n_ = n;
        grain_ = grain;
        next_.store(0, std::memory_order_relaxed);
        busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        sleeping = sleepers_ > 0;
    }
    if (sleeping) wake_.notify_all();
    run_chunks();
    const auto finished = [&] { return busy_.load(std::memory_order_acquire) == 0; };
    if (!poll_ || !poll(finished)) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, finished);
    }
    fn_ = nullptr;
    std::exception_ptr error;
    {
        std::lock_guard<std::mutex> lock(error_mutex_);
        error.swap(error_);
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace eurollm
