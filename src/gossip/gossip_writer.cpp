/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Gossip frame encoding into a caller-provided buffer. Every append first
 * checks the room left under the frame limit (MTU-derived, tag reserved), so
 * a record either fits whole or is refused and the frame is unchanged.
 */
#include <algorithm>
#include <cassert>
#include <cstring>

#include "flowhome/gossip_wire.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {

namespace {

void write_flow_entry(uint8_t *p, const FlowEntry &e) noexcept
{
    const bool v4 = e.key.family == Family::ipv4;
    p[gossip_flow::family] = v4 ? 4 : 6;
    p[gossip_flow::proto] = e.key.proto();
    wire::store16(p + gossip_flow::owner, e.owner);
    wire::store16(p + gossip_flow::version, e.version);
    /* FlowKey keeps ports and addresses in network order already. */
    std::memcpy(p + gossip_flow::client_port, v4 ? &e.key.v4.client_port : &e.key.v6.client_port,
                2);
    std::memcpy(p + gossip_flow::vip_port, v4 ? &e.key.v4.vip_port : &e.key.v6.vip_port, 2);
    const uint16_t age = e.age_s < gossip_flow::max_age_s ? e.age_s : gossip_flow::max_age_s;
    const uint16_t claim_flags = e.moved ? gossip_flow::flag_moved : 0;
    wire::store16(p + gossip_flow::flags, e.released
                                              ? static_cast<uint16_t>(gossip_flow::flag_released |
                                                                      age << gossip_flow::age_shift)
                                              : claim_flags);
    uint8_t *addrs = p + gossip_flow::addrs;
    if (v4) {
        std::memcpy(addrs, &e.key.v4.client_addr, 4);
        std::memcpy(addrs + 4, &e.key.v4.vip_addr, 4);
    } else {
        std::memcpy(addrs, e.key.v6.client_addr, 16);
        std::memcpy(addrs + 16, e.key.v6.vip_addr, 16);
    }
}

void write_member(uint8_t *p, NodeId node, NodeState state, bool draining,
                  uint32_t incarnation) noexcept
{
    wire::store16(p, node);
    p[2] = static_cast<uint8_t>(state);
    p[3] = draining ? kMemberFlagDraining : 0;
    wire::store32(p + 4, incarnation);
}

} // namespace

FrameWriter::FrameWriter(std::span<uint8_t> buffer, size_t max_frame) noexcept : buf_(buffer)
{
    const size_t cap = std::min({buffer.size(), max_frame, kGossipMaxFrame});
    /* A buffer that cannot hold a header and a tag takes no record at all;
     * begin() and finish() then do nothing (limit_ stays 0). */
    limit_ = cap >= kGossipHeaderLen + kGossipTagLen ? cap - kGossipTagLen : 0;
}

void FrameWriter::begin(const FrameHeader &hdr) noexcept
{
    count_ = 0;
    sync_record_ = 0;
    sync_entries_ = 0;
    if (limit_ == 0) {
        len_ = 0;
        return;
    }
    uint8_t *b = buf_.data();
    std::memset(b, 0, kGossipHeaderLen);
    wire::store32(b + gossip_hdr::magic, kGossipMagic);
    b[gossip_hdr::version_major] = hdr.version_major;
    b[gossip_hdr::version_minor] = hdr.version_minor;
    /* This writer lays out the 1.0 header only, whatever the caller asks. */
    b[gossip_hdr::header_len] = kGossipHeaderLen;
    wire::store32(b + gossip_hdr::cluster_id, hdr.cluster_id);
    wire::store16(b + gossip_hdr::sender, hdr.sender);
    wire::store16(b + gossip_hdr::key_id, hdr.key_id);
    wire::store32(b + gossip_hdr::incarnation, hdr.incarnation);
    wire::store64(b + gossip_hdr::sequence, hdr.sequence);
    b[gossip_hdr::flags] = hdr.version_minor >= kGossipMinorBareFrames ? hdr.bare_below : 0;
    len_ = kGossipHeaderLen;
}

uint8_t *FrameWriter::reserve(RecordType type, size_t value_len) noexcept
{
    assert(sync_record_ == 0 && "no record may be added inside a sync response");
    if (len_ < kGossipHeaderLen || sync_record_ != 0 || count_ == UINT16_MAX)
        return nullptr; /* not begun, unusable buffer, inside a sync response, or full */
    if (value_len > limit_ - len_ || kGossipTlvLen > limit_ - len_ - value_len)
        return nullptr;
    uint8_t *p = buf_.data() + len_;
    p[0] = static_cast<uint8_t>(type);
    p[1] = 0;
    wire::store16(p + 2, static_cast<uint16_t>(value_len));
    len_ += kGossipTlvLen + value_len;
    ++count_;
    return p + kGossipTlvLen;
}

bool FrameWriter::add_flow(RecordType type, const FlowEntry &e) noexcept
{
    assert(e.key.family != Family::none);
    const size_t size = gossip_flow_entry_size(e.key.family);
    if (size == 0)
        return false;
    uint8_t *v = reserve(type, size);
    if (v == nullptr)
        return false;
    write_flow_entry(v, e);
    return true;
}

bool FrameWriter::add_digest(const DigestRecord &d) noexcept
{
    uint8_t *v = reserve(RecordType::digest, kDigestRecordLen);
    if (v == nullptr)
        return false;
    wire::store16(v, d.owner);
    wire::store16(v + 2, 0);
    wire::store32(v + 4, d.flow_count);
    wire::store64(v + 8, d.digest);
    return true;
}

bool FrameWriter::add_heartbeat(const HeartbeatRecord &hb,
                                std::span<const MemberView> views) noexcept
{
    if (views.size() > (UINT16_MAX - kHeartbeatFixedLen) / kMemberViewLen)
        return false;
    uint8_t *v = reserve(RecordType::heartbeat, kHeartbeatFixedLen + views.size() * kMemberViewLen);
    if (v == nullptr)
        return false;
    write_member(v, hb.node, hb.state, hb.draining, hb.incarnation);
    wire::store32(v + 8, hb.counter);
    uint8_t *p = v + kHeartbeatFixedLen;
    for (const MemberView &m : views) {
        write_member(p, m.node, m.state, m.draining, m.incarnation);
        p += kMemberViewLen;
    }
    return true;
}

bool FrameWriter::add_sync_request(const SyncRequestRecord &r) noexcept
{
    uint8_t *v = reserve(RecordType::sync_request, kSyncRequestLen);
    if (v == nullptr)
        return false;
    wire::store16(v, r.target);
    wire::store16(v + 2, r.owner_filter);
    wire::store32(v + 4, r.request_id);
    wire::store64(v + 8, r.cursor);
    return true;
}

bool FrameWriter::add_resend(RecordType type, const ResendRecord &r) noexcept
{
    if (type != RecordType::resend_request && type != RecordType::resent)
        return false;
    uint8_t *v = reserve(type, kResendRecordLen);
    if (v == nullptr)
        return false;
    wire::store16(v, r.node);
    wire::store16(v + 2, 0);
    wire::store32(v + 4, r.incarnation);
    wire::store64(v + 8, r.newest);
    wire::store64(v + 16, r.missing);
    return true;
}

bool FrameWriter::begin_sync_response(NodeId requester, uint32_t request_id) noexcept
{
    uint8_t *v = reserve(RecordType::sync_response, kSyncResponseFixedLen);
    if (v == nullptr)
        return false;
    wire::store16(v, requester);
    wire::store16(v + 2, 0);
    wire::store32(v + 4, request_id);
    wire::store64(v + 8, 0);
    sync_record_ = static_cast<size_t>(v - buf_.data()) - kGossipTlvLen;
    sync_entries_ = 0;
    return true;
}

bool FrameWriter::add_sync_entry(const FlowEntry &e) noexcept
{
    assert(sync_record_ != 0 && "begin_sync_response first");
    const size_t size = gossip_flow_entry_size(e.key.family);
    if (sync_record_ == 0 || size == 0 || size > limit_ - len_ || sync_entries_ == UINT16_MAX)
        return false;
    uint8_t *tlv = buf_.data() + sync_record_;
    const size_t value_len = wire::load16(tlv + 2) + size;
    if (value_len > UINT16_MAX)
        return false;
    write_flow_entry(buf_.data() + len_, e);
    len_ += size;
    wire::store16(tlv + 2, static_cast<uint16_t>(value_len));
    ++sync_entries_;
    return true;
}

void FrameWriter::end_sync_response(uint64_t next_cursor) noexcept
{
    assert(sync_record_ != 0 && "begin_sync_response first");
    if (sync_record_ == 0)
        return;
    uint8_t *v = buf_.data() + sync_record_ + kGossipTlvLen;
    wire::store16(v + 2, sync_entries_);
    wire::store64(v + 8, next_cursor);
    sync_record_ = 0;
}

bool FrameWriter::add(const GossipRecord &r) noexcept
{
    switch (r.type) {
    case RecordType::claim:
        return add_claim(r.flow);
    case RecordType::release:
        return add_release(r.flow);
    case RecordType::digest:
        return add_digest(r.digest);
    case RecordType::heartbeat: {
        const HeartbeatRecord &hb = r.heartbeat;
        uint8_t *v = reserve(RecordType::heartbeat,
                             kHeartbeatFixedLen + size_t{hb.view_count} * kMemberViewLen);
        if (v == nullptr)
            return false;
        write_member(v, hb.node, hb.state, hb.draining, hb.incarnation);
        wire::store32(v + 8, hb.counter);
        MemberViewCursor views = hb.views;
        MemberView m;
        for (uint16_t i = 0; i < hb.view_count; ++i) {
            uint8_t *p = v + kHeartbeatFixedLen + size_t{i} * kMemberViewLen;
            if (views.next(m))
                write_member(p, m.node, m.state, m.draining, m.incarnation);
            else
                std::memset(p, 0, kMemberViewLen);
        }
        return true;
    }
    case RecordType::sync_request:
        return add_sync_request(r.sync_request);
    case RecordType::sync_response: {
        const size_t saved_len = len_;
        const uint16_t saved_count = count_;
        const SyncResponseRecord &s = r.sync_response;
        if (!begin_sync_response(s.requester, s.request_id))
            return false;
        FlowEntryCursor entries = s.entries;
        FlowEntry e;
        while (entries.next(e)) {
            if (!add_sync_entry(e)) {
                /* All or nothing: roll the partial record back. */
                len_ = saved_len;
                count_ = saved_count;
                sync_record_ = 0;
                return false;
            }
        }
        end_sync_response(s.next_cursor);
        return true;
    }
    case RecordType::resend_request:
    case RecordType::resent:
        return add_resend(r.type, r.resend);
    }
    return false;
}

bool FrameWriter::add_raw(uint8_t type, std::span<const uint8_t> value) noexcept
{
    if (value.size() > UINT16_MAX)
        return false;
    uint8_t *v = reserve(static_cast<RecordType>(type), value.size());
    if (v == nullptr)
        return false;
    if (!value.empty())
        std::memcpy(v, value.data(), value.size());
    return true;
}

std::span<uint8_t> FrameWriter::finish() noexcept
{
    assert(sync_record_ == 0 && "end_sync_response first");
    if (len_ < kGossipHeaderLen)
        return {};
    uint8_t *b = buf_.data();
    wire::store16(b + gossip_hdr::record_count, count_);
    wire::store16(b + gossip_hdr::payload_length, static_cast<uint16_t>(len_ - kGossipHeaderLen));
    return buf_.first(len_);
}

} // namespace flowhome
