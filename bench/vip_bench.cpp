/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * VIP matching alone: VipSet::match() over frames whose destinations are
 * spread at random over N VIPs of one family, as a node serving many
 * services sees them (datapath_bench sends every flow to one VIP, which a
 * branch predictor learns). The VIP sets are datapath_bench --vips N's.
 * Prints TSC cycles per match, the median of the runs. No EAL.
 *
 *   vip_bench [--vips 1,4,16,128,500] [--runs 7] [--passes 200]
 */
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <rte_cycles.h>

#include "bench_util.hpp"
#include "datapath_fixture.hpp"

using namespace flowhome;
using namespace flowhome::bench;

namespace {

constexpr unsigned kFrames = 4096; /* 256 KiB of frames: they stay in L2 */

volatile unsigned g_sink;

double cycles_per_match(Family f, unsigned nvips, unsigned runs, unsigned passes)
{
    const std::vector<VipConfig> vips = bench_vips(nvips);
    std::vector<IpAddr> dsts;
    for (const VipConfig &v : vips)
        if (v.address.family == f)
            dsts.push_back(v.address);
    const VipSet set(vips);

    std::mt19937 rng(12345);
    std::vector<std::array<uint8_t, 64>> frames(kFrames);
    ParsedPacket p;
    p.family = f;
    p.l3_offset = 14;
    p.l4_proto = kProtoTcp;
    p.dst_port = 80;
    for (auto &frame : frames) {
        frame.fill(0);
        const IpAddr &dst = dsts[rng() % dsts.size()];
        std::memcpy(frame.data() + 14 + (f == Family::ipv4 ? 16 : 24), dst.bytes.data(),
                    f == Family::ipv4 ? 4 : 16);
    }
    std::vector<double> per_run;
    for (unsigned r = 0; r < runs; ++r) {
        unsigned hits = 0;
        const uint64_t t0 = rte_rdtsc();
        for (unsigned pass = 0; pass < passes; ++pass)
            for (const auto &frame : frames)
                hits += set.match(frame.data(), p);
        const uint64_t t1 = rte_rdtsc();
        if (hits != passes * kFrames)
            throw std::runtime_error("a frame to a VIP did not match");
        g_sink = hits;
        per_run.push_back(double(t1 - t0) / double(passes * kFrames));
    }
    return median(per_run);
}

} // namespace

int main(int argc, char **argv)
{
    try {
        Options opt(argc, argv, 1);
        const auto counts = opt.list("--vips", {1, 4, 16, 128, 500});
        const auto runs = static_cast<unsigned>(opt.value("--runs", 7));
        const auto passes = static_cast<unsigned>(opt.value("--passes", 200));
        opt.finish();
        std::printf("# VipSet::match, destinations spread over the VIPs; TSC cycles per match, "
                    "median of %u runs x %u passes x %u frames\n",
                    runs, passes, kFrames);
        std::printf("%-6s %-6s %8s\n", "family", "VIPs", "cycles");
        for (const Family f : {Family::ipv4, Family::ipv6})
            for (const uint64_t n : counts)
                std::printf("IPv%-3d %-6" PRIu64 " %8.1f\n", f == Family::ipv4 ? 4 : 6, n,
                            cycles_per_match(f, static_cast<unsigned>(n), runs, passes));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "vip_bench: %s\n", e.what());
        return 2;
    }
    return 0;
}
