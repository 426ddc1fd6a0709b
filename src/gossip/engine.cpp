/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipEngine core: construction, the store writes (with the per-owner
 * digests kept alongside), applying received statements under the conflict
 * rule, and the receive pipeline. Control lcore only.
 */
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine_impl.hpp"

namespace flowhome {

namespace {

MembershipParams membership_params(const GossipParams &p)
{
    MembershipParams m;
    m.self = p.self;
    m.self_incarnation = p.incarnation;
    m.suspect_after_ms = p.suspect_after_ms;
    m.dead_after_ms = p.dead_after_ms;
    return m;
}

const GossipParams &checked(const GossipParams &p, const KeyRing &keys)
{
    if (p.max_frame < kGossipMinFrame || p.max_frame > kGossipMaxFrame)
        throw std::invalid_argument("gossip: max_frame must be " + std::to_string(kGossipMinFrame) +
                                    ".." + std::to_string(kGossipMaxFrame) + ", got " +
                                    std::to_string(p.max_frame));
    if (p.batch_interval_us == 0 || p.heartbeat_interval_ms == 0 || p.reannounce_interval_ms == 0 ||
        p.sync_timeout_ms == 0)
        throw std::invalid_argument("gossip: intervals must be positive");
    if (p.heartbeat_interval_ms >= p.suspect_after_ms)
        throw std::invalid_argument("gossip: heartbeat_interval_ms must be below suspect_after_ms");
    if (keys.send_key_id() == 0)
        throw std::invalid_argument("gossip: the key ring holds no key");
    return p;
}

/*
 * Where a life numbers its sync requests from: a point of the 32-bit circle
 * drawn from its incarnation. A response recorded in an earlier life and
 * replayed to this one (the replay window of a node that has just started
 * takes any sender's first frame) answers no request of this life's;
 * counting from 1 in every life, it would answer the first.
 */
uint32_t first_request_id(uint32_t incarnation) noexcept
{
    uint32_t x = incarnation * 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85EBCA77u;
    return x ^ (x >> 13);
}

} // namespace

GossipEngine::Impl::Impl(const GossipParams &params, const KeyRing &keys, FlowStore &s,
                         SendFn send_fn, uint64_t now_us)
    : p(checked(params, keys)), store(s), send(std::move(send_fn)), auth(params.sha_extensions),
      verifier(FrameVerifier::Params{params.cluster_id, params.self}, auth),
      members(membership_params(params), params.peers, now_us / 1000), tx_buf(params.max_frame),
      writer(tx_buf, params.max_frame)
{
    if (!send)
        throw std::invalid_argument("gossip: no send function");
    auth.set_keys(keys);
    views.resize(members.members().size());
    beat_views.reserve(views.size());
    /* Nodes started together do not take turns over the same entries. */
    view_offset = views.empty() ? 0 : spread_us(p.self, 1, 0, views.size());
    window_at.reserve(kViewWindow);
    const size_t nodes = size_t{kMaxNodeId} + 1;
    touched.resize(nodes, 0);
    mismatch_streak.resize(nodes, 0);
    last_repair_us.resize(nodes, 0);
    life.resize(nodes, 0);
    failing.resize(nodes, 0);
    restart_inc.resize(nodes, 0);
    restarted_us.resize(nodes, 0);
    heard_live.resize(nodes, 0);
    heir_pulled.resize(nodes, 0);
    view_marks.resize(nodes);
    view_repeats.resize(nodes, 0);
    scratch.reserve(kSliceBudget);
    windows.resize(nodes);
    gapped.reserve(nodes);
    sent_ring.resize(kResendRing);
    const size_t max_flows = p.max_frame / (kGossipTlvLen + gossip_flow::size_v4) + 1;
    open_copies.resize(max_flows);
    for (SentFrameCopy &f : sent_ring) {
        f.bytes.resize(p.max_frame);
        f.copies.resize(max_flows);
    }
    resend_scratch.reserve(size_t{64} * max_flows);
    stats.repair_retry_us.set(retry_interval_us(1));
    members.set_self_draining(p.draining);
    started_us = now_us;
    next_request_id = first_request_id(p.incarnation);
    next_heartbeat_us = now_us; /* announce ourselves at the first tick */
    next_pass_us = now_us + uint64_t{p.reannounce_interval_ms} * 1000;
    /* Alone: nothing to pull. */
    synced = p.peers.empty() || (p.peers.size() == 1 && p.peers.front() == p.self);
}

bool GossipEngine::Impl::is_live_own(const OwnerRecord &r) const noexcept
{
    return r.owner == p.self && (r.flags & gossip_flag::released) == 0;
}

/* A record leaving the store, or replaced: out of its owner's digest, if a
 * live claim is counted there. */
void GossipEngine::Impl::forget_in_digest(const FlowKey &key, const OwnerRecord &r) noexcept
{
    if ((r.flags & gossip_flag::released) == 0 && r.owner <= kMaxNodeId) {
        digests.remove(r.owner, key, r.version);
        touched[r.owner] = pass_id;
    }
}

/* Every write the engine makes goes through here, so the per-owner digests
 * (count and XOR of digest_term over live claims) stay exact for what the
 * engine did; removals made behind its back (ageing) are caught by the
 * re-announce pass, which recomputes them (engine_tx.cpp). */
UpsertResult GossipEngine::Impl::put(const FlowKey &key, const std::optional<OwnerRecord> &old,
                                     OwnerRecord r) noexcept
{
    const UpsertResult res = store.upsert(key, r, old ? Presence::present : Presence::absent);
    if (res == UpsertResult::full || res == UpsertResult::error) {
        stats.store_full.add();
        return res;
    }
    if (old)
        forget_in_digest(key, *old);
    if ((r.flags & gossip_flag::released) == 0) {
        digests.add(r.owner, key, r.version);
        touched[r.owner] = pass_id;
    }
    return res;
}

void GossipEngine::Impl::apply_remote(const Claim &c, Via via, uint64_t now_us,
                                      uint16_t age_s) noexcept
{
    const bool from_owner = via == Via::owner;
    const uint16_t epoch = epoch_of(now_us);
    const std::optional<OwnerRecord> cur = store.lookup(c.key);
    bool yielded = false; /* a guess gives way (guess_yields()) */
    if (cur) {
        const Claim kept = claim_of_record(c.key, *cur);
        if (kept == c && !(from_owner && earlier_life(*cur))) {
            /* A re-announcement: renew the epoch so ageing keeps the record
             * while its owner still announces it. From the owner itself, it
             * confirms a failover guess. */
            OwnerRecord r = *cur;
            if (c.kind == ClaimKind::claim)
                r.epoch = epoch;
            if (from_owner)
                r.flags =
                    static_cast<uint8_t>(r.flags & ~(gossip_flag::guessed | gossip_flag::moved));
            if (r.epoch != cur->epoch || r.flags != cur->flags)
                store.upsert(c.key, r, Presence::present);
            stats.claims_refreshed.add();
            return;
        }
        /* Equal, but from the owner itself in a later life than the record
         * (it restarted, and a client reused the 5-tuple): its new claim,
         * written below with the current life tag, not the old record kept
         * for the failover to move. A relayed copy (a sync entry) may be
         * the old life's, and stays a re-announcement. */
        if (!(kept == c) && !claim_supersedes(&kept, c, flow_hash(c.key))) {
            if (!(from_owner && guess_yields(*cur, c, now_us))) {
                stats.claims_ignored.add();
                return;
            }
            yielded = true;
        } else if (relayed(via) && c.kind == ClaimKind::claim && is_live_own(*cur) &&
                   cur->reserved == life[p.self] &&
                   c.version == static_cast<uint16_t>(cur->version + 1)) {
            /* A relayed claim one version above a live claim of this life
             * of ours has the shape of the responder's failover guess of
             * our earlier life's flow, which this life claimed again: it
             * does not take the flow from us. If its owner did claim it
             * above us, the owner's frames (or sync) say so. */
            stats.claims_ignored.add();
            return;
        }
        /* A release ends the connection its owner had, not ours. One that
         * would end a live flow of this life of ours names a version our
         * claim did not know of (we restarted since, or missed that node's
         * claim and release; or, synced, our own earlier life's release):
         * claim the flow again above it, so that every node keeps it ours,
         * rather than drop a connection we serve. (A record of our earlier
         * life is the failover's to move.) */
        if (c.kind == ClaimKind::release && is_live_own(*cur) && cur->reserved == life[p.self]) {
            if (claim_own(c.key, cur, static_cast<uint16_t>(c.version + 1),
                          static_cast<uint8_t>(cur->flags & owner_flag::pinned), now_us))
                stats.claims_raised.add();
            return;
        }
    }
    OwnerRecord r = to_owner_record(c, static_cast<uint16_t>(epoch - age_s));
    /* A statement about us that we did not make (our earlier life's
     * tombstone, synced) keeps a tag of no life that announces: the
     * re-announcement pass would otherwise send it as this life's
     * release, and bring it back where it had aged out. */
    r.reserved =
        c.owner == p.self && !from_owner ? static_cast<uint8_t>(life[p.self] - 1) : life[c.owner];
    /* Relayed, a claim may be the responder's failover guess: it is one
     * here too until its owner states it. */
    if (relayed(via) && c.kind == ClaimKind::claim)
        r.flags |= gossip_flag::guessed;
    if (via == Via::moved && c.kind == ClaimKind::claim)
        r.flags |= gossip_flag::moved;
    if (cur)
        r.flags |= pin_kept(*cur, r);
    if (const UpsertResult res = put(c.key, cur, r);
        res == UpsertResult::full || res == UpsertResult::error)
        return;
    if (yielded)
        stats.guesses_yielded.add();
    if (cur && is_live_own(*cur) && c.owner != p.self && c.kind == ClaimKind::claim)
        stats.conflicts_lost.add(); /* workers now redirect to the winner */
    if (c.kind == ClaimKind::claim)
        stats.claims_applied.add();
    else
        stats.releases_applied.add();
}

/*
 * A failover guess {heir, v + 1} stands for the record {owner, v} it
 * moved, until the heir claims the flow itself. If the owner restarted and
 * claimed the 5-tuple anew at v, the new claim is what the heir holds when
 * it heard the claim before its own failover walk reached the record: it
 * then keeps the claim, never claims the flow, and a guess that beat the
 * claim here would send the flow's packets to an heir that sends them on
 * to the owner (dropped at the hop limit). So a guess yields to a claim,
 * or the release that ends it, at v from a node that restarted moments
 * ago; where the heir did claim first, its claim (sent, and re-announced)
 * beats this one everywhere. A relayed claim is a guess too (the responder
 * may have guessed it). The record does not say whose flow it moved: a
 * restarted node's claim at v for another reason wins here until the
 * heir's (or the owner's) claim or re-announcement arrives.
 */
bool GossipEngine::Impl::guess_yields(const OwnerRecord &guess, const Claim &c,
                                      uint64_t now_us) const noexcept
{
    if ((guess.flags & gossip_flag::guessed) == 0 || c.owner == guess.owner ||
        c.owner > kMaxNodeId || c.version != static_cast<uint16_t>(guess.version - 1))
        return false;
    /* Its claim reaches us at the latest with its first re-announcement
     * pass (or the repair of a lost one), well within two intervals. A
     * node that has just started saw no restart: any peer may have been
     * one, and its relayed guesses may be of their flows. */
    const uint64_t window = 2 * uint64_t{p.reannounce_interval_ms} * 1000;
    const uint64_t since = restarted_us[c.owner];
    if (since != 0 && now_us - since <= window)
        return true;
    /* Not to a release there: a stale one (its owner missed a later claim)
     * would leave a tombstone that a packet of the live connection here
     * then claims above, for good. */
    return c.kind == ClaimKind::claim && now_us - started_us <= window;
}

void GossipEngine::Impl::apply_sync_entry(const FlowEntry &e, NodeId responder,
                                          uint64_t now_us) noexcept
{
    stats.sync_entries_in.add();
    /* A tombstone, ours included: a release of our earlier life is kept so
     * that a client reusing the 5-tuple is claimed above it (where this
     * life claimed the flow already, apply_remote() raises that claim). It
     * is stamped as old as the responder's copy. */
    if (e.owner != p.self || e.released) {
        const Via via = e.owner == responder ? Via::sync : (e.moved ? Via::moved : Via::relayed);
        apply_remote(
            Claim{e.key, e.owner, e.version, e.released ? ClaimKind::release : ClaimKind::claim},
            via, now_us, e.age_s);
        return;
    }
    const std::optional<OwnerRecord> cur = store.lookup(e.key);
    /*
     * A failover's move of a flow to this life of ours, made by the
     * responder (or by the node it heard it from) after it learnt of our
     * restart: we are the flow's heir by the rule every node applies, and
     * our store holds no record of the flow's earlier owner for our own
     * walk to move (our start-up sync came after the others' walks). Claim
     * it at the move's version, as the heir's walk would have, where that
     * claim beats what we hold (nothing, or a claim of ours below it: a
     * packet of the flow claimed it here first): the others' guesses turn
     * into our claim, and the flow's packets, which they send here, are
     * ours to answer. Also over another node's move one version above
     * ours: a peer that walked before it learnt of our start moved the
     * flow on from our earlier life (heir_pull_tick()), and answered our
     * sync with that move; its heir holds the move to us and will not
     * claim it. Where that heir did claim it, we have its claim (or a
     * relayed copy, not marked as a move) and claim nothing, or its claim,
     * re-announced, beats ours. Everywhere else, ours ends the move as a
     * claim one version below a guess does (guess_yields()).
     */
    if (e.moved) {
        const Claim ours{e.key, p.self, e.version, ClaimKind::claim};
        const Claim kept = cur ? claim_of_record(e.key, *cur) : Claim{};
        /* A failover's move, relayed: not a claim its owner made, which
         * reaches us relayed as a guess too, without the mark. */
        constexpr uint8_t kMove = gossip_flag::guessed | gossip_flag::moved;
        const bool moved_on = cur && (cur->flags & (kMove | gossip_flag::released)) == kMove &&
                              cur->owner != p.self &&
                              cur->version == static_cast<uint16_t>(e.version + 1);
        /* An operator's pin of ours stays (pin_kept(): ours is a live claim). */
        const uint8_t pin = cur ? static_cast<uint8_t>(cur->flags & owner_flag::pinned) : 0;
        if ((!cur || moved_on || claim_supersedes(&kept, ours, flow_hash(e.key))) &&
            claim_own(e.key, cur, e.version, pin, now_us)) {
            stats.moves_claimed.add();
            return;
        }
    }
    /* Anything else naming us that our store does not hold as ours: a
     * previous incarnation's flow the responder has not failed over yet,
     * or a relayed copy of one. Only we may claim for us, and we did not:
     * leave it out. Its failover owner's claim (or the responder's ageing)
     * settles it everywhere. */
    if (!cur || cur->owner != p.self)
        stats.orphans.add();
}

bool GossipEngine::Impl::names_this_life(const HeartbeatRecord &hb) const noexcept
{
    MemberViewCursor vc = hb.views;
    MemberView v;
    while (vc.next(v))
        if (v.node == p.self && v.incarnation >= p.incarnation)
            return true;
    return false;
}

void GossipEngine::Impl::on_restart(NodeId node, uint32_t incarnation, uint64_t now_us) noexcept
{
    if (restart_inc[node] >= incarnation)
        return;
    restart_inc[node] = incarnation;
    /* Not proved yet: the incarnation we knew may have been a replayed
     * frame's, and this one the sender's life we hold records of (pulled
     * from a peer). Failing those over would move a live node's flows. If
     * the sender did restart, the peers that had heard it fail its flows
     * over and their claims reach us. */
    if (heard_live[node] == 0) {
        stats.unproven_changes.add();
        return;
    }
    start_failover(node);
    restarted_us[node] = now_us != 0 ? now_us : 1;
}

void GossipEngine::Impl::on_heartbeat(const HeartbeatRecord &hb, uint64_t now_us) noexcept
{
    /*
     * A view that names this node at this life's incarnation was written
     * after the sender heard us, so the sender's frames are not replays of
     * its own earlier life's (a receiver that has just started accepts any
     * incarnation at first contact, and a replay would pass for the
     * sender's latest). Until then, a departure it reports is not believed:
     * if true, its silence gets it declared dead.
     */
    if (heard_live[hb.node] == 0 && names_this_life(hb))
        heard_live[hb.node] = 1;
    if (hb.state == NodeState::dead && heard_live[hb.node] == 0) {
        stats.unproven_changes.add();
        return;
    }
    const HeartbeatResult r = members.on_heartbeat(hb, now_us / 1000);
    switch (r.outcome) {
    case HeartbeatOutcome::restarted:
        /* Normally seen first as the frame's new incarnation; this covers a
         * sender whose frames we had not seen since it was forgotten. */
        on_restart(hb.node, hb.incarnation, now_us);
        break;
    case HeartbeatOutcome::left:
        stats.peers_left.add();
        start_failover(hb.node);
        break;
    case HeartbeatOutcome::dead_incarnation:
        keep_view_first(hb.node); /* it has not refuted: a partition, healed */
        break;
    case HeartbeatOutcome::stale_counter:
    case HeartbeatOutcome::stale_incarnation:
        stats.records_ignored.add();
        break;
    default:
        break;
    }
    if (r.refute)
        refute(r.refuted_incarnation, now_us);
}

void GossipEngine::Impl::on_digest(NodeId sender, const DigestRecord &d, uint64_t now_us) noexcept
{
    /* Only an owner's own digest is authoritative for its flows. */
    if (d.owner != sender) {
        stats.records_ignored.add();
        return;
    }
    const OwnerDigest &mine = digests.of(d.owner);
    if (mine.flow_count == d.flow_count && mine.digest == d.digest) {
        mismatch_streak[d.owner] = 0;
        return;
    }
    stats.digests_mismatched.add();
    if (mismatch_streak[d.owner] < 0xFF)
        ++mismatch_streak[d.owner];
    if (mismatch_streak[d.owner] >= kDigestMismatchStreak)
        request_repair(d.owner, now_us);
}

void GossipEngine::Impl::receive(std::span<const std::span<const uint8_t>> frames,
                                 uint64_t now_us) noexcept
{
    /* The tags of a burst are checked together (they share the
     * authenticator's lanes); the frames are then taken one by one, in
     * order, as if they had come alone: a tag depends on nothing an earlier
     * frame changes. */
    if (!frames.empty())
        stats.receive_bursts.add();
    for (size_t at = 0; at < frames.size(); at += checks.size()) {
        const auto these = frames.subspan(at, std::min(frames.size() - at, checks.size()));
        verifier.screen(these, checks);
        for (size_t i = 0; i < these.size(); ++i)
            receive_one(these[i], checks[i], now_us);
    }
}

void GossipEngine::Impl::receive_one(std::span<const uint8_t> frame, const FrameCheck &check,
                                     uint64_t now_us) noexcept
{
    const VerifyResult vr = verifier.accept(frame, check, reader);
    if (vr.status == GossipStatus::stale_incarnation)
        keep_view_first(vr.sender); /* it restarted below the life we know */
    if (vr.status != GossipStatus::ok)
        return; /* counted per reason by the verifier */
    const FrameHeader &h = reader.header();
    stats.frames_in.add();
    stats.bytes_in.add(frame.size());
    if (reader.unknown_records() != 0)
        stats.unknown_records.add(reader.unknown_records());
    if (members.find(h.sender) == nullptr)
        stats.unknown_senders.add(); /* its records apply all the same */
    track_sequence(h, now_us);
    /* A restarted sender: its previous incarnation's flows move to their
     * failover owners before this frame's claims (the new life's) apply. */
    if (vr.new_incarnation)
        on_restart(h.sender, h.incarnation, now_us);
    /* A node asks another for at most one sync chunk and one resend per
     * frame; more, each answered with frames of this node's, would let one
     * frame (of any holder of the key) make it send a hundred. */
    bool sync_asked = false;
    bool resend_asked = false;
    bool after_heartbeat = false; /* what follows it was answered at the heartbeat */
    while (reader.next(rec)) {
        stats.records_in.add();
        /* Nodes send claims and releases of their own flows only. */
        const Via via = rec.flow.owner == h.sender ? Via::owner : Via::relayed;
        switch (rec.type) {
        case RecordType::claim:
            apply_remote(Claim{rec.flow.key, rec.flow.owner, rec.flow.version, ClaimKind::claim},
                         via, now_us);
            break;
        case RecordType::release:
            apply_remote(Claim{rec.flow.key, rec.flow.owner, rec.flow.version, ClaimKind::release},
                         via, now_us);
            break;
        case RecordType::digest:
            on_digest(h.sender, rec.digest, now_us);
            break;
        case RecordType::heartbeat:
            on_heartbeat(rec.heartbeat, now_us);
            after_heartbeat = true;
            break;
        case RecordType::sync_request:
            if (rec.sync_request.target != p.self)
                break;
            if (std::exchange(sync_asked, true)) {
                stats.requests_refused.add();
                break;
            }
            answer_sync(rec.sync_request, h.sender, now_us);
            break;
        case RecordType::sync_response:
            if (rec.sync_response.requester == p.self)
                on_sync_response(rec.sync_response, h.sender, now_us);
            break;
        case RecordType::resend_request:
            if (rec.resend.node != p.self)
                on_peer_request(rec.resend, now_us);
            else if (std::exchange(resend_asked, true))
                stats.requests_refused.add();
            else
                on_resend_request(rec.resend, now_us);
            break;
        case RecordType::resent:
            on_resent(rec.resend, now_us, !after_heartbeat);
            break;
        }
    }
}

void GossipEngine::Impl::local_claim(const FlowKey &key, uint64_t now_us) noexcept
{
    const std::optional<OwnerRecord> cur = store.lookup(key);
    uint16_t version = 1;
    if (cur) {
        if ((cur->flags & gossip_flag::released) == 0)
            return; /* ours already, or another node's: the worker redirects */
        /* Reusing a released 5-tuple: the claim must beat the tombstone. */
        version = static_cast<uint16_t>(cur->version + 1);
    }
    claim_own(key, cur, version, 0, now_us);
}

bool GossipEngine::Impl::claim_own(const FlowKey &key, const std::optional<OwnerRecord> &cur,
                                   uint16_t version, uint8_t flags, uint64_t now_us) noexcept
{
    const OwnerRecord r{p.self, version, epoch_of(now_us), flags, life[p.self]};
    if (const UpsertResult res = put(key, cur, r);
        res == UpsertResult::full || res == UpsertResult::error)
        return false;
    queue_flow(RecordType::claim, FlowEntry{key, p.self, version}, now_us);
    return true;
}

bool GossipEngine::Impl::local_release(const FlowKey &key, uint64_t now_us) noexcept
{
    const std::optional<OwnerRecord> cur = store.lookup(key);
    if (!cur || !is_live_own(*cur))
        return false;
    OwnerRecord r = *cur;
    r.flags = static_cast<uint8_t>((r.flags & ~owner_flag::pinned) | gossip_flag::released);
    r.epoch = epoch_of(now_us);
    if (const UpsertResult res = put(key, cur, r);
        res == UpsertResult::full || res == UpsertResult::error)
        return false;
    queue_flow(RecordType::release, FlowEntry{key, p.self, r.version}, now_us);
    return true;
}

bool GossipEngine::Impl::expire(const FlowKey &key, OwnerRecord r, uint64_t now_us) noexcept
{
    if (local_release(key, now_us))
        return true;
    /* Removed behind the engine's back, it would stay in the owner's digest
     * here and set off repair syncs until a re-announce pass recounted it. */
    forget_in_digest(key, r);
    return false;
}

void GossipEngine::Impl::local_refresh(const FlowKey &key, uint64_t now_us) noexcept
{
    const std::optional<OwnerRecord> cur = store.lookup(key);
    const uint16_t epoch = epoch_of(now_us);
    if (cur && owner_gone(*cur)) {
        /* A worker served a dead or restarted owner's flow as its failover
         * owner, and the rewrite has not reached the record (or walked past
         * it: see failover_slice(); or the record came later, a sync's copy
         * of a claim of a node already dead here): make it ours now, as the
         * rewrite would, before the record ages out under a flow in use. */
        fail_over(key, *cur, now_us);
        return;
    }
    if (!cur || !is_live_own(*cur) || cur->epoch == epoch)
        return;
    OwnerRecord r = *cur;
    r.epoch = epoch;
    store.upsert(key, r, Presence::present); /* same owner and version: digests unchanged */
}

std::optional<uint16_t> GossipEngine::Impl::operator_claim(const FlowKey &key,
                                                           uint64_t now_us) noexcept
{
    /* One version above the current entry (claim or tombstone, whoever's)
     * beats it under the conflict rule on every node. */
    const std::optional<OwnerRecord> cur = store.lookup(key);
    const auto version = static_cast<uint16_t>(cur ? cur->version + 1 : 1);
    if (!claim_own(key, cur, version, owner_flag::pinned, now_us))
        return std::nullopt;
    flush(now_us); /* an operator's claim goes out now, not at the batch deadline */
    return version;
}

/* ---- the public face: forwarding to Impl ---- */

GossipEngine::GossipEngine(const GossipParams &params, const KeyRing &keys, FlowStore &store,
                           SendFn send, uint64_t now_us)
    : impl_(std::make_unique<Impl>(params, keys, store, std::move(send), now_us))
{
}

GossipEngine::~GossipEngine() = default;

void GossipEngine::local_claim(const FlowKey &key, uint64_t now_us) noexcept
{
    impl_->local_claim(key, now_us);
}

bool GossipEngine::local_release(const FlowKey &key, uint64_t now_us) noexcept
{
    return impl_->local_release(key, now_us);
}

bool GossipEngine::expire(const FlowKey &key, OwnerRecord r, uint64_t now_us) noexcept
{
    return impl_->expire(key, r, now_us);
}

void GossipEngine::local_refresh(const FlowKey &key, uint64_t now_us) noexcept
{
    impl_->local_refresh(key, now_us);
}

std::optional<uint16_t> GossipEngine::operator_claim(const FlowKey &key, uint64_t now_us) noexcept
{
    return impl_->operator_claim(key, now_us);
}

void GossipEngine::receive(std::span<const uint8_t> frame, uint64_t now_us) noexcept
{
    impl_->receive({&frame, 1}, now_us);
}

void GossipEngine::receive_burst(std::span<const std::span<const uint8_t>> frames,
                                 uint64_t now_us) noexcept
{
    impl_->receive(frames, now_us);
}

void GossipEngine::tick(uint64_t now_us) noexcept
{
    impl_->tick(now_us);
}

void GossipEngine::flush(uint64_t now_us) noexcept
{
    impl_->flush(now_us);
}

uint64_t GossipEngine::next_tick_us() const noexcept
{
    return impl_->next_tick_us();
}

void GossipEngine::set_draining(bool draining, uint64_t now_us) noexcept
{
    if (impl_->members.find(impl_->p.self)->draining == draining)
        return;
    impl_->members.set_self_draining(draining);
    impl_->p.draining = draining;
    impl_->send_heartbeat(now_us); /* announce it now, not at the next beat */
}

void GossipEngine::leave(uint64_t now_us) noexcept
{
    impl_->members.set_self_leaving();
    impl_->send_heartbeat(now_us); /* sends the open batch too */
}

void GossipEngine::set_keys(const KeyRing &keys) noexcept
{
    if (keys.send_key_id() == 0)
        return; /* an empty ring would silence us; keep the old one */
    impl_->auth.set_keys(keys);
}

const MembershipTable &GossipEngine::membership() const noexcept
{
    return impl_->members;
}

uint64_t GossipEngine::membership_generation() const noexcept
{
    return impl_->members.generation();
}

NodeId GossipEngine::effective_owner(OwnerRecord r, uint32_t flow_hash) const noexcept
{
    if (impl_->earlier_life(r))
        return failover_owner(flow_hash, r.owner, impl_->members.eligible());
    return impl_->members.effective_owner(r.owner, flow_hash);
}

bool GossipEngine::synced() const noexcept
{
    return impl_->synced;
}

uint64_t GossipEngine::repair_round_trip_us() const noexcept
{
    return impl_->stats.repair_round_trip_us.get();
}

uint64_t GossipEngine::repair_retry_us() const noexcept
{
    return impl_->stats.repair_retry_us.get();
}

const GossipStats &GossipEngine::stats() const noexcept
{
    return impl_->stats;
}

const GossipRxStats &GossipEngine::rx_stats() const noexcept
{
    return impl_->verifier.stats();
}

} // namespace flowhome
