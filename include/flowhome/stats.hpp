/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Per-lcore counters and gauges. Each has exactly one writer (the lcore that
 * owns the block) and any number of readers (console, telemetry, shutdown
 * report). The writer uses a relaxed load and store, not an atomic
 * read-modify-write: no locked instruction and no shared cache line on the
 * packet path, and readers never see a torn value.
 */
#pragma once

#include <atomic>
#include <cstdint>

namespace flowhome {

class Counter {
public:
    void add(uint64_t n = 1) noexcept
    {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

/** A value its one writer sets and any thread reads, as Counter. */
class Gauge {
public:
    void set(uint64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

} // namespace flowhome
