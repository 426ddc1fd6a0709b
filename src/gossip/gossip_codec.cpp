/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Gossip frame decoding. Untrusted bytes: every read is preceded by a length
 * check against the span the caller gave, and the record region is walked
 * completely before any record is handed out (FrameReader::open), so the
 * control lcore applies a frame whole or not at all.
 */
#include <algorithm>
#include <cstring>

#include "flowhome/gossip_wire.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {

namespace {

bool valid_node(uint16_t n) noexcept
{
    return n != kInvalidNode && n <= kMaxNodeId;
}

Family family_of(uint8_t wire) noexcept
{
    if (wire == 4)
        return Family::ipv4;
    if (wire == 6)
        return Family::ipv6;
    return Family::none;
}

/* Precondition: [p, p + gossip_flow_entry_size(family)) is readable and the
 * family byte is valid (checked by check_flow_entry). */
void read_flow_entry(const uint8_t *p, FlowEntry &out) noexcept
{
    const Family f = family_of(p[gossip_flow::family]);
    const uint8_t proto = p[gossip_flow::proto];
    /* Ports and addresses are network order both on the wire and in
     * FlowKey, so they are copied, not converted. */
    uint16_t client_port;
    uint16_t vip_port;
    std::memcpy(&client_port, p + gossip_flow::client_port, 2);
    std::memcpy(&vip_port, p + gossip_flow::vip_port, 2);
    const uint8_t *addrs = p + gossip_flow::addrs;
    if (f == Family::ipv4) {
        uint32_t client;
        uint32_t vip;
        std::memcpy(&client, addrs, 4);
        std::memcpy(&vip, addrs + 4, 4);
        out.key = FlowKey::make4(client, client_port, vip, vip_port, proto);
    } else {
        out.key = FlowKey::make6(addrs, client_port, addrs + 16, vip_port, proto);
    }
    out.owner = wire::load16(p + gossip_flow::owner);
    out.version = wire::load16(p + gossip_flow::version);
    const uint16_t flags = wire::load16(p + gossip_flow::flags);
    out.released = (flags & gossip_flow::flag_released) != 0;
    out.age_s = out.released ? static_cast<uint16_t>(flags >> gossip_flow::age_shift) : 0;
    out.moved = !out.released && (flags & gossip_flow::flag_moved) != 0;
}

/* Checks the flow entry at [p, end): family, size, owner. Sets *size. */
GossipStatus check_flow_entry(const uint8_t *p, const uint8_t *end, size_t *size) noexcept
{
    if (p >= end)
        return GossipStatus::bad_record_length;
    const size_t need = gossip_flow_entry_size(family_of(p[gossip_flow::family]));
    if (need == 0)
        return GossipStatus::bad_family;
    if (static_cast<size_t>(end - p) < need)
        return GossipStatus::bad_record_length;
    if (!valid_node(wire::load16(p + gossip_flow::owner)))
        return GossipStatus::bad_node;
    *size = need;
    return GossipStatus::ok;
}

GossipStatus check_member(const uint8_t *p) noexcept
{
    if (!valid_node(wire::load16(p)))
        return GossipStatus::bad_node;
    if (p[2] > kNodeStateMax)
        return GossipStatus::bad_state;
    return GossipStatus::ok;
}

GossipStatus check_claim(const uint8_t *v, size_t len, const FrameHeader &hdr) noexcept
{
    size_t size = 0;
    /* A newer minor version may append fields to a claim: bytes past the
     * entry are ignored, a short entry is not. */
    const GossipStatus s = check_flow_entry(v, v + len, &size);
    if (s != GossipStatus::ok)
        return s;
    /* Only the owner announces or ends its own ownership; others' flows
     * travel only in sync responses. */
    if (wire::load16(v + gossip_flow::owner) != hdr.sender)
        return GossipStatus::foreign_owner;
    return GossipStatus::ok;
}

GossipStatus check_heartbeat(const uint8_t *v, size_t len, const FrameHeader &hdr) noexcept
{
    /* The view list follows the fixed part, so both are exact. */
    if (len < kHeartbeatFixedLen || (len - kHeartbeatFixedLen) % kMemberViewLen != 0)
        return GossipStatus::bad_record_length;
    GossipStatus s = check_member(v);
    if (s != GossipStatus::ok)
        return s;
    if (wire::load16(v) != hdr.sender)
        return GossipStatus::foreign_owner;
    if (wire::load32(v + 4) != hdr.incarnation)
        return GossipStatus::incarnation_mismatch;
    for (size_t off = kHeartbeatFixedLen; off < len; off += kMemberViewLen) {
        s = check_member(v + off);
        if (s != GossipStatus::ok)
            return s;
    }
    return GossipStatus::ok;
}

GossipStatus check_sync_request(const uint8_t *v, size_t len) noexcept
{
    if (len < kSyncRequestLen)
        return GossipStatus::bad_record_length;
    const uint16_t filter = wire::load16(v + 2);
    if (!valid_node(wire::load16(v)) || filter > kMaxNodeId)
        return GossipStatus::bad_node;
    return GossipStatus::ok;
}

GossipStatus check_sync_response(const uint8_t *v, size_t len) noexcept
{
    if (len < kSyncResponseFixedLen)
        return GossipStatus::bad_record_length;
    if (!valid_node(wire::load16(v)))
        return GossipStatus::bad_node;
    const uint16_t count = wire::load16(v + 2);
    const uint8_t *p = v + kSyncResponseFixedLen;
    const uint8_t *end = v + len;
    uint32_t found = 0;
    while (p < end) {
        size_t size = 0;
        const GossipStatus s = check_flow_entry(p, end, &size);
        if (s != GossipStatus::ok)
            return s;
        p += size;
        ++found;
    }
    return found == count ? GossipStatus::ok : GossipStatus::bad_entry_count;
}

/* Resend request / resent: fixed fields, longer accepted (a newer minor
 * may append). A resent record speaks for the sender's own frames. */
GossipStatus check_resend(RecordType type, const uint8_t *v, size_t len,
                          const FrameHeader &hdr) noexcept
{
    if (len < kResendRecordLen)
        return GossipStatus::bad_record_length;
    const NodeId node = wire::load16(v);
    if (!valid_node(node))
        return GossipStatus::bad_node;
    if (type == RecordType::resent) {
        if (node != hdr.sender)
            return GossipStatus::foreign_owner;
        if (wire::load32(v + 4) != hdr.incarnation)
            return GossipStatus::incarnation_mismatch;
    }
    return GossipStatus::ok;
}

/* Validates one record; *known is false for a type this version skips. */
GossipStatus check_record(uint8_t type, const uint8_t *v, size_t len, const FrameHeader &hdr,
                          bool *known) noexcept
{
    *known = true;
    switch (static_cast<RecordType>(type)) {
    case RecordType::claim:
    case RecordType::release:
        return check_claim(v, len, hdr);
    case RecordType::digest:
        if (len < kDigestRecordLen)
            return GossipStatus::bad_record_length;
        return valid_node(wire::load16(v)) ? GossipStatus::ok : GossipStatus::bad_node;
    case RecordType::heartbeat:
        return check_heartbeat(v, len, hdr);
    case RecordType::sync_request:
        return check_sync_request(v, len);
    case RecordType::sync_response:
        return check_sync_response(v, len);
    case RecordType::resend_request:
    case RecordType::resent:
        return check_resend(static_cast<RecordType>(type), v, len, hdr);
    }
    *known = false;
    return GossipStatus::ok;
}

MemberView read_member(const uint8_t *p) noexcept
{
    MemberView m;
    m.node = wire::load16(p);
    m.state = static_cast<NodeState>(p[2]);
    m.draining = (p[3] & kMemberFlagDraining) != 0;
    m.incarnation = wire::load32(p + 4);
    return m;
}

} // namespace

std::string_view gossip_status_name(GossipStatus s) noexcept
{
    switch (s) {
    case GossipStatus::ok:
        return "ok";
    case GossipStatus::truncated:
        return "truncated";
    case GossipStatus::bad_magic:
        return "bad_magic";
    case GossipStatus::bad_version:
        return "bad_version";
    case GossipStatus::bad_header_length:
        return "bad_header_length";
    case GossipStatus::bad_length:
        return "bad_length";
    case GossipStatus::bad_sender:
        return "bad_sender";
    case GossipStatus::wrong_cluster:
        return "wrong_cluster";
    case GossipStatus::own_frame:
        return "own_frame";
    case GossipStatus::unknown_key:
        return "unknown_key";
    case GossipStatus::bad_tag:
        return "bad_tag";
    case GossipStatus::replayed:
        return "replayed";
    case GossipStatus::stale_incarnation:
        return "stale_incarnation";
    case GossipStatus::record_truncated:
        return "record_truncated";
    case GossipStatus::record_count_mismatch:
        return "record_count_mismatch";
    case GossipStatus::bad_record_length:
        return "bad_record_length";
    case GossipStatus::bad_family:
        return "bad_family";
    case GossipStatus::bad_node:
        return "bad_node";
    case GossipStatus::bad_state:
        return "bad_state";
    case GossipStatus::foreign_owner:
        return "foreign_owner";
    case GossipStatus::incarnation_mismatch:
        return "incarnation_mismatch";
    case GossipStatus::bad_entry_count:
        return "bad_entry_count";
    }
    return "unknown";
}

namespace {

/* IP header + UDP header (RFC 768). */
constexpr size_t gossip_overhead(bool ipv6) noexcept
{
    return (ipv6 ? 40 : 20) + 8;
}

} // namespace

uint32_t gossip_min_mtu(bool ipv6) noexcept
{
    return static_cast<uint32_t>(kGossipMinFrame + gossip_overhead(ipv6));
}

size_t gossip_max_frame(uint32_t mtu, bool ipv6) noexcept
{
    const size_t overhead = gossip_overhead(ipv6);
    if (mtu < overhead + kGossipHeaderLen + kGossipTagLen)
        return 0;
    return std::min<size_t>(mtu - overhead, kGossipMaxFrame);
}

GossipStatus decode_gossip_header(std::span<const uint8_t> frame, FrameHeader &out) noexcept
{
    const uint8_t *b = frame.data();
    const size_t size = frame.size();
    /* The magic first, so that stray traffic counts as bad_magic whatever
     * its length. */
    if (size < 4)
        return GossipStatus::truncated;
    if (wire::load32(b + gossip_hdr::magic) != kGossipMagic)
        return GossipStatus::bad_magic;
    if (size < kGossipHeaderLen)
        return GossipStatus::truncated;
    out.version_major = b[gossip_hdr::version_major];
    out.version_minor = b[gossip_hdr::version_minor];
    if (!gossip_version_compatible(out.version_major, out.version_minor))
        return GossipStatus::bad_version;
    out.header_len = b[gossip_hdr::header_len];
    if (out.header_len < kGossipHeaderLen)
        return GossipStatus::bad_header_length;
    out.cluster_id = wire::load32(b + gossip_hdr::cluster_id);
    out.sender = wire::load16(b + gossip_hdr::sender);
    out.key_id = wire::load16(b + gossip_hdr::key_id);
    out.incarnation = wire::load32(b + gossip_hdr::incarnation);
    out.record_count = wire::load16(b + gossip_hdr::record_count);
    out.payload_length = wire::load16(b + gossip_hdr::payload_length);
    out.sequence = wire::load64(b + gossip_hdr::sequence);
    /* Reserved before 1.3, and sent 0: nothing is known bare. */
    out.bare_below = out.version_minor >= kGossipMinorBareFrames ? b[gossip_hdr::flags] : 0;
    const size_t expected = size_t{out.header_len} + out.payload_length + kGossipTagLen;
    if (size < expected)
        return GossipStatus::truncated;
    if (size > expected)
        return GossipStatus::bad_length;
    if (out.sender == kInvalidNode || out.sender > kMaxNodeId)
        return GossipStatus::bad_sender;
    return GossipStatus::ok;
}

GossipStatus FrameReader::open(std::span<const uint8_t> frame) noexcept
{
    pos_ = end_ = nullptr;
    unknown_ = 0;
    signed_ = {};
    tag_ = {};
    const GossipStatus hs = decode_gossip_header(frame, hdr_);
    if (hs != GossipStatus::ok)
        return hs;

    const uint8_t *begin = frame.data() + hdr_.header_len;
    const uint8_t *end = begin + hdr_.payload_length;
    uint32_t count = 0;
    uint32_t unknown = 0;
    for (const uint8_t *p = begin; p < end;) {
        if (end - p < static_cast<ptrdiff_t>(kGossipTlvLen))
            return GossipStatus::record_truncated;
        const uint8_t type = p[0];
        const size_t len = wire::load16(p + 2);
        if (static_cast<size_t>(end - p) - kGossipTlvLen < len)
            return GossipStatus::record_truncated;
        bool known = false;
        const GossipStatus rs = check_record(type, p + kGossipTlvLen, len, hdr_, &known);
        if (rs != GossipStatus::ok)
            return rs;
        if (!known)
            ++unknown;
        ++count;
        p += kGossipTlvLen + len;
    }
    if (count != hdr_.record_count)
        return GossipStatus::record_count_mismatch;

    signed_ = frame.first(size_t{hdr_.header_len} + hdr_.payload_length);
    tag_ = frame.subspan(signed_.size(), kGossipTagLen);
    pos_ = begin;
    end_ = end;
    unknown_ = unknown;
    return GossipStatus::ok;
}

bool FrameReader::next(GossipRecord &out) noexcept
{
    /* open() validated every record, so only types need deciding here. */
    while (pos_ != nullptr && pos_ < end_) {
        const uint8_t type = pos_[0];
        const size_t len = wire::load16(pos_ + 2);
        const uint8_t *v = pos_ + kGossipTlvLen;
        pos_ += kGossipTlvLen + len;
        out.type = static_cast<RecordType>(type);
        switch (out.type) {
        case RecordType::claim:
        case RecordType::release:
            read_flow_entry(v, out.flow);
            return true;
        case RecordType::digest:
            out.digest.owner = wire::load16(v);
            out.digest.flow_count = wire::load32(v + 4);
            out.digest.digest = wire::load64(v + 8);
            return true;
        case RecordType::heartbeat: {
            const MemberView self = read_member(v);
            out.heartbeat.node = self.node;
            out.heartbeat.state = self.state;
            out.heartbeat.draining = self.draining;
            out.heartbeat.incarnation = self.incarnation;
            out.heartbeat.counter = wire::load32(v + 8);
            out.heartbeat.view_count =
                static_cast<uint16_t>((len - kHeartbeatFixedLen) / kMemberViewLen);
            out.heartbeat.views = MemberViewCursor(v + kHeartbeatFixedLen, v + len);
            return true;
        }
        case RecordType::sync_request:
            out.sync_request.target = wire::load16(v);
            out.sync_request.owner_filter = wire::load16(v + 2);
            out.sync_request.request_id = wire::load32(v + 4);
            out.sync_request.cursor = wire::load64(v + 8);
            return true;
        case RecordType::sync_response:
            out.sync_response.requester = wire::load16(v);
            out.sync_response.entry_count = wire::load16(v + 2);
            out.sync_response.request_id = wire::load32(v + 4);
            out.sync_response.next_cursor = wire::load64(v + 8);
            out.sync_response.entries = FlowEntryCursor(v + kSyncResponseFixedLen, v + len);
            return true;
        case RecordType::resend_request:
        case RecordType::resent:
            out.resend.node = wire::load16(v);
            out.resend.incarnation = wire::load32(v + 4);
            out.resend.newest = wire::load64(v + 8);
            out.resend.missing = wire::load64(v + 16);
            return true;
        }
        /* unknown type: skipped (counted by open()) */
    }
    return false;
}

bool FlowEntryCursor::next(FlowEntry &out) noexcept
{
    if (p_ == nullptr || p_ >= end_)
        return false;
    const size_t size = gossip_flow_entry_size(family_of(p_[gossip_flow::family]));
    /* Defensive: a cursor is only built over a validated list, but a
     * default-constructed or hand-made one must not read past its end. */
    if (size == 0 || static_cast<size_t>(end_ - p_) < size) {
        p_ = end_;
        return false;
    }
    read_flow_entry(p_, out);
    p_ += size;
    return true;
}

bool MemberViewCursor::next(MemberView &out) noexcept
{
    if (p_ == nullptr || end_ - p_ < static_cast<ptrdiff_t>(kMemberViewLen))
        return false;
    out = read_member(p_);
    p_ += kMemberViewLen;
    return true;
}

} // namespace flowhome
