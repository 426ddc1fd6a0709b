/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipEngine loss repair (protocol 1.1, 1.3). Every frame carries its
 * sender's sequence number (+1 per frame within an incarnation), so a
 * receiver sees which of a sender's frames it missed as soon as a later one
 * arrives (a heartbeat at the latest), and (1.3) which of the eight before
 * it were bare, with nothing to resend: those it does not ask for. It asks
 * the sender, with a resend request, for the missed sequence numbers (a
 * 64-bit bitmap below the newest it saw), shortly after seeing the gap and
 * again, with its next heartbeat or batch while the gap stays open, after
 * a retry interval that follows the measured repair round trip and doubles
 * per request up to half a heartbeat interval (once later when another
 * receiver has just asked for the same). The sender keeps copies of the claims and releases
 * of its last kResendRing frames (a frame without any, a heartbeat, takes
 * its slot all the same) and answers with a resent record naming the frames
 * it answers for, followed by their claims and releases (the same
 * statements, so idempotent under the conflict rule). Frames it no longer
 * holds, or that held no claim, are answered for with nothing more: the
 * re-announcement covers what fell out of the ring. An answer that is lost
 * is itself a gap, and asked for the same way; its copies are resent once
 * more, and no further (kMaxCopy, queue_flow()); re-announcement heals the
 * rest. Only verified frames move the windows; the claims resent are
 * applied like any received claim. Control lcore only.
 */
#include <algorithm>
#include <bit>
#include <cstring>

#include "engine_impl.hpp"

namespace flowhome {

namespace {

/* The bitmap of the @p n sequence numbers just below the newest (all 64 when n >= 64). */
uint64_t bits_below(uint64_t n) noexcept
{
    return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
}

/* Re-expresses a bitmap relative to newest sequence @p from (bit i: from -
 * 1 - i) relative to @p to; sequences outside the 64 below @p to drop. */
uint64_t rebase(uint64_t bits, uint64_t from, uint64_t to) noexcept
{
    if (to >= from) {
        const uint64_t d = to - from;
        return d >= 64 ? 0 : bits << d;
    }
    const uint64_t d = from - to;
    return d >= 64 ? 0 : bits >> d;
}

} // namespace

void GossipEngine::Impl::track_sequence(const FrameHeader &h, uint64_t now_us) noexcept
{
    /* Every minor we accept (1.2 and up) answers resend requests. */
    SeqWindow &w = windows[h.sender];
    if (h.incarnation != w.incarnation || w.newest == 0) {
        /* First frame of this life (the verifier refused older lives). A
         * sender we heard before has restarted: this engine numbers a new
         * life's frames from 1, so one numbered above that says we missed
         * its first frames, which carry the claims it made at once (a
         * sequence that starts elsewhere, or a life we first hear of late,
         * asks for nothing it must have). At our own first contact we ask
         * for nothing: every peer would be a gap. */
        const bool restarted_sender = w.incarnation != 0 && h.incarnation != w.incarnation;
        w.incarnation = h.incarnation;
        w.newest = h.sequence;
        w.missing = 0;
        w.end_repair();
        if (restarted_sender && h.sequence >= 2 && h.sequence - 1 <= 64) {
            const uint64_t skipped = not_bare(bits_below(h.sequence - 1), h.bare_below);
            if (skipped != 0)
                note_gap(w, h, skipped, now_us);
        }
        return;
    }
    if (h.sequence <= w.newest) {
        /* Reordered, or a gap filling in; its header may name others bare. */
        const uint64_t back = w.newest - h.sequence;
        if (back >= 1 && back <= 64)
            w.missing &= ~(uint64_t{1} << (back - 1));
        w.missing = not_bare(w.missing, rebase(h.bare_below, h.sequence, w.newest));
        return;
    }
    const uint64_t d = h.sequence - w.newest;
    const uint64_t kept = rebase(w.missing, w.newest, h.sequence);
    stats.gaps_abandoned.add(static_cast<uint64_t>(std::popcount(w.missing) - std::popcount(kept)));
    /* What was missing already lies in the eight the last newest frame
     * named, or below: nothing more to learn of it here. */
    w.missing = kept;
    w.newest = h.sequence;
    const uint64_t skipped = not_bare(bits_below(d - 1), h.bare_below);
    if (skipped != 0)
        note_gap(w, h, skipped, now_us);
}

uint64_t GossipEngine::Impl::not_bare(uint64_t missing, uint64_t bare) noexcept
{
    /* Nothing to ask for: the answer would be a resent record alone. */
    stats.gaps_bare.add(static_cast<uint64_t>(std::popcount(missing & bare)));
    return missing & ~bare;
}

void GossipEngine::Impl::note_gap(SeqWindow &w, const FrameHeader &h, uint64_t skipped,
                                  uint64_t now_us) noexcept
{
    if (w.missing == 0)
        w.end_repair(); /* the last gap closed; repair_tick() has not yet cleared it */
    w.missing |= skipped;
    /* An answer to what we asked for before may come after our next
     * request: which one it serves is unknown. */
    w.untimed = w.untimed || w.attempts > 0;
    w.attempts = 0;
    const uint64_t due =
        now_us + kResendDelayUs + spread_us(p.self, h.sender, h.sequence, kResendDelayUs);
    if (w.due_us == 0 || due < w.due_us) {
        w.due_us = due;
        w.spared = false; /* the new gap is asked for on its own timer */
    }
    if (!w.listed) {
        w.listed = true;
        gapped.push_back(h.sender);
    }
}

void GossipEngine::Impl::repair_tick(uint64_t now_us) noexcept
{
    for (size_t i = 0; i < gapped.size();) {
        const NodeId node = gapped[i];
        SeqWindow &w = windows[node];
        const Member *m = members.find(node);
        if (w.missing != 0 &&
            (m == nullptr || m->state == NodeState::dead || w.attempts >= kResendAttempts)) {
            /* Nobody left to ask, or no answer came: re-announcement heals. */
            stats.gaps_abandoned.add(static_cast<uint64_t>(std::popcount(w.missing)));
            w.missing = 0;
        }
        if (w.missing == 0) {
            w.listed = false;
            w.end_repair();
            gapped[i] = gapped.back();
            gapped.pop_back();
            continue;
        }
        /* Between heartbeats, a request rides on a batch that is going out
         * anyway, or goes at once when the gap would otherwise slide out of
         * the 64-frame window before the next heartbeat. */
        const bool riding = frame_open && !writer.empty();
        if (now_us >= w.due_us && (riding || w.urgent())) {
            const ResendRecord r{node, w.incarnation, w.newest, w.missing};
            append(now_us,
                   [&](FrameWriter &fw) { return fw.add_resend(RecordType::resend_request, r); });
            note_request(w, now_us);
        }
        ++i;
    }
}

void GossipEngine::Impl::note_request(SeqWindow &w, uint64_t now_us) noexcept
{
    ++w.attempts;
    w.spared = false;
    /* Karn's rule: only a gap's one request is timed. */
    w.asked_us = w.attempts == 1 && !w.untimed ? now_us : 0;
    w.due_us = now_us + retry_interval_us(w.attempts);
    stats.resend_requests_out.add();
}

size_t GossipEngine::Impl::repair_records(uint64_t now_us) const noexcept
{
    size_t n = cover_bits != 0 ? 1 : 0;
    for (const NodeId node : gapped)
        if (windows[node].missing != 0 && now_us >= windows[node].due_us)
            ++n;
    return std::min(n, kResendPerHeartbeat);
}

void GossipEngine::Impl::add_repair_records(uint64_t now_us, size_t max) noexcept
{
    size_t added = 0;
    if (cover_bits != 0 && cover_incarnation != members.self_incarnation())
        cover_bits = 0; /* answers for a previous life: moot */
    if (cover_bits != 0 && added < max &&
        writer.add_resend(RecordType::resent,
                          ResendRecord{p.self, cover_incarnation, cover_newest, cover_bits})) {
        cover_bits = 0;
        ++added;
    }
    for (const NodeId node : gapped) {
        SeqWindow &w = windows[node];
        if (added >= max || w.missing == 0 || now_us < w.due_us)
            continue;
        if (!writer.add_resend(RecordType::resend_request,
                               ResendRecord{node, w.incarnation, w.newest, w.missing}))
            break;
        ++added;
        note_request(w, now_us); /* again at the next heartbeat while open */
    }
}

void GossipEngine::Impl::on_resend_request(const ResendRecord &r, uint64_t now_us) noexcept
{
    const uint32_t inc = members.self_incarnation();
    if (r.incarnation != inc) {
        stats.records_ignored.add(); /* about a previous life: nothing of it is ours any more */
        return;
    }
    stats.resend_requests_in.add();
    const uint64_t quiet_us = resend_quiet_us();
    uint64_t covered = 0;
    uint64_t with_flows = 0;
    resend_scratch.clear();
    for (uint64_t bits = r.missing; bits != 0; bits &= bits - 1) {
        const auto i = static_cast<uint64_t>(std::countr_zero(bits));
        if (r.newest < i + 2 || r.newest - 1 - i > sequence)
            continue; /* no such frame was sent */
        const uint64_t seq = r.newest - 1 - i;
        SentFrameCopy &f = sent_ring[seq % kResendRing];
        const bool kept = f.sequence == seq && f.incarnation == inc;
        /* Resent moments ago for another receiver: that answer is on its way
         * to this one too (and if lost, is a gap of its own). */
        if (kept && f.resent_us != 0 && now_us - f.resent_us < quiet_us)
            continue;
        covered |= uint64_t{1} << i;
        if (!kept || f.len == 0)
            continue;
        f.resent_us = now_us;
        with_flows |= uint64_t{1} << i;
        /* Copied out first: the frames the answer fills overwrite the ring. */
        if (resend_reader.open(std::span<const uint8_t>(f.bytes.data(), f.len)) != GossipStatus::ok)
            continue;
        for (size_t k = 0; resend_reader.next(resend_rec);) {
            if (resend_rec.type != RecordType::claim && resend_rec.type != RecordType::release)
                continue;
            const uint8_t copy = k < f.copies.size() ? f.copies[k] : kMaxCopy;
            if (copy < kMaxCopy)
                resend_scratch.push_back(
                    {resend_rec.type, resend_rec.flow, static_cast<uint8_t>(copy + 1)});
            ++k;
        }
    }
    if (with_flows != 0) {
        /* The resent record goes first: the flows are in its frame or the
         * ones after it, whose loss the receivers see as new gaps. */
        const ResendRecord answer{p.self, inc, r.newest, with_flows};
        append(now_us, [&](FrameWriter &w) { return w.add_resend(RecordType::resent, answer); });
        for (const Resend &x : resend_scratch)
            queue_flow(x.type, x.flow, now_us, x.copy);
        stats.resent_flows.add(resend_scratch.size());
    }
    covered &= ~with_flows;
    if (covered == 0)
        return;
    /* Frames without flows (or out of the ring) are answered for with the
     * next heartbeat: an answer of its own would be one more frame whose
     * loss makes one more gap. */
    if (cover_incarnation != inc)
        cover_bits = 0;
    cover_incarnation = inc;
    if (cover_bits == 0 || r.newest >= cover_newest) {
        cover_bits = rebase(cover_bits, cover_newest, r.newest) | covered;
        cover_newest = r.newest;
    } else {
        cover_bits |= rebase(covered, r.newest, cover_newest);
    }
}

void GossipEngine::Impl::on_peer_request(const ResendRecord &r, uint64_t now_us) noexcept
{
    /* Another receiver asks r.node for frames; the answer is multicast. When
     * it covers every frame we miss of that sender, we wait for it as if we
     * had asked ourselves (without counting an attempt): if it is lost for
     * us, the gap is still open when due, and we ask then. Once between two
     * requests of ours: a gap others keep asking for in vain (their requests
     * reach us, not the sender) is asked for by us too, and counts towards
     * our attempts. */
    SeqWindow &w = windows[r.node];
    if (w.missing == 0 || w.incarnation != r.incarnation || w.spared)
        return;
    if ((w.missing & ~rebase(r.missing, r.newest, w.newest)) != 0)
        return;
    w.due_us = std::max(w.due_us, now_us + retry_interval_us(w.attempts + 1));
    w.spared = true;
    /* Its answer serves our gap: not timed. (Blocking the timing on any
     * overlap with ours too left the estimates tighter than the answers'
     * spread at a few ms of delay, and the retries early: not done.) */
    w.untimed = true;
    stats.resend_requests_spared.add();
}

void GossipEngine::Impl::on_resent(const ResendRecord &r, uint64_t now_us, bool timed) noexcept
{
    /* The reader checked r.node is the sender and r.incarnation its life. */
    SeqWindow &w = windows[r.node];
    if (w.incarnation != r.incarnation)
        return;
    const uint64_t answered = w.missing & rebase(r.missing, r.newest, w.newest);
    /* The first answer to our one request for a gap times the round trip:
     * not after a retry (asked_us is cleared), nor once another request may
     * have been answered instead (untimed: a new gap after our request, or
     * another receiver's request for all of it, whose answer we wait for); nor a
     * resent record after the heartbeat record of its frame, an answer for
     * frames without flows that waited for the sender's heartbeat. */
    if (answered != 0 && timed && !w.untimed && w.asked_us != 0 && now_us > w.asked_us)
        sample_round_trip(now_us - std::exchange(w.asked_us, 0));
    w.missing &= ~answered;
}

void GossipEngine::Impl::sample_round_trip(uint64_t rtt_us) noexcept
{
    /* An answer may come sooner than our request could have been served
     * (another receiver asked first): bounded to what a retry can be. */
    const uint64_t least = kResendRetryMinUs / 2;
    const uint64_t sample = std::min(std::max(rtt_us, least), std::max(least, retry_most_us()));
    /* RFC 6298, 2.2 and 2.3. */
    if (!rtt_timed()) {
        repair_rtt_us = sample;
        repair_rttvar_us = sample / 2;
    } else {
        const uint64_t deviation =
            sample > repair_rtt_us ? sample - repair_rtt_us : repair_rtt_us - sample;
        repair_rttvar_us = (3 * repair_rttvar_us + deviation) / 4;
        repair_rtt_us = (7 * repair_rtt_us + sample) / 8;
    }
    stats.repair_round_trip_us.set(repair_rtt_us);
    stats.repair_retry_us.set(retry_interval_us(1));
}

bool GossipEngine::Impl::remember_frame(std::span<const uint8_t> frame) noexcept
{
    FrameHeader h;
    if (decode_gossip_header(frame, h) != GossipStatus::ok)
        return false; /* not ours to have sent: nothing said of it */
    SentFrameCopy &f = sent_ring[h.sequence % kResendRing];
    f.sequence = h.sequence;
    f.incarnation = h.incarnation;
    f.resent_us = 0;
    f.len = 0;
    if (frame_has_flows && frame.size() <= f.bytes.size()) {
        std::memcpy(f.bytes.data(), frame.data(), frame.size());
        f.len = frame.size();
        std::copy(open_copies.begin(), open_copies.end(), f.copies.begin());
    }
    return f.len == 0;
}

} // namespace flowhome
