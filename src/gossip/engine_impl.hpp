/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipEngine internals, shared by engine.cpp (core, receive, apply),
 * engine_tx.cpp (batching, heartbeats, re-announce, digests) and
 * engine_sync.cpp (sync, failover). Control lcore only; every buffer is
 * allocated in the constructor so the receive path does not allocate.
 */
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "flowhome/gossip_engine.hpp"

namespace flowhome {

/* Most store entries one tick visits for one background job (failover
 * rewrite, re-announce walk): bounds the control lcore's pause. */
inline constexpr uint32_t kSliceBudget = 4096;
/* Smallest re-announce slice, so small tables finish a pass quickly. */
inline constexpr uint32_t kSliceMin = 64;
/* Background jobs advance at most once per this many microseconds. */
inline constexpr uint64_t kSlicePeriodUs = 1000;
/* Most entries one sync answer visits (a filtered walk may skip many). */
inline constexpr uint32_t kSyncAnswerBudget = 8192;
/* Consecutive mismatched digests of one owner before we ask it for a sync:
 * one mismatch is usually a frame still in flight or reordered. */
inline constexpr uint8_t kDigestMismatchStreak = 2;

/* Frames of our own whose claims and releases we can resend (a power of 2). */
inline constexpr size_t kResendRing = 256;
/* A claim is resent on request, and a frame of resent claims lost in turn
 * resent once more; a third loss is left to the receiver's request for the
 * frame it still misses, or to re-announcement. */
inline constexpr uint8_t kMaxCopy = 2;
/* A gap is asked for at least this long after it was seen (a frame merely
 * reordered arrives meanwhile), plus a spread of up to as long again, drawn
 * per receiver and gap: of the receivers that lost one frame and have a
 * frame going out (a batch), the first to ask is heard by the others before
 * they do, and they wait for its answer (on_peer_request()) instead of
 * asking too; requests that wait for heartbeats are spread by the
 * heartbeats' own jitter. Then again while the gap stays open, after the
 * retry interval below. */
inline constexpr uint64_t kResendDelayUs = 2000;
/* A gap still open after our request is asked for again once the repair
 * round trip (a request's departure to its answer's arrival) and four
 * times its mean deviation have passed, TCP's retransmission timeout
 * (RFC 6298, Impl::sample_round_trip()), but no sooner than
 * kResendRetryMinUs; each further time after twice as long as the last, up
 * to half a heartbeat interval (which bounds the least too, for heartbeats
 * under 4 ms). Until the first answer has been timed, the first retry
 * waits half a heartbeat interval too. */
inline constexpr uint64_t kResendRetryMinUs = 2000;
/* Requests for one gap before it is left to re-announcement. */
inline constexpr uint8_t kResendAttempts = 10;
/* Resend records (requests, and answers for frames without flows) ride on
 * the heartbeat frame; at most this many per heartbeat. */
inline constexpr size_t kResendPerHeartbeat = 16;
/* A gap this many frames old is asked for when due, batch or no batch, not
 * at the heartbeat. (Asking for it at once, retry timer or not, made a
 * storm at 40 nodes and 10 % loss: every such request is a frame, which
 * ages every receiver's gaps of its sender by a frame.) */
inline constexpr int kResendUrgentBit = 32;

/* A heartbeat's view (of the others' states) serves refutation and the
 * proof that the sender has heard the receiver's current life; a receiver
 * reads only its own entry. A member's entry whose state, draining flag or
 * incarnation changed rides on the next kViewRepeat heartbeats, as does
 * that of a member still sending as if it had not read it
 * (keep_view_first()); the others take turns, kViewWindow a heartbeat,
 * from a place in the view that differs per node. So a node learns within
 * a heartbeat what it must refute or has been heard (unless all three are
 * lost: then at its turn, within ceil(others / kViewWindow) heartbeats),
 * and at 256 nodes a heartbeat carries 16 entries, not all that fit a
 * frame (about 170). More changed entries than fit (every entry counts as
 * changed at start) go in view order, the rest in the next heartbeats. */
inline constexpr uint8_t kViewRepeat = 3;
inline constexpr size_t kViewWindow = 16;

/* A pseudo-random time in [0, range) that differs per node and per (a, b)
 * (splitmix64's finaliser over them): spreads the nodes' timers, so that
 * nodes started together do not send in lock-step, and the receivers of
 * one lost frame do not all ask for it at once. */
inline uint64_t spread_us(NodeId self, uint64_t a, uint64_t b, uint64_t range) noexcept
{
    uint64_t x = b ^ (uint64_t{self} << 48) ^ (a << 32);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return range == 0 ? 0 : (x ^ (x >> 31)) % range;
}

/** What a receiver knows of one sender's frame sequence (one incarnation). */
struct SeqWindow {
    uint32_t incarnation = 0;
    uint64_t newest = 0;   /* highest sequence seen */
    uint64_t missing = 0;  /* bit i: newest - 1 - i not seen */
    uint64_t due_us = 0;   /* next resend request; 0: none scheduled */
    uint64_t asked_us = 0; /* our one request for the gap, until an answer times it; 0: none */
    uint8_t attempts = 0;
    bool listed = false;  /* in Impl::gapped */
    bool spared = false;  /* our next request put off: another receiver asked */
    bool untimed = false; /* an answer may serve an earlier request: none timed until closed */

    /* Forgets the repair of a gap that closed, or of an earlier life. */
    void end_repair() noexcept
    {
        due_us = 0;
        asked_us = 0;
        attempts = 0;
        spared = false;
        untimed = false;
    }
    /* Bit of the oldest missing frame (-1: none). */
    int oldest_bit() const noexcept { return 63 - std::countl_zero(missing); }
    /* The oldest missing frame is about to leave the window. */
    bool urgent() const noexcept { return oldest_bit() >= kResendUrgentBit; }
};

/** One of our sent frames, kept to answer resend requests. */
struct SentFrameCopy {
    uint64_t sequence = 0;
    uint32_t incarnation = 0;
    uint64_t resent_us = 0;
    size_t len = 0; /* 0: no claim or release in it */
    std::vector<uint8_t> bytes;
    /* By the frame's claims and releases, in order: 0 for a statement of
     * the sender's own, n for a copy resent in answer to the n-th request
     * in a row (see queue_flow()). */
    std::vector<uint8_t> copies;
};

/** One pull of a peer's table (start-up full sync, a digest repair, or
 *  the heir's pull of the flows naming this node). */
struct SyncSession {
    bool active = false;
    NodeId target = kInvalidNode;
    NodeId owner_filter = kInvalidNode;
    uint32_t request_id = 0;
    uint64_t cursor = 0;
    uint64_t sent_us = 0;
    uint8_t attempts = 0; /* requests sent for the current cursor */
};
/* Requests for one cursor before a full sync turns to another peer: a
 * request and its answer each lost 10 % of the time leave a chunk
 * unanswered 3 times in a row once in 150, which over a table of a
 * thousand chunks restarted nearly every pass from cursor 0; 10 in a row,
 * once in 10^7. A peer that went quiet is dead (and replaced) sooner. */
inline constexpr uint8_t kSyncAttempts = 10;

struct GossipEngine::Impl {
    Impl(const GossipParams &params, const KeyRing &keys, FlowStore &store, SendFn send,
         uint64_t now_us);

    /* ---- engine.cpp: store writes, apply, receive ---- */
    /* Writes @p r for @p key, whose record in the store is @p old (as
     * looked up just before), and keeps the digests. */
    UpsertResult put(const FlowKey &key, const std::optional<OwnerRecord> &old,
                     OwnerRecord rec) noexcept;
    void forget_in_digest(const FlowKey &key, const OwnerRecord &r) noexcept;
    /* How a claim or release reached this node. */
    enum class Via : uint8_t {
        owner,   /* a frame of the owner itself */
        sync,    /* the responder's own entry in its sync response */
        relayed, /* another owner's entry in a sync response: perhaps the
                    responder's failover guess */
        moved,   /* such an entry that the responder holds as a failover's
                    move to its owner (FlowEntry::moved) */
    };
    static constexpr bool relayed(Via v) noexcept { return v == Via::relayed || v == Via::moved; }
    /* @p age_s: a synced tombstone's age, so that it is stamped as old as
     * the responder's copy and ages out with it. */
    void apply_remote(const Claim &c, Via via, uint64_t now_us, uint16_t age_s = 0) noexcept;
    void apply_sync_entry(const FlowEntry &e, NodeId responder, uint64_t now_us) noexcept;
    void receive(std::span<const std::span<const uint8_t>> frames, uint64_t now_us) noexcept;
    /* One frame of a burst, its tag checked with the others' (@p check). */
    void receive_one(std::span<const uint8_t> frame, const FrameCheck &check,
                     uint64_t now_us) noexcept;
    void on_heartbeat(const HeartbeatRecord &hb, uint64_t now_us) noexcept;
    void on_digest(NodeId sender, const DigestRecord &d, uint64_t now_us) noexcept;
    void local_claim(const FlowKey &key, uint64_t now_us) noexcept;
    bool local_release(const FlowKey &key, uint64_t now_us) noexcept;
    bool expire(const FlowKey &key, OwnerRecord r, uint64_t now_us) noexcept;
    void local_refresh(const FlowKey &key, uint64_t now_us) noexcept;
    std::optional<uint16_t> operator_claim(const FlowKey &key, uint64_t now_us) noexcept;
    /* Writes this node's claim of @p key at @p version over @p cur and
     * queues it; false when the store refused. */
    bool claim_own(const FlowKey &key, const std::optional<OwnerRecord> &cur, uint16_t version,
                   uint8_t flags, uint64_t now_us) noexcept;
    bool is_live_own(const OwnerRecord &r) const noexcept;
    /* The operator's pin (never aged) of @p old, for @p next to replace it
     * with: kept only while the record stays a live claim of this node's.
     * The pin is not gossiped; on another owner's record, a tombstone or a
     * failed-over flow it would keep an entry that no one refreshes for
     * good. */
    uint8_t pin_kept(const OwnerRecord &old, const OwnerRecord &next) const noexcept
    {
        return is_live_own(next) ? static_cast<uint8_t>(old.flags & owner_flag::pinned) : 0;
    }

    /* ---- engine_tx.cpp: frames, heartbeat, re-announce ---- */
    void begin_frame() noexcept;
    void send_frame() noexcept;
    /* Adds one record to the batch: opens a frame if none is open, sends
     * the frame first when the record does not fit. The batch deadline
     * starts with the frame's first record. */
    template <typename Add> void append(uint64_t now_us, Add &&add) noexcept
    {
        if (!frame_open)
            begin_frame();
        const bool was_empty = writer.empty();
        if (add(writer)) {
            if (was_empty)
                batch_deadline_us = now_us + p.batch_interval_us;
            return;
        }
        send_frame();
        begin_frame();
        /* A fresh frame holds any single record (the constructor checked
         * max_frame). */
        if (add(writer))
            batch_deadline_us = now_us + p.batch_interval_us;
    }
    /** Queues a claim or release; @p copy: 0 for a statement of our own, n
     *  for a copy of one resent for the n-th time in a row (kMaxCopy: not
     *  resent again). */
    void queue_flow(RecordType type, const FlowEntry &e, uint64_t now_us,
                    uint8_t copy = 0) noexcept;
    void flush(uint64_t now_us) noexcept;
    void send_heartbeat(uint64_t now_us) noexcept;
    void send_own_digest(uint64_t now_us) noexcept;
    void reannounce_slice(uint64_t now_us) noexcept;
    void finish_reannounce_pass(uint64_t now_us) noexcept;
    void tick(uint64_t now_us) noexcept;
    uint64_t next_tick_us() const noexcept;

    /* ---- engine_sync.cpp: sync and failover ---- */
    void start_failover(NodeId node) noexcept;
    void failover_slice(uint64_t now_us) noexcept;
    /* A live record of an earlier life of its owner (who died or restarted since). */
    bool earlier_life(const OwnerRecord &r) const noexcept;
    /* A live record whose owner the workers send to its failover owner:
     * of an earlier life of its owner, or of a node dead here. */
    bool owner_gone(const OwnerRecord &r) const noexcept;
    bool guess_yields(const OwnerRecord &guess, const Claim &c, uint64_t now_us) const noexcept;
    /* Rewrites such a record to its failover owner at version + 1 (and
     * claims it when that is us); false when nobody is eligible or the
     * store refused. */
    bool fail_over(const FlowKey &key, const OwnerRecord &old, uint64_t now_us) noexcept;
    void on_member_change(const MemberChange &c, uint64_t now_us) noexcept;
    void sync_tick(uint64_t now_us) noexcept;
    void send_sync_request(SyncSession &s, uint64_t now_us) noexcept;
    bool start_full_sync(uint64_t now_us) noexcept;
    /* A peer a full sync may ask: heard, alive, not this node. */
    bool can_sync_from(const Member &m) const noexcept;
    /* One other than @p than. */
    bool another_live_peer(NodeId than) const noexcept;
    /* The first peer a sync may ask, of those @p wanted (NodeId) accepts,
     * after @p last in id order, wrapping round: a silent peer is not
     * asked again while others could answer. kInvalidNode: none. */
    template <typename Wanted> NodeId next_sync_peer(NodeId last, Wanted &&wanted) const noexcept;
    void request_repair(NodeId owner, uint64_t now_us) noexcept;
    /* After the start-up sync: the next peer's flows that name this node. */
    void heir_pull_tick(uint64_t now_us) noexcept;
    void answer_sync(const SyncRequestRecord &r, NodeId requester, uint64_t now_us) noexcept;
    void on_sync_response(const SyncResponseRecord &r, NodeId responder, uint64_t now_us) noexcept;
    void refute(uint32_t seen_incarnation, uint64_t now_us) noexcept;
    /* A sender's newer incarnation: its earlier life's flows fail over,
     * once it has proved its frames are of our time (heard_live). */
    void on_restart(NodeId node, uint32_t incarnation, uint64_t now_us) noexcept;
    /* The heartbeat's views hold this node at an incarnation of this life. */
    bool names_this_life(const HeartbeatRecord &hb) const noexcept;
    /* Fills beat_views from the whole view (@p n entries, in views): the
     * entries changed in the last kViewRepeat heartbeats, then a window of
     * kViewWindow others. Returns how many are changed ones. */
    size_t pick_views(size_t n) noexcept;
    /* The first @p sent of beat_views went out: their turns are used. */
    void views_sent(size_t n, size_t changed, size_t sent) noexcept;
    /* A node whose frames show it does not know what we hold of it (dead,
     * or a later life) while it goes on sending: its entry leads our next
     * kViewRepeat heartbeats, again for as long as that goes on. */
    void keep_view_first(NodeId node) noexcept
    {
        if (node <= kMaxNodeId)
            view_repeats[node] = kViewRepeat;
    }

    /* ---- engine_repair.cpp: gap detection and resend ---- */
    void track_sequence(const FrameHeader &h, uint64_t now_us) noexcept;
    /* @p missing without the frames its sender named @p bare, counted. */
    uint64_t not_bare(uint64_t missing, uint64_t bare) noexcept;
    /* Marks @p skipped (bits below w.newest) missing and schedules a request. */
    void note_gap(SeqWindow &w, const FrameHeader &h, uint64_t skipped, uint64_t now_us) noexcept;
    void on_resend_request(const ResendRecord &r, uint64_t now_us) noexcept;
    void on_peer_request(const ResendRecord &r, uint64_t now_us) noexcept;
    /* How long after our request number @p attempts (1, 2, ...) for one
     * gap the next one is due: see kResendRetryMinUs. */
    uint64_t retry_interval_us(uint8_t attempts) const noexcept
    {
        const unsigned doublings = attempts > 1 ? std::min(attempts - 1, 16) : 0;
        const uint64_t first = rtt_timed() ? repair_rtt_us + 4 * repair_rttvar_us : retry_most_us();
        return std::min(retry_most_us(), std::max(kResendRetryMinUs, first) << doublings);
    }
    /* The longest retry interval: half a heartbeat interval. */
    uint64_t retry_most_us() const noexcept { return uint64_t{p.heartbeat_interval_ms} * 1000 / 2; }
    /* An answer has been timed (a sample is at least a millisecond). */
    bool rtt_timed() const noexcept { return repair_rtt_us != 0; }
    /* Folds one request's round trip into repair_rtt_us, and publishes it. */
    void sample_round_trip(uint64_t rtt_us) noexcept;
    /* Between two answers for one frame: three quarters of our first retry
     * interval, or of the least one (2 ms) until we have timed a repair
     * ourselves: a receiver that has may retry that soon. The receivers
     * that lost one frame ask within a few milliseconds of each other, and
     * one answer serves them all; a receiver that lost the answer asks
     * again a retry interval after its request, by when the sender answers
     * anew (unless the answer it lost had waited most of a batch interval
     * to leave, or the two estimate the round trip differently: then it is
     * served at a later retry). */
    uint64_t resend_quiet_us() const noexcept
    {
        return (rtt_timed() ? retry_interval_us(1) : std::min(kResendRetryMinUs, retry_most_us())) *
               3 / 4;
    }
    /* @p timed: the record did not ride on a heartbeat (after its record). */
    void on_resent(const ResendRecord &r, uint64_t now_us, bool timed) noexcept;
    /* Keeps the claims and releases of a frame just sent for resend
     * requests; true when it held none a resend would bring (bare). */
    bool remember_frame(std::span<const uint8_t> frame) noexcept;
    void repair_tick(uint64_t now_us) noexcept;
    void note_request(SeqWindow &w, uint64_t now_us) noexcept;
    size_t repair_records(uint64_t now_us) const noexcept;
    void add_repair_records(uint64_t now_us, size_t max) noexcept;

    GossipParams p;
    FlowStore &store;
    SendFn send;
    Authenticator auth;
    FrameVerifier verifier;
    MembershipTable members;
    GossipStats stats;

    /* Receive: one reader, one record, a burst's checks, reused. */
    FrameReader reader;
    GossipRecord rec;
    std::array<FrameCheck, kAuthBatchMax> checks;

    /* Transmit: one frame under construction (the batch). */
    std::vector<uint8_t> tx_buf;
    FrameWriter writer;
    bool frame_open = false;
    uint64_t batch_deadline_us = 0; /* valid while the batch holds records */
    uint64_t sequence = 0;
    uint8_t bare_sent = 0; /* bit i: our frame sequence - i held nothing to resend */

    /* Heartbeat. */
    std::vector<MemberView> views;      /* the whole view, in MembershipTable::view() order */
    std::vector<MemberView> beat_views; /* this heartbeat's: the changed, then the window */
    std::vector<size_t> window_at;      /* the window's indices in views */
    std::vector<MemberView> view_marks; /* per node id: its entry when last seen to change */
    std::vector<uint8_t> view_repeats;  /* per node id: heartbeats still to carry it first */
    size_t view_offset = 0;             /* where the next window starts in views */
    uint64_t started_us = 0;
    uint64_t next_heartbeat_us = 0;

    /* Per node id (kMaxNodeId + 1 entries). */
    DigestBook digests{size_t{kMaxNodeId} + 1}; /* incremental, from every write the engine makes */
    DigestBook fresh{size_t{kMaxNodeId} + 1};   /* recomputed by the current re-announce pass */
    std::vector<uint32_t> touched; /* pass id of the last write to the owner's digest */
    std::vector<uint8_t> mismatch_streak;
    std::vector<uint64_t> last_repair_us;
    std::vector<uint8_t> life;          /* owner life tag (OwnerRecord::reserved) */
    std::vector<uint8_t> failing;       /* 1: records of an earlier life move away */
    std::vector<uint32_t> restart_inc;  /* incarnation whose restart we failed over */
    std::vector<uint64_t> restarted_us; /* when its restart was seen; 0: none since it died */
    std::vector<uint8_t> heard_live;    /* 1: a heartbeat of the node named this life of ours */

    /* Re-announce walk. */
    bool pass_running = false;
    uint32_t pass_id = 1;
    uint64_t pass_cursor = 0;
    uint64_t pass_start_us = 0;
    uint64_t next_pass_us = 0;
    uint64_t pass_generation = 0; /* store.generation() when the pass began */
    uint32_t pass_budget = kSliceMin;
    uint64_t next_slice_us = 0;

    /* Failover rewrite. */
    bool failover_running = false;
    uint64_t failover_cursor = 0;
    uint32_t failover_requests = 0;   /* bumped by start_failover */
    uint32_t failover_pass_start = 0; /* failover_requests when the pass began */
    uint32_t failover_pass_moved = 0; /* records this pass rewrote */
    uint64_t next_failover_us = 0;

    /* Scratch for slices: filled by FlowStore::scan, applied afterwards. */
    std::vector<std::pair<FlowKey, OwnerRecord>> scratch;

    /* Loss repair: per sender id, and the senders with open gaps. */
    std::vector<SeqWindow> windows;
    std::vector<NodeId> gapped;
    std::vector<SentFrameCopy> sent_ring;
    bool frame_has_flows = false; /* the open frame holds a claim or release (not a resent copy) */
    size_t open_flows = 0;        /* claims and releases in the open frame */
    std::vector<uint8_t> open_copies; /* what each of them is (SentFrameCopy::copies) */
    uint64_t repair_rtt_us = 0;       /* smoothed: sample_round_trip(); 0: none yet */
    uint64_t repair_rttvar_us = 0;    /* its mean deviation */
    uint64_t cover_newest = 0;        /* our frames answered for at the next heartbeat */
    uint64_t cover_bits = 0;
    uint32_t cover_incarnation = 0;
    struct Resend {
        RecordType type;
        FlowEntry flow;
        uint8_t copy; /* queue_flow()'s */
    };
    std::vector<Resend> resend_scratch;
    FrameReader resend_reader;
    GossipRecord resend_rec;

    /* Sync. */
    SyncSession full;
    SyncSession repair;
    bool synced = false;
    /* The heir's pull: pending from the end of a start-up sync that brought
     * a failover's move until every peer has answered it (heir_pulled, per
     * node id) or is dead. */
    SyncSession heir;
    bool full_brought_moves = false;
    bool heir_pull_pending = false;
    std::vector<uint8_t> heir_pulled;
    uint32_t next_request_id = 0; /* set by the constructor: first_request_id() */
    NodeId last_sync_target = kInvalidNode;
};

} // namespace flowhome
