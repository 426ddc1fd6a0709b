/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gossip_sim: N real GossipEngines over MapFlowStores on a simulated
 * multicast network, in simulated time (a discrete-event queue; nothing
 * sleeps). Each node claims new flows at a fixed rate for a while; one node
 * may be killed mid-run; then the cluster runs quiet until it converges, and
 * on for idle + 2 x re-announce + 2 s to show that it stays converged.
 * Reports claim-to-everywhere latency, the wire cost of claims and their
 * repair, the steady background traffic and failover times, and exits
 * non-zero unless every live node's table became identical, every claim of
 * a live owner reached every live node, and nothing changed afterwards.
 *
 * The network: every frame goes to every other node after delay + U(0,
 * jitter) microseconds, each delivery lost independently with probability
 * `loss`. Nodes tick at GossipEngine::next_tick_us(). Owners refresh their
 * own flows every second (their connections are active) and every node ages
 * its table every second with --idle-s, through GossipEngine::expire() as
 * the control loop does.
 */
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_membership.hpp"
#include "flowhome/gossip_wire.hpp"
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
    uint32_t seeds = 1; /* runs with seed, seed+1, ...; pooled or worst figures printed */
    bool kill = false;
    uint32_t reannounce_ms = 2000;
    uint32_t heartbeat_ms = 100;
    uint32_t suspect_ms = 500;
    uint32_t dead_ms = 1500;
    uint32_t idle_s = 10; /* ageing timeout */
    bool verbose = false;
};

/* Claim c's client: 198.51.100.(c mod 256), port 1024 + c / 256 (the
 * documentation range, 16.5M claims). */
constexpr uint32_t kClientBase = 0xC6336400;
constexpr uint32_t kClientPortBase = 1024;
constexpr uint64_t kMaxClaims = 256ull * (65536 - kClientPortBase);
constexpr uint64_t kStartUs = 10'000'000;    /* t0 = 10 s: epochs are nonzero */
/* Frames a sender keeps to resend from (kResendRing in src/gossip/engine_impl.hpp). */
constexpr uint64_t kResendRingFrames = 256;
constexpr uint8_t kMaxCopies =
    2; /* the engine's kMaxCopy: copies resent that often are not resent again */

FlowKey key_of(uint32_t claim)
{
    return FlowKey::make4(htonl(kClientBase + (claim & 0xFF)),
                          htons(static_cast<uint16_t>(kClientPortBase + (claim >> 8))),
                          htonl(0xCB00710Au), htons(443), kProtoTcp);
}

/* The claim of a client address and port (host order); past the last
 * claim when they are no claim's. */
uint32_t claim_of(uint32_t client, uint16_t port)
{
    if ((client & ~0xFFu) != kClientBase || port < kClientPortBase)
        return UINT32_MAX;
    return (uint32_t{port} - kClientPortBase) << 8 | (client & 0xFF);
}

uint32_t claim_of(const FlowKey &k)
{
    return claim_of(ntohl(k.v4.client_addr), k.client_port());
}

uint16_t be16(const uint8_t *p)
{
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t be32(const uint8_t *p)
{
    return uint32_t{be16(p)} << 16 | be16(p + 2);
}

uint64_t be64(const uint8_t *p)
{
    return uint64_t{be32(p)} << 32 | be32(p + 4);
}

struct Result {
    std::vector<double> lat_ms; /* claim-to-everywhere of every claim of a live owner, sorted */
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
    double within_reannounce = 0; /* fraction of claims everywhere within the interval */
    /* Nodes that timed a repair round trip, and their means of it and of
     * the first retry interval it gives. */
    size_t repair_timed = 0;
    double repair_rtt_us = 0, repair_retry_us = 0;
    /* Claim traffic: the bytes (and frames) of records that state a claim
     * or release for the first time, resend it on request, or ask for a
     * frame that held one; each frame's bytes shared among its records by
     * size. Everything else sent from the first claim on is background. */
    double claim_bytes = 0, claim_frames = 0;
    uint64_t claims = 0;
    uint64_t total_bytes = 0;              /* every frame sent from the first claim on */
    double claim_bytes_settled = 0;        /* of claim_bytes, sent after convergence */
    double background_bps = 0;             /* background bytes per second per node */
    uint64_t resend_mismatch = 0;          /* resent flows not where the model expected: 0 */
    double route_ms = -1, rewrite_ms = -1; /* failover; -1 without a kill */
    /* From the last claim to the last change of a live store (key, owner,
     * version, flags) before the tables were identical, or the failover
     * routing agreed, whichever is later; -1 if never converged. */
    double converge_ms = -1;
    double stable_s = 0;       /* how long it then ran, changes watched for */
    uint64_t changes = 0;      /* changes to a live store after convergence */
    double first_change_s = 0; /* after convergence */
    std::string first_change;
    uint64_t syncs = 0;
    double synced_ms = -1; /* from start until every start-up sync ended; -1 never */
    /* Engine counters summed over the nodes, whole run (start-up included),
     * for -v: which mechanism sent what. */
    std::vector<std::pair<const char *, uint64_t>> mechanisms;
    /* For -v: bytes per second per node from the first claim on, by record
     * type (TLV header included; index = the type's wire value, 0 = the
     * frames' headers and tags). */
    std::array<double, 9> type_bps{};
    bool converged = false; /* identical tables, every claim everywhere */
    bool stable = false;    /* and still so, unchanged, at the end */
};

/* The q-quantile of sorted @p v (0 when empty). */
double percentile(const std::vector<double> &v, double q)
{
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

/* A run's verdict: the start-up syncs ended, the tables converged, and
 * then stayed unchanged. */
const char *verdict_of(bool synced, bool converged, bool stable)
{
    if (!synced)
        return "UNSYNCED";
    return stable ? "STABLE" : converged ? "UNSTABLE" : "DIVERGED";
}

class Sim;

/* A MapFlowStore that tells the simulator when a claim first lands, and
 * when an entry's key, owner, version or flags change. */
class SimStore : public MapFlowStore {
public:
    SimStore(Sim &sim, uint32_t node) : sim_(sim), node_(node) {}
    UpsertResult upsert(const FlowKey &key, OwnerRecord record,
                        Presence presence) noexcept override;
    bool remove(const FlowKey &key) noexcept override;

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
        last_change_.assign(o_.nodes, 0);
        stated_.assign(size_t{total} * o_.nodes, 0);
        sent_flows_.resize(o_.nodes);
        resend_due_.resize(o_.nodes);
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

    /* An entry was inserted, removed, or changed owner, version or flags. */
    void on_change(uint32_t node, const FlowKey &key, std::optional<OwnerRecord> before,
                   std::optional<OwnerRecord> after)
    {
        if (before && after && before->owner == after->owner && before->version == after->version &&
            before->flags == after->flags)
            return; /* a restamp */
        last_change_[node] = now_;
        if (converged_at_ == 0 || !nodes_[node].up)
            return;
        if (changes_++ == 0) {
            first_change_at_ = now_;
            auto show = [](const std::optional<OwnerRecord> &r) {
                return r ? fmt::format("owner {} v{} flags {:#x}", r->owner, r->version, r->flags)
                         : std::string("none");
            };
            first_change_ = fmt::format("node {} claim {}: {} -> {}", node + 1, claim_of(key),
                                        show(before), show(after));
        }
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
        account(from, f);
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

    void step(); /* the next event */
    bool all_synced() const
    {
        return std::all_of(nodes_.begin(), nodes_.end(),
                           [](const Node &n) { return !n.up || n.engine->synced(); });
    }
    bool tables_identical() const;
    bool claims_present() const;
    void probe_failover();
    void age(uint32_t i);
    void account(uint32_t from, std::span<const uint8_t> f);

    Options o_;
    std::mt19937_64 rng_;
    KeyRing ring_;
    std::vector<Node> nodes_;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> q_;
    uint64_t seq_ = 0;
    uint64_t now_ = kStartUs;
    uint64_t claim_gap_ = 0;
    bool killed_ = false;
    std::vector<NodeId> claim_owner_;
    std::vector<uint64_t> claim_time_;
    std::vector<uint64_t> applied_;     /* [claim * nodes + node]: first time applied, 0 = never */
    std::vector<uint64_t> last_change_; /* [node]: last change of the store (not a restamp) */
    uint64_t converged_at_ = 0;         /* the check that found the state converged */
    uint64_t changes_ = 0, first_change_at_ = 0;
    std::string first_change_;

    /* Wire accounting (account()). A flow record in a frame: its claim
     * (UINT32_MAX if not a simulated one) and whether it is claim traffic. */
    struct SentFlow {
        uint32_t claim;
        bool claim_traffic;
        uint8_t copy = 0; /* the engine's: resent that many times in a row */
    };
    std::vector<std::vector<std::vector<SentFlow>>> sent_flows_; /* [node][sequence] */
    std::vector<std::deque<SentFlow>> resend_due_; /* [node]: flows its resent record announced */
    std::vector<uint64_t> stated_;     /* [claim * nodes + node]: last statement the node sent */
    uint64_t count_from_ = UINT64_MAX; /* the first claim: traffic counted from here */
    double claim_bytes_ = 0, claim_frames_ = 0, claim_bytes_at_convergence_ = 0;
    uint64_t total_bytes_ = 0, resend_mismatch_ = 0;
    std::array<uint64_t, 9> type_bytes_{}; /* Result::type_bps, as bytes */
    std::vector<FlowKey> refresh_;
    uint32_t victim_ = UINT32_MAX;
    uint64_t kill_us_ = UINT64_MAX, route_us_ = 0, rewrite_us_ = 0;
};

UpsertResult SimStore::upsert(const FlowKey &key, OwnerRecord record, Presence presence) noexcept
{
    const std::optional<OwnerRecord> before = lookup(key);
    const UpsertResult r = MapFlowStore::upsert(key, record, presence);
    if (r == UpsertResult::inserted || r == UpsertResult::updated) {
        sim_.on_upsert(node_, key, record);
        sim_.on_change(node_, key, before, record);
    }
    return r;
}

bool SimStore::remove(const FlowKey &key) noexcept
{
    const std::optional<OwnerRecord> before = lookup(key);
    const bool removed = MapFlowStore::remove(key);
    if (removed)
        sim_.on_change(node_, key, before, std::nullopt);
    return removed;
}

/*
 * Sorts every frame's records into claim traffic and background. Claim
 * traffic: a claim or release the sender states for the first time (a new
 * claim, a failover rewrite, a release); a resent record answering for
 * frames that held claim traffic, and the flows that follow it; a resend
 * request for such a frame. Background: the heartbeats, digests,
 * re-announcements (a statement the sender made before), the repair of
 * frames that held only background, and digest-triggered syncs (under
 * loss they go on at a steady rate with the tables identical, so they are
 * not told apart from the repair of claims). A frame's bytes (header and
 * tag included) are shared among its records in proportion to their size;
 * so is the frame itself.
 */
void Sim::account(uint32_t from, std::span<const uint8_t> f)
{
    if (f.size() < kGossipHeaderLen + kGossipTagLen)
        return;
    const size_t header = f[gossip_hdr::header_len];
    const size_t payload = be16(f.data() + gossip_hdr::payload_length);
    const uint64_t seq = be64(f.data() + gossip_hdr::sequence);
    if (header + payload > f.size())
        return;
    auto &frames = sent_flows_[from];
    if (frames.size() <= seq)
        frames.resize(seq + 1);
    auto &due = resend_due_[from];
    size_t record_bytes = 0, claim_record_bytes = 0;
    std::array<uint64_t, 9> by_type{};
    const uint8_t *p = f.data() + header;
    const uint8_t *const end = p + payload;
    while (end - p >= static_cast<std::ptrdiff_t>(kGossipTlvLen)) {
        const auto type = static_cast<RecordType>(p[0]);
        const size_t len = be16(p + 2);
        const uint8_t *v = p + kGossipTlvLen;
        if (len > static_cast<size_t>(end - v))
            break;
        bool claim_traffic = false;
        switch (type) {
        case RecordType::claim:
        case RecordType::release: {
            SentFlow sf{UINT32_MAX, false, 0};
            if (len >= gossip_flow::size_v4 && v[gossip_flow::family] == 4) {
                const uint32_t c =
                    claim_of(be32(v + gossip_flow::addrs), be16(v + gossip_flow::client_port));
                if (c < claim_owner_.size())
                    sf.claim = c;
            }
            if (!due.empty()) {
                /* Flows resent on request follow their resent record. */
                if (due.front().claim != sf.claim)
                    ++resend_mismatch_;
                sf.claim_traffic = due.front().claim_traffic;
                sf.copy = static_cast<uint8_t>(due.front().copy + 1);
                due.pop_front();
            } else if (sf.claim != UINT32_MAX) {
                const uint64_t statement = uint64_t{be16(v + gossip_flow::owner)} << 17 |
                                           uint64_t{be16(v + gossip_flow::version)} << 1 |
                                           (type == RecordType::release ? 1u : 0u);
                uint64_t &last = stated_[size_t{sf.claim} * o_.nodes + from];
                sf.claim_traffic = last != statement;
                last = statement;
            }
            claim_traffic = sf.claim_traffic;
            frames[seq].push_back(sf);
            break;
        }
        case RecordType::resend_request:
        case RecordType::resent: {
            if (len < kResendRecordLen)
                break;
            const NodeId node = be16(v);
            const uint64_t newest = be64(v + 8);
            const uint64_t bits = be64(v + 16);
            if (node == 0 || node > o_.nodes)
                break;
            const auto &of = sent_flows_[node - 1u];
            for (uint64_t b = bits; b != 0; b &= b - 1) {
                const auto i = static_cast<uint64_t>(std::countr_zero(b));
                if (newest < i + 2)
                    continue;
                const uint64_t s = newest - 1 - i;
                if (s >= of.size())
                    continue;
                if (type == RecordType::resend_request) {
                    for (const SentFlow &x : of[s])
                        claim_traffic = claim_traffic || x.claim_traffic;
                } else if (s < seq && seq - 1 - s < kResendRingFrames &&
                           std::any_of(of[s].begin(), of[s].end(),
                                       [](const SentFlow &x) { return x.copy < kMaxCopies; })) {
                    /* The sender still holds the frame: its flows follow but
                     * for copies resent as often as they may be (frames it
                     * no longer holds, or of those alone, are answered for
                     * bare). */
                    for (const SentFlow &x : of[s]) {
                        if (x.copy >= kMaxCopies)
                            continue;
                        due.push_back(x);
                        claim_traffic = claim_traffic || x.claim_traffic;
                    }
                }
            }
            break;
        }
        default:
            break;
        }
        record_bytes += kGossipTlvLen + len;
        by_type[p[0] < by_type.size() ? p[0] : 0] += kGossipTlvLen + len;
        claim_record_bytes += claim_traffic ? kGossipTlvLen + len : 0;
        p = v + len;
    }
    if (now_ < count_from_)
        return;
    total_bytes_ += f.size();
    by_type[0] += f.size() - record_bytes;
    for (size_t t = 0; t < by_type.size(); ++t)
        type_bytes_[t] += by_type[t];
    if (record_bytes != 0 && claim_record_bytes != 0) {
        const double share =
            static_cast<double>(claim_record_bytes) / static_cast<double>(record_bytes);
        claim_bytes_ += share * static_cast<double>(f.size());
        claim_frames_ += share;
    }
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

/* Every claim of a live owner is in every live store, live and the owner's
 * (the stores themselves: an entry applied once may have gone since). */
bool Sim::claims_present() const
{
    for (uint32_t c = 0; c < claim_owner_.size(); ++c) {
        const uint32_t owner = claim_owner_[c] - 1u;
        if (claim_time_[c] == 0 || !nodes_[owner].up)
            continue;
        const FlowKey k = key_of(c);
        for (uint32_t j = 0; j < o_.nodes; ++j) {
            if (!nodes_[j].up)
                continue;
            const auto r = nodes_[j].store->lookup(k);
            if (!r || r->owner != claim_owner_[c] || (r->flags & gossip_flag::released) != 0)
                return false;
        }
    }
    return true;
}

/* The control loop's ageing (OwnershipTable::age() with the engine's
 * expire() as its ExpiryFn), a whole pass at once: an expired live flow of
 * the node's own is released by the engine, any other expired entry
 * removed after the engine has been told. */
void Sim::age(uint32_t i)
{
    Node &n = nodes_[i];
    const uint16_t now_epoch = epoch_of(now_);
    std::vector<std::pair<FlowKey, OwnerRecord>> expired;
    uint64_t cursor = 0;
    do
        n.store->scan(cursor, 4096, [&](const FlowKey &k, OwnerRecord r) {
            if ((r.flags & owner_flag::pinned) == 0 &&
                static_cast<uint16_t>(now_epoch - r.epoch) > static_cast<uint16_t>(o_.idle_s))
                expired.emplace_back(k, r);
        });
    while (cursor != 0);
    for (const auto &[k, r] : expired)
        if (!n.engine->expire(k, r, now_))
            n.store->remove(k);
    reschedule(i);
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

void Sim::step()
{
    Event ev = q_.top();
    q_.pop();
    now_ = ev.t;
    if (o_.kill && !killed_ && now_ >= kill_us_) {
        killed_ = true;
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
            push(now_ + claim_gap_, Ev::claim, ev.node);
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
            age(i);
        }
        push(now_ + 1'000'000, Ev::housekeeping, 0);
        break;
    }
}

Result Sim::run()
{
    Result res;
    claim_gap_ = 1'000'000 / std::max(1u, o_.rate);
    push(now_ + 1'000'000, Ev::housekeeping, 0);
    /* Heartbeats flow and every node's start-up sync ends before the first
     * claim: this measures claims spreading, not a node joining under load
     * (a start-up sync that lost a frame would otherwise walk the peers'
     * growing tables, every chunk multicast to every node). */
    const uint64_t warm_limit = now_ + uint64_t{o_.dead_ms} * 1000 * 4;
    while (!q_.empty() && now_ < warm_limit && !all_synced())
        step();
    res.synced_ms = all_synced() ? static_cast<double>(now_ - kStartUs) / 1000.0 : -1;
    const uint64_t claims_start = now_ + uint64_t{o_.heartbeat_ms} * 1000;
    std::uniform_int_distribution<uint64_t> phase(0, claim_gap_);
    for (uint32_t i = 0; i < o_.nodes; ++i)
        push(claims_start + phase(rng_), Ev::claim, i);
    const uint64_t claims_end = claims_start + uint64_t{o_.claims} * claim_gap_;
    if (o_.kill) {
        victim_ = o_.nodes - 1;
        kill_us_ = claims_start + (claims_end - claims_start) / 2;
    }
    count_from_ = claims_start;

    const uint64_t quiet_max = uint64_t{o_.idle_s} * 1'000'000 + uint64_t{o_.reannounce_ms} * 3000 +
                               uint64_t{o_.dead_ms} * 1000 + 2'000'000;
    /* Once converged, run on long enough for every entry to have been
     * aged at least once a whole timeout after its last stamp (+ 1 s of
     * epoch rounding and 1 s of ageing phase), with two re-announce passes
     * in it: if re-announcements did not keep the others' copies alive, or
     * an ageing pass removed what a pass brings back, a store changes. */
    const uint64_t settle =
        uint64_t{o_.idle_s} * 1'000'000 + uint64_t{o_.reannounce_ms} * 2000 + 2'000'000;
    uint64_t next_check = claims_end + 100'000;
    uint64_t settle_end = UINT64_MAX;
    bool done = false;
    while (!q_.empty() && !done) {
        step();
        if (converged_at_ != 0 && (changes_ != 0 || now_ >= settle_end)) {
            /* Changes were watched for since: none, and still converged. */
            res.stable = changes_ == 0 && claims_present() && tables_identical();
            done = true;
        } else if (converged_at_ == 0 && now_ >= next_check) {
            next_check = now_ + 250'000;
            const bool fo_done = !o_.kill || (route_us_ != 0 && rewrite_us_ != 0);
            if (fo_done && claims_present() && tables_identical()) {
                /* Identical since the last change of a live store. */
                res.converged = true;
                converged_at_ = now_;
                claim_bytes_at_convergence_ = claim_bytes_;
                settle_end = now_ + settle;
                uint64_t at = route_us_;
                for (uint32_t j = 0; j < o_.nodes; ++j)
                    if (nodes_[j].up)
                        at = std::max(at, last_change_[j]);
                const uint64_t last_claim =
                    *std::max_element(claim_time_.begin(), claim_time_.end());
                res.converge_ms = static_cast<double>(at - std::min(at, last_claim)) / 1000.0;
            } else if (now_ > claims_end + quiet_max) {
                done = true;
            }
        }
    }
    if (converged_at_ != 0) {
        res.stable_s = static_cast<double>(now_ - converged_at_) / 1e6;
        res.changes = changes_;
        res.first_change = first_change_;
        if (changes_ != 0)
            res.first_change_s = static_cast<double>(first_change_at_ - converged_at_) / 1e6;
    }
    if (o_.verbose && !res.stable)
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
    res.p50_ms = percentile(lat, 0.50);
    res.p99_ms = percentile(lat, 0.99);
    res.max_ms = lat.empty() ? 0 : lat.back();
    res.within_reannounce = lat.empty() ? 0 : static_cast<double>(within) / lat.size();
    res.lat_ms = std::move(lat);
    for (const Node &n : nodes_) {
        res.syncs += n.engine->stats().sync_requests_out.get();
        res.claims += n.claimed;
    }
    static constexpr std::pair<const char *, Counter GossipStats::*> kMechanisms[] = {
        {"frames", &GossipStats::frames_out},
        {"resend-requests", &GossipStats::resend_requests_out},
        {"resend-requests-spared", &GossipStats::resend_requests_spared},
        {"resent-flows", &GossipStats::resent_flows},
        {"gaps-abandoned", &GossipStats::gaps_abandoned},
        {"gaps-bare", &GossipStats::gaps_bare},
        {"reannounced", &GossipStats::reannounced},
        {"digests-mismatched", &GossipStats::digests_mismatched},
        {"sync-requests", &GossipStats::sync_requests_out},
        {"sync-responses", &GossipStats::sync_responses_out},
    };
    for (const auto &[name, counter] : kMechanisms) {
        uint64_t total = 0;
        for (const Node &n : nodes_)
            total += (n.engine->stats().*counter).get();
        res.mechanisms.emplace_back(name, total);
    }
    for (const Node &n : nodes_) {
        if (n.engine->repair_round_trip_us() == 0)
            continue; /* no repair of its own timed: retries wait the longest */
        ++res.repair_timed;
        res.repair_rtt_us += static_cast<double>(n.engine->repair_round_trip_us());
        res.repair_retry_us += static_cast<double>(n.engine->repair_retry_us());
    }
    if (res.repair_timed != 0) {
        res.repair_rtt_us /= res.repair_timed;
        res.repair_retry_us /= res.repair_timed;
    }
    res.claim_bytes = claim_bytes_;
    res.claim_frames = claim_frames_;
    if (converged_at_ != 0)
        res.claim_bytes_settled = claim_bytes_ - claim_bytes_at_convergence_;
    res.total_bytes = total_bytes_;
    res.resend_mismatch = resend_mismatch_;
    if (now_ > count_from_) {
        const double node_seconds = static_cast<double>(now_ - count_from_) / 1e6 * o_.nodes;
        res.background_bps = (static_cast<double>(total_bytes_) - claim_bytes_) / node_seconds;
        for (size_t t = 0; t < type_bytes_.size(); ++t)
            res.type_bps[t] = static_cast<double>(type_bytes_[t]) / node_seconds;
    }
    if (o_.kill) {
        res.route_ms = route_us_ ? static_cast<double>(route_us_ - kill_us_) / 1000.0 : -1;
        res.rewrite_ms = rewrite_us_ ? static_cast<double>(rewrite_us_ - kill_us_) / 1000.0 : -1;
    }
    return res;
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
    if (uint64_t{o.nodes} * o.claims > kMaxClaims) {
        fmt::print(stderr, "gossip_sim: {} nodes x {} claims: at most {} claims in all\n", o.nodes,
                   o.claims, kMaxClaims);
        return 2;
    }
    /* Over all seeds: latency percentiles of all their claims pooled; the
     * worst seed's max, share within the re-announce interval, failover
     * and convergence times; the claim traffic of all claims; the mean
     * background rate. */
    std::vector<double> lat;
    double max_ms = 0, within = 1, route = -1, rewrite = -1, conv = 0, claim_bytes = 0,
           claim_frames = 0, background = 0;
    uint64_t claims = 0;
    bool all_ok = true, all_converged = true, all_synced = true;
    for (uint32_t s = 0; s < o.seeds; ++s) {
        Sim sim(o, o.seed + s);
        Result r = sim.run();
        /* A start-up sync that never ended is a failure of its own, though
         * the claims still start (at 4 x dead_after). */
        const bool synced = r.synced_ms >= 0;
        const bool ok = synced && r.converged && r.stable;
        all_ok = all_ok && ok;
        all_converged = all_converged && r.converged;
        all_synced = all_synced && synced;
        const char *verdict = verdict_of(synced, r.converged, ok);
        if (o.verbose || o.seeds == 1) {
            fmt::print("seed {}: p50 {:.2f} ms p99 {:.2f} ms max {:.2f} ms within-reannounce "
                       "{:.4f} claim bytes/claim {:.0f} frames/claim {:.2f} background "
                       "{:.0f} B/s/node (all bytes/claim {:.0f}) route {:.1f} ms rewrite {:.1f} "
                       "ms converged after {:.2f} ms, then {:.2f} s watched, {} changes syncs "
                       "{} {}\n",
                       o.seed + s, r.p50_ms, r.p99_ms, r.max_ms, r.within_reannounce,
                       r.claim_bytes / std::max<uint64_t>(1, r.claims),
                       r.claim_frames / std::max<uint64_t>(1, r.claims), r.background_bps,
                       static_cast<double>(r.total_bytes) / std::max<uint64_t>(1, r.claims),
                       r.route_ms, r.rewrite_ms, r.converge_ms, r.stable_s, r.changes, r.syncs,
                       verdict);
            fmt::print("  start-up syncs ended after {:.1f} ms; claim traffic after convergence: "
                       "{:.0f} bytes\n",
                       r.synced_ms, r.claim_bytes_settled);
            if (o.verbose) {
                fmt::print("  per node:");
                for (const auto &[name, total] : r.mechanisms)
                    fmt::print(" {} {:.1f}", name, static_cast<double>(total) / o.nodes);
                fmt::print("\n  repair timing: {} of {} nodes timed a round trip, mean {:.0f} us; "
                           "their first retry after {:.0f} us",
                           r.repair_timed, o.nodes, r.repair_rtt_us, r.repair_retry_us);
                fmt::print("\n  B/s/node from the first claim, by record type:");
                constexpr const char *kTypeNames[] = {
                    "headers+tags", "claim",         "release",        "digest", "heartbeat",
                    "sync-request", "sync-response", "resend-request", "resent"};
                for (size_t t = 0; t < r.type_bps.size(); ++t)
                    fmt::print(" {} {:.0f}", kTypeNames[t], r.type_bps[t]);
                fmt::print("\n");
            }
            if (r.changes != 0)
                fmt::print("  first change {:.2f} s after convergence: {}\n", r.first_change_s,
                           r.first_change);
            if (r.resend_mismatch != 0)
                fmt::print("  {} resent flows not as the traffic accounting expected\n",
                           r.resend_mismatch);
        }
        lat.insert(lat.end(), r.lat_ms.begin(), r.lat_ms.end());
        max_ms = std::max(max_ms, r.max_ms);
        within = std::min(within, r.within_reannounce);
        route = std::max(route, r.route_ms);
        rewrite = std::max(rewrite, r.rewrite_ms);
        conv = std::max(conv, r.converge_ms);
        claim_bytes += r.claim_bytes;
        claim_frames += r.claim_frames;
        claims += r.claims;
        background += r.background_bps / o.seeds;
    }
    std::sort(lat.begin(), lat.end());
    const double n = static_cast<double>(std::max<uint64_t>(1, claims));
    fmt::print("nodes {} loss {} delay {}+U(0,{}) us batch {} us claims/node {} seeds {}: "
               "all claims p50 {:.2f} ms p99 {:.2f} ms, worst seed max {:.2f} ms "
               "within-reannounce {:.4f}; claim bytes/claim {:.0f} frames/claim {:.2f} "
               "background {:.0f} B/s/node",
               o.nodes, o.loss, o.delay_us, o.jitter_us, o.batch_us, o.claims, o.seeds,
               percentile(lat, 0.50), percentile(lat, 0.99), max_ms, within, claim_bytes / n,
               claim_frames / n, background);
    if (o.kill)
        fmt::print("; worst failover route {:.1f} ms rewrite {:.1f} ms", route, rewrite);
    if (all_converged)
        fmt::print("; worst converged after {:.2f} ms", conv);
    fmt::print(": {}\n", verdict_of(all_synced, all_converged, all_ok));
    return all_ok ? 0 : 1;
}
