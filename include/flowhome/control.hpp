/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The control lcore: the single writer of the ownership table. Workers hand
 * it claims and refreshes through an rte_ring of ControlMsg; it inserts them,
 * keeps the coarse clock that records are stamped with, and ages idle
 * entries out.
 *
 * Threading: ControlLoop::run() on the control lcore only; stats readable
 * from anywhere. Errors: noexcept; refusals are counted.
 */
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "flowhome/config.hpp"
#include "flowhome/gossip_wire.hpp"
#include "flowhome/ownership.hpp"
#include "flowhome/packet.hpp"
#include "flowhome/stats.hpp"

struct rte_ring;
struct rte_rcu_qsbr;

namespace flowhome {

class GossipEngine;
class MembershipTable;
class GossipTransport;
class LogRelay;
struct DatapathShared;
struct ClusterView;

enum class ControlMsgType : uint8_t {
    claim,   /**< a worker saw a connection open and served it locally */
    refresh, /**< a worker served a connection this node owns; restamp it */
};

/** One ring element, copied by value (rte_ring_*_elem). */
struct ControlMsg {
    ControlMsgType type;
    uint8_t pad[3];
    FlowKey key;
};
static_assert(sizeof(ControlMsg) % 4 == 0, "rte_ring element size must be a multiple of 4");

struct ControlStats {
    Counter msgs;
    Counter claims_inserted;
    Counter claims_existing; /**< claim for a key the table already had */
    Counter refreshes;
    Counter refresh_not_owner; /**< refresh of a key another node owns or nobody has */
    Counter table_full;        /**< counted refusals of a full table */
    Counter table_errors;
    Counter aged_out;          /**< expired entries: removed, or (our own, with gossip) released */
    Counter operator_requests; /**< console and control-socket requests run on the lcore */
};

/** State the workers and the control lcore share. */
struct SharedClock {
    /** Coarse clock in seconds, wrapping; what OwnerRecord::epoch is stamped with. */
    std::atomic<uint16_t> epoch{0};
};

class ControlLoop {
public:
    struct Params {
        NodeId self = kInvalidNode;
        OwnershipTable *table = nullptr;
        rte_ring *from_workers = nullptr;
        SharedClock *clock = nullptr;
        TableConfig timeouts;
        BackoffConfig backoff;
        const std::atomic<bool> *stop = nullptr;
        /* With gossip: claims and refreshes go through the engine, frames
         * through the transport, and membership changes are published to
         * the workers (node states, eligible set) under RCU. */
        GossipEngine *engine = nullptr;
        GossipTransport *transport = nullptr;
        DatapathShared *datapath = nullptr;
        rte_rcu_qsbr *qsbr = nullptr;
        /* Where membership changes are logged (none: not logged). */
        LogRelay *log = nullptr;
    };

    explicit ControlLoop(const Params &p) noexcept;
    ~ControlLoop();

    /** Runs until *stop, then announces the node's departure (GossipEngine::leave); returns 0. */
    int run() noexcept;

    /** One iteration: drain the ring, tick the clock, age a slice. Returns work done. */
    unsigned poll_once(uint64_t now_tsc) noexcept;

    /**
     * Applies one message at @p now_us, the time poll_once() read: the
     * records it stamps carry the clock's epoch, which ageing compares them
     * with (exposed for tests).
     */
    void apply(const ControlMsg &msg, uint64_t now_us) noexcept;

    /**
     * How long an idle loop sleeps at @p now_tsc after @p idle_sleeps
     * sleeps in a row that found no work: backoff.sleep_us, doubled with
     * each such sleep up to kMaxIdleSleepUs (or backoff.sleep_us if
     * longer), but no later than its next ageing slice or gossip timer (a
     * heartbeat late by a long sleep would make peers suspect this node),
     * and at least 1 us. 0 when backoff.sleep_us is 0 (busy polling).
     */
    uint64_t idle_sleep_us(uint64_t now_tsc, unsigned idle_sleeps = 0) const noexcept;

    /**
     * Longest sleep the doubling reaches. The loop's deadlines are
     * milliseconds (a gossip batch, an ageing slice every 1/256 s), and a
     * claim a worker queues waits at most this long for it; waking every
     * 50 us instead took a tenth of a CPU the loop shares.
     */
    static constexpr uint64_t kMaxIdleSleepUs = 1000;
    static constexpr unsigned kSleepDoublingsMax = 10;

    const ControlStats &stats() const noexcept { return stats_; }

    /** Microseconds since the loop started: the node's gossip clock. */
    uint64_t now_us(uint64_t now_tsc) const noexcept;

    /**
     * Operator requests (console, control socket): runs @p fn on the
     * control lcore at its next poll_once() and waits at most @p timeout
     * for it. @p fn receives the gossip clock (now_us) and may use the
     * engine, the membership and iterate the table, as the loop itself
     * does; it must be short (it delays gossip and ageing) and must not
     * throw. Returns done once fn has run; timed_out when the loop did not
     * take the request in time (not running, or stuck); queue_full when the
     * queue holds earlier requests not taken up; no_queue when the loop has
     * no request queue (its creation failed) or the request no memory. In
     * each case but done fn never runs. Threading: any non-EAL-worker
     * thread (main lcore, socket thread); never the control lcore itself
     * (it would wait for itself).
     */
    enum class Run : uint8_t { done, timed_out, queue_full, no_queue };
    Run run_on_control(const std::function<void(uint64_t now_us)> &fn,
                       std::chrono::milliseconds timeout) noexcept;

private:
    struct OperatorRequest;
    unsigned serve_operator_requests(uint64_t now_us) noexcept;

    void apply_locally(const ControlMsg &msg) noexcept;
    void publish_membership(uint64_t now_us) noexcept;
    /* One line per change of a peer's state, incarnation or draining flag
     * (rare: at most a few per heartbeat interval), through Params::log. */
    void log_member_changes(const MembershipTable &m, uint64_t now_us) noexcept;

    Params p_;
    ControlStats stats_;
    uint64_t next_age_tsc_ = 0;
    uint64_t start_tsc_ = 0;
    uint64_t published_generation_ = ~uint64_t{0};
    struct LoggedMember {
        NodeState state = NodeState::suspect;
        uint32_t incarnation = 0;
        bool draining = false;
    };
    std::vector<LoggedMember> logged_; /* per node id, as last logged */
    std::unique_ptr<ClusterView> view_;
    rte_ring *requests_ = nullptr; /* OperatorRequest *, many producers, one consumer */
};

} // namespace flowhome
