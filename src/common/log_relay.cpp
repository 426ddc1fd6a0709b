/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/log_relay.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace flowhome {

LogRelay::LogRelay(std::FILE *out) : state_(std::make_shared<State>(out))
{
    try {
        /* The thread holds the state too: it may outlive the relay. */
        thread_ = std::thread([s = state_] { s->write_loop(); });
    } catch (const std::system_error &e) {
        throw std::runtime_error(std::string("cannot start the log writer thread: ") + e.what());
    }
}

LogRelay::~LogRelay()
{
    state_->stop.store(true, std::memory_order_release);
    const auto deadline = std::chrono::steady_clock::now() + kStopWait;
    while (!state_->done.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (state_->done.load(std::memory_order_acquire))
        thread_.join();
    else
        thread_.detach(); /* stuck in a write: it ends with the process */
}

bool LogRelay::post(std::string_view line) noexcept
{
    State &s = *state_;
    const uint64_t head = s.head.load(std::memory_order_relaxed);
    /* Acquire: the writer is done with the line it freed. */
    if (head - s.tail.load(std::memory_order_acquire) == kLines) {
        s.dropped.add();
        return false;
    }
    State::Line &l = s.lines[head % kLines];
    const size_t n = std::min(line.size(), kLineMax);
    std::memcpy(l.text, line.data(), n);
    l.text[n] = '\n';
    l.len = static_cast<uint16_t>(n + 1);
    /* Release: the writer sees the text it is told of. */
    s.head.store(head + 1, std::memory_order_release);
    return true;
}

bool LogRelay::State::drain() noexcept
{
    const uint64_t h = head.load(std::memory_order_acquire);
    uint64_t t = tail.load(std::memory_order_relaxed);
    if (h == t)
        return false;
    for (; t != h; ++t) {
        /* One call a line: on an unbuffered stderr, one write, which other
         * threads' lines do not split. */
        const Line &l = lines[t % kLines];
        std::fwrite(l.text, 1, l.len, out);
        /* Freed line by line: a blocked write holds one line, not all. */
        tail.store(t + 1, std::memory_order_release);
    }
    /* Read after the lines: a drop counted before the last of them took
     * place while they were held. */
    const uint64_t lost = dropped.get();
    if (lost != reported) {
        std::fprintf(out, "flowhome: %llu log line(s) lost: the log output was not read\n",
                     static_cast<unsigned long long>(lost - reported));
        reported = lost;
    }
    std::fflush(out);
    return true;
}

void LogRelay::State::write_loop() noexcept
{
    while (!stop.load(std::memory_order_acquire)) {
        if (!drain())
            std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    drain(); /* what the producer posted before the stop */
    done.store(true, std::memory_order_release);
}

} // namespace flowhome
