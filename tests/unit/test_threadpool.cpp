// The thread pool under every path it has: workers polling for the next job and workers asleep
// (a pause longer than the poll window), more threads than CPUs (polling off), and destruction
// right after a job and after a sleep. Every index must be covered exactly once, and the writes
// of the workers must be visible to the caller when parallel_for returns (the sanitizer build
// checks the synchronization).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/threadpool.h"

namespace {

TEST(ThreadPool, EveryIndexExactlyOnceWhetherWorkersPollOrSleep) {
    std::mt19937 rng(7);
    for (int threads : {1, 2, 3, 8}) {
        eurollm::threadpool pool(threads);
        EXPECT_EQ(pool.size(), threads);
        std::vector<int> hits;
        for (int it = 0; it < 400; ++it) {
            const int64_t n = 1 + static_cast<int64_t>(rng() % 700), grain = 1 + static_cast<int64_t>(rng() % 40);
            hits.assign(static_cast<size_t>(n), 0);
            std::atomic<int64_t> longest{0};
            pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
                int64_t seen = longest.load();
                while (e - b > seen && !longest.compare_exchange_weak(seen, e - b)) {
                }
                for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
            });
            // One thread, or a job no longer than a chunk, runs as a single call.
            EXPECT_EQ(longest.load(), threads == 1 || n <= grain ? n : std::min(n, grain)) << n << " / " << grain;
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "index " << i << " of " << n;
            // Now and then a pause longer than the poll window, so the next job wakes sleepers.
            if (it % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
}

TEST(ThreadPool, DestroyedWhilePollingOrAsleep) {
    for (int pause_ms : {0, 3}) {
        for (int rep = 0; rep < 20; ++rep) {
            eurollm::threadpool pool(2);
            int64_t sum = 0;
            std::vector<int64_t> part(64, 0);
            pool.parallel_for(64, 1, [&](int64_t b, int64_t) { part[static_cast<size_t>(b)] = b; });
            for (int64_t v : part) sum += v;
            EXPECT_EQ(sum, 63 * 64 / 2);
            if (pause_ms) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
        }
    }
}


// An exception thrown by fn on a worker reaches the caller of parallel_for (instead of
// terminating the process), one thrown on the caller's thread waits for the workers to stop
// using fn, and the pool stays usable after either.
TEST(ThreadPool, ExceptionsReachTheCallerAfterEveryThreadStopped) {
    using clock = std::chrono::steady_clock;
    eurollm::threadpool pool(3);
    const auto caller = std::this_thread::get_id();
    std::atomic<bool> worker_ran{false};
    std::atomic<int> active{0};
    // A worker throws; the caller's ranges wait (up to 2 s) until a worker has taken one.
    const auto from_worker = [&](int64_t, int64_t) {
        if (std::this_thread::get_id() != caller) {
            worker_ran = true;
            throw std::runtime_error("worker failed");
        }
        const auto t0 = clock::now();
        while (!worker_ran && clock::now() - t0 < std::chrono::seconds(2)) std::this_thread::yield();
    };
    EXPECT_THROW(pool.parallel_for(64, 1, from_worker), std::runtime_error);
    EXPECT_TRUE(worker_ran.load());
    // The caller throws while workers are still inside fn: parallel_for returns (by the
    // exception) only after they left it.
    const auto from_caller = [&](int64_t, int64_t) {
        ++active;
        if (std::this_thread::get_id() == caller) {
            --active;
            throw std::logic_error("caller failed");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        --active;
    };
    EXPECT_THROW(pool.parallel_for(64, 1, from_caller), std::logic_error);
    EXPECT_EQ(active.load(), 0);
    // Still usable: every index once.
    std::vector<std::atomic<int>> hits(500);
    pool.parallel_for(500, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
    });
    int wrong = 0;
    for (auto &h : hits) wrong += h.load() != 1;
    EXPECT_EQ(wrong, 0);
}

}  // namespace
