/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys: the client side and the VIP side of a connection, in network
 * byte order, hashed with CRC32-C so that every node computes the same value
 * for the same connection.
 */
#include "flowhome/packet.hpp"

#include <rte_byteorder.h>
#include <rte_hash_crc.h>

#include <fmt/format.h>

namespace flowhome {
namespace {

constexpr uint32_t kIpv4SrcOffset = 12;
constexpr uint32_t kIpv4DstOffset = 16;
constexpr uint32_t kIpv6SrcOffset = 8;
constexpr uint32_t kIpv6DstOffset = 24;

/* The key bytes that identify a connection: the whole 16- or 40-byte struct,
 * pad included (always zero), as rte_hash compares keys bytewise too. */
size_t key_size(Family family) noexcept
{
    switch (family) {
    case Family::ipv4:
        return sizeof(FlowKey4);
    case Family::ipv6:
        return sizeof(FlowKey6);
    case Family::none:
        break;
    }
    return 0;
}

const void *key_bytes(const FlowKey &key) noexcept
{
    return key.family == Family::ipv4 ? static_cast<const void *>(&key.v4)
                                      : static_cast<const void *>(&key.v6);
}

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

FlowKey FlowKey::make4(uint32_t client_be, uint16_t client_port_be, uint32_t vip_be,
                       uint16_t vip_port_be, uint8_t proto) noexcept
{
    FlowKey k;
    k.family = Family::ipv4;
    k.v4.client_addr = client_be;
    k.v4.vip_addr = vip_be;
    k.v4.client_port = client_port_be;
    k.v4.vip_port = vip_port_be;
    k.v4.proto = proto;
    return k;
}

FlowKey FlowKey::make6(const uint8_t *client, uint16_t client_port_be, const uint8_t *vip,
                       uint16_t vip_port_be, uint8_t proto) noexcept
{
    FlowKey k;
    k.family = Family::ipv6;
    std::memcpy(k.v6.client_addr, client, sizeof(k.v6.client_addr));
    std::memcpy(k.v6.vip_addr, vip, sizeof(k.v6.vip_addr));
    k.v6.client_port = client_port_be;
    k.v6.vip_port = vip_port_be;
    k.v6.proto = proto;
    return k;
}

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
    return rte_be_to_cpu_16(family == Family::ipv4 ? v4.client_port : v6.client_port);
}

uint16_t FlowKey::vip_port() const noexcept
{
    return rte_be_to_cpu_16(family == Family::ipv4 ? v4.vip_port : v6.vip_port);
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
    return std::memcmp(key_bytes(a), key_bytes(b), key_size(a.family)) == 0;
}

FlowKey flow_key_of(const uint8_t *frame, const ParsedPacket &p) noexcept
{
    const uint8_t *ip = frame + p.l3_offset;
    const uint16_t src_port = rte_cpu_to_be_16(p.src_port);
    const uint16_t dst_port = rte_cpu_to_be_16(p.dst_port);
    if (p.family == Family::ipv4) {
        uint32_t src;
        uint32_t dst;
        std::memcpy(&src, ip + kIpv4SrcOffset, sizeof(src));
        std::memcpy(&dst, ip + kIpv4DstOffset, sizeof(dst));
        return FlowKey::make4(src, src_port, dst, dst_port, p.l4_proto);
    }
    return FlowKey::make6(ip + kIpv6SrcOffset, src_port, ip + kIpv6DstOffset, dst_port, p.l4_proto);
}

uint32_t flow_hash(const FlowKey &key) noexcept
{
    /* CRC32-C (Castagnoli) of the key bytes, 8 at a time: for lengths that
     * are multiples of 8 this is exactly rte_hash_crc(bytes, size,
     * kFlowHashSeed), the ownership table's hash function, in every DPDK
     * version (older ones treated a tail under 8 bytes differently). It is
     * written out because rte_hash_crc() casts the key to uint64_t * and the
     * key here is only 4-byte aligned; memcpy keeps the loads defined. The
     * SSE4.2 instruction and DPDK's table fallback give identical values,
     * and the seed is fixed, so every node and build agrees. */
    const auto *bytes = static_cast<const uint8_t *>(key_bytes(key));
    const size_t size = key_size(key.family);
    static_assert(sizeof(FlowKey4) % 8 == 0 && sizeof(FlowKey6) % 8 == 0);
    uint32_t crc = kFlowHashSeed;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t word;
        std::memcpy(&word, bytes + i, sizeof(word));
        crc = rte_hash_crc_8byte(word, crc);
    }
    return crc;
}

} // namespace flowhome
