/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Datapath: turns a packet that will not fit once encapsulated into the ICMP
 * error that makes its sender lower its path MTU, in place, in the mbuf that
 * carried it. Runs on the worker cores: noexcept, no allocation. Every
 * refusal happens before the first write, so a refused mbuf is unchanged.
 *
 * The new IP and ICMP headers (28 bytes for IPv4, 48 for IPv6) are prepended
 * from the headroom and the (short) L2 header is moved in front of them, so
 * the original IP packet is quoted where it already lies: no payload copy.
 * Rate limiting (RFC 1812 4.3.2.8, RFC 4443 2.4(f)) is the caller's duty.
 */
#include "flowhome/encap.hpp"
#include "flowhome/wire.hpp"

#include <algorithm>
#include <cstring>

#include <rte_ip.h>
#include <rte_mbuf.h>

namespace flowhome {
namespace {

using namespace wire;

constexpr uint32_t kIcmpHeaderLen = 8;
constexpr uint32_t kMacLen = 6;

/* RFC 1812 4.3.2.3: an ICMP error SHOULD be no longer than 576 bytes. */
constexpr uint32_t kIcmp4MaxLen = 576;
/* RFC 4443 2.4(c): as much of the invoking packet as fits the IPv6 minimum MTU. */
constexpr uint32_t kIcmp6MaxLen = 1280;
/* RFC 791: every IPv4 link carries 68 bytes; RFC 8200 section 5: every IPv6 link 1280. */
constexpr uint16_t kMinIpv4Mtu = 68;
constexpr uint32_t kMinIpv6Mtu = 1280;

constexpr uint8_t kIcmp4DestUnreachable = 3;
constexpr uint8_t kIcmp4FragNeeded = 4;
constexpr uint8_t kIcmp6PacketTooBig = 2;
/* RFC 4443 2.1: ICMPv6 types below 128 are errors. */
constexpr uint8_t kIcmp6FirstInformational = 128;
constexpr uint8_t kIcmpErrorTtl = 64;
/* RFC 1812 4.3.2.5: ICMP errors SHOULD carry precedence 6 (internetwork control). */
constexpr uint8_t kIcmp4Tos = 0xC0;

/* RFC 792 / RFC 4443 2.2: ICMP is an error about a packet, never about another error. */
bool is_icmp4_error(uint8_t type) noexcept
{
    switch (type) {
    case 3:  /* destination unreachable */
    case 4:  /* source quench */
    case 5:  /* redirect */
    case 11: /* time exceeded */
    case 12: /* parameter problem */
        return true;
    default:
        return false;
    }
}

/*
 * RFC 1122 3.2.2 / RFC 1812 4.3.2.7: no error to a source that does not
 * name a single host: "this network" 0/8, loopback 127/8, multicast 224/4,
 * class E 240/4 and the limited broadcast 255.255.255.255.
 */
bool ipv4_source_is_host(const uint8_t *addr) noexcept
{
    return addr[0] != 0 && addr[0] != 127 && addr[0] < 224;
}

/* RFC 4443 2.4(e): not to the unspecified address nor to a multicast
 * source; nor to the loopback address, which never leaves a node (RFC 4291
 * 2.5.3), nor to an IPv4-mapped one (2.5.5.2), which names no IPv6 host. */
bool ipv6_source_is_host(const uint8_t *addr) noexcept
{
    if (addr[0] == 0xFF)
        return false;
    static constexpr uint8_t unspecified[16] = {};
    static constexpr uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static constexpr uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    return std::memcmp(addr, unspecified, sizeof(unspecified)) != 0 &&
           std::memcmp(addr, loopback, sizeof(loopback)) != 0 &&
           std::memcmp(addr, mapped, sizeof(mapped)) != 0;
}

/*
 * Common tail of both families: prepend @p hdr bytes, move the L2 header
 * (with its VLAN tags) to the new start, swap the MAC addresses, and cut the
 * packet after @p quote bytes of the original IP packet. Returns the first
 * byte of the new IP header.
 */
uint8_t *reshape(rte_mbuf *m, uint16_t l2_len, uint32_t hdr, uint32_t quote) noexcept
{
    auto *start = reinterpret_cast<uint8_t *>(rte_pktmbuf_prepend(m, static_cast<uint16_t>(hdr)));
    std::memmove(start, start + hdr, l2_len);
    uint8_t mac[kMacLen];
    std::memcpy(mac, start, kMacLen);
    std::memcpy(start, start + kMacLen, kMacLen);
    std::memcpy(start + kMacLen, mac, kMacLen);

    /* The quote ends in the first segment (checked by the caller): drop the rest of the chain. */
    if (m->next != nullptr) {
        rte_pktmbuf_free(m->next);
        m->next = nullptr;
        m->nb_segs = 1;
    }
    const uint32_t total = l2_len + hdr + quote;
    m->data_len = static_cast<uint16_t>(total);
    m->pkt_len = total;
    set_tx_lengths(m, l2_len, static_cast<uint16_t>(hdr - kIcmpHeaderLen));
    return start + l2_len;
}

/* Bytes of the original IP packet that fit: its length, the size limit, the first segment. */
uint32_t quote_len(const rte_mbuf *m, const ParsedPacket &p, uint32_t limit) noexcept
{
    return std::min({static_cast<uint32_t>(p.l3_len), limit,
                     static_cast<uint32_t>(rte_pktmbuf_data_len(m) - p.l3_offset)});
}

/* Whether an error about @p m is due (RFC 1191, RFC 1122) and fits its headroom. */
bool due_v4(const rte_mbuf *m, const ParsedPacket &p) noexcept
{
    const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t seg_len = rte_pktmbuf_data_len(m);
    if (uint32_t{p.l3_offset} + kIpv4HeaderLen > seg_len)
        return false;
    const uint8_t *ip = frame + p.l3_offset;

    /* RFC 1191 section 4: "fragmentation needed" is only due when DF forbids fragmenting. */
    if (!p.dont_fragment)
        return false;
    /* RFC 1122 3.2.2: never about a non-initial fragment, ... */
    if (p.later_fragment)
        return false;
    /* ... an ICMP error, ... */
    if (p.l4_proto == kProtoIcmp) {
        if (p.l4_offset == 0 || p.l4_offset >= seg_len || is_icmp4_error(frame[p.l4_offset]))
            return false;
    }
    /* ... a link-layer or IP broadcast / multicast, or a source that is not one host. */
    if (link_group(frame) || ip[16] >= 224 || !ipv4_source_is_host(ip + 12))
        return false;

    return rte_pktmbuf_headroom(m) >= kIpv4HeaderLen + kIcmpHeaderLen;
}

/* The same for IPv6 (RFC 4443). */
bool due_v6(const rte_mbuf *m, const ParsedPacket &p) noexcept
{
    const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t seg_len = rte_pktmbuf_data_len(m);
    if (uint32_t{p.l3_offset} + kIpv6HeaderLen > seg_len)
        return false;
    const uint8_t *ip = frame + p.l3_offset;

    /*
     * RFC 4443 2.4(e): never about an ICMPv6 error. A later fragment hides
     * the ICMPv6 type, so it gets no error either.
     */
    if (p.l4_proto == kProtoIcmpv6) {
        if (p.later_fragment || p.l4_offset == 0 || p.l4_offset >= seg_len ||
            frame[p.l4_offset] < kIcmp6FirstInformational)
            return false;
    }
    /*
     * Packet Too Big may answer a multicast destination, even a link-layer
     * one (2.4(e.3) to (e.5)), but needs a unicast source. Not a link-layer
     * group, though: the error takes the frame's destination as its source
     * MAC, which must be one station's (IEEE 802).
     */
    if (link_group(frame) || !ipv6_source_is_host(ip + 8))
        return false;

    return rte_pktmbuf_headroom(m) >= kIpv6HeaderLen + kIcmpHeaderLen;
}

/* The error in place of @p m, for which due_v4() holds. */
void too_big_v4(rte_mbuf *m, const ParsedPacket &p, uint16_t mtu, const IpAddr &ours) noexcept
{
    const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, p.l3_offset);
    constexpr uint32_t hdr = kIpv4HeaderLen + kIcmpHeaderLen;
    const uint32_t quote = quote_len(m, p, kIcmp4MaxLen - hdr);

    uint8_t orig_src[4];
    std::memcpy(orig_src, ip + 12, sizeof(orig_src));
    uint8_t *nip = reshape(m, p.l3_offset, hdr, quote);

    /* RFC 791 header; DF set so ID 0 is fine (RFC 6864 4.1): 576 bytes fit every path. */
    nip[0] = 0x45;
    nip[1] = kIcmp4Tos;
    store16(nip + 2, static_cast<uint16_t>(hdr + quote));
    store16(nip + 4, 0);
    store16(nip + 6, 0x4000);
    nip[8] = kIcmpErrorTtl;
    nip[9] = kProtoIcmp;
    store16(nip + 10, 0);
    std::memcpy(nip + 12, ours.bytes.data(), 4);
    std::memcpy(nip + 16, orig_src, 4);
    const uint16_t ip_csum = static_cast<uint16_t>(~rte_raw_cksum(nip, kIpv4HeaderLen));
    std::memcpy(nip + 10, &ip_csum, sizeof(ip_csum));

    /* RFC 792 type 3 code 4, RFC 1191 section 4: unused 16 bits, then the next-hop MTU. */
    uint8_t *icmp = nip + kIpv4HeaderLen;
    icmp[0] = kIcmp4DestUnreachable;
    icmp[1] = kIcmp4FragNeeded;
    store16(icmp + 2, 0);
    store16(icmp + 4, 0);
    store16(icmp + 6, std::max(mtu, kMinIpv4Mtu));
    const uint16_t icmp_csum = static_cast<uint16_t>(~rte_raw_cksum(icmp, kIcmpHeaderLen + quote));
    std::memcpy(icmp + 2, &icmp_csum, sizeof(icmp_csum));
}

/* The same for IPv6, for which due_v6() holds. */
void too_big_v6(rte_mbuf *m, const ParsedPacket &p, uint16_t mtu, const IpAddr &ours) noexcept
{
    const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, p.l3_offset);
    constexpr uint32_t hdr = kIpv6HeaderLen + kIcmpHeaderLen;
    const uint32_t quote = quote_len(m, p, kIcmp6MaxLen - hdr);

    uint8_t orig_src[16];
    std::memcpy(orig_src, ip + 8, sizeof(orig_src));
    uint8_t *nip = reshape(m, p.l3_offset, hdr, quote);

    /* RFC 8200 section 3. */
    const uint32_t icmp_len = kIcmpHeaderLen + quote;
    store32(nip, 6u << 28);
    store16(nip + 4, static_cast<uint16_t>(icmp_len));
    nip[6] = kProtoIcmpv6;
    nip[7] = kIcmpErrorTtl;
    std::memcpy(nip + 8, ours.bytes.data(), 16);
    std::memcpy(nip + 24, orig_src, 16);

    /* RFC 4443 3.2: type 2, code 0, the MTU as 32 bits, never below the IPv6 minimum. */
    uint8_t *icmp = nip + kIpv6HeaderLen;
    icmp[0] = kIcmp6PacketTooBig;
    icmp[1] = 0;
    store16(icmp + 2, 0);
    store32(icmp + 4, std::max(static_cast<uint32_t>(mtu), kMinIpv6Mtu));

    /* RFC 4443 2.3 / RFC 8200 8.1: checksum over the pseudo-header and the message. */
    uint32_t sum = rte_raw_cksum(nip + 8, 32);
    sum += wire::be16(static_cast<uint16_t>(icmp_len));
    sum += wire::be16(static_cast<uint16_t>(kProtoIcmpv6));
    sum += rte_raw_cksum(icmp, icmp_len);
    const uint16_t csum = static_cast<uint16_t>(~fold(sum));
    std::memcpy(icmp + 2, &csum, sizeof(csum));
}

} // namespace

bool packet_too_big_due(const rte_mbuf *m, const ParsedPacket &p, const DecapConfig &local) noexcept
{
    if (p.l3_offset < 2 * kMacLen || p.l3_len == 0)
        return false;
    if (p.family == Family::ipv4)
        return local.local_v4 && local.local_v4->family == Family::ipv4 && due_v4(m, p);
    if (p.family == Family::ipv6)
        return local.local_v6 && local.local_v6->family == Family::ipv6 && due_v6(m, p);
    return false;
}

bool make_packet_too_big(rte_mbuf *m, const ParsedPacket &p, uint16_t mtu,
                         const DecapConfig &local) noexcept
{
    if (!packet_too_big_due(m, p, local))
        return false;
    if (p.family == Family::ipv4)
        too_big_v4(m, p, mtu, *local.local_v4);
    else
        too_big_v6(m, p, mtu, *local.local_v6);
    return true;
}

} // namespace flowhome
