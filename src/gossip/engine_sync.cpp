/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipEngine failover and sync: the background rewrite of a dead or
 * restarted node's flows to their failover owners, the start-up full sync,
 * digest-triggered repairs, answering sync requests in frame-sized chunks,
 * and refutation. Control lcore only.
 */
#include "engine_impl.hpp"

namespace flowhome {

/* ---- failover ---- */

void GossipEngine::Impl::start_failover(NodeId node) noexcept
{
    if (node == kInvalidNode || node > kMaxNodeId)
        return;
    /* Records applied from now on carry the new life tag and stay; only the
     * earlier life's records move. The workers learn the tag first: from
     * now on they send the earlier life's flows to their failover owners,
     * before the rewrite below reaches them. */
    ++life[node];
    restarted_us[node] = 0; /* on_restart() sets it after, for a restart */
    if (p.life_out != nullptr)
        p.life_out[node].store(life[node], std::memory_order_release);
    failing[node] = 1;
    ++failover_requests;
    if (!failover_running) {
        failover_running = true;
        failover_cursor = 0;
        failover_pass_start = failover_requests;
        failover_pass_moved = 0;
        next_failover_us = 0;
    }
}

bool GossipEngine::Impl::earlier_life(const OwnerRecord &r) const noexcept
{
    return r.owner != kInvalidNode && r.owner <= kMaxNodeId && r.reserved != life[r.owner] &&
           (r.flags & gossip_flag::released) == 0;
}

bool GossipEngine::Impl::owner_gone(const OwnerRecord &r) const noexcept
{
    if (earlier_life(r))
        return true;
    if (r.owner == p.self || (r.flags & gossip_flag::released) != 0)
        return false;
    const Member *m = members.find(r.owner);
    return m != nullptr && m->state == NodeState::dead;
}

bool GossipEngine::Impl::fail_over(const FlowKey &key, const OwnerRecord &old,
                                   uint64_t now_us) noexcept
{
    const NodeId to = failover_owner(flow_hash(key), old.owner, members.eligible());
    if (to == kInvalidNode)
        return false; /* nobody eligible: workers fall back to their miss policy */
    const auto version = static_cast<uint16_t>(old.version + 1);
    OwnerRecord r{to, version, epoch_of(now_us), 0, life[to]};
    r.flags = to == p.self ? pin_kept(old, r) : gossip_flag::guessed | gossip_flag::moved;
    if (const UpsertResult res = put(key, old, r);
        res == UpsertResult::full || res == UpsertResult::error)
        return false;
    stats.failovers.add();
    /* Every node writes the same {owner, version + 1}; the new owner also
     * claims it, so nodes that missed the death (or joined later) learn
     * it and the claim beats the dead owner's under the conflict rule. */
    if (to == p.self) {
        queue_flow(RecordType::claim, FlowEntry{key, p.self, version}, now_us);
        stats.reclaimed.add();
    }
    return true;
}

void GossipEngine::Impl::on_member_change(const MemberChange &c, uint64_t) noexcept
{
    /* Workers already route the dead node's flows to their failover owner
     * through the published node states; the rewrite makes it permanent. */
    if (c.to == NodeState::dead) {
        stats.peers_timed_out.add();
        start_failover(c.node);
    }
}

void GossipEngine::Impl::failover_slice(uint64_t now_us) noexcept
{
    scratch.clear();
    auto *out = &scratch;
    const Impl *self_impl = this;
    store.scan(failover_cursor, kSliceBudget, [out, self_impl](const FlowKey &k, OwnerRecord r) {
        if (self_impl->earlier_life(r) && self_impl->failing[r.owner])
            out->emplace_back(k, r);
    });
    for (const auto &[key, old] : scratch)
        failover_pass_moved += fail_over(key, old, now_us) ? 1 : 0;
    if (failover_cursor != 0)
        return;
    if (failover_requests != failover_pass_start || failover_pass_moved != 0) {
        /* A node died during the pass: the part already walked was not
         * checked for it. Or the pass moved flows: the walk follows table
         * positions, and an insert's cuckoo moves (or, with extendable
         * buckets, a removal) between two slices can carry an entry from
         * the part not yet walked into the part walked, where this pass
         * never saw it. Walk again, until a pass finds nothing to move. */
        failover_pass_start = failover_requests;
        failover_pass_moved = 0;
        return;
    }
    failover_running = false;
    for (uint8_t &f : failing)
        f = 0;
}

void GossipEngine::Impl::refute(uint32_t seen_incarnation, uint64_t now_us) noexcept
{
    /* A peer declared this incarnation dead and failed our flows over; we
     * come back as a new incarnation that owns nothing it had. */
    send_frame();
    /* A new life numbers its frames from 1, as after a restart: receivers
     * take a first frame numbered above that for the loss of the ones
     * before it (track_sequence()). The resend ring tells the lives apart. */
    sequence = 0;
    bare_sent = 0;
    members.bump_self_incarnation(seen_incarnation);
    start_failover(p.self);
    send_heartbeat(now_us);
}

/* ---- sync ---- */

void GossipEngine::Impl::send_sync_request(SyncSession &s, uint64_t now_us) noexcept
{
    s.request_id = next_request_id++;
    s.sent_us = now_us;
    ++s.attempts;
    const SyncRequestRecord r{s.target, s.owner_filter, s.request_id, s.cursor};
    append(now_us, [&](FrameWriter &w) { return w.add_sync_request(r); });
    send_frame(); /* a pull is latency-bound: do not wait for the batch */
    stats.sync_requests_out.add();
}

bool GossipEngine::Impl::can_sync_from(const Member &m) const noexcept
{
    return m.id != p.self && m.heard && m.state == NodeState::alive;
}

bool GossipEngine::Impl::another_live_peer(NodeId than) const noexcept
{
    for (const Member &m : members.members())
        if (m.id != than && can_sync_from(m))
            return true;
    return false;
}

template <typename Wanted>
NodeId GossipEngine::Impl::next_sync_peer(NodeId last, Wanted &&wanted) const noexcept
{
    NodeId first = kInvalidNode;
    for (const Member &m : members.members()) {
        if (!can_sync_from(m) || !wanted(m.id))
            continue;
        if (m.id > last)
            return m.id;
        if (first == kInvalidNode)
            first = m.id;
    }
    return first;
}

bool GossipEngine::Impl::start_full_sync(uint64_t now_us) noexcept
{
    const NodeId target = next_sync_peer(last_sync_target, [](NodeId) { return true; });
    if (target == kInvalidNode)
        return false;
    full = SyncSession{true, target, kInvalidNode, 0, 0, 0, 0};
    last_sync_target = target;
    send_sync_request(full, now_us);
    return true;
}

void GossipEngine::Impl::sync_tick(uint64_t now_us) noexcept
{
    const uint64_t timeout = uint64_t{p.sync_timeout_ms} * 1000;
    if (repair.active && now_us - repair.sent_us >= timeout)
        repair.active = false; /* the next mismatching digest asks again */
    if (synced) {
        if (heir_pull_pending)
            heir_pull_tick(now_us);
        return;
    }
    if (full.active) {
        if (now_us - full.sent_us < timeout)
            return;
        /* A request or its answer was lost: ask the same peer for the same
         * chunk again while it is alive. One that answers none of
         * kSyncAttempts is replaced by another live peer, and since cursors
         * are the responder's, the walk restarts from 0 there; with no
         * other to ask, it goes on asking, from where its walk got to. */
        const Member *m = members.find(full.target);
        if (m != nullptr && m->state == NodeState::alive &&
            (full.attempts < kSyncAttempts || !another_live_peer(full.target))) {
            if (full.attempts >= kSyncAttempts)
                full.attempts = 0;
            send_sync_request(full, now_us);
            return;
        }
        full.active = false;
    }
    if (start_full_sync(now_us))
        return;
    /* Nobody to ask: done once every peer is known dead (peers we never
     * heard are merely suspect until dead_after_ms). */
    for (const Member &m : members.members())
        if (m.id != p.self && m.state != NodeState::dead)
            return;
    synced = true;
}

/*
 * The peers learnt of our start at different moments. One that walked a
 * dead node's flows before may have moved those it gave our earlier life
 * on to their next heir (a guess, which answered our sync if we synced
 * from it); one that walked after holds the moves to our new life, which
 * nobody but us will claim (apply_sync_entry()). So once a start-up sync
 * that brought a failover's move is done (without one, no walk was under
 * way around our start), every other peer is asked in turn for the flows
 * that name us, as soon as we have heard it: each answer visits up to
 * kSyncAnswerBudget entries of its table and carries only those. Done
 * when every peer has answered, is dead, or was given up: alive, it
 * answered none of kSyncAttempts requests for a chunk (its answers lost
 * where its heartbeats are not: a path that drops large frames). One that
 * went suspect meanwhile is asked again from the start once it is alive.
 */
void GossipEngine::Impl::heir_pull_tick(uint64_t now_us) noexcept
{
    if (heir.active) {
        if (now_us - heir.sent_us < uint64_t{p.sync_timeout_ms} * 1000)
            return;
        const Member *m = members.find(heir.target);
        const bool alive = m != nullptr && m->state == NodeState::alive;
        if (alive && heir.attempts < kSyncAttempts) {
            send_sync_request(heir, now_us);
            return;
        }
        heir.active = false;
        if (alive)
            heir_pulled[heir.target] = 1; /* given up */
    }
    heir_pull_pending = false;
    for (const Member &m : members.members())
        if (m.id != p.self && heir_pulled[m.id] == 0 && m.state != NodeState::dead)
            heir_pull_pending = true; /* not heard yet, or silent: later */
    const NodeId next =
        next_sync_peer(heir.target, [this](NodeId id) { return heir_pulled[id] == 0; });
    if (next == kInvalidNode)
        return;
    heir = SyncSession{true, next, p.self, 0, 0, 0, 0};
    send_sync_request(heir, now_us);
}

void GossipEngine::Impl::request_repair(NodeId owner, uint64_t now_us) noexcept
{
    if (repair.active || owner == p.self)
        return;
    const uint64_t min_gap = uint64_t{p.reannounce_interval_ms} * 1000;
    if (last_repair_us[owner] != 0 && now_us - last_repair_us[owner] < min_gap)
        return;
    const Member *m = members.find(owner);
    if (m == nullptr || m->state != NodeState::alive)
        return;
    last_repair_us[owner] = now_us;
    mismatch_streak[owner] = 0;
    repair = SyncSession{true, owner, owner, 0, 0, 0, 0};
    send_sync_request(repair, now_us);
}

void GossipEngine::Impl::answer_sync(const SyncRequestRecord &r, NodeId requester,
                                     uint64_t now_us) noexcept
{
    stats.sync_requests_in.add();
    /* The response is a frame of its own: flush what is batched first. */
    send_frame();
    begin_frame();
    if (!writer.begin_sync_response(requester, r.request_id)) {
        frame_open = false;
        return;
    }
    /* The cursor is the store's scan position (opaque to the requester, and
     * untrusted: the stores treat a position past the end as the end). Each
     * scan step visits only as many entries as surely fit (IPv6 size), so
     * no visited entry is ever left out of the chunk. */
    uint64_t cursor = r.cursor;
    uint32_t visited = 0;
    FrameWriter *w = &writer;
    const NodeId filter = r.owner_filter;
    const uint16_t epoch = epoch_of(now_us);
    for (;;) {
        const auto budget = static_cast<uint32_t>(writer.room() / gossip_flow::size_v6);
        if (budget == 0)
            break;
        const Impl *self_impl = this;
        const uint32_t n = store.scan(
            cursor, budget, [w, filter, epoch, self_impl](const FlowKey &k, OwnerRecord o) {
                const bool released = (o.flags & gossip_flag::released) != 0;
                /* Tombstones too (every minor we accept reads them): without
                 * them a node that restarted claims a reused 5-tuple at
                 * version 1, below the release the others keep. With their
                 * age: stamped anew, the requester's copy would outlive the
                 * others. */
                if (filter != kInvalidNode && o.owner != filter)
                    return;
                /* A move to an earlier life of its heir is no move to the
                 * heir's current life: it is this node's failover walk's
                 * to move on (the requester may be that heir, restarted,
                 * and must not take it). */
                const bool moved =
                    (o.flags & gossip_flag::moved) != 0 && !self_impl->earlier_life(o);
                w->add_sync_entry(FlowEntry{k, o.owner, o.version, released,
                                            static_cast<uint16_t>(released ? epoch - o.epoch : 0),
                                            moved});
            });
        visited += n;
        if (cursor == 0 || n == 0 || visited >= kSyncAnswerBudget)
            break;
    }
    writer.end_sync_response(cursor);
    batch_deadline_us = now_us;
    send_frame();
    stats.sync_responses_out.add();
}

void GossipEngine::Impl::on_sync_response(const SyncResponseRecord &r, NodeId responder,
                                          uint64_t now_us) noexcept
{
    SyncSession *s = nullptr;
    if (full.active && r.request_id == full.request_id)
        s = &full;
    else if (repair.active && r.request_id == repair.request_id)
        s = &repair;
    else if (heir.active && r.request_id == heir.request_id)
        s = &heir;
    if (s == nullptr) {
        stats.records_ignored.add(); /* late or duplicated: a newer request superseded it */
        return;
    }
    FlowEntryCursor entries = r.entries;
    FlowEntry e;
    while (entries.next(e)) {
        full_brought_moves |= s == &full && e.moved;
        apply_sync_entry(e, responder, now_us);
    }
    if (r.next_cursor == 0) {
        s->active = false;
        stats.syncs_completed.add();
        if (s == &full) {
            synced = true;
            heir_pull_pending = full_brought_moves;
        } else if (s == &heir) {
            heir_pulled[heir.target] = 1;
        }
        if (heir_pull_pending)
            heir_pull_tick(now_us); /* the next peer at once */
        return;
    }
    s->cursor = r.next_cursor;
    s->attempts = 0;
    send_sync_request(*s, now_us);
}

} // namespace flowhome
