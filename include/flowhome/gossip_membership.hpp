/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Cluster membership from heartbeats, and failover placement.
 *
 * Every node hears every other node's heartbeats directly (multicast), so
 * each node decides liveness from its own observations, with the same
 * timeouts everywhere:
 *
 *   alive --(no heartbeat for suspect_after)--> suspect
 *   suspect --(no heartbeat for dead_after)--> dead
 *   alive/suspect --(heartbeat, same incarnation)--> alive
 *   any --(heartbeat, newer incarnation)--> alive, "restarted"
 *   dead --(heartbeat, same incarnation)--> stays dead ("dead_incarnation")
 *   any --(heartbeat whose own state is dead)--> dead ("left": graceful stop)
 *
 * Death is final for an incarnation (as in SWIM): when a node is declared
 * dead its flows fail over, so it may come back only as a new incarnation,
 * which owns nothing until it claims new flows. A node that sees itself
 * reported dead in a peer's view bumps its incarnation (refutation).
 * Suspect nodes keep their flows (packets still go to them) but take no new
 * ones; draining nodes likewise take no new flows.
 *
 * Time is passed in (milliseconds, any monotonic origin); nothing here reads
 * a clock, so the state machine is tested by feeding times.
 *
 * Threading: a MembershipTable belongs to the control lcore; the eligible
 * set it computes is published to workers by the caller (ClusterView).
 * Errors: the constructor throws std::invalid_argument for a bad node list
 * (start-up); everything else is noexcept.
 */
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "flowhome/gossip_wire.hpp"
#include "flowhome/types.hpp"

namespace flowhome {

/**
 * The node that takes over a flow of @p dead_owner: rendezvous hashing over
 * @p eligible without @p dead_owner (even if it is listed: a restarted node
 * does not get its previous incarnation's flows back). Independent of the
 * order of @p eligible; equal to rendezvous_pick over the same set minus
 * the dead owner; kInvalidNode when no candidate remains.
 */
NodeId failover_owner(uint32_t flow_hash, NodeId dead_owner,
                      std::span<const NodeId> eligible) noexcept;

struct MembershipParams {
    NodeId self = kInvalidNode;
    uint32_t self_incarnation = 1;
    uint64_t suspect_after_ms = 1500; /**< silence before a node is suspect */
    uint64_t dead_after_ms = 5000;    /**< silence before it is dead; > suspect_after_ms */
};

struct Member {
    NodeId id = kInvalidNode;
    NodeState state = NodeState::suspect;
    bool draining = false;
    bool heard = false;       /**< a heartbeat was ever received (any incarnation) */
    uint32_t incarnation = 0; /**< 0 until heard */
    uint32_t counter = 0;     /**< last heartbeat counter of this incarnation */
    uint64_t last_heard_ms = 0;
};

enum class HeartbeatOutcome : uint8_t {
    refreshed,         /**< known incarnation, newer counter: liveness renewed */
    joined,            /**< first heartbeat ever from this node, or after a death */
    restarted,         /**< newer incarnation of a live node: fail its old flows over */
    left,              /**< the node announced state dead (graceful shutdown): fail over */
    stale_counter,     /**< counter not newer than the last (reordered heartbeat) */
    stale_incarnation, /**< an older incarnation */
    dead_incarnation,  /**< this incarnation was declared dead; it must restart */
    unknown_node,      /**< not a configured peer */
    self,              /**< our own heartbeat (looped back) */
};

struct HeartbeatResult {
    HeartbeatOutcome outcome = HeartbeatOutcome::refreshed;
    bool changed = false; /**< state, draining or incarnation changed: eligible set may differ */
    /** The sender's view says we are dead at our incarnation or a later one:
     *  call bump_self_incarnation() with refuted_incarnation. */
    bool refute = false;
    /** The latest incarnation of ours the view says is dead (a view may
     *  name us more than once). */
    uint32_t refuted_incarnation = 0;
};

/** A state change made by tick(). */
struct MemberChange {
    NodeId node = kInvalidNode;
    NodeState from = NodeState::alive;
    NodeState to = NodeState::alive;
};

class MembershipTable {
public:
    /**
     * @p peers: every other node of the cluster (self may be listed; it is
     * skipped). Peers start suspect, as if last heard at @p now_ms: they
     * take no new flows until heard, and are declared dead after
     * dead_after_ms of silence. Throws std::invalid_argument for an invalid
     * or repeated id, or timeouts out of order.
     */
    MembershipTable(const MembershipParams &params, std::span<const NodeId> peers, uint64_t now_ms);

    /** Applies a heartbeat received (and verified) at @p now_ms. */
    HeartbeatResult on_heartbeat(const HeartbeatRecord &hb, uint64_t now_ms) noexcept;

    /**
     * Moves silent nodes to suspect, then dead; calls @p on_change(const
     * MemberChange &) for each change. Returns how many changed. A node
     * silent past dead_after_ms goes straight to dead.
     */
    template <typename Fn> unsigned tick(uint64_t now_ms, Fn &&on_change) noexcept;
    unsigned tick(uint64_t now_ms) noexcept
    {
        return tick(now_ms, [](const MemberChange &) {});
    }

    /** Nodes that may take new flows (alive, not draining; self included), sorted. */
    std::span<const NodeId> eligible() const noexcept { return eligible_; }

    /**
     * Where packets of a flow recorded as owned by @p owner go now: the
     * owner unless it is a member declared dead, then failover_owner() over
     * the eligible set (kInvalidNode when nobody is eligible). A node that
     * is not a member keeps its flows, as the workers see it: they have no
     * template to reach it and drop their packets (owner_unreachable).
     */
    NodeId effective_owner(NodeId owner, uint32_t flow_hash) const noexcept;

    /** The member @p id, or nullptr (self included). */
    const Member *find(NodeId id) const noexcept;
    std::span<const Member> members() const noexcept { return members_; }

    void set_self_draining(bool draining) noexcept;
    /** This node is stopping: its heartbeats say dead from now on ("left"). */
    void set_self_leaving() noexcept { leaving_ = true; }
    /** Our next heartbeat (the counter advances). */
    HeartbeatRecord next_self_heartbeat() noexcept;
    /** Our whole view of the peers, from which the heartbeat's entries are picked; returns how
     *  many were written. */
    size_t view(std::span<MemberView> out) const noexcept;
    /** Takes a new incarnation, greater than the current one and than @p at_least. */
    uint32_t bump_self_incarnation(uint32_t at_least = 0) noexcept;
    uint32_t self_incarnation() const noexcept { return self().incarnation; }

    /** Bumped on every change of any member; lets the caller republish lazily. */
    uint64_t generation() const noexcept { return generation_; }

private:
    Member *find_mut(NodeId id) noexcept;
    const Member &self() const noexcept { return members_[self_index_]; }
    void rebuild_eligible() noexcept;
    bool expire(Member &m, uint64_t now_ms, MemberChange &change) const noexcept;

    MembershipParams p_;
    std::vector<Member> members_;  /**< sorted by id, self included */
    std::vector<NodeId> eligible_; /**< capacity reserved at construction */
    size_t self_index_ = 0;
    uint64_t generation_ = 0;
    bool leaving_ = false;
};

/**
 * The incarnation for a node starting now: wall-clock seconds, read once the
 * second in which it is called has passed. The node's previous life took its
 * incarnation no later than the second it ended in, so a crash and a restart
 * within one second (systemd's default delay is 100 ms) still give a larger
 * one, as receivers require (a same incarnation would have its sequence
 * numbers dropped as replays, and its restart never seen). Blocks for up to
 * a second: start-up only.
 */
uint32_t new_incarnation();

template <typename Fn> unsigned MembershipTable::tick(uint64_t now_ms, Fn &&on_change) noexcept
{
    unsigned changes = 0;
    for (Member &m : members_) {
        MemberChange change;
        if (expire(m, now_ms, change)) {
            ++changes;
            on_change(static_cast<const MemberChange &>(change));
        }
    }
    if (changes != 0) {
        ++generation_;
        rebuild_eligible();
    }
    return changes;
}

} // namespace flowhome
