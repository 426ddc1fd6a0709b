/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The gossip engine: everything the control lcore does to keep the fleet's
 * ownership tables in agreement, without any I/O of its own. Frames come in
 * through receive() or receive_burst(), go out through the SendFn, time is passed in, and the
 * ownership lives in a FlowStore. The node's control loop drives it over
 * DPDK ports; the gossip simulator drives many engines over a simulated
 * network: both run exactly this code.
 *
 * What it does:
 *  - local claims / releases / refreshes (from the workers) are applied to
 *    the store and batched into frames, sent when a frame is full or
 *    batch_interval_us after the first record waited;
 *  - received frames are verified (cluster, key, tag, replay) and their
 *    records applied: claims and releases by the conflict rule
 *    (gossip_state.hpp), heartbeats to the membership table, digests
 *    compared with our own (a mismatch triggers a sync request), sync
 *    requests answered in chunks, sync responses applied;
 *  - heartbeats every heartbeat_interval_ms; membership ticks (suspect,
 *    dead); when a node dies, its flows are rewritten in the background to
 *    their failover owner (the workers already route them there through the
 *    published node states), and this node re-claims at version + 1 those
 *    that fail over to it;
 *  - every reannounce_interval_ms the node re-announces, in slices, every
 *    flow it owns (a claim at the same version), so a lost claim heals and
 *    remote records are restamped; digests go out with the same period;
 *  - a receiver that sees a gap in a peer's frame sequence numbers asks it
 *    to resend them (retried with its next heartbeat or batch, after the
 *    measured repair round trip's retransmission timeout, doubling up to
 *    half a heartbeat interval, until answered or 10 times); the
 *    peer re-sends the claims and releases of those frames from a ring of
 *    its recently sent frames, so a lost claim heals in milliseconds;
 *  - a node that starts (or restarts with a new incarnation) asks a live
 *    peer for a full sync; one that brought a failover's move is followed
 *    by a pull of the flows naming this node from every other peer;
 *  - remote records their owner no longer re-announces expire through the
 *    store's ageing (their epoch is not renewed).
 *
 * Records: the engine stores OwnerRecord::reserved as the owner's "life
 * tag", a local count (mod 256) of the owner's deaths and restarts seen by
 * this node. A failover rewrites only the records tagged with an earlier
 * life, so the claims a restarted node makes while its old flows are being
 * rewritten in the background are not moved away with them. One exception:
 * this node's own earlier-life tombstones, learnt from a sync, carry the tag
 * below its current one, so that it does not re-announce them (tombstones
 * are never failed over).
 *
 * Time: now_us is the node's monotonic clock in microseconds. Records are
 * stamped with epoch_of(now_us) = seconds modulo 2^16, the clock the
 * workers and the store's ageing use.
 *
 * Threading: one engine per control lcore; every member function on that
 * lcore only. Errors: noexcept throughout after construction (the
 * constructor throws std::invalid_argument for inconsistent parameters);
 * bad frames are counted by reason, never thrown.
 */
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "flowhome/gossip_auth.hpp"
#include "flowhome/gossip_membership.hpp"
#include "flowhome/gossip_state.hpp"
#include "flowhome/gossip_wire.hpp"
#include "flowhome/ownership.hpp"
#include "flowhome/stats.hpp"

namespace flowhome {

/**
 * Where the engine keeps ownership: the node's OwnershipTable
 * (TableFlowStore), or an in-memory map in the simulator and the tests.
 * Called only from the engine's thread.
 */
class FlowStore {
public:
    virtual ~FlowStore() = default;
    virtual std::optional<OwnerRecord> lookup(const FlowKey &key) const noexcept = 0;
    /**
     * Inserts or replaces the record of @p key. @p presence is whether the
     * caller's own read of the key (lookup() or scan(), with no write or
     * removal of it since) found it, so that a store that would look again
     * need not; Presence::unknown makes it look. As OwnershipTable::upsert().
     */
    virtual UpsertResult upsert(const FlowKey &key, OwnerRecord record,
                                Presence presence) noexcept = 0;
    virtual bool remove(const FlowKey &key) noexcept = 0;
    /**
     * Visits at most @p budget entries starting at @p cursor (0: from the
     * beginning), calling fn(key, record); sets @p cursor to where the next
     * call continues, 0 once the walk is through. Entries inserted or
     * removed meanwhile may or may not be visited. An entry that stays is
     * visited once, unless it moved between calls: the node's table walks
     * positions, and an insert's cuckoo moves (or, with extendable buckets,
     * a removal) can carry an entry behind the cursor (missed this pass) or
     * ahead of it (visited twice). A job that must reach every entry walks
     * again until a pass finds nothing left to do.
     */
    virtual uint32_t scan(uint64_t &cursor, uint32_t budget,
                          const std::function<void(const FlowKey &, OwnerRecord)> &fn) = 0;
    virtual uint32_t size() const noexcept = 0;
    /**
     * Changes whenever entries may have moved under a walk (scan() above);
     * constant for a store whose entries never move.
     */
    virtual uint64_t generation() const noexcept { return 0; }
};

/** The coarse clock records are stamped with. */
constexpr uint16_t epoch_of(uint64_t now_us) noexcept
{
    return static_cast<uint16_t>(now_us / 1000000);
}

struct GossipParams {
    NodeId self = kInvalidNode;
    uint32_t cluster_id = 0;
    uint32_t incarnation = 1;  /**< must grow across restarts (e.g. start time in s) */
    std::vector<NodeId> peers; /**< every other node of the cluster */
    size_t max_frame = 1400;   /**< gossip_max_frame(mtu, ipv6) */
    uint32_t batch_interval_us = 1000;
    uint32_t heartbeat_interval_ms = 100;
    uint32_t suspect_after_ms = 500;
    uint32_t dead_after_ms = 1500;
    uint32_t reannounce_interval_ms = 2000; /**< bound on healing a lost claim */
    uint32_t sync_timeout_ms = 500;         /**< re-ask after this; another peer after 10 */
    bool draining = false;
    /** Where the engine publishes each owner's life tag to the workers
     *  (kMaxNodeId + 1 entries), before it writes a record that carries a
     *  new one; null: nowhere. */
    std::atomic<uint8_t> *life_out = nullptr;
    /** Whether the authenticator may use the CPU's SHA extensions (off: the
     *  code path of CPUs without them, for tests and comparisons). */
    ShaExtensions sha_extensions = ShaExtensions::when_present;
};

/** Counters and gauges of one engine; readable from any thread. */
struct GossipStats {
    Counter frames_out;
    Counter records_out;
    Counter bytes_out;
    Counter frames_in; /**< verified and applied */
    Counter records_in;
    Counter bytes_in;
    Counter claims_applied; /**< a received claim changed the store */
    Counter claims_ignored; /**< a received claim lost to what the store has */
    Counter releases_applied;
    Counter conflicts_lost;  /**< our claim lost to another node's */
    Counter claims_raised;   /**< our live claim that a release would have
                                  ended, claimed again above it */
    Counter store_full;      /**< a claim the store refused */
    Counter peers_left;      /**< peers whose heartbeat said they were stopping */
    Counter peers_timed_out; /**< peers declared dead after dead_after_ms of silence */
    Counter unknown_senders; /**< verified frames of a node that is not a configured peer */
    Counter failovers;       /**< flows rewritten to their failover owner */
    Counter guesses_yielded; /**< guesses that gave way to a node that restarted moments ago
                                  (or, this node just started, to any node's claim) */
    Counter reclaimed;       /**< failed-over flows this node claimed at version + 1 */
    Counter reannounced;
    Counter digests_mismatched;
    Counter sync_requests_out;
    Counter sync_requests_in;
    Counter sync_entries_in;
    Counter unknown_records;  /**< skipped records of a newer minor version */
    Counter requests_refused; /**< sync or resend requests to us beyond a frame's first of each */
    Counter records_ignored;  /**< stale heartbeat or sync answer, foreign digest, old resend ask */
    Counter claims_refreshed; /**< a received claim equal to the store's: epoch restamped */
    Counter orphans; /**< synced claims naming this node that it does not hold, no move to it */
    Counter moves_claimed; /**< synced failover moves to this node that it claimed as the heir */
    Counter sync_responses_out;     /**< sync response frames sent */
    Counter syncs_completed;        /**< response chains that reached next_cursor 0 */
    Counter seal_failed;            /**< frames the authenticator could not seal (no send key) */
    Counter resend_requests_out;    /**< resend requests for a peer's frames we missed */
    Counter resend_requests_in;     /**< resend requests for our frames */
    Counter resend_requests_spared; /**< ours put off: another receiver asked for all of it */
    Counter resent_flows;           /**< claims and releases re-sent to answer them */
    Counter gaps_abandoned;         /**< missed frames given up on (re-announcement heals) */
    Counter gaps_bare;              /**< missed frames not asked for: their sender's next
                                         frames named them bare (nothing to resend) */
    Counter unproven_changes;       /**< a restart or departure of a sender not yet heard naming
                                         this life: not acted on (it may be a replay) */
    Counter receive_bursts;         /**< calls of receive() or receive_burst() with at least
                                         one frame (a burst's tags are checked together) */
    Gauge repair_round_trip_us;     /**< smoothed round trip of our timed resend requests;
                                         0 until one is timed */
    Gauge repair_retry_us;          /**< wait before a gap's second request (the first retry) */
};

class GossipEngine {
public:
    /** Sends one complete, sealed frame (the adapter copies it). */
    using SendFn = std::function<void(std::span<const uint8_t> frame)>;

    GossipEngine(const GossipParams &params, const KeyRing &keys, FlowStore &store, SendFn send,
                 uint64_t now_us);
    ~GossipEngine();
    GossipEngine(const GossipEngine &) = delete;
    GossipEngine &operator=(const GossipEngine &) = delete;

    /* ---- from the workers ---- */

    /** This node served a connection-opening packet: claim it (version 1) unless recorded. */
    void local_claim(const FlowKey &key, uint64_t now_us) noexcept;
    /** Releases a flow this node owns (an operator's command, or its expiry): a
     *  tombstone here and a release to the cluster. False, and nothing
     *  done, when the store holds no live flow of ours under @p key. */
    bool local_release(const FlowKey &key, uint64_t now_us) noexcept;
    /** A worker served a flow this node owns: restamp the record. */
    void local_refresh(const FlowKey &key, uint64_t now_us) noexcept;
    /**
     * The store's ageing found @p key (record @p r) expired. A live flow of
     * ours is released (true: the engine took it over, the store keeps the
     * tombstone); any other entry the caller removes (false), and the
     * engine's digests stop counting it.
     */
    bool expire(const FlowKey &key, OwnerRecord r, uint64_t now_us) noexcept;

    /* ---- from the operator (console) ---- */

    /**
     * The operator takes @p key for this node: a claim at one version above
     * whatever the store holds (1 when nothing), so it wins the conflict
     * rule everywhere, stored pinned (owner_flag::pinned: never aged out)
     * and gossiped at once. Returns the claimed version (0 after 65535,
     * serial arithmetic), or nothing when the store refused the record
     * (full).
     */
    std::optional<uint16_t> operator_claim(const FlowKey &key, uint64_t now_us) noexcept;

    /* ---- from the network ---- */

    /** One received frame (UDP payload). Verified, then applied; every outcome counted. */
    void receive(std::span<const uint8_t> frame, uint64_t now_us) noexcept;
    /** A burst of received frames, taken in order as one by one, their tags
     *  checked together (a burst costs less to authenticate than its frames). */
    void receive_burst(std::span<const std::span<const uint8_t>> frames, uint64_t now_us) noexcept;

    /* ---- timers ---- */

    /** Runs whatever is due: batch flush, heartbeat, membership, re-announce, failover, sync. */
    void tick(uint64_t now_us) noexcept;
    /** Sends what is batched now. */
    void flush(uint64_t now_us) noexcept;
    /**
     * The latest time tick() should next run: the batch deadline, the next
     * heartbeat, re-announce slice, failover slice or sync timeout.
     * Membership is re-checked at least every heartbeat interval. Calling
     * tick() more often is harmless; the simulator sleeps until this.
     */
    uint64_t next_tick_us() const noexcept;

    /* ---- operation ---- */

    void set_draining(bool draining, uint64_t now_us) noexcept;
    /**
     * The node is stopping: sends what the batch holds and a heartbeat whose
     * own state is dead, so that peers fail this node's flows over now
     * rather than after dead_after_ms of silence. Every later heartbeat says
     * the same.
     */
    void leave(uint64_t now_us) noexcept;
    /** Replaces the keys (rotation); frames under a key no longer present are refused. */
    void set_keys(const KeyRing &keys) noexcept;

    /* ---- what the node publishes to its workers ---- */

    const MembershipTable &membership() const noexcept;
    /** Changes whenever membership() does: republish node states and the eligible set. */
    uint64_t membership_generation() const noexcept;
    /** Where packets of a flow with record @p r go now: its failover owner
     *  when the owner is dead or @p r is from an earlier life of it. */
    NodeId effective_owner(OwnerRecord r, uint32_t flow_hash) const noexcept;
    /** True once a full sync has completed (or no peer was alive to ask). */
    bool synced() const noexcept;
    /** The smoothed round trip of our resend requests, in µs (0 until an
     *  answer has been timed; any thread: stats().repair_round_trip_us). */
    uint64_t repair_round_trip_us() const noexcept;
    /** How long after a first resend request a gap still open is asked for
     *  again, in µs (any thread: stats().repair_retry_us). */
    uint64_t repair_retry_us() const noexcept;

    const GossipStats &stats() const noexcept;
    const GossipRxStats &rx_stats() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace flowhome
