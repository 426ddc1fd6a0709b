/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data-path benchmark: synthetic bursts through the real
 * Worker::process_wire_burst (no PMD), against two baselines measured in the
 * same run, on the same mbufs and the same random stream of flows:
 *   pass-through: touch each packet's Ethernet header and move its pointer
 *                 to a TX batch (what io forwarding costs);
 *   lookup:       rte_hash_lookup_bulk_data of the flows' keys in the same
 *                 table.
 * Each measurement takes the next 1024 flows of the stream, so none runs on
 * table entries another has just brought into the cache. The headline is
 * pipeline / (pass-through + lookup), the median of the per-run ratios. Also
 * the memory the ownership table takes per flow.
 *
 *   datapath_bench <EAL args> -- [--families 4,6] [--flows 10000,1000000]
 *                                [--runs 5] [--passes 64] [--callgrind]
 *                                [--table-memory auto|eal|thp] [--vips 1]
 *                                [--growth 10000,10000000] [--flow-cache on|off]
 *                                [--cache-sweep 64,512,1024,2048]
 *
 * --vips N gives each family N VIPs, the flows' own in the middle of the
 * list (what VIP matching costs a node that serves many services).
 * --flow-cache off runs the worker without its flow cache (the node's
 * `table.flow_cache: false`). The mixes spread their packets over all the
 * table's flows, where the cache rests, except "local 64 hot": 64 flows,
 * which it holds.
 * --callgrind runs each main path once over 1024 packets in its own function
 * (cg_*), for bench/callgrind.sh to read the instruction counts: the
 * table's paths without the flow cache, and cached_hit, a local hit the
 * cache holds (whatever --flow-cache says).
 * --growth SMALL,LARGE measures cost growth instead: the same mixes through a
 * table of each size, chunk by chunk in turn, so that both see the machine
 * in the same state (a VM's speed drifts over the minutes between two rows
 * of the matrix); per run the quotient of the two sums, their median.
 * --cache-sweep H1,H2,... measures what the flow cache gains or costs with
 * how often flows repeat: per table size of --flows, local hits spread over
 * H of the table's flows, through one worker with its cache and one
 * without, on the same table, chunk by chunk in turn; over the runs, the
 * share of the probed packets the cache held and the share of all packets
 * it probed; the cycles of each and, per run, the quotient of the two sums,
 * their median. Where fewer packets hit than the cache needs to pay, it
 * rests, and the two cost alike. H is at most a quarter of each table's
 * flows; it refuses --flow-cache, which has no meaning there.
 */
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <string>
#include <unordered_set>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include "bench_util.hpp"
#include "datapath_fixture.hpp"
#include "flowhome/ports.hpp"

using namespace flowhome;
using namespace flowhome::bench;

namespace {

constexpr unsigned kChunk = 1024; /* packets reset, then processed, per pass */
constexpr size_t kStream = size_t{1} << 20;

volatile uint64_t g_sink;

struct Mix {
    const char *name;
    Traffic traffic;
    unsigned foreign_pct;
    EncapKind encap;
    /* Connection-opening packets of flows not in the table, among the
     * others: claimed (every packet of such a mix is a SYN; a hit ignores
     * its flags). */
    unsigned new_pct = 0;
    /* Flows of the table that all the mix's packets belong to (0: all its
     * flows): where a worker's flow cache holds them. */
    unsigned hot = 0;
};

constexpr Mix kMixes[] = {
    {"local 0%", Traffic::plain, 0, EncapKind::geneve},
    {"geneve 50%", Traffic::plain, 50, EncapKind::geneve},
    {"ipip 50%", Traffic::plain, 50, EncapKind::ipip},
    {"geneve 100%", Traffic::plain, 100, EncapKind::geneve},
    {"ipip 100%", Traffic::plain, 100, EncapKind::ipip},
    {"decap", Traffic::decap, 0, EncapKind::geneve},
    {"claim (miss)", Traffic::claim, 0, EncapKind::geneve},
    {"local+5% new", Traffic::plain, 0, EncapKind::geneve, 5},
    {"local 64 hot", Traffic::plain, 0, EncapKind::geneve, 0, 64},
};
constexpr const Mix &kHotMix = kMixes[8];

/** The local flows a mix's hot flows are drawn from: two in each of the
 *  table's whole quarters' four. */
constexpr uint64_t local_flows(uint64_t nflows)
{
    return nflows / 4 * 2;
}

/** The flows a mix sends, in order: indices into the table's flows. */
std::vector<uint64_t> make_stream(const Mix &mix, uint64_t nflows, size_t len, uint32_t seed)
{
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> s(len);
    const uint64_t quarter = nflows / 4;
    if (mix.hot > local_flows(nflows))
        throw std::invalid_argument(fmt::format("{} hot flows: the table's {} flows have {} local",
                                                mix.hot, nflows, local_flows(nflows)));
    /* Distinct: the cache's hit share depends on how many flows there are. */
    std::vector<uint64_t> hot;
    std::unordered_set<uint64_t> picked;
    while (hot.size() < mix.hot) {
        const uint64_t q = rng() % quarter;
        const uint64_t h = 4 * q + (rng() & 1);
        if (picked.insert(h).second)
            hot.push_back(h);
    }
    for (size_t j = 0; j < len; ++j) {
        if (!hot.empty()) {
            s[j] = hot[rng() % hot.size()];
            continue;
        }
        if (mix.traffic == Traffic::claim || (mix.new_pct != 0 && rng() % 100 < mix.new_pct)) {
            s[j] = nflows + j; /* never in the table */
            continue;
        }
        const bool foreign = mix.traffic == Traffic::plain && rng() % 100 < mix.foreign_pct;
        const uint64_t cls = foreign ? (mix.encap == EncapKind::geneve ? 2 : 3) : rng() & 1;
        s[j] = 4 * (rng() % quarter) + cls;
    }
    return s;
}

/** One table, its mbufs and the three measurements over one stream of flows,
 *  through the fixture's worker or @p w. */
class Runner {
public:
    Runner(Fixture &fx, rte_mempool *pool, Family f, Worker *w = nullptr)
        : fx_(fx), worker_(w != nullptr ? *w : *fx.worker), family_(f)
    {
        for (rte_mbuf *&m : mbufs_)
            m = rte_pktmbuf_alloc(pool);
        decap_ = decap_frame(f, pool);
        for (unsigned i = 0; i < kChunk; ++i) {
            ptr4_[i] = &keys_[i].v4;
            ptr6_[i] = &keys_[i].v6;
        }
    }
    ~Runner()
    {
        for (rte_mbuf *m : mbufs_)
            rte_pktmbuf_free(m);
    }

    void use(const Mix &mix, const std::vector<uint64_t> &stream)
    {
        tmpl_ = mix.traffic == Traffic::decap
                    ? decap_
                    : plain_frame(family_, mix.traffic == Traffic::claim || mix.new_pct != 0
                                               ? tcp_flag::syn
                                               : tcp_flag::ack);
        stream_ = &stream;
        pos_ = 0;
    }

    /** Resets the mbufs with the next chunk of flows (and their keys). */
    void reset_next()
    {
        const std::vector<uint64_t> &s = *stream_;
        for (unsigned i = 0; i < kChunk; ++i) {
            const uint64_t flow = s[(pos_ + i) % s.size()];
            reset_mbuf(mbufs_[i], tmpl_, flow);
            keys_[i] = key_of(family_, flow);
        }
        fx_.discard_outputs(worker_);
    }
    void advance() { pos_ += kChunk; }

    void pipeline() noexcept
    {
        Worker &w = worker_;
        for (unsigned b = 0; b < kChunk; b += kBurst) {
            w.process_wire_burst(&mbufs_[b], kBurst);
            w.wire_out().n = 0;
            w.local_out().n = 0;
        }
    }

    void passthrough() noexcept
    {
        rte_mbuf *out[kBurst];
        uint64_t sink = 0;
        for (unsigned b = 0; b < kChunk; b += kBurst) {
            rte_mbuf **in = &mbufs_[b];
            for (unsigned i = 0; i < kBurst; ++i) {
                if (i + 3 < kBurst)
                    rte_prefetch0(rte_pktmbuf_mtod(in[i + 3], void *));
                const uint8_t *d = rte_pktmbuf_mtod(in[i], const uint8_t *);
                sink += static_cast<uint64_t>(d[12]) << 8 | d[13];
                out[i] = in[i];
            }
            sink += reinterpret_cast<uintptr_t>(out[kBurst - 1]);
        }
        g_sink = sink;
    }

    void lookup() noexcept
    {
        rte_hash *h = family_ == Family::ipv4 ? fx_.table->hash4() : fx_.table->hash6();
        void *data[kBurst];
        uint64_t sink = 0;
        for (unsigned b = 0; b < kChunk; b += kBurst) {
            uint64_t hits = 0;
            const void **keys = family_ == Family::ipv4
                                    ? reinterpret_cast<const void **>(&ptr4_[b])
                                    : reinterpret_cast<const void **>(&ptr6_[b]);
            rte_hash_lookup_bulk_data(h, keys, kBurst, &hits, data);
            sink += hits + reinterpret_cast<uintptr_t>(data[0]);
        }
        g_sink = sink;
    }

private:
    Fixture &fx_;
    Worker &worker_;
    Family family_;
    rte_mbuf *mbufs_[kChunk];
    FlowKey keys_[kChunk];
    const FlowKey4 *ptr4_[kChunk];
    const FlowKey6 *ptr6_[kChunk];
    FrameTemplate tmpl_{};
    FrameTemplate decap_{};
    const std::vector<uint64_t> *stream_ = nullptr;
    size_t pos_ = 0;
};

struct Row {
    double pipe = 0, pass = 0, look = 0, ratio = 0;
};

template <typename Fn> uint64_t timed(Fn &&fn)
{
    const uint64_t t0 = rte_rdtsc_precise();
    fn();
    return rte_rdtsc_precise() - t0;
}

/* Cycles of @p fn of @p r over the next chunk of its stream. */
uint64_t next_timed(Runner &r, void (Runner::*fn)() noexcept)
{
    r.reset_next();
    const uint64_t c = timed([&] { (r.*fn)(); });
    r.advance();
    return c;
}

/*
 * Each measurement takes the next chunk of the stream: no measurement runs on
 * flows another one has just brought into the cache, so all three see the
 * table as steady traffic over the whole stream would (a 10k table stays in
 * cache, a 10M one does not).
 */
/*
 * Warm-up, not counted: enough packets of the mix that the worker's flow
 * cache, which may have been resting at the end of the mix before, is in
 * the state this mix keeps it in (a rest ends within kRestPackets, and a
 * window that decides the next is kWindow).
 */
void warm_up(Runner &r)
{
    constexpr uint32_t kPackets = FlowCache<FlowKey4>::kRestPackets + FlowCache<FlowKey4>::kWindow;
    static_assert(kPackets == FlowCache<FlowKey6>::kRestPackets + FlowCache<FlowKey6>::kWindow);
    for (uint32_t n = 0; n < kPackets; n += kChunk) {
        r.reset_next();
        r.pipeline();
        r.advance();
    }
}

Row measure(Runner &r, unsigned runs, unsigned passes)
{
    std::vector<double> pipe, pass, look, ratio;
    warm_up(r);
    for (unsigned run = 0; run < runs; ++run) {
        uint64_t cp = 0, cb = 0, cl = 0;
        for (unsigned p = 0; p < passes; ++p) {
            cp += next_timed(r, &Runner::pipeline);
            cb += next_timed(r, &Runner::passthrough);
            cl += next_timed(r, &Runner::lookup);
        }
        const double pkts = double(passes) * kChunk;
        pipe.push_back(double(cp) / pkts);
        pass.push_back(double(cb) / pkts);
        look.push_back(double(cl) / pkts);
        ratio.push_back(double(cp) / double(cb + cl));
    }
    return {median(pipe), median(pass), median(look), median(ratio)};
}

/* Of the fixture's workers, both where it has two. */
uint64_t drops_of(const Fixture &fx)
{
    const uint64_t twin = fx.uncached != nullptr ? fx.uncached->stats().total_drops() : 0;
    return fx.worker->stats().total_drops() + twin;
}

/* Every mix's packets are forwarded: a drop means the figures are not the
 * path's they name. */
void exit_if_dropped(uint64_t before, uint64_t after, const std::string &what)
{
    if (after == before)
        return;
    std::fprintf(stderr, "%s: the pipeline dropped packets; figures invalid\n", what.c_str());
    std::exit(1);
}

void bench_table(rte_mempool *pool, Family f, uint64_t nflows, unsigned runs, unsigned passes,
                 const FixtureSetup &setup)
{
    const int fam = f == Family::ipv4 ? 4 : 6;
    const std::string name = fmt::format("b{}_{}", fam, nflows);
    const auto cap = static_cast<uint32_t>(nflows);
    Fixture fx(name.c_str(), f == Family::ipv4 ? cap : 8, f == Family::ipv6 ? cap : 8, setup);
    const size_t created = table_memory_allocated(*fx.heap);
    const uint64_t t0 = rte_rdtsc();
    fx.populate(f, nflows);
    const double fill_s = double(rte_rdtsc() - t0) / double(rte_get_tsc_hz());
    /* The other family's table (8 entries) is counted too: a few kB. */
    std::printf("\n# IPv%d, %" PRIu64 " flows: table %.1f MB = %.1f B/flow (+%zu bytes while "
                "filling); filled in %.1f s (%.2f M inserts/s)\n# table memory: %s\n",
                fam, nflows, double(fx.table_bytes) / 1e6, double(fx.table_bytes) / double(nflows),
                table_memory_allocated(*fx.heap) - created, fill_s, double(nflows) / fill_s / 1e6,
                fx.heap->describe().c_str());
    std::printf("%-6s %-9s %-13s %9s %8s %7s | %9s %9s | %6s\n", "family", "flows", "mix",
                "cyc/pkt", "ns/pkt", "Mpps", "pass cyc", "look cyc", "ratio");

    Runner r(fx, pool, f);
    const double ns_per_cycle = 1e9 / double(rte_get_tsc_hz());
    for (const Mix &mix : kMixes) {
        const auto stream = make_stream(mix, nflows, kStream, 12345);
        r.use(mix, stream);
        const uint64_t drops = drops_of(fx);
        const Row row = measure(r, runs, passes);
        exit_if_dropped(drops, drops_of(fx), mix.name);
        const double ns = row.pipe * ns_per_cycle;
        std::printf("IPv%-4d %-9" PRIu64 " %-13s %9.1f %8.1f %7.2f | %9.1f %9.1f | %6.2f\n", fam,
                    nflows, mix.name, row.pipe, ns, 1e3 / ns, row.pass, row.look, row.ratio);
        std::fflush(stdout);
    }
}

/* ---- growth and cache-sweep modes: two runners, measured in turn (two
 * tables for growth, two workers on one table for the sweep) ---- */

/* What the pipelines of a and b cost, each on its own stream of the same
 * mix, their chunks in turn: per run, a's and b's cycles a packet and b's
 * over a's. The caller warms both up. */
struct Paired {
    std::vector<double> a, b, quotient;
};

Paired measure_paired(Runner &ra, Runner &rb, unsigned runs, unsigned passes)
{
    Paired out;
    for (unsigned run = 0; run < runs; ++run) {
        uint64_t a = 0, b = 0;
        for (unsigned p = 0; p < passes; ++p) {
            a += next_timed(ra, &Runner::pipeline);
            b += next_timed(rb, &Runner::pipeline);
        }
        const double pkts = double(passes) * kChunk;
        out.a.push_back(double(a) / pkts);
        out.b.push_back(double(b) / pkts);
        out.quotient.push_back(double(b) / double(a));
    }
    return out;
}

/* A fixture whose table of family f holds the first n flows (8 slots of
 * the other family). */
std::unique_ptr<Fixture> populated(const char *name, Family f, uint64_t n,
                                   const FixtureSetup &setup)
{
    const auto cap = static_cast<uint32_t>(n);
    auto fx = std::make_unique<Fixture>(name, f == Family::ipv4 ? cap : 8,
                                        f == Family::ipv6 ? cap : 8, setup);
    fx->populate(f, n);
    return fx;
}

void bench_growth(rte_mempool *pool, Family f, uint64_t small, uint64_t large, unsigned runs,
                  unsigned passes, const FixtureSetup &setup)
{
    const int fam = f == Family::ipv4 ? 4 : 6;
    const auto fs = populated(fmt::format("g{}_{}", fam, small).c_str(), f, small, setup);
    const auto fl = populated(fmt::format("g{}_{}", fam, large).c_str(), f, large, setup);
    Runner rs(*fs, pool, f);
    Runner rl(*fl, pool, f);
    std::printf("\n# IPv%d, cost growth from %" PRIu64 " to %" PRIu64 " flows, the two "
                "tables' chunks in turn\n",
                fam, small, large);
    std::printf("%-6s %-13s %9s %9s | %6s %13s\n", "family", "mix", "small cyc", "large cyc",
                "growth", "runs min-max");
    for (const Mix &mix : {kMixes[0], kMixes[1]}) {
        const auto ss = make_stream(mix, small, kStream, 12345);
        const auto sl = make_stream(mix, large, kStream, 12345);
        rs.use(mix, ss);
        rl.use(mix, sl);
        const uint64_t drops = drops_of(*fs) + drops_of(*fl);
        warm_up(rs);
        warm_up(rl);
        const Paired m = measure_paired(rs, rl, runs, passes);
        exit_if_dropped(drops, drops_of(*fs) + drops_of(*fl), mix.name);
        const auto [lo, hi] = std::minmax_element(m.quotient.begin(), m.quotient.end());
        std::printf("IPv%-4d %-13s %9.1f %9.1f | %6.2f %6.2f-%.2f\n", fam, mix.name, median(m.a),
                    median(m.b), median(m.quotient), *lo, *hi);
        std::fflush(stdout);
    }
}

void bench_cache_sweep(rte_mempool *pool, Family f, uint64_t nflows,
                       const std::vector<uint64_t> &hot_counts, unsigned runs, unsigned passes,
                       const FixtureSetup &setup)
{
    const int fam = f == Family::ipv4 ? 4 : 6;
    /* One table for both: two, filled alike, lay in memory differently
     * enough to bias the comparison by a few per cent. */
    FixtureSetup both = setup;
    both.flow_cache = true;
    both.uncached_twin = true;
    const auto fx = populated(fmt::format("c{}_{}", fam, nflows).c_str(), f, nflows, both);
    Runner ron(*fx, pool, f);
    Runner roff(*fx, pool, f, fx->uncached.get());
    std::printf("\n# IPv%d, %" PRIu64 " flows: local hits over H of them, through a worker with "
                "its flow cache and one without, in turn\n",
                fam, nflows);
    std::printf("%-6s %7s | %6s %7s | %9s %9s | %7s %13s\n", "family", "H flows", "held", "probed",
                "cache cyc", "none cyc", "on/off", "runs min-max");
    for (const uint64_t hot : hot_counts) {
        const Mix mix{
            "local hot", Traffic::plain, 0, EncapKind::geneve, 0, static_cast<unsigned>(hot)};
        const auto stream = make_stream(mix, nflows, kStream, 12345);
        ron.use(mix, stream);
        roff.use(mix, stream);
        /* Half the stream apart: each reads the table's lines of its own
         * packets, not those the other has just read. */
        for (size_t k = 0; k < kStream / kChunk / 2; ++k)
            roff.advance();
        const uint64_t drops = drops_of(*fx);
        /* The warm-up ends a rest the mix before left the cache in: what
         * the runs count is the state this mix keeps it in. */
        warm_up(roff);
        warm_up(ron);
        const WorkerStats &st = fx->worker->stats();
        const uint64_t hits = st.flow_cache_hits.get();
        const uint64_t misses = st.flow_cache_misses.get();
        const uint64_t rested = st.flow_cache_rested.get();
        /* on/off is b over a: the cached worker's cost over the other's. */
        const Paired m = measure_paired(roff, ron, runs, passes);
        exit_if_dropped(drops, drops_of(*fx), fmt::format("--cache-sweep {}", hot));
        const uint64_t held = st.flow_cache_hits.get() - hits;
        const uint64_t probed = held + st.flow_cache_misses.get() - misses;
        const uint64_t all = probed + st.flow_cache_rested.get() - rested;
        const auto [lo, hi] = std::minmax_element(m.quotient.begin(), m.quotient.end());
        std::printf("IPv%-4d %7" PRIu64 " | %5.1f%% %6.1f%% | %9.1f %9.1f | %7.2f %6.2f-%.2f\n",
                    fam, hot, 100.0 * double(held) / double(probed == 0 ? 1 : probed),
                    100.0 * double(probed) / double(all), median(m.b), median(m.a),
                    median(m.quotient), *lo, *hi);
        std::fflush(stdout);
    }
}

/* ---- callgrind mode: one function per path, 1024 packets each ---- */

__attribute__((noinline)) void cg_local_hit(Runner &r)
{
    r.pipeline();
}
__attribute__((noinline)) void cg_redirect_geneve(Runner &r)
{
    r.pipeline();
}
__attribute__((noinline)) void cg_redirect_ipip(Runner &r)
{
    r.pipeline();
}
__attribute__((noinline)) void cg_decap(Runner &r)
{
    r.pipeline();
}
__attribute__((noinline)) void cg_claim_miss(Runner &r)
{
    r.pipeline();
}
__attribute__((noinline)) void cg_cached_hit(Runner &r)
{
    r.pipeline();
}
__attribute__((noinline)) void cg_passthrough(Runner &r)
{
    r.passthrough();
}
__attribute__((noinline)) void cg_lookup(Runner &r)
{
    r.lookup();
}

void callgrind_mode(rte_mempool *pool, const std::vector<uint64_t> &families,
                    const FixtureSetup &setup)
{
    constexpr uint64_t kFlows = 4096;
    /* The table's paths without the flow cache (a worker's cache rests
     * where flows do not repeat: one branch a burst); the cached path with it. */
    FixtureSetup table_only = setup;
    table_only.flow_cache = false;
    FixtureSetup cached = setup;
    cached.flow_cache = true;
    for (const uint64_t fam : families) {
        const Family f = fam == 4 ? Family::ipv4 : Family::ipv6;
        Fixture fx(fmt::format("cg{}", fam).c_str(), kFlows, kFlows, table_only);
        Fixture fxc(fmt::format("cgc{}", fam).c_str(), kFlows, kFlows, cached);
        fx.populate(f, kFlows);
        fxc.populate(f, kFlows);
        Runner r(fx, pool, f);
        Runner rc(fxc, pool, f);
        const struct {
            Runner &runner;
            const Mix &mix;
            void (*fn)(Runner &);
            const char *name;
        } paths[] = {
            {r, kMixes[0], cg_local_hit, "cg_local_hit"},
            {r, kMixes[3], cg_redirect_geneve, "cg_redirect_geneve"},
            {r, kMixes[4], cg_redirect_ipip, "cg_redirect_ipip"},
            {r, kMixes[5], cg_decap, "cg_decap"},
            {r, kMixes[6], cg_claim_miss, "cg_claim_miss"},
            {r, kMixes[0], cg_passthrough, "cg_passthrough"},
            {r, kMixes[0], cg_lookup, "cg_lookup"},
            {rc, kHotMix, cg_cached_hit, "cg_cached_hit"},
        };
        /* callgrind.sh runs one family per process: function names are per process. */
        for (const auto &p : paths) {
            const auto stream = make_stream(p.mix, kFlows, 4 * kChunk, 7);
            p.runner.use(p.mix, stream);
            p.runner.reset_next(); /* warm-up: lazy binding, first-touch paths */
            p.runner.pipeline();
            p.runner.passthrough();
            p.runner.lookup();
            p.runner.advance();
            p.runner.reset_next();
            p.fn(p.runner);
            std::printf("path IPv%" PRIu64 " %s %u packets\n", fam, p.name, kChunk);
        }
    }
}

} // namespace

int main(int argc, char **argv)
{
    const int first = start_eal(argc, argv);
    try {
        Options opt(argc, argv, first);
        const auto families = opt.list("--families", {4, 6});
        const auto flows = opt.list("--flows", {10000, 1000000, 10000000});
        const auto runs = static_cast<unsigned>(opt.value("--runs", 5));
        const auto passes = static_cast<unsigned>(opt.value("--passes", 64));
        const bool cg = opt.flag("--callgrind");
        FixtureSetup setup;
        setup.memory = opt.table_memory();
        setup.nvips = static_cast<unsigned>(opt.value("--vips", 1));
        const bool cache_given = opt.given("--flow-cache");
        setup.flow_cache = opt.on_off("--flow-cache", true);
        const auto growth = opt.list("--growth", {});
        const auto sweep = opt.list("--cache-sweep", {});
        opt.finish();
        if (!sweep.empty() && !growth.empty())
            throw std::invalid_argument("--cache-sweep and --growth are two modes: one at a time");
        if (!sweep.empty() && cache_given)
            throw std::invalid_argument(
                "--flow-cache does not apply to --cache-sweep, which runs a worker with its cache "
                "and one without");
        for (const uint64_t n : flows)
            for (const uint64_t hot : sweep)
                if (hot == 0 || hot > n / 4)
                    throw std::invalid_argument(
                        fmt::format("--cache-sweep {}: from 1 to a quarter of {} flows", hot, n));
        if (!growth.empty() && (growth.size() != 2 || growth[0] >= growth[1]))
            throw std::invalid_argument("--growth takes two table sizes, the smaller first");
        bench_vips(setup.nvips); /* refuses a count it cannot build, before any table is */

        /* The node's own pool, as a node with hugepages, or with ports whose
         * drivers move packets with the CPU (no DMA), has it: mbufs back to back
         * (create_packet_pool()), not one to each 4 KB page. */
        rte_mempool *pool =
            create_packet_pool("bench_pool", 2 * kChunk + 512, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        if (pool == nullptr)
            throw std::runtime_error("cannot create the mbuf pool");
        std::printf("# TSC %.3f GHz; medians of %u runs x %u passes x %u packets; burst %u; "
                    "%u VIP(s) per family\n",
                    double(rte_get_tsc_hz()) / 1e9, runs, passes, kChunk, kBurst, setup.nvips);
        const bool ipv4 = std::find(families.begin(), families.end(), 4) != families.end();
        if (cg) {
            callgrind_mode(pool, families, setup);
        } else if (!sweep.empty()) {
            for (const uint64_t n : flows)
                if (ipv4 && n > kMaxFlows4)
                    throw std::invalid_argument(fmt::format(
                        "--flows {}: at most {} (the IPv4 keys run out)", n, kMaxFlows4));
            for (const uint64_t fam : families)
                for (const uint64_t n : flows)
                    bench_cache_sweep(pool, fam == 4 ? Family::ipv4 : Family::ipv6, n, sweep, runs,
                                      passes, setup);
        } else if (!growth.empty()) {
            if (ipv4 && growth[1] + kStream > kMaxFlows4)
                throw std::invalid_argument(
                    fmt::format("--growth {}: at most {} (the IPv4 keys run out)", growth[1],
                                kMaxFlows4 - kStream));
            for (const uint64_t fam : families)
                bench_growth(pool, fam == 4 ? Family::ipv4 : Family::ipv6, growth[0], growth[1],
                             runs, passes, setup);
        } else {
            for (const uint64_t n : flows) {
                if (ipv4 && n + kStream > kMaxFlows4)
                    throw std::invalid_argument(fmt::format(
                        "--flows {}: at most {} (the IPv4 keys run out)", n, kMaxFlows4 - kStream));
                if (local_flows(n) < kHotMix.hot)
                    throw std::invalid_argument(fmt::format(
                        "--flows {}: at least {} (the {} hot flows are local ones, half the table)",
                        n, 2 * kHotMix.hot, kHotMix.hot));
            }
            for (const uint64_t fam : families)
                for (const uint64_t n : flows)
                    bench_table(pool, fam == 4 ? Family::ipv4 : Family::ipv6, n, runs, passes,
                                setup);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "datapath_bench: %s\n", e.what());
        rte_eal_cleanup();
        return 2;
    }
    rte_eal_cleanup();
    return 0;
}
