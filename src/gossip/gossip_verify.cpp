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
#include <algorithm>

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
    FrameCheck check;
    screen({&frame, 1}, {&check, 1});
    return accept(frame, check, reader);
}

GossipStatus FrameVerifier::check_header(std::span<const uint8_t> frame,
                                         FrameHeader &hdr) const noexcept
{
    if (const GossipStatus st = decode_gossip_header(frame, hdr); st != GossipStatus::ok)
        return st;
    if (hdr.cluster_id != p_.cluster_id)
        return GossipStatus::wrong_cluster;
    if (hdr.sender == p_.self)
        return GossipStatus::own_frame;
    return GossipStatus::ok;
}

void FrameVerifier::screen(std::span<const std::span<const uint8_t>> frames,
                           std::span<FrameCheck> checks) noexcept
{
    std::array<TagCheck, kAuthBatchMax> tags;
    std::array<GossipStatus, kAuthBatchMax> verdicts;
    std::array<uint8_t, kAuthBatchMax> frame_of_tag;
    for (size_t at = 0; at < frames.size(); at += kAuthBatchMax) {
        const size_t n = std::min(frames.size() - at, kAuthBatchMax);
        size_t nt = 0;
        for (size_t i = at; i < at + n; ++i) {
            FrameCheck &c = checks[i];
            c.status = check_header(frames[i], c.header);
            if (c.status != GossipStatus::ok)
                continue;
            const size_t signed_len = size_t{c.header.header_len} + c.header.payload_length;
            tags[nt] = {c.header.key_id, frames[i].first(signed_len),
                        frames[i].subspan(signed_len, kGossipTagLen)};
            frame_of_tag[nt++] = static_cast<uint8_t>(i - at);
        }
        auth_.verify_batch({tags.data(), nt}, {verdicts.data(), nt});
        for (size_t t = 0; t < nt; ++t)
            checks[at + frame_of_tag[t]].status = verdicts[t];
    }
}

VerifyResult FrameVerifier::accept(std::span<const uint8_t> frame, const FrameCheck &check,
                                   FrameReader &reader) noexcept
{
    const VerifyResult r = run(frame, check, reader);
    stats_.by_status[static_cast<size_t>(r.status)].add();
    /* Records of unknown type are the engine's to count (unknown_records). */
    if (r.status == GossipStatus::ok && r.new_incarnation)
        stats_.new_incarnations.add();
    return r;
}

VerifyResult FrameVerifier::run(std::span<const uint8_t> frame, const FrameCheck &check,
                                FrameReader &reader) noexcept
{
    VerifyResult r;
    reader = FrameReader{}; /* a rejected frame must not leave the previous one readable */
    r.status = check.status;
    if (r.status != GossipStatus::ok)
        return r;
    const FrameHeader &hdr = check.header;
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
