/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys: how they read to an operator, and equality. Building and
 * hashing a key happen for every packet and are inline in packet.hpp.
 */
#include "flowhome/packet.hpp"

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

/* RFC 5952 6: an IPv6 address followed by a port is written in brackets. */
std::string endpoint(const IpAddr &addr, uint16_t port)
{
    if (addr.family == Family::ipv6)
        return fmt::format("[{}]:{}", addr.to_string(), port);
    return fmt::format("{}:{}", addr.to_string(), port);
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
    return fmt::format("{} {} -> {}", proto_name(proto()), endpoint(client(), client_port()),
                       endpoint(vip(), vip_port()));
}

bool operator==(const FlowKey &a, const FlowKey &b) noexcept
{
    /* A v4 key and a v6 key never match, even if their leading bytes do;
     * the bytes past a v4 key's 16 are not part of it. */
    if (a.family != b.family)
        return false;
    return std::memcmp(a.bytes(), b.bytes(), a.size()) == 0;
}

} // namespace flowhome
