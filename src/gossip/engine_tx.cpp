/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipEngine transmit side and timers: the batch (one frame under
 * construction, sealed and sent when full or batch_interval_us after its
 * first record), heartbeats, the re-announce walk with its digests, and
 * tick() which runs whatever is due. Control lcore only.
 */
#include <algorithm>

#include "engine_impl.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {

void GossipEngine::Impl::begin_frame() noexcept
{
    FrameHeader h;
    h.cluster_id = p.cluster_id;
    h.sender = p.self;
    h.incarnation = members.self_incarnation();
    /* Key id and sequence number are stamped as the frame leaves. */
    writer.begin(h);
    frame_open = true;
    frame_has_flows = false;
    open_flows = 0;
}

void GossipEngine::Impl::send_frame() noexcept
{
    if (!frame_open || writer.empty())
        return;
    const uint16_t records = writer.record_count();
    const std::span<uint8_t> body = writer.finish();
    frame_open = false;
    batch_deadline_us = 0;
    /* Signed with the key in use when it leaves (set_keys() may have
     * replaced the one in use when it was begun), and numbered then, so
     * that a frame begun but never sent leaves no gap for receivers to ask
     * about. */
    wire::store16(body.data() + gossip_hdr::key_id, auth.keys().send_key_id());
    wire::store64(body.data() + gossip_hdr::sequence, sequence + 1);
    /* The frames just before it that a receiver which missed them need not
     * ask for (1.3): heartbeats, digests, sync traffic, answers that carry
     * no copy below its bound. */
    body[gossip_hdr::flags] = bare_sent;
    const size_t len = auth.seal(tx_buf, body.size());
    if (len == 0) {
        stats.seal_failed.add();
        return;
    }
    ++sequence;
    stats.frames_out.add();
    stats.records_out.add(records);
    stats.bytes_out.add(len);
    const bool bare = remember_frame(std::span<const uint8_t>(tx_buf.data(), len));
    bare_sent = static_cast<uint8_t>(bare_sent << 1 | (bare ? 1 : 0));
    send(std::span<const uint8_t>(tx_buf.data(), len));
}

void GossipEngine::Impl::queue_flow(RecordType type, const FlowEntry &entry, uint64_t now_us,
                                    uint8_t copy) noexcept
{
    append(now_us, [&](FrameWriter &w) {
        return type == RecordType::claim ? w.add_claim(entry) : w.add_release(entry);
    });
    /* The open frame now holds it (append() began a new one if it had to).
     * Copies are resent a bounded number of times: with every lost answer
     * answered anew, at high loss and many receivers (each answer lost by
     * some receiver nearly always) the answers never died out. Once a frame
     * of resent copies has itself been resent, a receiver still missing one
     * asks again for the frame it first missed while that gap is open (it
     * lost the resent record), or re-announcement brings it. A frame whose
     * flows are all at kMaxCopy is answered for with a resent record alone. */
    if (open_flows < open_copies.size())
        open_copies[open_flows] = copy;
    ++open_flows;
    frame_has_flows |= copy < kMaxCopy;
}

void GossipEngine::Impl::flush(uint64_t) noexcept
{
    send_frame();
}

void GossipEngine::Impl::send_heartbeat(uint64_t now_us) noexcept
{
    const HeartbeatRecord hb = members.next_self_heartbeat();
    const size_t n = members.view(views);
    /* Resend requests and answers ride along (room kept for them). */
    repair_tick(now_us);
    const size_t repairs = repair_records(now_us);
    const size_t reserved = repairs * (kGossipTlvLen + kResendRecordLen);
    auto fits = [&](size_t room) {
        return room < reserved + kGossipTlvLen + kHeartbeatFixedLen
                   ? size_t{0}
                   : std::min(n, (room - reserved - kGossipTlvLen - kHeartbeatFixedLen) /
                                     kMemberViewLen);
    };
    /* The heartbeat rides on the batch when its view entries fit; otherwise
     * it goes in a frame of its own, with as many of them as fit (after a
     * change of many members at once, the rest wait for their turns). */
    const size_t changed = pick_views(n);
    if (!frame_open || fits(writer.room()) < beat_views.size()) {
        send_frame();
        begin_frame();
    }
    const size_t count = std::min(beat_views.size(), fits(writer.room()));
    views_sent(n, changed, count);
    writer.add_heartbeat(hb, std::span<const MemberView>(beat_views.data(), count));
    add_repair_records(now_us, repairs);
    send_frame();
    /* Up to an eighth early, drawn per beat: nodes started together drift
     * apart, and their requests riding on heartbeats stop colliding. */
    const uint64_t interval = uint64_t{p.heartbeat_interval_ms} * 1000;
    next_heartbeat_us = now_us + interval - spread_us(p.self, 0, hb.counter, interval / 8);
}

size_t GossipEngine::Impl::pick_views(size_t n) noexcept
{
    beat_views.clear();
    for (size_t i = 0; i < n; ++i) {
        const MemberView &v = views[i];
        if (view_marks[v.node] != v) {
            view_marks[v.node] = v;
            view_repeats[v.node] = kViewRepeat;
        }
        if (view_repeats[v.node] != 0)
            beat_views.push_back(v);
    }
    const size_t changed = beat_views.size();
    window_at.clear();
    for (size_t k = 0; k < n && window_at.size() < kViewWindow; ++k) {
        const size_t i = (view_offset + k) % n;
        if (view_repeats[views[i].node] == 0) {
            beat_views.push_back(views[i]);
            window_at.push_back(i);
        }
    }
    return changed;
}

void GossipEngine::Impl::views_sent(size_t n, size_t changed, size_t sent) noexcept
{
    for (size_t i = 0; i < std::min(changed, sent); ++i)
        --view_repeats[beat_views[i].node];
    if (sent > changed)
        view_offset = (window_at[sent - changed - 1] + 1) % n;
}

void GossipEngine::Impl::send_own_digest(uint64_t now_us) noexcept
{
    const OwnerDigest &d = digests.of(p.self);
    const DigestRecord rec_out{p.self, d.flow_count, d.digest};
    /* After the claims already batched, so a receiver that applied them
     * compares like with like. */
    append(now_us, [&](FrameWriter &w) { return w.add_digest(rec_out); });
}

void GossipEngine::Impl::reannounce_slice(uint64_t now_us) noexcept
{
    scratch.clear();
    auto *out = &scratch;
    store.scan(pass_cursor, pass_budget,
               [out](const FlowKey &k, OwnerRecord r) { out->emplace_back(k, r); });
    for (const auto &[key, r] : scratch) {
        if (r.owner == kInvalidNode || r.owner > kMaxNodeId)
            continue;
        const bool released = (r.flags & gossip_flag::released) != 0;
        if (!released)
            fresh.add(r.owner, key, r.version);
        /* Own records of an earlier life (after a refutation) are being
         * failed over: not ours to announce any more. */
        if (r.owner != p.self || r.reserved != life[p.self])
            continue;
        /* Same version: idempotent for receivers that have it, a repair for
         * those that lost it, and it renews their epoch. A tombstone is
         * re-announced too, so a lost release heals the same way. */
        queue_flow(released ? RecordType::release : RecordType::claim,
                   FlowEntry{key, p.self, r.version}, now_us);
        stats.reannounced.add();
    }
    if (pass_cursor == 0)
        finish_reannounce_pass(now_us);
}

void GossipEngine::Impl::finish_reannounce_pass(uint64_t now_us) noexcept
{
    /* The pass recounted every owner's digest from the store. Where the
     * engine wrote nothing for an owner during the pass, and no entry can
     * have moved under the walk (an insert's cuckoo moves, a removal with
     * extendable buckets: a moved entry is missed or counted twice), the
     * recount is exact and also catches what changed behind the engine's
     * back; elsewhere the incremental digest is the exact one. */
    const bool still = store.generation() == pass_generation;
    if (still)
        for (size_t o = 1; o < digests.owners(); ++o)
            if (touched[o] != pass_id)
                digests.set(static_cast<NodeId>(o), fresh.of(static_cast<NodeId>(o)));
    fresh.clear();
    pass_running = false;
    next_pass_us = pass_start_us + uint64_t{p.reannounce_interval_ms} * 1000;
    send_own_digest(now_us);
}

void GossipEngine::Impl::tick(uint64_t now_us) noexcept
{
    members.tick(now_us / 1000, [&](const MemberChange &c) { on_member_change(c, now_us); });

    if (now_us >= next_heartbeat_us)
        send_heartbeat(now_us);

    sync_tick(now_us);

    if (failover_running && now_us >= next_failover_us) {
        failover_slice(now_us);
        next_failover_us = now_us + kSlicePeriodUs;
    }

    if (!pass_running && now_us >= next_pass_us) {
        /* Spread the pass over half the interval, so each flow is announced
         * once per interval, at the same phase, with room to spare. */
        const uint64_t slices =
            std::max<uint64_t>(1, uint64_t{p.reannounce_interval_ms} * 1000 / 2 / kSlicePeriodUs);
        const uint64_t want = store.size() / slices + 1;
        pass_budget = static_cast<uint32_t>(std::clamp<uint64_t>(want, kSliceMin, kSliceBudget));
        pass_running = true;
        ++pass_id;
        pass_generation = store.generation();
        pass_cursor = 0;
        pass_start_us = now_us;
        next_slice_us = now_us;
    }
    if (pass_running && now_us >= next_slice_us) {
        reannounce_slice(now_us);
        next_slice_us = now_us + kSlicePeriodUs;
    }

    repair_tick(now_us);

    if (frame_open && !writer.empty() && now_us >= batch_deadline_us)
        send_frame();
}

uint64_t GossipEngine::Impl::next_tick_us() const noexcept
{
    uint64_t t = next_heartbeat_us; /* also the membership check cadence */
    if (frame_open && !writer.empty())
        t = std::min(t, batch_deadline_us);
    t = std::min(t, pass_running ? next_slice_us : next_pass_us);
    if (failover_running)
        t = std::min(t, next_failover_us);
    const uint64_t timeout = uint64_t{p.sync_timeout_ms} * 1000;
    if (full.active)
        t = std::min(t, full.sent_us + timeout);
    if (repair.active)
        t = std::min(t, repair.sent_us + timeout);
    /* The heir's pull asks its next peer as an answer ends the last one
     * (on_sync_response()), or at this timeout; a peer not heard yet, at a
     * tick after its heartbeat. */
    if (heir.active)
        t = std::min(t, heir.sent_us + timeout);
    /* A gap about to slide out of the window is asked for when due, batch
     * or no batch (repair_tick()); the others ride on a batch, whose
     * deadline is above, or go with the heartbeat. */
    for (const NodeId node : gapped) {
        const SeqWindow &w = windows[node];
        if (w.urgent())
            t = std::min(t, w.due_us);
    }
    return t;
}

} // namespace flowhome
