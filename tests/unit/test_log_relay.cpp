/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LogRelay: lines reach the output in order, and a producer whose output
 * is not read is never held up.
 */
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "flowhome/log_relay.hpp"

using namespace flowhome;

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
          "told",
          "[log_relay]")
{
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    std::FILE *w = fdopen(fds[1], "w");
    REQUIRE(w != nullptr);
    std::optional<LogRelay> relay(std::in_place, w);

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
     * filled up, and each post still returned at once. */
    const uint64_t dropped = relay->dropped().get();
    CHECK(dropped == static_cast<uint64_t>(kPosts) - accepted.size());
    CHECK(dropped > kPosts / 2);
    CHECK(slowest < std::chrono::milliseconds(50));

    /* The reader comes back: every line the relay took is written, in
     * order, and then how many it lost. */
    std::string got;
    std::thread reader([&] {
        char buf[4096];
        for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;)
            got.append(buf, static_cast<size_t>(n));
    });
    relay.reset();
    std::fclose(w);
    reader.join();
    close(fds[0]);

    std::vector<int> written;
    uint64_t told = 0;
    size_t at = 0;
    for (size_t nl; (nl = got.find('\n', at)) != std::string::npos; at = nl + 1) {
        const std::string line = got.substr(at, nl - at);
        unsigned long long n = 0;
        if (std::sscanf(line.c_str(), "line %llu", &n) == 1)
            written.push_back(static_cast<int>(n));
        else if (std::sscanf(line.c_str(), "flowhome: %llu log line(s) lost", &n) == 1)
            told += n;
        else
            FAIL("unexpected line: " << line);
    }
    CHECK(at == got.size());
    CHECK(written == accepted);
    CHECK(told == dropped);
}
