/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the gossip engine: what a holder of the cluster key
 * can make node 1 do. fuzz_gossip reaches the decoder and the tag check;
 * here every frame is well formed and authenticated, so the records reach
 * GossipEngine::receive()'s handlers: claims and releases under the
 * conflict rule, heartbeats and membership (restarts, deaths, refutation),
 * digests and repair syncs, sync requests and responses (the responses
 * answer the engine's own requests, by their ids), resend requests and
 * resent records. The engine ticks between frames, so its timers run: the
 * failover walk, re-announcement, ageing's releases, sync retries.
 *
 * Input: a script of steps, each one op byte and the bytes its fields take
 * (0 once the input runs out). Op & 0x0F < 12: a frame from node 2 + (op &
 * 3) (node 5 is no peer) of 1 + (op >> 2 & 3) records; otherwise a local
 * event (a worker's claim, refresh or release, an operator's claim, an
 * expiry, draining). After each step time advances by a byte's worth of
 * milliseconds and the engine ticks. Flow keys come from a 6-bit index, so
 * steps meet each other's flows; the store holds 48 entries, so it fills.
 *
 * Beyond memory safety (ASan, UBSan) and the store's own assertions (its
 * Presence hints), the harness traps when the engine writes what the
 * workers could misread: a record of no node, or one whose life tag the
 * engine has not published (it must publish a new tag before the first
 * record that carries it). A write may keep the tag the entry had (an
 * epoch restamped), and node 1's earlier life's tombstones carry the tag
 * before its own. And every frame the engine sends must decode.
 */
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/map_flow_store.hpp"
#include "gossip_test_util.hpp"

using namespace flowhome;
using namespace flowhome::test;

namespace {

constexpr NodeId kSelf = 1;
constexpr uint32_t kStoreCapacity = 48;

void require(bool promise)
{
    if (!promise)
        __builtin_trap();
}

/* The script's bytes, read in order; 0 past the end. */
class Script {
public:
    Script(const uint8_t *data, size_t size) : p_(data), end_(data + size) {}
    bool done() const { return p_ == end_; }
    uint8_t u8() { return p_ == end_ ? 0 : *p_++; }
    uint16_t u16() { return static_cast<uint16_t>(u8() << 8 | u8()); }
    uint32_t u32() { return static_cast<uint32_t>(u16()) << 16 | u16(); }
    uint64_t u64() { return static_cast<uint64_t>(u32()) << 32 | u32(); }
    FlowKey key()
    {
        const uint8_t b = u8();
        return (b & 0x40) != 0 ? key6(b & 0x3F) : key4(b & 0x3F);
    }
    /* Mostly @p likely, sometimes any node id up to 5 (0 is no node). */
    NodeId node_or(NodeId likely)
    {
        const uint8_t b = u8();
        return (b & 0x80) != 0 ? static_cast<NodeId>(b % 6) : likely;
    }

private:
    const uint8_t *p_;
    const uint8_t *end_;
};

/* The node's table as the workers read it, checking each write (above). */
class CheckedStore : public MapFlowStore {
public:
    CheckedStore(uint32_t capacity, const std::atomic<uint8_t> *life)
        : MapFlowStore(capacity), life_(life)
    {
    }
    UpsertResult upsert(const FlowKey &key, OwnerRecord r, Presence presence) noexcept override
    {
        require(r.owner != kInvalidNode && r.owner <= kMaxNodeId);
        const uint8_t published = life_[r.owner].load();
        const std::optional<OwnerRecord> old = lookup(key);
        const bool kept = old && old->owner == r.owner && old->reserved == r.reserved;
        const bool own_earlier_tombstone = r.owner == kSelf &&
                                           (r.flags & gossip_flag::released) != 0 &&
                                           r.reserved == static_cast<uint8_t>(published - 1);
        require(r.reserved == published || kept || own_earlier_tombstone);
        return MapFlowStore::upsert(key, r, presence);
    }

private:
    const std::atomic<uint8_t> *life_;
};

/* A peer as the script plays it: its life, its frames' numbers, its heartbeats'. */
struct Peer {
    uint32_t incarnation = 1;
    uint64_t sequence = 0;
    uint32_t counter = 0;
};

class Harness {
public:
    Harness()
        : ring_(ring_of({{kTestKeyId, 1}})),
          life_(std::make_unique<std::atomic<uint8_t>[]>(size_t{kMaxNodeId} + 1)),
          store_(kStoreCapacity, life_.get())
    {
        auth_.set_keys(ring_);
        GossipParams p;
        p.self = kSelf;
        p.cluster_id = kTestCluster;
        p.peers = {2, 3, 4};
        p.heartbeat_interval_ms = 20;
        p.suspect_after_ms = 100;
        p.dead_after_ms = 300;
        p.reannounce_interval_ms = 400;
        p.sync_timeout_ms = 100;
        p.life_out = life_.get();
        engine_ = std::make_unique<GossipEngine>(
            p, ring_, store_, [this](std::span<const uint8_t> f) { note_sent(f); }, now_);
    }

    void run(Script &s)
    {
        while (!s.done()) {
            const uint8_t op = s.u8();
            if ((op & 0x0F) < 12)
                frame(s, static_cast<NodeId>(2 + (op & 3)), 1 + (op >> 2 & 3));
            else
                local(s, op);
            now_ += uint64_t{s.u8()} * 1000;
            engine_->tick(now_);
        }
    }

private:
    /* The engine's own frames, which must decode: the ids of its sync
     * requests, which a response must carry to be taken. */
    void note_sent(std::span<const uint8_t> f)
    {
        FrameReader r;
        require(r.open(f) == GossipStatus::ok);
        GossipRecord rec;
        while (r.next(rec))
            if (rec.type == RecordType::sync_request)
                request_id_ = rec.sync_request.request_id;
    }

    void frame(Script &s, NodeId sender, unsigned records)
    {
        Peer &peer = peers_[sender];
        const uint8_t how = s.u8();
        if ((how & 0x03) == 0x03) { /* a restart: a later life, numbered from 1 */
            ++peer.incarnation;
            peer.sequence = 0;
            peer.counter = 0;
        }
        /* Mostly the next number; else a replay or a gap. */
        const uint64_t seq =
            (how & 0x0C) == 0x0C ? peer.sequence : peer.sequence + 1 + ((how >> 4) & 0x07);
        if (seq > peer.sequence)
            peer.sequence = seq;
        const FrameHeader h = header_of(sender, seq == 0 ? 1 : seq, peer.incarnation);
        const std::vector<uint8_t> frame = sealed(auth_, body_of(h, [&](FrameWriter &w) {
                                                      for (unsigned i = 0; i < records; ++i)
                                                          record(s, w, sender, peer);
                                                  }));
        require(!frame.empty());
        engine_->receive(frame, now_);
    }

    void record(Script &s, FrameWriter &w, NodeId sender, Peer &peer)
    {
        switch (s.u8() & 0x07) {
        case 0: /* claim: a 1-byte version makes conflicts and wraps likely */
            w.add_claim(FlowEntry{s.key(), s.node_or(sender), s.u8()});
            return;
        case 1:
            w.add_release(FlowEntry{s.key(), s.node_or(sender), s.u8()});
            return;
        case 2:
            w.add_digest(DigestRecord{s.node_or(sender), s.u8(), s.u64()});
            return;
        case 3: {
            const uint8_t b = s.u8();
            peer.counter += (b & 0x80) != 0 ? 0 : 1u + (b & 0x0F);
            MemberView views[3];
            const size_t n = (b >> 4) & 0x03;
            for (size_t i = 0; i < n; ++i)
                views[i] = MemberView{s.node_or(kSelf), static_cast<NodeState>(s.u8() % 3),
                                      (s.u8() & 1) != 0, s.u8()};
            w.add_heartbeat(HeartbeatRecord{sender,
                                            (b & 0x03) != 0 ? NodeState::alive : NodeState::dead,
                                            (b & 0x04) != 0,
                                            peer.incarnation,
                                            peer.counter,
                                            0,
                                            {}},
                            std::span<const MemberView>(views, n));
            return;
        }
        case 4:
            w.add_sync_request(SyncRequestRecord{s.node_or(kSelf), s.node_or(0), s.u32(), s.u8()});
            return;
        case 5: {
            const uint8_t b = s.u8();
            const uint32_t id = (b & 0x80) != 0 ? s.u32() : request_id_;
            if (!w.begin_sync_response(s.node_or(kSelf), id))
                return;
            for (unsigned i = 0; i < (b & 0x07); ++i) {
                const uint8_t f = s.u8();
                w.add_sync_entry(FlowEntry{s.key(), s.node_or(kSelf), s.u8(), (f & 1) != 0,
                                           static_cast<uint16_t>(f >> 1)});
            }
            w.end_sync_response((b & 0x08) != 0 ? s.u8() : 0);
            return;
        }
        case 6:
            w.add_resend(RecordType::resend_request,
                         ResendRecord{s.node_or(kSelf), s.u8(), s.u8(), s.u64()});
            return;
        default:
            w.add_resend(RecordType::resent, ResendRecord{sender, peer.incarnation, s.u8(), 0});
            return;
        }
    }

    void local(Script &s, uint8_t op)
    {
        const FlowKey k = s.key();
        switch (op >> 4 & 0x07) {
        case 0:
            engine_->local_claim(k, now_);
            return;
        case 1:
            engine_->local_refresh(k, now_);
            return;
        case 2:
            engine_->local_release(k, now_);
            return;
        case 3:
            engine_->operator_claim(k, now_);
            return;
        case 4:
            /* As the store's ageing does: an entry the engine does not
             * take over, the caller removes. */
            if (const std::optional<OwnerRecord> r = store_.lookup(k);
                r && !engine_->expire(k, *r, now_))
                store_.remove(k);
            return;
        default:
            engine_->set_draining((op & 0x80) != 0, now_);
            return;
        }
    }

    KeyRing ring_;
    Authenticator auth_;
    std::unique_ptr<std::atomic<uint8_t>[]> life_;
    CheckedStore store_;
    std::unique_ptr<GossipEngine> engine_;
    Peer peers_[6];
    uint32_t request_id_ = 1;
    uint64_t now_ = 1'000'000'000; /* 1000 s: epochs are nonzero */
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Harness h;
    Script s(data, size);
    h.run(s);
    return 0;
}
