/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Builds test frames layer by layer: Ethernet, VLAN tags, IPv4 or IPv6 (with
 * extension headers), TCP or UDP, payload, Ethernet padding. Lengths, next
 * header fields and checksums are filled in unless a spec overrides them, so
 * a fixture breaks exactly the one field it means to.
 *
 * The checksums are computed here with a plain RFC 1071 loop, independent of
 * src/packet/checksum.cpp, so that tests check the library against it.
 *
 * Usage:
 *     auto frame = FrameBuilder{}.vlan({.tci = 100})
 *                      .ipv4({.src = "192.0.2.1", .dst = "198.51.100.1"})
 *                      .tcp({.src_port = 1234, .dst_port = 80})
 *                      .payload(10)
 *                      .build();
 *
 * Test code only: throws std::invalid_argument on a bad address or an
 * impossible layout.
 */
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace flowhome::test {

using Bytes = std::vector<uint8_t>;

struct VlanSpec {
    uint16_t tpid = 0x8100; /**< 0x8100 (802.1Q) or 0x88A8 (802.1ad) */
    uint16_t tci = 1;       /**< PCP, DEI and VLAN id */
};

struct Ipv4Spec {
    const char *src = "192.0.2.1";
    const char *dst = "198.51.100.1";
    uint8_t tos = 0;
    uint16_t id = 0x1234;
    bool df = false;
    bool mf = false;
    uint16_t frag_offset = 0; /**< in 8-byte units */
    uint8_t ttl = 64;
    Bytes options;                        /**< padded with End of Options to 4 bytes */
    std::optional<uint8_t> protocol;      /**< default: from the next layer */
    std::optional<uint8_t> version;       /**< default 4 */
    std::optional<uint8_t> ihl;           /**< default: from the options */
    std::optional<uint16_t> total_length; /**< default: header + payload */
    std::optional<uint16_t> checksum;     /**< default: correct */
};

/** One IPv6 extension header. */
struct Ipv6ExtSpec {
    uint8_t type = 60; /**< 0, 43, 44, 51, 60, or anything */
    /** Bytes: a multiple of 8 (of 4 for AH, 51); ignored for fragment (44). */
    uint16_t length = 8;
    uint16_t frag_offset = 0; /**< fragment header: in 8-byte units */
    bool more = false;        /**< fragment header: M flag */
    uint32_t frag_id = 0xABCD;
    std::optional<uint8_t> hdr_ext_len; /**< default: from length */
};

struct Ipv6Spec {
    const char *src = "2001:db8::1";
    const char *dst = "2001:db8:1::80";
    uint8_t traffic_class = 0;
    uint32_t flow_label = 0;
    uint8_t hop_limit = 64;
    std::vector<Ipv6ExtSpec> ext;
    /** Next Header naming the upper layer (in the last extension header,
     *  or the fixed header); default: from the next layer. */
    std::optional<uint8_t> next_header;
    std::optional<uint8_t> version;         /**< default 6 */
    std::optional<uint16_t> payload_length; /**< default: everything after */
};

struct TcpSpec {
    uint16_t src_port = 1234;
    uint16_t dst_port = 80;
    uint32_t seq = 1;
    uint32_t ack = 0;
    uint8_t flags = 0x02; /**< SYN */
    uint16_t window = 65535;
    Bytes options;                      /**< padded with End of Options to 4 bytes */
    std::optional<uint8_t> data_offset; /**< default: from the options */
};

struct UdpSpec {
    uint16_t src_port = 5353;
    uint16_t dst_port = 53;
    std::optional<uint16_t> length; /**< default: header + payload */
    bool zero_checksum = false;
};

/** RFC 1071 sum of big-endian words, folded, not inverted. */
inline uint16_t rfc1071_sum(const uint8_t *p, size_t n, uint32_t sum = 0)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2)
        sum += static_cast<uint32_t>(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

inline void put16(Bytes &b, size_t off, uint16_t v)
{
    b.at(off) = static_cast<uint8_t>(v >> 8);
    b.at(off + 1) = static_cast<uint8_t>(v);
}

inline void put32(Bytes &b, size_t off, uint32_t v)
{
    put16(b, off, static_cast<uint16_t>(v >> 16));
    put16(b, off + 2, static_cast<uint16_t>(v));
}

inline std::array<uint8_t, 4> ipv4_addr(const char *text)
{
    std::array<uint8_t, 4> a{};
    if (inet_pton(AF_INET, text, a.data()) != 1)
        throw std::invalid_argument(std::string("bad IPv4 address: ") + text);
    return a;
}

inline std::array<uint8_t, 16> ipv6_addr(const char *text)
{
    std::array<uint8_t, 16> a{};
    if (inet_pton(AF_INET6, text, a.data()) != 1)
        throw std::invalid_argument(std::string("bad IPv6 address: ") + text);
    return a;
}

class FrameBuilder {
public:
    FrameBuilder &dst_mac(std::array<uint8_t, 6> mac)
    {
        dst_mac_ = mac;
        return *this;
    }
    FrameBuilder &src_mac(std::array<uint8_t, 6> mac)
    {
        src_mac_ = mac;
        return *this;
    }
    FrameBuilder &vlan(VlanSpec v = {})
    {
        vlans_.push_back(v);
        return *this;
    }
    /** Ether type for a frame with no IP layer (ARP, LLDP, ...). */
    FrameBuilder &ether_type(uint16_t t)
    {
        ether_type_ = t;
        return *this;
    }
    FrameBuilder &ipv4(Ipv4Spec s = {})
    {
        ipv4_ = std::move(s);
        ipv6_.reset();
        return *this;
    }
    FrameBuilder &ipv6(Ipv6Spec s = {})
    {
        ipv6_ = std::move(s);
        ipv4_.reset();
        return *this;
    }
    FrameBuilder &tcp(TcpSpec s = {})
    {
        tcp_ = std::move(s);
        udp_.reset();
        return *this;
    }
    FrameBuilder &udp(UdpSpec s = {})
    {
        udp_ = std::move(s);
        tcp_.reset();
        return *this;
    }
    /** Bytes after the last header (an ICMP message, an inner frame, ...). */
    FrameBuilder &payload(Bytes b)
    {
        payload_ = std::move(b);
        return *this;
    }
    /** @p n bytes 0, 1, 2, ... */
    FrameBuilder &payload(size_t n)
    {
        payload_.resize(n);
        for (size_t i = 0; i < n; ++i)
            payload_[i] = static_cast<uint8_t>(i);
        return *this;
    }
    /** Ethernet trailer after the IP packet, outside every length field. */
    FrameBuilder &padding(size_t n)
    {
        padding_ = n;
        return *this;
    }

    /** Offset of the IP header (after Ethernet and VLAN tags). */
    size_t l3_offset() const { return 14 + 4 * vlans_.size(); }

    Bytes build() const
    {
        Bytes l4 = build_l4();
        Bytes frame(l3_offset(), 0);
        std::copy(dst_mac_.begin(), dst_mac_.end(), frame.begin());
        std::copy(src_mac_.begin(), src_mac_.end(), frame.begin() + 6);
        uint16_t inner_type = ether_type_;
        if (ipv4_)
            inner_type = 0x0800;
        else if (ipv6_)
            inner_type = 0x86DD;
        size_t off = 12;
        for (const VlanSpec &v : vlans_) {
            put16(frame, off, v.tpid);
            put16(frame, off + 2, v.tci);
            off += 4;
        }
        put16(frame, off, inner_type);

        Bytes l3;
        if (ipv4_)
            l3 = build_ipv4(l4);
        else if (ipv6_)
            l3 = build_ipv6(l4);
        else
            l3 = l4;
        frame.insert(frame.end(), l3.begin(), l3.end());
        frame.insert(frame.end(), padding_, uint8_t{0});
        return frame;
    }

private:
    uint8_t l4_proto() const
    {
        if (tcp_)
            return 6;
        if (udp_)
            return 17;
        return 59; /* IPv4 has no "none"; 59 is what IPv6 says */
    }

    static Bytes padded_options(const Bytes &options)
    {
        Bytes o = options;
        o.resize((o.size() + 3) / 4 * 4, 0);
        return o;
    }

    /* Pseudo-header sum for the transport checksum (RFC 793 3.1, RFC 768,
     * RFC 8200 8.1), over the source and destination in the IP spec. */
    uint16_t pseudo_sum(uint8_t proto, size_t l4_len) const
    {
        Bytes ph;
        if (ipv4_) {
            auto s = ipv4_addr(ipv4_->src);
            auto d = ipv4_addr(ipv4_->dst);
            ph.insert(ph.end(), s.begin(), s.end());
            ph.insert(ph.end(), d.begin(), d.end());
            ph.insert(ph.end(), {0, proto, 0, 0});
            put16(ph, 10, static_cast<uint16_t>(l4_len));
        } else if (ipv6_) {
            auto s = ipv6_addr(ipv6_->src);
            auto d = ipv6_addr(ipv6_->dst);
            ph.insert(ph.end(), s.begin(), s.end());
            ph.insert(ph.end(), d.begin(), d.end());
            ph.insert(ph.end(), {0, 0, 0, 0, 0, 0, 0, proto});
            put32(ph, 32, static_cast<uint32_t>(l4_len));
        }
        return rfc1071_sum(ph.data(), ph.size());
    }

    Bytes build_l4() const
    {
        Bytes h;
        if (tcp_) {
            const Bytes opts = padded_options(tcp_->options);
            h.assign(20, 0);
            put16(h, 0, tcp_->src_port);
            put16(h, 2, tcp_->dst_port);
            put32(h, 4, tcp_->seq);
            put32(h, 8, tcp_->ack);
            const size_t words = (20 + opts.size()) / 4;
            h[12] =
                static_cast<uint8_t>(tcp_->data_offset.value_or(static_cast<uint8_t>(words)) << 4);
            h[13] = tcp_->flags;
            put16(h, 14, tcp_->window);
            h.insert(h.end(), opts.begin(), opts.end());
        } else if (udp_) {
            h.assign(8, 0);
            put16(h, 0, udp_->src_port);
            put16(h, 2, udp_->dst_port);
            put16(h, 4, udp_->length.value_or(static_cast<uint16_t>(8 + payload_.size())));
        }
        h.insert(h.end(), payload_.begin(), payload_.end());
        if (tcp_ || (udp_ && !udp_->zero_checksum)) {
            const size_t csum_off = tcp_ ? 16 : 6;
            uint16_t c = static_cast<uint16_t>(
                ~rfc1071_sum(h.data(), h.size(), pseudo_sum(l4_proto(), h.size())));
            if (udp_ && c == 0)
                c = 0xFFFF; /* RFC 768: zero means "no checksum" */
            put16(h, csum_off, c);
        }
        return h;
    }

    Bytes build_ipv4(const Bytes &l4) const
    {
        const Ipv4Spec &s = *ipv4_;
        const Bytes opts = padded_options(s.options);
        const size_t header_len = 20 + opts.size();
        if (header_len > 60)
            throw std::invalid_argument("IPv4 options longer than 40 bytes");
        Bytes h(20, 0);
        const uint8_t ihl = s.ihl.value_or(static_cast<uint8_t>(header_len / 4));
        h[0] = static_cast<uint8_t>(s.version.value_or(4) << 4 | (ihl & 0x0F));
        h[1] = s.tos;
        put16(h, 2, s.total_length.value_or(static_cast<uint16_t>(header_len + l4.size())));
        put16(h, 4, s.id);
        put16(h, 6,
              static_cast<uint16_t>((s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0) |
                                    (s.frag_offset & 0x1FFF)));
        h[8] = s.ttl;
        h[9] = s.protocol.value_or(l4_proto());
        auto src = ipv4_addr(s.src);
        auto dst = ipv4_addr(s.dst);
        std::copy(src.begin(), src.end(), h.begin() + 12);
        std::copy(dst.begin(), dst.end(), h.begin() + 16);
        h.insert(h.end(), opts.begin(), opts.end());
        put16(h, 10, s.checksum.value_or(static_cast<uint16_t>(~rfc1071_sum(h.data(), h.size()))));
        h.insert(h.end(), l4.begin(), l4.end());
        return h;
    }

    Bytes build_ipv6(const Bytes &l4) const
    {
        const Ipv6Spec &s = *ipv6_;
        Bytes h(40, 0);
        put32(h, 0,
              static_cast<uint32_t>(s.version.value_or(6)) << 28 |
                  static_cast<uint32_t>(s.traffic_class) << 20 | (s.flow_label & 0xFFFFF));
        h[7] = s.hop_limit;
        auto src = ipv6_addr(s.src);
        auto dst = ipv6_addr(s.dst);
        std::copy(src.begin(), src.end(), h.begin() + 8);
        std::copy(dst.begin(), dst.end(), h.begin() + 24);

        /* Each header's Next Header names the one after it. */
        size_t next_at = 6;
        for (const Ipv6ExtSpec &e : s.ext) {
            h[next_at] = e.type;
            next_at = h.size();
            Bytes x = build_ext(e);
            h.insert(h.end(), x.begin(), x.end());
        }
        h[next_at] = l4_proto();
        if (s.next_header)
            h[s.ext.empty() ? 6 : next_at] = *s.next_header;
        h.insert(h.end(), l4.begin(), l4.end());
        put16(h, 4, s.payload_length.value_or(static_cast<uint16_t>(h.size() - 40)));
        return h;
    }

    static Bytes build_ext(const Ipv6ExtSpec &e)
    {
        if (e.type == 44) {
            /* RFC 8200 4.5 */
            Bytes x(8, 0);
            x[1] = e.hdr_ext_len.value_or(0);
            put16(x, 2, static_cast<uint16_t>(e.frag_offset << 3 | (e.more ? 1 : 0)));
            put32(x, 4, e.frag_id);
            return x;
        }
        Bytes x(e.length, 0);
        if (e.type == 51) {
            /* RFC 4302 2.2: length in 4-octet units minus 2; SPI 1. */
            if (e.length < 12 || e.length % 4)
                throw std::invalid_argument("AH length must be >= 12 and a multiple of 4");
            x[1] = e.hdr_ext_len.value_or(static_cast<uint8_t>(e.length / 4 - 2));
            put32(x, 4, 1);
            return x;
        }
        if (e.length < 8 || e.length % 8)
            throw std::invalid_argument("extension header length must be a multiple of 8");
        x[1] = e.hdr_ext_len.value_or(static_cast<uint8_t>(e.length / 8 - 1));
        if (e.type == 0 || e.type == 60) {
            /* RFC 8200 4.2: fill the option area with one PadN option. */
            x[2] = 1;
            x[3] = static_cast<uint8_t>(e.length - 4);
        } else if (e.type == 43) {
            /* Routing type 253 (RFC 4727 experimental), 0 segments left:
             * a node that does not know the type skips it (RFC 8200 4.4). */
            x[2] = 253;
        }
        return x;
    }

    std::array<uint8_t, 6> dst_mac_{0x02, 0, 0, 0, 0, 0x01};
    std::array<uint8_t, 6> src_mac_{0x02, 0, 0, 0, 0, 0x02};
    std::vector<VlanSpec> vlans_;
    uint16_t ether_type_ = 0x88B5; /* IEEE local experimental */
    std::optional<Ipv4Spec> ipv4_;
    std::optional<Ipv6Spec> ipv6_;
    std::optional<TcpSpec> tcp_;
    std::optional<UdpSpec> udp_;
    Bytes payload_;
    size_t padding_ = 0;
};

/** The first @p n bytes of @p frame. */
inline Bytes truncated(const Bytes &frame, size_t n)
{
    return Bytes(frame.begin(),
                 frame.begin() + static_cast<std::ptrdiff_t>(std::min(n, frame.size())));
}

} // namespace flowhome::test
