/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control-plane benchmark, one core:
 *   authentication: what checking a frame's tag costs, one at a time and
 *           in bursts of 32, with and without the CPU's SHA extensions.
 *   gossip: claims applied per second by one GossipEngine receiving sealed
 *           frames (decode, HMAC verification, conflict rule, insert into a
 *           TableFlowStore over the ownership table), one by one and in
 *           bursts of 32, with and without the SHA extensions; the same
 *           frames for each, made beforehand by a sender engine over a
 *           MapFlowStore.
 *   local:  claims per second one node's ControlLoop absorbs from the
 *           workers' ring (poll_once: dequeue, look up, insert, age a slice),
 *           without gossip and with the engine (which also batches and seals
 *           the claims into frames for the peers).
 *   ageing: what the control lcore's ageing costs on a table of
 *           --age-capacity positions: one pass over it holding 16 entries
 *           (rte_hash_iterate walks the empty positions), and one slice of
 *           4096 entries of it full.
 *   re-announce: the engine's re-announce walk over a table of
 *           --reannounce-entries flows, one in 8 its own: each visited
 *           entry recounted into its owner's digest, each own one sent
 *           again (batched and sealed into frames); the control lcore's
 *           time for one whole pass, ticked a millisecond at a time.
 *
 *   control_bench <EAL args> -- [--runs 5] [--claims 200000] [--families 4,6]
 *                               [--age-capacity 10000000] [--reannounce-entries 1000000]
 *                               [--table-memory auto|eal|thp]
 */
#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>

#include "flowhome/control.hpp"
#include "flowhome/gossip_engine.hpp"
#include "flowhome/map_flow_store.hpp"
#include "flowhome/table_flow_store.hpp"
#include "flowhome/table_heap.hpp"

#include "bench_util.hpp"
#include "datapath_fixture.hpp"

using namespace flowhome;
using namespace flowhome::bench;

namespace {

constexpr uint32_t kCluster = 0x0B0E0C0D;
constexpr unsigned kRingSize = 1u << 16;

KeyRing key_ring()
{
    std::vector<uint8_t> k(32);
    for (size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<uint8_t>(i * 13 + 5);
    KeyRing ring;
    ring.add(1, k);
    return ring;
}

GossipParams params(NodeId self, NodeId peer)
{
    GossipParams p;
    p.self = self;
    p.cluster_id = kCluster;
    p.peers = {peer};
    p.max_frame = 1400;
    return p;
}

double seconds(uint64_t cycles)
{
    return double(cycles) / double(rte_get_tsc_hz());
}

/* How a receiving engine takes the frames: its authenticator, and how many
 * frames a call hands it (1: one by one; 32: an RX burst, as the control
 * loop does). */
struct ReceiveMode {
    ShaExtensions sha;
    size_t burst;
};

std::string mode_name(const ReceiveMode &m)
{
    return fmt::format("{}, {}", m.sha == ShaExtensions::off ? "SHA ext. off" : "SHA ext. used",
                       m.burst == 1 ? "one by one" : fmt::format("bursts of {}", m.burst));
}

void gossip_receive(Family f, unsigned runs, uint64_t claims, TableMemory memory)
{
    /* In pairs, one by one and then in bursts, for each setting. */
    const ReceiveMode modes[] = {{ShaExtensions::when_present, 1},
                                 {ShaExtensions::when_present, 32},
                                 {ShaExtensions::off, 1},
                                 {ShaExtensions::off, 32}};
    constexpr size_t kModes = std::size(modes);
    const auto cap = static_cast<uint32_t>(claims * (runs + 1));
    MapFlowStore sender_store;
    std::vector<std::vector<uint8_t>> frames;
    GossipEngine sender(
        params(kGenevePeer, kSelf), key_ring(), sender_store,
        [&](std::span<const uint8_t> fr) { frames.emplace_back(fr.begin(), fr.end()); }, 0);
    /* One receiver per mode, each over a table of its own; every run gives
     * them the same frames, the modes' order turning from run to run. */
    std::vector<std::unique_ptr<BenchTable>> tables;
    std::vector<std::unique_ptr<TableFlowStore>> stores;
    std::vector<std::unique_ptr<GossipEngine>> receivers;
    for (size_t m = 0; m < kModes; ++m) {
        tables.push_back(std::make_unique<BenchTable>(
            fmt::format("g{}{}", f == Family::ipv4 ? 4 : 6, m).c_str(), cap, cap, memory));
        stores.push_back(std::make_unique<TableFlowStore>(*tables.back()->table));
        GossipParams p = params(kSelf, kGenevePeer);
        p.sha_extensions = modes[m].sha;
        receivers.push_back(std::make_unique<GossipEngine>(
            p, key_ring(), *stores.back(), [](std::span<const uint8_t>) {}, 0));
    }

    std::array<std::vector<double>, kModes> rate;
    uint64_t next = 0;
    size_t bytes = 0;
    for (unsigned run = 0; run <= runs; ++run) {
        frames.clear();
        const uint64_t now = 1000 + run * 10; /* µs: no timer of the engines falls due */
        for (uint64_t i = 0; i < claims; ++i)
            sender.local_claim(key_of(f, next++), now);
        sender.flush(now);
        const std::vector<std::span<const uint8_t>> spans(frames.begin(), frames.end());
        for (size_t k = 0; k < kModes; ++k) {
            const size_t m = (run + k) % kModes;
            GossipEngine &receiver = *receivers[m];
            const uint64_t applied = receiver.stats().claims_applied.get();
            const uint64_t t0 = rte_rdtsc_precise();
            for (size_t at = 0; at < spans.size(); at += modes[m].burst)
                receiver.receive_burst(
                    std::span(spans).subspan(at, std::min(modes[m].burst, spans.size() - at)), now);
            const uint64_t dt = rte_rdtsc_precise() - t0;
            const uint64_t got = receiver.stats().claims_applied.get() - applied;
            if (got != claims) {
                std::fprintf(stderr, "gossip (%s): %" PRIu64 " of %" PRIu64 " claims applied\n",
                             mode_name(modes[m]).c_str(), got, claims);
                std::exit(1);
            }
            if (run > 0) /* run 0 warms up */
                rate[m].push_back(double(got) / seconds(dt));
        }
        bytes = 0;
        for (const auto &fr : frames)
            bytes += fr.size();
    }
    /* Each mode against one by one with the same authenticator, and
     * against the default (the SHA extensions where present, one by one). */
    for (size_t m = 0; m < kModes; ++m)
        std::printf("gossip receive  IPv%d (%-28s): %.2f M claims/s applied, x %.2f, x %.2f of "
                    "the first (median of "
                    "%u runs of %" PRIu64 " claims in %zu frames, %.1f claims/frame, %zu bytes)\n",
                    f == Family::ipv4 ? 4 : 6, mode_name(modes[m]).c_str(), median(rate[m]) / 1e6,
                    median(rate[m]) / median(rate[m & ~size_t{1}]),
                    median(rate[m]) / median(rate[0]), runs, claims, frames.size(),
                    double(claims) / double(frames.size()), bytes);
}

/* The tags alone: frames of @p len bytes checked one at a time (verify)
 * and in bursts of 32 (verify_batch), with and without the SHA extensions.
 * 256 frames, in cache as a frame just received is, checked 16 times a run. */
void authentication(unsigned runs, size_t len)
{
    constexpr size_t kFrames = 256;
    constexpr unsigned kPasses = 16;
    KeyRing ring = key_ring();
    std::vector<uint8_t> data(len * kFrames);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 7 + 1);
    for (const ShaExtensions sha : {ShaExtensions::when_present, ShaExtensions::off}) {
        Authenticator auth(sha);
        auth.set_keys(ring);
        std::vector<std::array<uint8_t, kGossipTagLen>> tags(kFrames);
        std::vector<TagCheck> checks(kFrames);
        for (size_t i = 0; i < kFrames; ++i) {
            const auto bytes = std::span(data).subspan(i * len, len);
            if (!auth.compute_tag(1, bytes, tags[i])) {
                std::fprintf(stderr, "authentication: no tag computed\n");
                std::exit(1);
            }
            checks[i] = {1, bytes, tags[i]};
        }
        std::vector<GossipStatus> out(kFrames);
        /* Cycles for all the frames, every tag checked to verify. */
        auto timed = [&](auto &&check_all) {
            std::fill(out.begin(), out.end(), GossipStatus::bad_tag);
            const uint64_t t0 = rte_rdtsc_precise();
            for (unsigned pass = 0; pass < kPasses; ++pass)
                check_all();
            const uint64_t cycles = rte_rdtsc_precise() - t0;
            if (std::count(out.begin(), out.end(), GossipStatus::ok) != long(kFrames)) {
                std::fprintf(stderr, "authentication: a tag did not verify\n");
                std::exit(1);
            }
            return cycles;
        };
        auto one_at_a_time = [&] {
            for (size_t i = 0; i < kFrames; ++i)
                out[i] = auth.verify(1, checks[i].signed_bytes, checks[i].tag);
        };
        auto in_bursts = [&] {
            for (size_t at = 0; at < kFrames; at += 32)
                auth.verify_batch(std::span(checks).subspan(at, 32),
                                  std::span(out).subspan(at, 32));
        };
        std::vector<double> alone, burst;
        for (unsigned run = 0; run <= runs; ++run) {
            /* Which goes first turns from run to run. */
            uint64_t one = 0, many = 0;
            if (run % 2 == 0) {
                one = timed(one_at_a_time);
                many = timed(in_bursts);
            } else {
                many = timed(in_bursts);
                one = timed(one_at_a_time);
            }
            if (run > 0) { /* run 0 warms up */
                alone.push_back(seconds(one) * 1e6 / (kFrames * kPasses));
                burst.push_back(seconds(many) * 1e6 / (kFrames * kPasses));
            }
        }
        std::printf("authentication  %4zu-byte frames (%-13s): %.3f us a frame one at a time, "
                    "%.3f in bursts of 32 (x %.2f); medians of %u runs of %zu x %u\n",
                    len, sha == ShaExtensions::off ? "SHA ext. off" : "SHA ext. used",
                    median(alone), median(burst), median(alone) / median(burst), runs, kFrames,
                    kPasses);
    }
}

void local_claims(Family f, unsigned runs, uint64_t claims, bool with_gossip, TableMemory memory)
{
    const char *name =
        with_gossip ? (f == Family::ipv4 ? "lg4" : "lg6") : (f == Family::ipv4 ? "ll4" : "ll6");
    const auto cap = static_cast<uint32_t>(claims * (runs + 1));
    BenchTable t(name, cap, cap, memory);
    rte_ring *ring = rte_ring_create_elem(fmt::format("{}_r", name).c_str(), sizeof(ControlMsg),
                                          kRingSize, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    SharedClock clock;
    std::atomic<bool> stop{false};
    TableFlowStore store(*t.table);
    uint64_t sent_bytes = 0;
    std::unique_ptr<GossipEngine> engine;
    if (with_gossip)
        engine = std::make_unique<GossipEngine>(
            params(kSelf, kGenevePeer), key_ring(), store,
            [&](std::span<const uint8_t> fr) { sent_bytes += fr.size(); }, 0);
    ControlLoop loop(ControlLoop::Params{.self = kSelf,
                                         .table = t.table.get(),
                                         .from_workers = ring,
                                         .clock = &clock,
                                         .timeouts = {},
                                         .backoff = {},
                                         .stop = &stop,
                                         .engine = engine.get()});
    std::vector<double> rate;
    uint64_t next = 0;
    for (unsigned run = 0; run <= runs; ++run) {
        uint64_t cycles = 0;
        for (uint64_t done = 0; done < claims;) {
            /* Fill the ring as the workers would (untimed), then drain it. */
            const uint64_t n = std::min<uint64_t>(claims - done, kRingSize - 1);
            for (uint64_t i = 0; i < n; ++i) {
                ControlMsg m{};
                m.type = ControlMsgType::claim;
                m.key = key_of(f, next++);
                rte_ring_enqueue_elem(ring, &m, sizeof(m));
            }
            const uint64_t t0 = rte_rdtsc_precise();
            while (rte_ring_count(ring) != 0)
                loop.poll_once(rte_rdtsc());
            cycles += rte_rdtsc_precise() - t0;
            done += n;
        }
        if (run > 0)
            rate.push_back(double(claims) / seconds(cycles));
    }
    const uint64_t inserted = with_gossip ? t.table->count(f) : loop.stats().claims_inserted.get();
    if (inserted != next) { /* every claim of every run, the warm-up's too */
        std::fprintf(stderr, "local claims: %" PRIu64 " of %" PRIu64 " claims inserted\n", inserted,
                     next);
        std::exit(1);
    }
    std::printf("local claims    IPv%d %-11s: %.2f M claims/s (median of %u runs of %" PRIu64
                " claims; %" PRIu64 " in the table%s)\n",
                f == Family::ipv4 ? 4 : 6, with_gossip ? "with gossip" : "no gossip",
                median(rate) / 1e6, runs, claims, inserted,
                with_gossip ? fmt::format(", {} gossip bytes sent", sent_bytes).c_str() : "");
    rte_ring_free(ring);
}

void ageing(Family f, unsigned runs, uint32_t capacity, TableMemory memory)
{
    constexpr uint32_t kSlice = 4096; /* the control loop's budget */
    const bool v4 = f == Family::ipv4;
    BenchTable t(v4 ? "a4" : "a6", v4 ? capacity : 1024, v4 ? 1024 : capacity, memory);
    const uint16_t fresh = 1000; /* every entry's stamp: nothing expires */
    auto fill = [&](uint64_t from, uint64_t to) {
        for (uint64_t i = from; i < to; ++i)
            t.table->upsert(key_of(f, i),
                            OwnerRecord{.owner = kSelf, .version = 1, .epoch = fresh});
    };

    /* Sparse: each call is a new second, so a new pass over both tables. */
    fill(0, 16);
    std::vector<double> pass_ms;
    uint64_t scanned = 0;
    for (unsigned run = 0; run <= runs; ++run) {
        const uint64_t t0 = rte_rdtsc_precise();
        const AgeResult r = t.table->age(static_cast<uint16_t>(fresh + run), 300, 60, kSlice);
        const uint64_t cycles = rte_rdtsc_precise() - t0;
        scanned = r.scanned;
        if (run > 0)
            pass_ms.push_back(seconds(cycles) * 1e3);
    }

    /* Full: one pass a run, in slices of kSlice entries within one second.
     * Its cost per entry is the pass's cycles over the entries it examined,
     * calls that found the pass's end included: a slice boundary need not
     * fall where the table ends, nor a table hold a whole slice. */
    fill(16, capacity);
    const uint32_t filled = t.table->count(f);
    std::vector<double> ns_per_entry;
    for (unsigned run = 0; run <= runs; ++run) {
        const auto now = static_cast<uint16_t>(fresh + runs + 1 + run);
        uint64_t cycles = 0;
        uint64_t examined = 0;
        /* Two calls in a row that examine nothing: the pass has ended. */
        for (unsigned empty = 0; examined < filled && empty < 2;) {
            const uint64_t t0 = rte_rdtsc_precise();
            const AgeResult r = t.table->age(now, 300, 60, kSlice);
            cycles += rte_rdtsc_precise() - t0;
            examined += r.examined;
            empty = r.examined == 0 ? empty + 1 : 0;
        }
        if (examined < filled) {
            std::fprintf(stderr, "ageing: a pass examined %" PRIu64 " of %u entries\n", examined,
                         filled);
            std::exit(1);
        }
        if (run > 0)
            ns_per_entry.push_back(seconds(cycles) * 1e9 / static_cast<double>(examined));
    }
    const double ns = median(ns_per_entry);
    std::printf("ageing          IPv%d: %" PRIu64 " positions holding 16 entries: %.2f ms a pass; "
                "full (%u entries): %.0f us a %u-entry slice (%.1f M entries/s); medians of %u\n",
                v4 ? 4 : 6, scanned, median(pass_ms), filled, ns * kSlice / 1e3, kSlice, 1e3 / ns,
                runs);
}

void reannounce(Family f, unsigned runs, uint32_t entries, TableMemory memory)
{
    constexpr uint64_t kTickUs = 1000;
    constexpr unsigned kOwnEvery = 8;
    const bool v4 = f == Family::ipv4;
    BenchTable t(v4 ? "r4" : "r6", v4 ? entries : 1024, v4 ? 1024 : entries, memory);
    /* Alone: no peer to sync from, none to time out and fail over, so the
     * ticks do the walk and the heartbeats only. A peer's records (owner
     * kGenevePeer, no member here) are recounted and left alone. */
    GossipParams p = params(kSelf, kSelf);
    p.peers = {};
    TableFlowStore store(*t.table);
    uint64_t sent = 0;
    GossipEngine engine(
        p, key_ring(), store, [&](std::span<const uint8_t>) { ++sent; }, 0);
    for (uint32_t i = 0; i < entries; ++i) {
        const NodeId owner = i % kOwnEvery == 0 ? kSelf : kGenevePeer;
        t.table->upsert(key_of(f, i), OwnerRecord{.owner = owner, .version = 1, .epoch = 1});
    }
    /* Each run one re-announce interval of ticks, holding one whole pass
     * (spread over half the interval; at most 4096 entries a tick). */
    const uint64_t interval_us = uint64_t{p.reannounce_interval_ms} * 1000;
    std::vector<double> pass_ms;
    uint64_t now = interval_us; /* the first pass starts one interval in */
    uint64_t reannounced = 0;
    for (unsigned run = 0; run <= runs; ++run) {
        const uint64_t before = engine.stats().reannounced.get();
        uint64_t cycles = 0;
        for (uint64_t end = now + interval_us; now < end; now += kTickUs) {
            const uint64_t t0 = rte_rdtsc_precise();
            engine.tick(now);
            cycles += rte_rdtsc_precise() - t0;
        }
        reannounced = engine.stats().reannounced.get() - before;
        if (reannounced != (entries + kOwnEvery - 1) / kOwnEvery) {
            std::fprintf(stderr, "re-announce: %" PRIu64 " of %u own entries sent again\n",
                         reannounced, (entries + kOwnEvery - 1) / kOwnEvery);
            std::exit(1);
        }
        if (run > 0) /* run 0 warms up */
            pass_ms.push_back(seconds(cycles) * 1e3);
    }
    std::printf("re-announce     IPv%d: a pass over %u entries (1 in %u own, %" PRIu64
                " sent again): %.1f ms of the core (%.0f ns an entry; %.1f %% of the core at a "
                "pass every %.0f s); medians of %u\n",
                v4 ? 4 : 6, entries, kOwnEvery, reannounced, median(pass_ms),
                median(pass_ms) * 1e6 / entries, median(pass_ms) * 1e5 / double(interval_us),
                double(interval_us) / 1e6, runs);
}

} // namespace

int main(int argc, char **argv)
{
    const int first = start_eal(argc, argv);
    try {
        Options opt(argc, argv, first);
        const auto runs = static_cast<unsigned>(opt.value("--runs", 5));
        const uint64_t claims = opt.value("--claims", 200000);
        const auto families = opt.list("--families", {4, 6});
        const uint64_t age_capacity = opt.value("--age-capacity", 10000000);
        const uint64_t reannounce_entries = opt.value("--reannounce-entries", 1000000);
        const TableMemory memory = opt.table_memory();
        opt.finish();
        if (claims * (runs + 1) > kMaxFlows4)
            throw std::invalid_argument(fmt::format(
                "--claims x (--runs + 1) must stay below {} (the IPv4 keys run out)", kMaxFlows4));
        if (age_capacity < 1024 || age_capacity > kMaxFlows4)
            throw std::invalid_argument(
                fmt::format("--age-capacity must be within 1024..{}", kMaxFlows4));
        if (reannounce_entries < 1024 || reannounce_entries > kMaxFlows4)
            throw std::invalid_argument(
                fmt::format("--reannounce-entries must be within 1024..{}", kMaxFlows4));
        for (const size_t len : {size_t{200}, size_t{1392}})
            authentication(runs, len);
        for (const uint64_t fam : families) {
            const Family f = fam == 4 ? Family::ipv4 : Family::ipv6;
            gossip_receive(f, runs, claims, memory);
            local_claims(f, runs, claims, false, memory);
            local_claims(f, runs, claims, true, memory);
            ageing(f, runs, static_cast<uint32_t>(age_capacity), memory);
            reannounce(f, runs, static_cast<uint32_t>(reannounce_entries), memory);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "control_bench: %s\n", e.what());
        rte_eal_cleanup();
        return 2;
    }
    rte_eal_cleanup();
    return 0;
}
