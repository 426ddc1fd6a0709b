/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/log_relay.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace flowhome {

LogRelay::LogRelay(std::FILE *out) : out_(out), thread_([this] { write_loop(); }) {}

LogRelay::~LogRelay()
{
    stop_.store(true, std::memory_order_release);
    thread_.join();
}

bool LogRelay::post(std::string_view line) noexcept
{
    const uint64_t head = head_.load(std::memory_order_relaxed);
    /* Acquire: the writer is done with the line it freed. */
    if (head - tail_.load(std::memory_order_acquire) == kLines) {
        dropped_.add();
        return false;
    }
    Line &l = lines_[head % kLines];
    l.len = static_cast<uint16_t>(std::min(line.size(), kLineMax));
    std::memcpy(l.text, line.data(), l.len);
    /* Release: the writer sees the text it is told of. */
    head_.store(head + 1, std::memory_order_release);
    return true;
}

bool LogRelay::drain() noexcept
{
    const uint64_t head = head_.load(std::memory_order_acquire);
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (head == tail)
        return false;
    for (; tail != head; ++tail) {
        const Line &l = lines_[tail % kLines];
        std::fwrite(l.text, 1, l.len, out_);
        std::fputc('\n', out_);
        /* Freed line by line: a blocked write holds one line, not all. */
        tail_.store(tail + 1, std::memory_order_release);
    }
    /* Read after the lines: a drop counted before the last of them took
     * place while they were held. */
    const uint64_t dropped = dropped_.get();
    if (dropped != reported_) {
        std::fprintf(out_, "flowhome: %llu log line(s) lost: the log output was not read\n",
                     static_cast<unsigned long long>(dropped - reported_));
        reported_ = dropped;
    }
    std::fflush(out_);
    return true;
}

void LogRelay::write_loop() noexcept
{
    while (!stop_.load(std::memory_order_acquire)) {
        if (!drain())
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    drain(); /* what the producer posted before the stop */
}

} // namespace flowhome
