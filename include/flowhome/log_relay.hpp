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
 * posts its lines here instead, and a thread of the relay's own writes them,
 * each line in one write (whole, between other threads' lines). A line
 * posted while the relay is full is dropped and counted; the writer says
 * how many were lost once it writes again.
 *
 * Threading: one producer (post()), the relay's writer thread; dropped()
 * read from any thread.
 */
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string_view>
#include <thread>

#include "flowhome/stats.hpp"

namespace flowhome {

class LogRelay {
public:
    /** Longest line kept, its newline excluded; longer ones are cut. */
    static constexpr size_t kLineMax = 256;
    /** Lines the relay holds while its output is blocked. */
    static constexpr size_t kLines = 256;
    /** How often the writer looks for lines (the control lcore never wakes it). */
    static constexpr unsigned kPollMs = 20;
    /** How long the destructor waits for the writer to write what is left. */
    static constexpr std::chrono::milliseconds kStopWait{1000};

    /** Starts the writer thread; lines go to @p out (not closed), which
     *  must stay open for the life of the process. Throws
     *  std::runtime_error when the thread cannot be started. */
    explicit LogRelay(std::FILE *out);
    /** Lets the writer write what is still held, for kStopWait at most:
     *  a writer stuck on an output nobody reads is left to it (it ends
     *  with the process), so a node still stops. */
    ~LogRelay();
    LogRelay(const LogRelay &) = delete;
    LogRelay &operator=(const LogRelay &) = delete;

    /** Copies @p line (a newline is added) for the writer; false, and
     *  counted, when the relay is full. Wait-free: no lock, no system call,
     *  no allocation. One producer thread. */
    bool post(std::string_view line) noexcept;

    /** Lines dropped because the relay was full (the producer counts them). */
    const Counter &dropped() const noexcept { return state_->dropped; }

private:
    /* Shared with the writer thread, which may outlive the relay. */
    struct State {
        struct Line {
            uint16_t len; /* the newline included */
            char text[kLineMax + 1];
        };
        explicit State(std::FILE *f) : out(f) {}
        /* Writes every line posted so far; returns whether there were any. */
        bool drain() noexcept;
        void write_loop() noexcept;

        std::FILE *out;
        std::array<Line, kLines> lines{};
        alignas(64) std::atomic<uint64_t> head{0}; /* lines posted; the producer's */
        alignas(64) std::atomic<uint64_t> tail{0}; /* lines written; the writer's */
        alignas(64) Counter dropped;               /* the producer's */
        uint64_t reported = 0;                     /* drops told of; the writer's */
        std::atomic<bool> stop{false};
        std::atomic<bool> done{false}; /* the writer has written its last */
    };

    std::shared_ptr<State> state_;
    std::thread thread_;
};

} // namespace flowhome
