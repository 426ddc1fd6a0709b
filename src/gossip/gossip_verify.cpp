/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The receive pipeline for gossip frames and the per-sender replay windows.
 *
 * Order of checks, cheapest and least trusting first:
 *   header (magic, version, lengths, sender) -> cluster -> own frame ->
 *   key id -> tag -> incarnation and replay window -> records.
 * The tag is checked before the replay window so that a forged frame is
 * counted as bad_tag and can never move a window; the window advances only
 * after the records validated, so a frame is either applied whole, with its
 * sequence number consumed, or rejected without a trace.
 */
#include "flowhome/gossip_auth.hpp"

namespace flowhome {

ReplayTable::ReplayTable() : slots_(size_t{kMaxNodeId} + 1) {}

ReplayVerdict ReplayTable::check(NodeId sender, uint32_t incarnation,
                                 uint64_t sequence) const noexcept
{
    ReplayVerdict v;
    if (sender >= slots_.size()) {
        v.status = GossipStatus::bad_sender;
        return v;
    }
    const Slot &s = slots_[sender];
    if (!s.used) {
        v.first_contact = true;
        return v;
    }
    /* Incarnations are compared as plain integers: a node must start with
     * a larger one every time (docs/gossip-protocol.md), and a frame of an
     * older incarnation is a leftover or a replay of a previous life. */
    if (incarnation < s.incarnation) {
        v.status = GossipStatus::stale_incarnation;
        return v;
    }
    if (incarnation > s.incarnation) {
        v.new_incarnation = true;
        return v;
    }
    /* RFC 4303 3.4.3: right of the window is new; inside it, new unless its
     * bit is set; left of it, too old to tell, so rejected. Sequence numbers
     * are 64 bits and never wrap within an incarnation. */
    if (sequence > s.top)
        return v;
    const uint64_t behind = s.top - sequence;
    if (behind >= kReplayWindowSize || (s.bitmap >> behind & 1) != 0)
        v.status = GossipStatus::replayed;
    return v;
}

void ReplayTable::commit(NodeId sender, uint32_t incarnation, uint64_t sequence) noexcept
{
    if (sender >= slots_.size())
        return;
    Slot &s = slots_[sender];
    if (!s.used || incarnation != s.incarnation) {
        /* First contact or a restart: the window starts at this frame. */
        s.used = true;
        s.incarnation = incarnation;
        s.top = sequence;
        s.bitmap = 1;
        return;
    }
    if (sequence > s.top) {
        const uint64_t shift = sequence - s.top;
        s.bitmap = shift >= kReplayWindowSize ? 1 : (s.bitmap << shift) | 1;
        s.top = sequence;
    } else {
        s.bitmap |= uint64_t{1} << (s.top - sequence);
    }
}

FrameVerifier::FrameVerifier(const Params &params, Authenticator &auth) : p_(params), auth_(auth) {}

VerifyResult FrameVerifier::verify(std::span<const uint8_t> frame, FrameReader &reader) noexcept
{
    const VerifyResult r = run(frame, reader);
    stats_.by_status[static_cast<size_t>(r.status)].add();
    if (r.status == GossipStatus::ok) {
        if (reader.unknown_records() != 0)
            stats_.unknown_records.add(reader.unknown_records());
        if (r.new_incarnation)
            stats_.new_incarnations.add();
    }
    return r;
}

VerifyResult FrameVerifier::run(std::span<const uint8_t> frame, FrameReader &reader) noexcept
{
    VerifyResult r;
    reader = FrameReader{}; /* a rejected frame must not leave the previous one readable */
    FrameHeader hdr;
    r.status = decode_gossip_header(frame, hdr);
    if (r.status != GossipStatus::ok)
        return r;
    if (hdr.cluster_id != p_.cluster_id) {
        r.status = GossipStatus::wrong_cluster;
        return r;
    }
    if (hdr.sender == p_.self) {
        r.status = GossipStatus::own_frame;
        return r;
    }
    const size_t signed_len = size_t{hdr.header_len} + hdr.payload_length;
    r.status =
        auth_.verify(hdr.key_id, frame.first(signed_len), frame.subspan(signed_len, kGossipTagLen));
    if (r.status != GossipStatus::ok)
        return r;
    r.sender = hdr.sender;
    const ReplayVerdict rv = replay_.check(hdr.sender, hdr.incarnation, hdr.sequence);
    if (rv.status != GossipStatus::ok) {
        r.status = rv.status;
        return r;
    }
    r.status = reader.open(frame);
    if (r.status != GossipStatus::ok)
        return r;
    replay_.commit(hdr.sender, hdr.incarnation, hdr.sequence);
    r.first_contact = rv.first_contact;
    r.new_incarnation = rv.new_incarnation;
    return r;
}

} // namespace flowhome
