/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a random cache line costs on this machine: the floor under any
 * lookup in a table larger than the cache. Over a buffer of --mb MB in
 * transparent huge pages (as the ownership table's memory), in TSC cycles:
 *
 *   latency:    a chain of dependent loads (each line holds the next one's
 *               offset, one random cycle through all lines): what one miss
 *               costs when nothing overlaps it;
 *   throughput: independent loads of random lines, each prefetched
 *               DISTANCE loads ahead, with WORK cycles of computation per
 *               load (a dependent chain of multiplications): the memory
 *               system's rate, and how much work overlaps with it.
 *
 * An rte_hash lookup that hits reads three random lines (its key's two
 * buckets and its key slot): three times the throughput figure is what a
 * bulk lookup costs at best once the table is far larger than the cache.
 *
 *   memory_bench [--mb 256] [--runs 5] [--loads 1000000]
 *
 * Medians of --runs runs. Not a timed test: see docs/performance.md.
 */
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/mman.h>

#include <rte_cycles.h>
#include <rte_prefetch.h>

#include "bench_util.hpp"

using namespace flowhome::bench;

namespace {

constexpr size_t kLine = 64;
constexpr unsigned kDistances[] = {0, 2, 8, 32};
constexpr unsigned kWorkSteps[] = {0, 5, 10};

volatile uint64_t g_sink;

/* One step of the work filler: a multiply and an add on a dependent chain
 * (about 4 cycles on current x86 cores; measured below, not assumed). */
inline uint64_t work(uint64_t x, unsigned steps) noexcept
{
    for (unsigned s = 0; s < steps; ++s)
        x = x * 0x9E3779B97F4A7C15ull + 1;
    return x;
}

class Buffer {
public:
    explicit Buffer(size_t bytes) : len_(bytes)
    {
        void *p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            std::perror("mmap");
            std::exit(2);
        }
        /* As the table heap: huge pages where the kernel gives them. */
        (void)madvise(p, len_, MADV_HUGEPAGE);
        base_ = static_cast<uint8_t *>(p);
        std::memset(base_, 0, len_);
    }
    ~Buffer() { munmap(base_, len_); }
    Buffer(const Buffer &) = delete;
    Buffer &operator=(const Buffer &) = delete;

    uint8_t *line(size_t i) const noexcept { return base_ + i * kLine; }
    size_t lines() const noexcept { return len_ / kLine; }

private:
    uint8_t *base_ = nullptr;
    size_t len_;
};

/* Cycles per load of a dependent chain through every line in a random
 * order, over @p loads loads. */
double chase(const Buffer &b, uint64_t loads)
{
    const size_t n = b.lines();
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(1);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i = 0; i < n; ++i) {
        const uint64_t next = order[(i + 1) % n];
        std::memcpy(b.line(order[i]), &next, sizeof(next));
    }
    uint64_t at = order[0];
    const uint64_t t0 = rte_rdtsc_precise();
    for (uint64_t i = 0; i < loads; ++i)
        std::memcpy(&at, b.line(at), sizeof(at));
    const uint64_t c = rte_rdtsc_precise() - t0;
    g_sink = at;
    return double(c) / double(loads);
}

/* Cycles per load of independent random lines, prefetched @p distance
 * loads ahead (0: not prefetched), with @p steps work steps per load. */
double stream(const Buffer &b, const std::vector<uint32_t> &idx, unsigned distance, unsigned steps)
{
    uint64_t sum = 0;
    uint64_t x = 1;
    const size_t n = idx.size();
    const uint64_t t0 = rte_rdtsc_precise();
    for (size_t i = 0; i < n; ++i) {
        if (distance != 0 && i + distance < n)
            rte_prefetch0(b.line(idx[i + distance]));
        sum += *static_cast<const volatile uint8_t *>(b.line(idx[i]));
        x = work(x, steps);
    }
    const uint64_t c = rte_rdtsc_precise() - t0;
    g_sink = sum + x;
    return double(c) / double(n);
}

/* Cycles of @p steps work steps alone. */
double work_alone(unsigned steps, uint64_t loads)
{
    uint64_t x = 1;
    const uint64_t t0 = rte_rdtsc_precise();
    for (uint64_t i = 0; i < loads; ++i)
        x = work(x, steps);
    const uint64_t c = rte_rdtsc_precise() - t0;
    g_sink = x;
    return double(c) / double(loads);
}

/* What the kernel backs this process's anonymous memory with. */
std::string huge_pages()
{
    std::ifstream f("/proc/self/smaps_rollup");
    std::string key;
    uint64_t kb = 0;
    while (f >> key)
        if (key == "AnonHugePages:" && f >> kb)
            return std::to_string(kb >> 10) + " MB of it in 2 MB pages";
    return "huge pages unknown";
}

} // namespace

int main(int argc, char **argv)
{
    try {
        Options opt(argc, argv, 1);
        const uint64_t mb = opt.value("--mb", 256);
        const uint64_t runs = opt.value("--runs", 5);
        const uint64_t loads = opt.value("--loads", 1000000);
        opt.finish();
        /* Line numbers are 32-bit: at most 2^26 MB of 64-byte lines. */
        if (mb < 1 || mb > 65536 || runs < 1 || runs > 1000 || loads < 1 || loads > 1'000'000'000)
            throw std::invalid_argument(
                "--mb takes 1..65536, --runs 1..1000, --loads 1..1000000000");

        Buffer buf(size_t{mb} << 20);
        std::printf("# TSC cycles; %" PRIu64 " MB (%s), %" PRIu64
                    " loads per run, medians of %" PRIu64 " runs\n",
                    mb, huge_pages().c_str(), loads, runs);

        std::vector<double> lat;
        for (uint64_t r = 0; r < runs; ++r)
            lat.push_back(chase(buf, loads));
        std::printf("latency (dependent loads): %.1f cycles/load\n", median(lat));

        /* Each run loads other lines: none is left in the cache by the last. */
        std::mt19937_64 rng(2);
        std::vector<uint32_t> idx(loads);
        auto shuffle = [&] {
            for (uint32_t &i : idx)
                i = static_cast<uint32_t>(rng() % buf.lines());
        };

        std::printf("\ncycles per independent random load, by work per load (cycles) and "
                    "prefetch distance (loads)\n%-8s",
                    "work");
        for (unsigned d : kDistances) {
            char label[24];
            std::snprintf(label, sizeof(label), "prefetch %u", d);
            std::printf(" %12s", label);
        }
        std::printf("\n");
        for (unsigned steps : kWorkSteps) {
            std::vector<double> w;
            for (uint64_t r = 0; r < runs; ++r)
                w.push_back(work_alone(steps, loads));
            std::printf("%-8.1f", median(w));
            for (unsigned d : kDistances) {
                std::vector<double> v;
                for (uint64_t r = 0; r < runs; ++r) {
                    shuffle();
                    v.push_back(stream(buf, idx, d, steps));
                }
                std::printf(" %12.1f", median(v));
            }
            std::printf("\n");
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "memory_bench: %s\n", e.what());
        return 2;
    }
    return 0;
}
