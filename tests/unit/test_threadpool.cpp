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

}  // namespace
