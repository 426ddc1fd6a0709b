/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Log lines from a thread that must never block, written out by a thread
 * that may.
 *
 * The control lcore logs every change of a peer's state. A write to stderr
 * blocks once the reader stops reading (a stalled journald, a terminal on
 * hold, a full pipe), and a control lcore blocked there sends no heartbeat:
 * its peers declare the node dead and fail its flows over. So the lcore
 * posts its lines here instead, and a thread of the relay's own writes them.
 * A line posted while the relay is full is dropped and counted; the writer
 * says how many were lost once it writes again.
 *
 * Threading: one producer (post()), the relay's writer thread; dropped()
 * read from any thread.
 */
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <thread>

#include "flowhome/stats.hpp"

namespace flowhome {

class LogRelay {
public:
    /** Longest line kept; longer ones are cut. */
    static constexpr size_t kLineMax = 256;
    /** Lines the relay holds while its output is blocked. */
    static constexpr size_t kLines = 256;
    /** How often the writer looks for lines (the control lcore never wakes it). */
    static constexpr unsigned kPollMs = 20;

    /** Starts the writer thread; lines go to @p out (not closed). Throws
     *  std::system_error when the thread cannot be started. */
    explicit LogRelay(std::FILE *out);
    /** Writes what is still held, then stops the writer (waits for it, so
     *  a blocked output blocks this). */
    ~LogRelay();
    LogRelay(const LogRelay &) = delete;
    LogRelay &operator=(const LogRelay &) = delete;

    /** Copies @p line (a newline is added on output) for the writer; false,
     *  and counted, when the relay is full. Wait-free: no lock, no system
     *  call, no allocation. One producer thread. */
    bool post(std::string_view line) noexcept;

    /** Lines dropped because the relay was full (the producer counts them). */
    const Counter &dropped() const noexcept { return dropped_; }

private:
    struct Line {
        uint16_t len;
        char text[kLineMax];
    };

    void write_loop() noexcept;
    /* Writes every line posted so far; returns whether there were any. */
    bool drain() noexcept;

    std::FILE *out_;
    std::array<Line, kLines> lines_{};
    alignas(64) std::atomic<uint64_t> head_{0}; /* lines posted; the producer's */
    alignas(64) std::atomic<uint64_t> tail_{0}; /* lines written; the writer's */
    Counter dropped_;
    uint64_t reported_ = 0; /* drops the writer has told of */
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace flowhome
