/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LogRelay: lines reach the output whole and in order, a producer whose
 * output is not read is never held up, and neither is the relay's end.
 */
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "flowhome/log_relay.hpp"

using namespace flowhome;
using namespace std::chrono_literals;

namespace {

std::string read_all(std::FILE *f)
{
    std::rewind(f);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) != 0;)
        out.append(buf, n);
    return out;
}

/* A pipe whose write end is an unbuffered FILE, as stderr is, and whose
 * read end a thread reads once start_reading() is called. */
class Pipe {
public:
    Pipe()
    {
        REQUIRE(pipe(fds_) == 0);
        w = fdopen(fds_[1], "w");
        REQUIRE(w != nullptr);
        setvbuf(w, nullptr, _IONBF, 0);
    }
    ~Pipe()
    {
        if (reader_.joinable()) {
            std::fclose(w);
            reader_.join();
        }
        close(fds_[0]);
    }
    Pipe(const Pipe &) = delete;
    Pipe &operator=(const Pipe &) = delete;

    void start_reading()
    {
        reader_ = std::thread([this] {
            char buf[4096];
            for (ssize_t n; (n = read(fds_[0], buf, sizeof(buf))) > 0;) {
                const std::lock_guard<std::mutex> lock(mutex_);
                got_.append(buf, static_cast<size_t>(n));
            }
        });
    }
    /* Closes the write end and returns all that was read. */
    std::string finish()
    {
        std::fclose(w);
        reader_.join();
        return got_;
    }
    /* Waits up to @p limit for @p text to have been read. */
    bool wait_for(std::string_view text, std::chrono::milliseconds limit)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            {
                const std::lock_guard<std::mutex> lock(mutex_);
                if (got_.find(text) != std::string::npos)
                    return true;
            }
            if (std::chrono::steady_clock::now() > deadline)
                return false;
            std::this_thread::sleep_for(5ms);
        }
    }

    std::FILE *w = nullptr;

private:
    int fds_[2];
    std::thread reader_;
    std::mutex mutex_;
    std::string got_;
};

std::vector<std::string> lines_of(const std::string &text)
{
    std::vector<std::string> out;
    size_t at = 0;
    for (size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        out.push_back(text.substr(at, nl - at));
    CHECK(at == text.size()); /* nothing after the last newline */
    return out;
}

} // namespace

TEST_CASE("posted lines are written in order, one per line, cut at the line length", "[log_relay]")
{
    std::FILE *f = std::tmpfile();
    REQUIRE(f != nullptr);
    {
        LogRelay relay(f);
        CHECK(relay.post("first"));
        CHECK(relay.post("second"));
        CHECK(relay.post(std::string(LogRelay::kLineMax + 10, 'x')));
    } /* the destructor writes what is left */
    const std::string want = "first\nsecond\n" + std::string(LogRelay::kLineMax, 'x') + "\n";
    CHECK(read_all(f) == want);
    std::fclose(f);
}

TEST_CASE("a producer whose output is not read drops lines instead of waiting, and the loss is "
          "told once the output is read again",
          "[log_relay]")
{
    Pipe p;
    std::optional<LogRelay> relay(std::in_place, p.w);

    /* 4 MB of lines: far more than the pipe and the relay hold. */
    constexpr int kPosts = 20000;
    std::vector<int> accepted;
    auto slowest = std::chrono::nanoseconds::zero();
    const std::string pad(180, '.');
    for (int i = 0; i < kPosts; ++i) {
        const std::string line = "line " + std::to_string(i) + pad;
        const auto t0 = std::chrono::steady_clock::now();
        const bool ok = relay->post(line);
        slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
        if (ok)
            accepted.push_back(i);
    }
    /* Nobody reads the pipe: the writer is stuck in a write, the relay
     * filled up, and each post still returned at once (a post that waited
     * for the writer would never return). */
    const uint64_t dropped = relay->dropped().get();
    CHECK(dropped == static_cast<uint64_t>(kPosts) - accepted.size());
    CHECK(dropped > kPosts / 2);
    CHECK(slowest < 1s);

    /* The reader comes back: the loss is told while the relay runs. */
    p.start_reading();
    CHECK(p.wait_for("log line(s) lost", 5s));
    relay.reset();

    std::vector<int> written;
    uint64_t told = 0;
    for (const std::string &line : lines_of(p.finish())) {
        unsigned long long n = 0;
        if (std::sscanf(line.c_str(), "line %llu", &n) == 1)
            written.push_back(static_cast<int>(n));
        else if (std::sscanf(line.c_str(), "flowhome: %llu log line(s) lost", &n) == 1)
            told += n;
        else
            FAIL("unexpected line: " << line);
    }
    CHECK(written == accepted);
    CHECK(told == dropped);
}

TEST_CASE("lines stay whole among another thread's writes to the same output", "[log_relay]")
{
    Pipe p;
    p.start_reading();
    constexpr int kLines = 3000;
    int others = 0;
    {
        LogRelay relay(p.w);
        std::atomic<bool> posted{false};
        std::thread other([&] {
            while (!posted.load())
                std::fprintf(p.w, "other %d\n", others++);
        });
        for (int i = 0; i < kLines; ++i) {
            while (!relay.post("relay " + std::to_string(i)))
                std::this_thread::sleep_for(1ms);
            if (i % 64 == 0)
                std::this_thread::sleep_for(1ms); /* let the writer take turns */
        }
        std::this_thread::sleep_for(2 * std::chrono::milliseconds(LogRelay::kPollMs));
        posted = true;
        other.join();
    }
    int relayed = 0;
    int seen_others = 0;
    for (const std::string &line : lines_of(p.finish())) {
        int n = 0;
        char rest = 0;
        if (std::sscanf(line.c_str(), "relay %d%c", &n, &rest) == 1 && n == relayed)
            ++relayed;
        else if (std::sscanf(line.c_str(), "other %d%c", &n, &rest) == 1 && n == seen_others)
            ++seen_others;
        else if (line.ends_with(" log line(s) lost: the log output was not read"))
            continue; /* a post the relay refused, then made again */
        else
            FAIL("a line split or merged: '" << line << "'");
    }
    CHECK(relayed == kLines);
    CHECK(seen_others == others);
}

TEST_CASE("a writer stuck on an output nobody reads does not hold up the relay's end",
          "[log_relay]")
{
    std::signal(SIGPIPE, SIG_IGN); /* as the node does */
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    /* Left open: the writer may use it after the relay is gone. */
    std::FILE *w = fdopen(fds[1], "w");
    REQUIRE(w != nullptr);
    /* Full: the next write to it waits for a reader. */
    const int capacity = fcntl(fds[1], F_GETPIPE_SZ);
    REQUIRE(capacity > 0);
    const std::string fill(static_cast<size_t>(capacity), 'f');
    REQUIRE(write(fds[1], fill.data(), fill.size()) == capacity);
    const auto t0 = std::chrono::steady_clock::now();
    {
        LogRelay relay(w);
        CHECK(relay.post("stuck"));
        std::this_thread::sleep_for(100ms);
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < LogRelay::kStopWait + 2s);
    CHECK(took >= LogRelay::kStopWait);
    /* The reader goes: the writer's write fails, and it ends. */
    close(fds[0]);
}
