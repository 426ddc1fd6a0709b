/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Membership state machine and failover placement (docs/gossip-protocol.md,
 * "Membership and failover"). Control lcore only; time is a parameter.
 */
#include <algorithm>
#include <stdexcept>
#include <string>

#include <time.h>

#include "flowhome/gossip_membership.hpp"
#include "flowhome/placement.hpp"

namespace flowhome {

uint32_t new_incarnation()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    const time_t called = ts.tv_sec;
    while (ts.tv_sec <= called) {
        /* To the next second: a whole one when tv_nsec is 0 (nanosleep
         * refuses 10^9 ns, and the loop would spin instead). */
        const long ns = 1'000'000'000L - ts.tv_nsec;
        const timespec rest{ns / 1'000'000'000L, ns % 1'000'000'000L};
        nanosleep(&rest, nullptr);
        clock_gettime(CLOCK_REALTIME, &ts);
    }
    return static_cast<uint32_t>(ts.tv_sec);
}

NodeId failover_owner(uint32_t flow_hash, NodeId dead_owner,
                      std::span<const NodeId> eligible) noexcept
{
    /* rendezvous_pick over eligible \ {dead_owner}, without building the
     * set: same score, same tie rule (lower id), so the answer is the one
     * every node computes whatever order its list is in. */
    NodeId best = kInvalidNode;
    uint64_t best_score = 0;
    for (const NodeId n : eligible) {
        if (n == dead_owner || n == kInvalidNode)
            continue;
        const uint64_t s = rendezvous_score(flow_hash, n);
        if (best == kInvalidNode || s > best_score || (s == best_score && n < best)) {
            best = n;
            best_score = s;
        }
    }
    return best;
}

MembershipTable::MembershipTable(const MembershipParams &params, std::span<const NodeId> peers,
                                 uint64_t now_ms)
    : p_(params)
{
    if (p_.self == kInvalidNode || p_.self > kMaxNodeId)
        throw std::invalid_argument("membership: self node id must be 1.." +
                                    std::to_string(kMaxNodeId));
    if (p_.suspect_after_ms == 0 || p_.dead_after_ms <= p_.suspect_after_ms)
        throw std::invalid_argument("membership: expected 0 < suspect_after_ms < dead_after_ms");
    Member self;
    self.id = p_.self;
    self.state = NodeState::alive;
    self.heard = true;
    self.incarnation = p_.self_incarnation;
    self.last_heard_ms = now_ms;
    members_.push_back(self);
    for (const NodeId id : peers) {
        if (id == kInvalidNode || id > kMaxNodeId)
            throw std::invalid_argument("membership: peer node id " + std::to_string(id) +
                                        " is outside 1.." + std::to_string(kMaxNodeId));
        if (id == p_.self)
            continue;
        Member m;
        m.id = id;
        m.last_heard_ms = now_ms;
        members_.push_back(m);
    }
    std::sort(members_.begin(), members_.end(),
              [](const Member &a, const Member &b) { return a.id < b.id; });
    for (size_t i = 0; i + 1 < members_.size(); ++i)
        if (members_[i].id == members_[i + 1].id)
            throw std::invalid_argument("membership: peer node id " +
                                        std::to_string(members_[i].id) + " is listed twice");
    for (size_t i = 0; i < members_.size(); ++i)
        if (members_[i].id == p_.self)
            self_index_ = i;
    eligible_.reserve(members_.size());
    rebuild_eligible();
}

const Member *MembershipTable::find(NodeId id) const noexcept
{
    const auto it = std::lower_bound(members_.begin(), members_.end(), id,
                                     [](const Member &m, NodeId v) { return m.id < v; });
    return it != members_.end() && it->id == id ? &*it : nullptr;
}

Member *MembershipTable::find_mut(NodeId id) noexcept
{
    return const_cast<Member *>(static_cast<const MembershipTable *>(this)->find(id));
}

void MembershipTable::rebuild_eligible() noexcept
{
    /* Capacity was reserved for every member: no allocation here. */
    eligible_.clear();
    for (const Member &m : members_)
        if (m.state == NodeState::alive && !m.draining)
            eligible_.push_back(m.id);
}

HeartbeatResult MembershipTable::on_heartbeat(const HeartbeatRecord &hb, uint64_t now_ms) noexcept
{
    HeartbeatResult r;
    if (hb.node == p_.self) {
        r.outcome = HeartbeatOutcome::self;
        return r;
    }
    Member *m = find_mut(hb.node);
    if (m == nullptr) {
        r.outcome = HeartbeatOutcome::unknown_node;
        return r;
    }
    if (hb.incarnation < m->incarnation) {
        r.outcome = HeartbeatOutcome::stale_incarnation;
        return r;
    }
    /* SWIM-style refutation: a peer that declared us dead at our current
     * incarnation has failed our flows over; we can only come back as a
     * new incarnation. Dead at a later incarnation than ours: we restarted
     * with a smaller one (the clock stepped back, or refutations had
     * taken it past the clock), and peers drop our frames as stale until
     * we take one past theirs. Suspicion needs no refutation: our
     * heartbeats reach every peer directly and clear it. */
    MemberViewCursor views = hb.views;
    MemberView v;
    while (views.next(v))
        if (v.node == p_.self && v.state == NodeState::dead &&
            v.incarnation >= self_incarnation()) {
            r.refute = true;
            r.refuted_incarnation = std::max(r.refuted_incarnation, v.incarnation);
        }

    const NodeState before = m->state;
    const bool draining_before = m->draining;
    if (!m->heard || hb.incarnation > m->incarnation) {
        /* A node that was dead (or never heard) had its flows failed over
         * already: it joins. A live node with a new incarnation restarted
         * without being declared dead: its old flows are orphans now. */
        r.outcome = !m->heard || m->state == NodeState::dead ? HeartbeatOutcome::joined
                                                             : HeartbeatOutcome::restarted;
        m->heard = true;
        m->incarnation = hb.incarnation;
        r.changed = true;
    } else if (m->state == NodeState::dead) {
        r.outcome = HeartbeatOutcome::dead_incarnation;
        return r;
    } else if (static_cast<int32_t>(hb.counter - m->counter) <= 0) {
        /* Serial order (RFC 1982): at one heartbeat a millisecond the
         * counter wraps after 49 days, and the wrap must not look stale. */
        r.outcome = HeartbeatOutcome::stale_counter;
        return r;
    } else {
        r.outcome = HeartbeatOutcome::refreshed;
    }
    m->counter = hb.counter;
    m->last_heard_ms = now_ms;
    m->draining = hb.draining;
    /* A node announcing its own death is leaving (graceful stop); any other
     * self-reported state means it is running. */
    if (hb.state == NodeState::dead) {
        m->state = NodeState::dead;
        r.outcome = HeartbeatOutcome::left;
    } else {
        m->state = NodeState::alive;
    }
    r.changed = r.changed || m->state != before || m->draining != draining_before;
    if (r.changed) {
        ++generation_;
        rebuild_eligible();
    }
    return r;
}

bool MembershipTable::expire(Member &m, uint64_t now_ms, MemberChange &change) const noexcept
{
    if (m.id == p_.self || m.state == NodeState::dead)
        return false;
    /* A clock that went backwards counts as no time elapsed. */
    const uint64_t silent = now_ms > m.last_heard_ms ? now_ms - m.last_heard_ms : 0;
    NodeState to = m.state;
    if (silent >= p_.dead_after_ms)
        to = NodeState::dead;
    else if (silent >= p_.suspect_after_ms)
        to = NodeState::suspect;
    if (to == m.state)
        return false;
    change.node = m.id;
    change.from = m.state;
    change.to = to;
    m.state = to;
    return true;
}

NodeId MembershipTable::effective_owner(NodeId owner, uint32_t flow_hash) const noexcept
{
    const Member *m = find(owner);
    if (m == nullptr || m->state != NodeState::dead)
        return owner;
    return failover_owner(flow_hash, owner, eligible_);
}

void MembershipTable::set_self_draining(bool draining) noexcept
{
    Member &s = members_[self_index_];
    if (s.draining == draining)
        return;
    s.draining = draining;
    ++generation_;
    rebuild_eligible();
}

HeartbeatRecord MembershipTable::next_self_heartbeat() noexcept
{
    Member &s = members_[self_index_];
    ++s.counter;
    HeartbeatRecord hb;
    hb.node = s.id;
    hb.state = leaving_ ? NodeState::dead : NodeState::alive;
    hb.draining = s.draining;
    hb.incarnation = s.incarnation;
    hb.counter = s.counter;
    return hb;
}

size_t MembershipTable::view(std::span<MemberView> out) const noexcept
{
    size_t n = 0;
    for (const Member &m : members_) {
        if (m.id == p_.self)
            continue;
        if (n == out.size())
            break;
        out[n++] = MemberView{m.id, m.state, m.draining, m.incarnation};
    }
    return n;
}

uint32_t MembershipTable::bump_self_incarnation(uint32_t at_least) noexcept
{
    Member &s = members_[self_index_];
    s.incarnation = std::max(s.incarnation, at_least) + 1;
    s.counter = 0;
    ++generation_;
    return s.incarnation;
}

} // namespace flowhome
