/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gossip_sim: N real GossipEngines over MapFlowStores on a simulated
 * multicast network, in simulated time (a discrete-event queue; nothing
 * sleeps). Each node claims new flows at a fixed rate for a while; one node
 * may be killed mid-run; then the cluster runs quiet until it converges.
 * Reports claim-to-everywhere latency, wire cost per claim and failover
 * times, and exits non-zero unless every live node's table is identical and
 * every claim reached every live node.
 *
 * The network: every frame goes to every other node after delay + U(0,
 * jitter) microseconds, each delivery lost independently with probability
 * `loss`. Nodes tick at GossipEngine::next_tick_us(). Owners refresh their
 * own flows every second (their connections are active) and every node ages
 * its table every second with --idle-s, as the control loop does.
 */
#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_membership.hpp"
#include "flowhome/map_flow_store.hpp"

using namespace flowhome;

namespace {

struct Options {
    uint32_t nodes = 16;
    double loss = 0.0;
    uint32_t delay_us = 100;
    uint32_t jitter_us = 50;
    uint32_t batch_us = 1000;
    uint32_t claims = 200; /* per node */
    uint32_t rate = 1000;  /* claims per second per node */
    uint32_t seed = 1;
    uint32_t seeds = 1; /* runs with seed, seed+1, ...; medians printed */
    bool kill = false;
    uint32_t reannounce_ms = 2000;
    uint32_t heartbeat_ms = 100;
    uint32_t suspect_ms = 500;
    uint32_t dead_ms = 1500;
    uint32_t idle_s = 10; /* ageing timeout */
    bool verbose = false;
};

constexpr uint32_t kClientBase = 0x0A000000; /* claim c: client 10.0.0.0 + c */
constexpr uint64_t kStartUs = 10'000'000;    /* t0 = 10 s: epochs are nonzero */

FlowKey key_of(uint32_t claim)
{
    return FlowKey::make4(htonl(kClientBase + claim), htons(40000), htonl(0xC6336401u), htons(443),
                          kProtoTcp);
}

uint32_t claim_of(const FlowKey &k)
{
    return ntohl(k.v4.client_addr) - kClientBase;
}

struct Result {
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
    double within_reannounce = 0; /* fraction of claims everywhere within the interval */
    double bytes_per_claim = 0, frames_per_claim = 0;
    double route_ms = -1, rewrite_ms = -1; /* failover; -1 without a kill */
    double converge_s = 0;                 /* simulated time until identical tables */
    uint64_t syncs = 0;
    bool identical = false;
    bool complete = false;
};

class Sim;

/* A MapFlowStore that tells the simulator when a claim first lands. */
class SimStore : public MapFlowStore {
public:
    SimStore(Sim &sim, uint32_t node) : sim_(sim), node_(node) {}
    UpsertResult upsert(const FlowKey &key, OwnerRecord record) noexcept override;

private:
    Sim &sim_;
    uint32_t node_;
};

class Sim {
public:
    explicit Sim(const Options &o, uint32_t seed) : o_(o), rng_(seed)
    {
        ring_.add(1, std::vector<uint8_t>(32, 0x5A));
        const uint32_t total = o_.nodes * o_.claims;
        claim_owner_.resize(total);
        claim_time_.resize(total, 0);
        applied_.assign(size_t{total} * o_.nodes, 0);
        for (uint32_t i = 0; i < o_.nodes; ++i) {
            nodes_.emplace_back();
            start_node(i);
        }
    }

    void on_upsert(uint32_t node, const FlowKey &key, OwnerRecord r)
    {
        if (key.family != Family::ipv4 || (r.flags & gossip_flag::released) != 0)
            return;
        const uint32_t c = claim_of(key);
        if (c >= claim_owner_.size() || r.version != 1 || r.owner != claim_owner_[c])
            return;
        uint64_t &t = applied_[size_t{c} * o_.nodes + node];
        if (t == 0)
            t = now_;
    }

    Result run();

private:
    enum class Ev : uint8_t { deliver, tick, claim, probe, housekeeping };
    struct Event {
        uint64_t t;
        uint64_t seq;
        Ev type;
        uint32_t node;
        std::shared_ptr<const std::vector<uint8_t>> frame;
        bool operator>(const Event &o) const { return t != o.t ? t > o.t : seq > o.seq; }
    };
    struct Node {
        std::unique_ptr<SimStore> store;
        std::unique_ptr<GossipEngine> engine;
        bool up = true;
        uint64_t tick_at = UINT64_MAX;
        uint32_t claimed = 0;
    };

    void push(uint64_t t, Ev type, uint32_t node,
              std::shared_ptr<const std::vector<uint8_t>> f = {})
    {
        q_.push(Event{t, seq_++, type, node, std::move(f)});
    }

    void start_node(uint32_t i)
    {
        GossipParams p;
        p.self = static_cast<NodeId>(i + 1);
        p.cluster_id = 77;
        p.incarnation = 1;
        for (uint32_t j = 0; j < o_.nodes; ++j)
            if (j != i)
                p.peers.push_back(static_cast<NodeId>(j + 1));
        p.max_frame = 1472;
        p.batch_interval_us = o_.batch_us;
        p.heartbeat_interval_ms = o_.heartbeat_ms;
        p.suspect_after_ms = o_.suspect_ms;
        p.dead_after_ms = o_.dead_ms;
        p.reannounce_interval_ms = o_.reannounce_ms;
        Node &n = nodes_[i];
        n.store = std::make_unique<SimStore>(*this, i);
        n.engine = std::make_unique<GossipEngine>(
            p, ring_, *n.store, [this, i](std::span<const uint8_t> f) { on_send(i, f); }, now_);
        reschedule(i);
    }

    void on_send(uint32_t from, std::span<const uint8_t> f)
    {
        auto frame = std::make_shared<const std::vector<uint8_t>>(f.begin(), f.end());
        std::uniform_real_distribution<double> u(0.0, 1.0);
        for (uint32_t j = 0; j < o_.nodes; ++j) {
            if (j == from)
                continue;
            if (o_.loss > 0 && u(rng_) < o_.loss)
                continue;
            const uint64_t jitter = o_.jitter_us ? rng_() % (o_.jitter_us + 1) : 0;
            push(now_ + o_.delay_us + jitter, Ev::deliver, j, frame);
        }
    }

    void reschedule(uint32_t i)
    {
        Node &n = nodes_[i];
        const uint64_t t = std::max(n.engine->next_tick_us(), now_ + 1);
        if (t < n.tick_at) {
            n.tick_at = t;
            push(t, Ev::tick, i);
        }
    }

    bool tables_identical() const;
    bool claims_complete() const;
    void probe_failover();

    Options o_;
    std::mt19937_64 rng_;
    KeyRing ring_;
    std::vector<Node> nodes_;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> q_;
    uint64_t seq_ = 0;
    uint64_t now_ = kStartUs;
    std::vector<NodeId> claim_owner_;
    std::vector<uint64_t> claim_time_;
    std::vector<uint64_t> applied_; /* [claim * nodes + node]: first time applied, 0 = never */
    std::vector<FlowKey> refresh_;
    uint32_t victim_ = UINT32_MAX;
    uint64_t kill_us_ = 0, route_us_ = 0, rewrite_us_ = 0;
};

UpsertResult SimStore::upsert(const FlowKey &key, OwnerRecord record) noexcept
{
    const UpsertResult r = MapFlowStore::upsert(key, record);
    if (r == UpsertResult::inserted || r == UpsertResult::updated)
        sim_.on_upsert(node_, key, record);
    return r;
}

bool Sim::tables_identical() const
{
    std::vector<std::pair<FlowKey, OwnerRecord>> ref;
    bool have = false;
    for (const Node &n : nodes_) {
        if (!n.up)
            continue;
        auto e = n.store->entries();
        if (!have) {
            ref = std::move(e);
            have = true;
            continue;
        }
        if (e.size() != ref.size()) {
            if (o_.verbose) {
                fmt::print("  node {}: {} entries, first live node {}\n", &n - nodes_.data() + 1,
                           e.size(), ref.size());
                for (size_t k = 0; k < std::min(e.size(), ref.size()); ++k)
                    if (!(e[k].first == ref[k].first)) {
                        const auto &x = e.size() > ref.size() ? e[k] : ref[k];
                        fmt::print("  first difference: claim {} owner {} v{} flags {} epoch {} "
                                   "(now {})\n",
                                   claim_of(x.first), x.second.owner, x.second.version,
                                   x.second.flags, x.second.epoch, epoch_of(now_));
                        for (const Node &m : nodes_) {
                            const auto r = m.store->lookup(x.first);
                            if (m.up && r)
                                fmt::print("    node {}: owner {} v{} epoch {} life {}\n",
                                           &m - nodes_.data() + 1, r->owner, r->version, r->epoch,
                                           r->reserved);
                        }
                        break;
                    }
            }
            return false;
        }
        for (size_t k = 0; k < e.size(); ++k)
            if (!(e[k].first == ref[k].first) || e[k].second.owner != ref[k].second.owner ||
                e[k].second.version != ref[k].second.version ||
                e[k].second.flags != ref[k].second.flags) {
                if (o_.verbose)
                    fmt::print(
                        "  node {}: claim {} owner {} v{} epoch {} vs {} v{} epoch {} (now {})\n",
                        &n - nodes_.data() + 1, claim_of(e[k].first), e[k].second.owner,
                        e[k].second.version, e[k].second.epoch, ref[k].second.owner,
                        ref[k].second.version, ref[k].second.epoch, epoch_of(now_));
                return false;
            }
    }
    return true;
}

bool Sim::claims_complete() const
{
    for (uint32_t c = 0; c < claim_owner_.size(); ++c) {
        const uint32_t owner = claim_owner_[c] - 1u;
        if (claim_time_[c] == 0 || !nodes_[owner].up)
            continue;
        for (uint32_t j = 0; j < o_.nodes; ++j)
            if (nodes_[j].up && applied_[size_t{c} * o_.nodes + j] == 0)
                return false;
    }
    return true;
}

/* Every live node routes the victim's flows to the same live owner (through
 * effective_owner: the workers' view), and the records are rewritten. */
void Sim::probe_failover()
{
    const auto dead = static_cast<NodeId>(victim_ + 1);
    bool routed = true, rewritten = true;
    for (uint32_t c = 0; c < claim_owner_.size() && (routed || rewritten); ++c) {
        if (claim_owner_[c] != dead || claim_time_[c] == 0)
            continue;
        const FlowKey k = key_of(c);
        const uint32_t h = flow_hash(k);
        NodeId agreed = kInvalidNode;
        for (uint32_t j = 0; j < o_.nodes; ++j) {
            if (!nodes_[j].up)
                continue;
            const auto r = nodes_[j].store->lookup(k);
            if (!r)
                continue; /* never received before the death: nothing to route */
            if (r->owner == dead)
                rewritten = false;
            const NodeId eo = nodes_[j].engine->effective_owner(*r, h);
            if (eo == dead || eo == kInvalidNode || (agreed != kInvalidNode && eo != agreed))
                routed = false;
            agreed = eo;
        }
    }
    if (routed && route_us_ == 0)
        route_us_ = now_;
    if (rewritten && rewrite_us_ == 0)
        rewrite_us_ = now_;
}

Result Sim::run()
{
    const uint64_t claim_gap = 1'000'000 / std::max(1u, o_.rate);
    /* Let heartbeats flow and start-up syncs finish before claiming. */
    const uint64_t claims_start = now_ + uint64_t{o_.heartbeat_ms} * 3000;
    std::uniform_int_distribution<uint64_t> phase(0, claim_gap);
    for (uint32_t i = 0; i < o_.nodes; ++i)
        push(claims_start + phase(rng_), Ev::claim, i);
    const uint64_t claims_end = claims_start + uint64_t{o_.claims} * claim_gap;
    if (o_.kill) {
        victim_ = o_.nodes - 1;
        kill_us_ = claims_start + (claims_end - claims_start) / 2;
    }
    push(now_ + 1'000'000, Ev::housekeeping, 0);

    const uint64_t quiet_max = uint64_t{o_.idle_s} * 1'000'000 + uint64_t{o_.reannounce_ms} * 3000 +
                               uint64_t{o_.dead_ms} * 1000 + 2'000'000;
    uint64_t next_check = claims_end + 100'000;
    bool killed = false, done = false;
    Result res;
    while (!q_.empty() && !done) {
        Event ev = q_.top();
        q_.pop();
        now_ = ev.t;
        if (o_.kill && !killed && now_ >= kill_us_) {
            killed = true;
            nodes_[victim_].up = false;
            push(now_ + 5000, Ev::probe, 0);
        }
        Node &n = nodes_[ev.node];
        switch (ev.type) {
        case Ev::deliver:
            if (n.up) {
                n.engine->receive(*ev.frame, now_);
                reschedule(ev.node);
            }
            break;
        case Ev::tick:
            if (n.tick_at != ev.t)
                break; /* superseded by an earlier one */
            n.tick_at = UINT64_MAX;
            if (n.up) {
                n.engine->tick(now_);
                reschedule(ev.node);
            }
            break;
        case Ev::claim:
            if (!n.up || n.claimed >= o_.claims)
                break;
            {
                const uint32_t c = ev.node * o_.claims + n.claimed++;
                claim_owner_[c] = static_cast<NodeId>(ev.node + 1);
                claim_time_[c] = now_;
                n.engine->local_claim(key_of(c), now_);
                applied_[size_t{c} * o_.nodes + ev.node] = now_;
                reschedule(ev.node);
                push(now_ + claim_gap, Ev::claim, ev.node);
            }
            break;
        case Ev::probe:
            probe_failover();
            if (route_us_ == 0 || rewrite_us_ == 0)
                push(now_ + 5000, Ev::probe, 0);
            break;
        case Ev::housekeeping:
            /* Owners' connections are active: workers refresh them. Every
             * node ages its table, as the control loop does. */
            for (uint32_t i = 0; i < o_.nodes; ++i) {
                if (!nodes_[i].up)
                    continue;
                /* Every flow the node owns, taken over ones included. */
                uint64_t cursor = 0;
                refresh_.clear();
                const auto self = static_cast<NodeId>(i + 1);
                do
                    nodes_[i].store->scan(cursor, 4096, [&](const FlowKey &k, OwnerRecord r) {
                        if (r.owner == self)
                            refresh_.push_back(k);
                    });
                while (cursor != 0);
                for (const FlowKey &k : refresh_)
                    nodes_[i].engine->local_refresh(k, now_);
                nodes_[i].store->age(epoch_of(now_), static_cast<uint16_t>(o_.idle_s));
            }
            push(now_ + 1'000'000, Ev::housekeeping, 0);
            break;
        }
        if (now_ >= next_check) {
            next_check = now_ + 250'000;
            const bool fo_done = !o_.kill || (route_us_ != 0 && rewrite_us_ != 0);
            res.complete = claims_complete();
            res.identical = res.complete && fo_done && tables_identical();
            if (res.identical || now_ > claims_end + quiet_max)
                done = true;
        }
    }
    res.converge_s = static_cast<double>(now_ - claims_end) / 1e6;
    if (o_.verbose && !res.identical)
        for (uint32_t i = 0; i < o_.nodes; ++i) {
            const GossipStats &st = nodes_[i].engine->stats();
            fmt::print("  node {}{}: failovers {} reclaimed {} orphans {} conflicts_lost {} "
                       "new_incarnations {} size {}\n",
                       i + 1, nodes_[i].up ? "" : " (dead)", st.failovers.get(), st.reclaimed.get(),
                       st.orphans.get(), st.conflicts_lost.get(),
                       nodes_[i].engine->rx_stats().new_incarnations.get(),
                       nodes_[i].store->size());
        }

    /* Claim-to-everywhere: from the claim to the last live node applying it. */
    std::vector<double> lat;
    uint32_t within = 0;
    for (uint32_t c = 0; c < claim_owner_.size(); ++c) {
        if (claim_time_[c] == 0 || !nodes_[claim_owner_[c] - 1u].up)
            continue;
        uint64_t last = claim_time_[c];
        for (uint32_t j = 0; j < o_.nodes; ++j) {
            if (!nodes_[j].up)
                continue;
            const uint64_t t = applied_[size_t{c} * o_.nodes + j];
            last = t == 0 ? UINT64_MAX : std::max(last, t);
        }
        if (last == UINT64_MAX)
            continue;
        const double ms = static_cast<double>(last - claim_time_[c]) / 1000.0;
        lat.push_back(ms);
        within += ms <= o_.reannounce_ms ? 1 : 0;
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
        return lat.empty() ? 0.0
                           : lat[std::min(lat.size() - 1, static_cast<size_t>(q * lat.size()))];
    };
    res.p50_ms = pct(0.50);
    res.p99_ms = pct(0.99);
    res.max_ms = lat.empty() ? 0 : lat.back();
    res.within_reannounce = lat.empty() ? 0 : static_cast<double>(within) / lat.size();
    uint64_t bytes = 0, frames = 0, claims = 0;
    for (const Node &n : nodes_) {
        bytes += n.engine->stats().bytes_out.get();
        frames += n.engine->stats().frames_out.get();
        res.syncs += n.engine->stats().sync_requests_out.get();
        claims += n.claimed;
    }
    res.bytes_per_claim = static_cast<double>(bytes) / std::max<uint64_t>(1, claims);
    res.frames_per_claim = static_cast<double>(frames) / std::max<uint64_t>(1, claims);
    if (o_.kill) {
        res.route_ms = route_us_ ? static_cast<double>(route_us_ - kill_us_) / 1000.0 : -1;
        res.rewrite_ms = rewrite_us_ ? static_cast<double>(rewrite_us_ - kill_us_) / 1000.0 : -1;
    }
    return res;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

void usage()
{
    std::fprintf(stderr,
                 "usage: gossip_sim [--nodes N] [--loss P] [--delay-us D] [--jitter-us J]\n"
                 "                  [--batch-us B] [--claims C (per node)] [--rate R (per s)]\n"
                 "                  [--seed S] [--seeds K] [--kill] [--reannounce-ms M]\n"
                 "                  [--heartbeat-ms H] [--dead-ms D] [--idle-s I] [-v]\n");
}

bool parse(int argc, char **argv, Options &o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
        auto u32 = [&](uint32_t &out) {
            const char *v = value();
            if (v == nullptr)
                return false;
            char *end = nullptr;
            const unsigned long x = std::strtoul(v, &end, 10);
            if (*end != '\0' || x > UINT32_MAX)
                return false;
            out = static_cast<uint32_t>(x);
            return true;
        };
        bool ok = true;
        if (a == "--nodes")
            ok = u32(o.nodes) && o.nodes >= 2 && o.nodes <= kMaxNodeId;
        else if (a == "--loss") {
            const char *v = value();
            ok = v != nullptr;
            if (ok) {
                char *end = nullptr;
                o.loss = std::strtod(v, &end);
                ok = *end == '\0' && o.loss >= 0 && o.loss < 1;
            }
        } else if (a == "--delay-us")
            ok = u32(o.delay_us);
        else if (a == "--jitter-us")
            ok = u32(o.jitter_us);
        else if (a == "--batch-us")
            ok = u32(o.batch_us) && o.batch_us > 0;
        else if (a == "--claims")
            ok = u32(o.claims);
        else if (a == "--rate")
            ok = u32(o.rate) && o.rate > 0;
        else if (a == "--seed")
            ok = u32(o.seed);
        else if (a == "--seeds")
            ok = u32(o.seeds) && o.seeds > 0;
        else if (a == "--kill")
            o.kill = true;
        else if (a == "--reannounce-ms")
            ok = u32(o.reannounce_ms) && o.reannounce_ms > 0;
        else if (a == "--heartbeat-ms")
            ok = u32(o.heartbeat_ms) && o.heartbeat_ms > 0;
        else if (a == "--dead-ms")
            ok = u32(o.dead_ms);
        else if (a == "--idle-s")
            ok = u32(o.idle_s);
        else if (a == "-v")
            o.verbose = true;
        else
            ok = false;
        if (!ok) {
            std::fprintf(stderr, "gossip_sim: bad or unknown argument '%s'\n", argv[i]);
            return false;
        }
    }
    o.suspect_ms = std::max(o.heartbeat_ms + 1, o.dead_ms / 3);
    return o.dead_ms > o.suspect_ms;
}

} // namespace

int main(int argc, char **argv)
{
    Options o;
    if (!parse(argc, argv, o)) {
        usage();
        return 2;
    }
    std::vector<double> p50, p99, mx, within, bpc, fpc, route, rewrite, conv;
    bool all_ok = true;
    for (uint32_t s = 0; s < o.seeds; ++s) {
        Sim sim(o, o.seed + s);
        const Result r = sim.run();
        const bool ok = r.identical && r.complete;
        all_ok = all_ok && ok;
        if (o.verbose || o.seeds == 1)
            fmt::print("seed {}: p50 {:.2f} ms p99 {:.2f} ms max {:.2f} ms within-reannounce "
                       "{:.4f} bytes/claim {:.0f} frames/claim {:.2f} route {:.1f} ms rewrite "
                       "{:.1f} ms converged after {:.2f} s syncs {} {}\n",
                       o.seed + s, r.p50_ms, r.p99_ms, r.max_ms, r.within_reannounce,
                       r.bytes_per_claim, r.frames_per_claim, r.route_ms, r.rewrite_ms,
                       r.converge_s, r.syncs, ok ? "IDENTICAL" : "DIVERGED");
        p50.push_back(r.p50_ms);
        p99.push_back(r.p99_ms);
        mx.push_back(r.max_ms);
        within.push_back(r.within_reannounce);
        bpc.push_back(r.bytes_per_claim);
        fpc.push_back(r.frames_per_claim);
        route.push_back(r.route_ms);
        rewrite.push_back(r.rewrite_ms);
        conv.push_back(r.converge_s);
    }
    fmt::print("nodes {} loss {} delay {}+U(0,{}) us batch {} us claims/node {} seeds {}: "
               "median p50 {:.2f} ms p99 {:.2f} ms max {:.2f} ms within-reannounce {:.4f} "
               "bytes/claim {:.0f} frames/claim {:.2f}",
               o.nodes, o.loss, o.delay_us, o.jitter_us, o.batch_us, o.claims, o.seeds, median(p50),
               median(p99), median(mx), median(within), median(bpc), median(fpc));
    if (o.kill)
        fmt::print(" failover route {:.1f} ms rewrite {:.1f} ms", median(route), median(rewrite));
    fmt::print(" converged {:.2f} s: {}\n", median(conv), all_ok ? "IDENTICAL" : "DIVERGED");
    return all_ok ? 0 : 1;
}
