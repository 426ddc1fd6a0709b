/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys: how they read to an operator, equality, and the flow an ICMP
 * error is about. Building and hashing a key happen for every packet and
 * are inline in packet.hpp.
 */
#include "flowhome/packet.hpp"

#include <cstring>

#include "flowhome/wire.hpp"

#include <fmt/format.h>

namespace flowhome {
namespace {

std::string proto_name(uint8_t proto)
{
    switch (proto) {
    case kProtoTcp:
        return "tcp";
    case kProtoUdp:
        return "udp";
    case kProtoIcmp:
        return "icmp";
    case kProtoIcmpv6:
        return "icmpv6";
    default:
        return fmt::format("proto {}", proto);
    }
}

} // namespace

IpAddr FlowKey::client() const noexcept
{
    switch (family) {
    case Family::ipv4:
        return IpAddr::v4(v4.client_addr);
    case Family::ipv6:
        return IpAddr::v6(v6.client_addr);
    case Family::none:
        break;
    }
    return IpAddr{};
}

IpAddr FlowKey::vip() const noexcept
{
    switch (family) {
    case Family::ipv4:
        return IpAddr::v4(v4.vip_addr);
    case Family::ipv6:
        return IpAddr::v6(v6.vip_addr);
    case Family::none:
        break;
    }
    return IpAddr{};
}

uint16_t FlowKey::client_port() const noexcept
{
    return wire::be16(family == Family::ipv4 ? v4.client_port : v6.client_port);
}

uint16_t FlowKey::vip_port() const noexcept
{
    return wire::be16(family == Family::ipv4 ? v4.vip_port : v6.vip_port);
}

uint8_t FlowKey::proto() const noexcept
{
    return family == Family::ipv4 ? v4.proto : v6.proto;
}

std::string FlowKey::to_string() const
{
    if (family == Family::none)
        return "none";
    return fmt::format("{} {} -> {}", proto_name(proto()), client().with_port(client_port()),
                       vip().with_port(vip_port()));
}

bool operator==(const FlowKey &a, const FlowKey &b) noexcept
{
    /* A v4 key and a v6 key never match, even if their leading bytes do;
     * the bytes past a v4 key's 16 are not part of it. */
    if (a.family != b.family)
        return false;
    return std::memcmp(a.bytes(), b.bytes(), a.size()) == 0;
}

bool icmp_error_flow(const uint8_t *frame, uint32_t len, const ParsedPacket &p,
                     FlowKey &key) noexcept
{
    constexpr uint32_t kIcmpHeaderLen = 8;
    if (p.l4_offset == 0 || p.later_fragment)
        return false;
    const uint32_t icmp = p.l4_offset;
    const uint32_t q = icmp + kIcmpHeaderLen; /* the quoted packet */
    if (len < q)
        return false;
    const uint8_t type = frame[icmp];
    if (p.family == Family::ipv4 && p.l4_proto == kProtoIcmp) {
        /* RFC 792: 3 destination unreachable, 11 time exceeded, 12 parameter problem. */
        if ((type != 3 && type != 11 && type != 12) || len < q + wire::kIpv4HeaderLen)
            return false;
        const uint32_t ihl = uint32_t{frame[q] & 0x0Fu} * 4;
        const uint8_t proto = frame[q + 9];
        if ((frame[q] >> 4) != 4 || ihl < wire::kIpv4HeaderLen || len < q + ihl + 4 ||
            (proto != kProtoTcp && proto != kProtoUdp) ||
            (wire::load16(frame + q + 6) & 0x1FFF) != 0)
            return false;
        uint32_t vip;
        uint32_t client;
        uint16_t vip_port;
        uint16_t client_port;
        std::memcpy(&vip, frame + q + 12, 4);
        std::memcpy(&client, frame + q + 16, 4);
        std::memcpy(&vip_port, frame + q + ihl, 2);
        std::memcpy(&client_port, frame + q + ihl + 2, 2);
        key = FlowKey::make4(client, client_port, vip, vip_port, proto);
        return true;
    }
    if (p.family == Family::ipv6 && p.l4_proto == kProtoIcmpv6) {
        /* RFC 4443: 1 destination unreachable, 2 packet too big, 3 time
         * exceeded, 4 parameter problem. A quote with extension headers
         * before its transport header is not followed. */
        const uint8_t proto = len >= q + wire::kIpv6HeaderLen ? frame[q + 6] : 0;
        if (type < 1 || type > 4 || len < q + wire::kIpv6HeaderLen + 4 || (frame[q] >> 4) != 6 ||
            (proto != kProtoTcp && proto != kProtoUdp))
            return false;
        uint16_t vip_port;
        uint16_t client_port;
        std::memcpy(&vip_port, frame + q + wire::kIpv6HeaderLen, 2);
        std::memcpy(&client_port, frame + q + wire::kIpv6HeaderLen + 2, 2);
        key = FlowKey::make6(frame + q + 24, client_port, frame + q + 8, vip_port, proto);
        return true;
    }
    return false;
}

} // namespace flowhome
