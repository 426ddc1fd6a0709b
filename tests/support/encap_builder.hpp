/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Test-only frame builder for the encapsulation tests: inner packets
 * (Ethernet, VLAN, IPv4, IPv6, TCP, UDP, ICMP) and the outer headers that
 * flowhome should produce (GENEVE, IP-in-IP), written byte by byte from the
 * RFCs. It deliberately shares no code with flowhome (no DPDK, no flowhome
 * header, its own RFC 1071 checksum over big-endian words) so that comparing
 * flowhome's output with it is a real cross-check.
 */
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flowhome::test::eb {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;
using Ip6 = std::array<uint8_t, 16>;
using Ip4 = std::array<uint8_t, 4>;

inline void put8(Bytes &b, uint8_t v)
{
    b.push_back(v);
}
inline void put16(Bytes &b, uint16_t v)
{
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes &b, uint32_t v)
{
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
}
template <typename C> inline void put(Bytes &b, const C &c)
{
    b.insert(b.end(), c.begin(), c.end());
}
inline uint16_t get16(const Bytes &b, size_t off)
{
    return static_cast<uint16_t>(b.at(off) << 8 | b.at(off + 1));
}
inline uint32_t get32(const Bytes &b, size_t off)
{
    return static_cast<uint32_t>(get16(b, off)) << 16 | get16(b, off + 2);
}
inline void set16(Bytes &b, size_t off, uint16_t v)
{
    b.at(off) = static_cast<uint8_t>(v >> 8);
    b.at(off + 1) = static_cast<uint8_t>(v);
}
inline Bytes cat(Bytes a, const Bytes &b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
inline Bytes slice(const Bytes &b, size_t off, size_t len)
{
    return Bytes(b.begin() + static_cast<ptrdiff_t>(off),
                 b.begin() + static_cast<ptrdiff_t>(off + len));
}

/** RFC 1071: 32-bit accumulation of big-endian 16-bit words, odd byte padded with zero. */
inline uint32_t sum_words(const uint8_t *p, size_t len, uint32_t acc = 0)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (len % 2)
        acc += static_cast<uint32_t>(p[len - 1] << 8);
    return acc;
}
inline uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xFFFF) + (acc >> 16);
    return static_cast<uint16_t>(acc);
}
inline uint16_t checksum(const uint8_t *p, size_t len, uint32_t acc = 0)
{
    return static_cast<uint16_t>(~fold(sum_words(p, len, acc)));
}
inline uint16_t checksum(const Bytes &b, size_t off, size_t len, uint32_t acc = 0)
{
    return checksum(b.data() + off, len, acc);
}
/** True when the RFC 1071 sum over [off, off+len) (checksum included) is all ones. */
inline bool checksum_ok(const Bytes &b, size_t off, size_t len, uint32_t acc = 0)
{
    return fold(sum_words(b.data() + off, len, acc)) == 0xFFFF;
}

/** The TOS (IPv4) or traffic class (IPv6) of the IP header at @p off of @p b. */
inline uint8_t tos_at(const Bytes &b, size_t off)
{
    return (b[off] >> 4) == 4 ? b[off + 1] : static_cast<uint8_t>(get16(b, off) >> 4);
}

/** Sets the TOS / traffic class of the IP header at @p off of @p b, and an
 *  IPv4 header's checksum (recomputed whole). */
inline void set_tos_at(Bytes &b, size_t off, uint8_t tos)
{
    if ((b[off] >> 4) == 4) {
        b[off + 1] = tos;
        set16(b, off + 10, 0);
        set16(b, off + 10, checksum(b, off, 4u * (b[off] & 0x0F)));
    } else {
        set16(b, off, static_cast<uint16_t>((get16(b, off) & 0xF00F) | (tos << 4)));
    }
}

/** IPv4 pseudo-header sum (RFC 768 / RFC 9293 3.1). */
inline uint32_t pseudo4(const Ip4 &src, const Ip4 &dst, uint8_t proto, uint32_t len)
{
    uint32_t acc = sum_words(src.data(), 4);
    acc = sum_words(dst.data(), 4, acc);
    return acc + proto + len;
}
/** IPv6 pseudo-header sum (RFC 8200 8.1): addresses, 32-bit length, 24 zero bits, next header. */
inline uint32_t pseudo6(const Ip6 &src, const Ip6 &dst, uint8_t nh, uint32_t len)
{
    uint32_t acc = sum_words(src.data(), 16);
    acc = sum_words(dst.data(), 16, acc);
    return acc + (len >> 16) + (len & 0xFFFF) + nh;
}
inline uint32_t pseudo6_at(const Bytes &frame, size_t ip6_off, uint8_t nh, uint32_t len)
{
    return sum_words(frame.data() + ip6_off + 8, 32) + (len >> 16) + (len & 0xFFFF) + nh;
}

/** Deterministic payload bytes. */
inline Bytes payload(size_t n, uint8_t seed = 0x5A)
{
    Bytes b(n);
    for (size_t i = 0; i < n; ++i)
        b[i] = static_cast<uint8_t>(seed + i * 7);
    return b;
}

/** Ethernet II with optional 802.1Q tags (TPID 0x8100), padded to 60 bytes if asked. */
inline Bytes ether(const Mac &dst, const Mac &src, uint16_t type, const Bytes &body,
                   const std::vector<uint16_t> &vlans = {}, bool pad = false)
{
    Bytes b;
    put(b, dst);
    put(b, src);
    for (uint16_t tci : vlans) {
        put16(b, 0x8100);
        put16(b, tci);
    }
    put16(b, type);
    put(b, body);
    while (pad && b.size() < 60)
        b.push_back(0);
    return b;
}

struct V4Opts {
    uint8_t tos = 0;
    uint16_t id = 0x1234;
    bool df = true;
    uint16_t frag_offset = 0; /**< in 8-byte units */
    bool more_fragments = false;
    uint8_t ttl = 64;
    Bytes options; /**< raw IPv4 options, a multiple of 4 bytes */
};

/** RFC 791 header followed by @p body, checksum computed. */
inline Bytes ipv4(const Ip4 &src, const Ip4 &dst, uint8_t proto, const Bytes &body,
                  const V4Opts &o = {})
{
    Bytes b;
    const size_t hlen = 20 + o.options.size();
    put8(b, static_cast<uint8_t>(0x40 | (hlen / 4)));
    put8(b, o.tos);
    put16(b, static_cast<uint16_t>(hlen + body.size()));
    put16(b, o.id);
    put16(b, static_cast<uint16_t>((o.df ? 0x4000 : 0) | (o.more_fragments ? 0x2000 : 0) |
                                   o.frag_offset));
    put8(b, o.ttl);
    put8(b, proto);
    put16(b, 0);
    put(b, src);
    put(b, dst);
    put(b, o.options);
    set16(b, 10, checksum(b.data(), hlen));
    put(b, body);
    return b;
}

/** RFC 8200 fixed header followed by @p body (extension headers included in body). */
inline Bytes ipv6(const Ip6 &src, const Ip6 &dst, uint8_t nh, const Bytes &body,
                  uint8_t hop_limit = 64, uint32_t flow_label = 0)
{
    Bytes b;
    put32(b, 6u << 28 | (flow_label & 0xFFFFF));
    put16(b, static_cast<uint16_t>(body.size()));
    put8(b, nh);
    put8(b, hop_limit);
    put(b, src);
    put(b, dst);
    put(b, body);
    return b;
}

/** RFC 768 datagram; checksum per family (0 when @p csum_acc is nullptr). */
inline Bytes udp(uint16_t sport, uint16_t dport, const Bytes &data, const uint32_t *pseudo_acc)
{
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put16(b, static_cast<uint16_t>(8 + data.size()));
    put16(b, 0);
    put(b, data);
    if (pseudo_acc) {
        uint16_t c = checksum(b.data(), b.size(), *pseudo_acc);
        set16(b, 6, c == 0 ? 0xFFFF : c);
    }
    return b;
}

/** RFC 9293 segment with a 20-byte header. */
inline Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags, const Bytes &data,
                 uint32_t pseudo_acc)
{
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put32(b, 1000);
    put32(b, 2000);
    put8(b, 0x50);
    put8(b, flags);
    put16(b, 65535);
    put16(b, 0);
    put16(b, 0);
    put(b, data);
    set16(b, 16, checksum(b.data(), b.size(), pseudo_acc));
    return b;
}

inline Bytes ipv4_udp(const Ip4 &src, const Ip4 &dst, uint16_t sport, uint16_t dport,
                      const Bytes &data, const V4Opts &o = {})
{
    const uint32_t ps = pseudo4(src, dst, 17, static_cast<uint32_t>(8 + data.size()));
    return ipv4(src, dst, 17, udp(sport, dport, data, &ps), o);
}
inline Bytes ipv4_tcp(const Ip4 &src, const Ip4 &dst, uint16_t sport, uint16_t dport, uint8_t flags,
                      const Bytes &data, const V4Opts &o = {})
{
    return ipv4(src, dst, 6,
                tcp(sport, dport, flags, data,
                    pseudo4(src, dst, 6, static_cast<uint32_t>(20 + data.size()))),
                o);
}
inline Bytes ipv6_udp(const Ip6 &src, const Ip6 &dst, uint16_t sport, uint16_t dport,
                      const Bytes &data)
{
    const uint32_t ps = pseudo6(src, dst, 17, static_cast<uint32_t>(8 + data.size()));
    return ipv6(src, dst, 17, udp(sport, dport, data, &ps));
}
inline Bytes ipv6_tcp(const Ip6 &src, const Ip6 &dst, uint16_t sport, uint16_t dport, uint8_t flags,
                      const Bytes &data)
{
    return ipv6(src, dst, 6,
                tcp(sport, dport, flags, data,
                    pseudo6(src, dst, 6, static_cast<uint32_t>(20 + data.size()))));
}
/** An ICMP or ICMPv6 message with a zero checksum: type, code, checksum, 4
 * bytes rest-of-header, data. (Sized first: GCC 12 at -O3 warns, wrongly,
 * on an insert after the 8 header bytes.) */
inline Bytes icmp_message(uint8_t type, uint8_t code, const Bytes &data)
{
    Bytes b(8 + data.size());
    b[0] = type;
    b[1] = code;
    std::copy(data.begin(), data.end(), b.begin() + 8);
    return b;
}
/** ICMP (RFC 792) message with its checksum. */
inline Bytes icmp4(uint8_t type, uint8_t code, const Bytes &data)
{
    Bytes b = icmp_message(type, code, data);
    set16(b, 2, checksum(b.data(), b.size()));
    return b;
}
/** ICMPv6 (RFC 4443) message with its pseudo-header checksum. */
inline Bytes icmp6(const Ip6 &src, const Ip6 &dst, uint8_t type, uint8_t code, const Bytes &data)
{
    Bytes b = icmp_message(type, code, data);
    set16(b, 2,
          checksum(b.data(), b.size(), pseudo6(src, dst, 58, static_cast<uint32_t>(b.size()))));
    return b;
}

/* ---- GENEVE, RFC 8926 ---- */

/** Fixed 8-byte header (3.4): Ver, Opt Len, O, C, protocol, VNI. */
inline Bytes geneve_header(uint8_t opt_words, uint16_t protocol, uint8_t version = 0,
                           bool oam = false, bool critical = false, uint32_t vni = 0)
{
    Bytes b;
    put8(b, static_cast<uint8_t>(version << 6 | (opt_words & 0x3F)));
    put8(b, static_cast<uint8_t>((oam ? 0x80 : 0) | (critical ? 0x40 : 0)));
    put16(b, protocol);
    put32(b, vni << 8);
    return b;
}
/** Option TLV (3.5): class, type, length of @p data in 4-byte words (or @p words_override). */
inline Bytes geneve_option(uint16_t cls, uint8_t type, const Bytes &data, int words_override = -1)
{
    Bytes b;
    put16(b, cls);
    put8(b, type);
    put8(b, static_cast<uint8_t>(words_override >= 0 ? words_override : data.size() / 4));
    put(b, data);
    return b;
}
/** flowhome's option: class 0xFFF0, type 0x46, 8 bytes of data. */
inline Bytes flowhome_option(uint16_t ingress, uint8_t hops, uint16_t affinity,
                             uint16_t service_version)
{
    Bytes d;
    put16(d, ingress);
    put8(d, hops);
    put8(d, 0);
    put16(d, affinity);
    put16(d, service_version);
    return geneve_option(0xFFF0, 0x46, d);
}

/** GENEVE payload of a UDP datagram: header + options + inner. */
inline Bytes geneve(const Bytes &options, uint16_t protocol, const Bytes &inner,
                    uint8_t version = 0, bool oam = false, bool critical = false,
                    int opt_words_override = -1)
{
    const auto words =
        static_cast<uint8_t>(opt_words_override >= 0 ? opt_words_override : options.size() / 4);
    return cat(cat(geneve_header(words, protocol, version, oam, critical), options), inner);
}

/** Outer Ethernet + IPv4 + UDP (checksum 0) around @p udp_payload. */
inline Bytes udp4_frame(const Mac &dmac, const Mac &smac, const Ip4 &src, const Ip4 &dst,
                        uint16_t sport, uint16_t dport, const Bytes &udp_payload, uint8_t ttl = 64,
                        const std::vector<uint16_t> &vlans = {})
{
    V4Opts o;
    o.id = 0;
    o.ttl = ttl;
    return ether(dmac, smac, 0x0800, ipv4(src, dst, 17, udp(sport, dport, udp_payload, nullptr), o),
                 vlans);
}
/** Outer Ethernet + IPv6 + UDP (real checksum unless @p zero_csum) around @p udp_payload. */
inline Bytes udp6_frame(const Mac &dmac, const Mac &smac, const Ip6 &src, const Ip6 &dst,
                        uint16_t sport, uint16_t dport, const Bytes &udp_payload,
                        uint8_t hop_limit = 64, uint32_t flow_label = 0, bool zero_csum = false)
{
    const uint32_t ps = pseudo6(src, dst, 17, static_cast<uint32_t>(8 + udp_payload.size()));
    return ether(dmac, smac, 0x86DD,
                 ipv6(src, dst, 17, udp(sport, dport, udp_payload, zero_csum ? nullptr : &ps),
                      hop_limit, flow_label));
}

inline Ip4 v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return {a, b, c, d};
}
inline Ip6 v6(uint16_t first, uint16_t last)
{
    Ip6 r{};
    r[0] = static_cast<uint8_t>(first >> 8);
    r[1] = static_cast<uint8_t>(first);
    r[14] = static_cast<uint8_t>(last >> 8);
    r[15] = static_cast<uint8_t>(last);
    return r;
}

/* ---- Addresses shared by the encap, decap and ICMP tests ---- */

inline const Mac kOurMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};    /**< this node's port */
inline const Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};   /**< the owner's port */
inline const Mac kRouterMac{0x02, 0x00, 0x00, 0x00, 0x00, 0xFE}; /**< the ECMP router */
inline const Ip4 kOur4{192, 0, 2, 1};
inline const Ip4 kPeer4{192, 0, 2, 2};
inline const Ip4 kClient4{198, 51, 100, 7};
inline const Ip4 kVip4{192, 0, 2, 10};
inline const Ip6 kOur6 = v6(0x2001, 1);
inline const Ip6 kPeer6 = v6(0x2001, 2);
inline const Ip6 kClient6 = v6(0x2001, 0x77);
inline const Ip6 kVip6 = v6(0x2001, 0x10);

} // namespace flowhome::test::eb
