/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of build_template(), encap_packet() and PeerDirectory. Every
 * encapsulated frame is compared byte for byte with one the independent
 * builder (tests/support/encap_builder.hpp) writes from the RFCs, and every
 * checksum is verified by recomputation there.
 */
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "eb_convert.hpp"
#include "encap_builder.hpp"
#include "fake_mbuf.hpp"
#include "flowhome/encap.hpp"
#include "flowhome/packet.hpp"

using namespace flowhome;
using flowhome::test::FakeMbuf;
using flowhome::test::to_ip;
using flowhome::test::to_mac;
namespace eb = flowhome::test::eb;

namespace {

constexpr NodeId kSelf = 1;
constexpr NodeId kPeer = 2;
constexpr uint16_t kGenevePortUnderTest = 6081;

TemplateParams params(EncapKind kind, bool outer6, bool zero_csum = false)
{
    TemplateParams p;
    p.self = kSelf;
    p.peer = kPeer;
    p.src_mac = to_mac(eb::kOurMac);
    p.dst_mac = to_mac(eb::kPeerMac);
    p.src = outer6 ? to_ip(eb::kOur6) : to_ip(eb::kOur4);
    p.dst = outer6 ? to_ip(eb::kPeer6) : to_ip(eb::kPeer4);
    p.domain.name = "dc1";
    p.domain.encap = kind;
    p.domain.geneve_port = kGenevePortUnderTest;
    p.domain.udp6_zero_checksum = zero_csum;
    p.mtu = 1500;
    p.tx_port = 3;
    p.ttl = 64;
    return p;
}

/* An inner TCP packet from the client to the VIP, as the router delivered it to us. */
struct Input {
    eb::Bytes inner_ip;
    eb::Bytes frame;
    EncapMeta meta;
};

Input make_input(bool inner6, const std::vector<uint16_t> &vlans = {}, size_t payload_len = 100,
                 uint32_t hash = 0xDEADBEEF)
{
    Input in;
    in.inner_ip =
        inner6 ? eb::ipv6_tcp(eb::kClient6, eb::kVip6, 40000, 80, 0x10, eb::payload(payload_len))
               : eb::ipv4_tcp(eb::kClient4, eb::kVip4, 40000, 80, 0x10, eb::payload(payload_len));
    in.frame =
        eb::ether(eb::kOurMac, eb::kRouterMac, inner6 ? 0x86DD : 0x0800, in.inner_ip, vlans, true);
    in.meta.flow_hash = hash;
    in.meta.l3_offset = static_cast<uint16_t>(14 + 4 * vlans.size());
    in.meta.l3_len = static_cast<uint16_t>(in.inner_ip.size());
    in.meta.inner_family = inner6 ? Family::ipv6 : Family::ipv4;
    in.meta.ingress_node = 7;
    in.meta.hops = 1;
    in.meta.affinity = 0xA11F;
    in.meta.service_version = 0x0203;
    return in;
}

uint16_t expected_sport(uint32_t hash)
{
    return static_cast<uint16_t>(49152 + hash % 16384);
}

/* What the peer must receive: built from RFC 8926 / 768 / 791 / 8200, not from flowhome. */
eb::Bytes expected_geneve(bool outer6, const Input &in, bool zero_csum = false)
{
    const bool inner6 = in.meta.inner_family == Family::ipv6;
    const eb::Bytes inner_frame =
        eb::ether(eb::kPeerMac, eb::kOurMac, inner6 ? 0x86DD : 0x0800, in.inner_ip);
    const eb::Bytes gnv = eb::geneve(eb::flowhome_option(in.meta.ingress_node, in.meta.hops,
                                                         in.meta.affinity, in.meta.service_version),
                                     0x6558, inner_frame);
    const uint16_t sport = expected_sport(in.meta.flow_hash);
    if (!outer6)
        return eb::udp4_frame(eb::kPeerMac, eb::kOurMac, eb::kOur4, eb::kPeer4, sport,
                              kGenevePortUnderTest, gnv, 64);
    return eb::udp6_frame(eb::kPeerMac, eb::kOurMac, eb::kOur6, eb::kPeer6, sport,
                          kGenevePortUnderTest, gnv, 64, in.meta.flow_hash & 0xFFFFF, zero_csum);
}

eb::Bytes expected_ipip(bool outer6, const Input &in)
{
    const bool inner6 = in.meta.inner_family == Family::ipv6;
    const uint8_t proto = inner6 ? 41 : 4;
    if (!outer6) {
        eb::V4Opts o;
        o.id = 0;
        o.df = true;
        o.ttl = 64;
        return eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                         eb::ipv4(eb::kOur4, eb::kPeer4, proto, in.inner_ip, o));
    }
    return eb::ether(
        eb::kPeerMac, eb::kOurMac, 0x86DD,
        eb::ipv6(eb::kOur6, eb::kPeer6, proto, in.inner_ip, 64, in.meta.flow_hash & 0xFFFFF));
}

/* Independent verification of the checksums in an encapsulated frame. */
void check_outer_checksums(const eb::Bytes &out, bool outer6, bool geneve, bool zero_csum)
{
    if (!outer6) {
        CHECK(eb::checksum_ok(out, 14, 20));
        if (geneve)
            CHECK(eb::get16(out, 34 + 6) == 0); /* RFC 8926 3.3: zero over IPv4 */
        return;
    }
    if (!geneve)
        return;
    const uint16_t udp_len = eb::get16(out, 54 + 4);
    CHECK(udp_len == out.size() - 54);
    if (zero_csum) {
        CHECK(eb::get16(out, 54 + 6) == 0);
    } else {
        CHECK(eb::get16(out, 54 + 6) != 0);
        CHECK(eb::checksum_ok(out, 54, udp_len, eb::pseudo6_at(out, 14, 17, udp_len)));
    }
}

struct Snapshot {
    eb::Bytes bytes;
    uint16_t data_off;
    uint32_t pkt_len;
    uint16_t data_len;
};
Snapshot snap(FakeMbuf &fm)
{
    return {fm.bytes(), fm.get()->data_off, fm.get()->pkt_len, fm.get()->data_len};
}
void check_unchanged(FakeMbuf &fm, const Snapshot &s)
{
    CHECK(fm.bytes() == s.bytes);
    CHECK(fm.get()->data_off == s.data_off);
    CHECK(fm.get()->pkt_len == s.pkt_len);
    CHECK(fm.get()->data_len == s.data_len);
}

} // namespace

TEST_CASE("build_template lays out GENEVE and IP-in-IP headers", "[encap][template]")
{
    SECTION("GENEVE over IPv4")
    {
        const EncapTemplate t = build_template(params(EncapKind::geneve, false));
        const eb::Bytes h(t.header, t.header + t.header_len);
        REQUIRE(t.header_len == 14 + 20 + 8 + 8 + 12);
        CHECK(t.udp_offset == 34);
        CHECK(t.option_offset == 54);
        CHECK(t.kind == EncapKind::geneve);
        CHECK(t.outer_family == Family::ipv4);
        CHECK(t.mtu == 1500);
        CHECK(t.tx_port == 3);
        CHECK(t.peer == kPeer);
        /* The inner Ethernet header follows: to the peer's MAC, from ours, IPv4. */
        REQUIRE(t.write_len == t.header_len + 14);
        const eb::Bytes inner(t.header + t.header_len, t.header + t.write_len);
        eb::Bytes inner_want(eb::kPeerMac.begin(), eb::kPeerMac.end());
        inner_want.insert(inner_want.end(), eb::kOurMac.begin(), eb::kOurMac.end());
        inner_want.insert(inner_want.end(), {0x08, 0x00});
        CHECK(inner == inner_want);
        /* Everything but the per-packet fields equals the independent frame. */
        Input in = make_input(false);
        in.meta.flow_hash = 0;
        in.meta.ingress_node = kSelf;
        in.meta.hops = 0;
        in.meta.affinity = 0;
        in.meta.service_version = 0;
        eb::Bytes want = eb::slice(expected_geneve(false, in), 0, t.header_len);
        eb::set16(want, 14 + 2, 0);  /* total length */
        eb::set16(want, 14 + 10, 0); /* checksum */
        eb::set16(want, 34, 0);      /* source port */
        eb::set16(want, 34 + 4, 0);  /* UDP length */
        CHECK(h == want);
        /* The base is the folded sum of the header with length and checksum zero. */
        CHECK(t.ipv4_csum_base == eb::fold(eb::sum_words(h.data() + 14, 20)));
    }
    SECTION("GENEVE over IPv6")
    {
        const EncapTemplate t = build_template(params(EncapKind::geneve, true, true));
        REQUIRE(t.header_len == kMaxEncapHeader);
        CHECK(t.udp_offset == 54);
        CHECK(t.option_offset == 74);
        CHECK(t.udp6_zero_checksum);
        CHECK(t.header[14] >> 4 == 6);
        CHECK(t.header[14 + 6] == 17);
        CHECK(t.header[14 + 7] == 64);
        CHECK(eb::Bytes(t.header + 62, t.header + 66) == eb::Bytes{0x03, 0x00, 0x65, 0x58});
        CHECK(eb::Bytes(t.header + 70, t.header + 74) == eb::Bytes{0xFF, 0xF0, 0x46, 0x02});
        CHECK(eb::Bytes(t.header + 74, t.header + 76) == eb::Bytes{0x00, kSelf});
    }
    SECTION("IP-in-IP over IPv4 and IPv6")
    {
        const EncapTemplate t4 = build_template(params(EncapKind::ipip, false));
        CHECK(t4.header_len == 34);
        CHECK(t4.udp_offset == 0);
        CHECK(t4.option_offset == 0);
        CHECK(t4.header[14 + 9] == 4);
        CHECK(eb::get16(eb::Bytes(t4.header, t4.header + 34), 14 + 6) == 0x4000);
        CHECK(t4.ipv4_csum_base == eb::fold(eb::sum_words(t4.header + 14, 20)));
        const EncapTemplate t6 = build_template(params(EncapKind::ipip, true));
        CHECK(t6.header_len == 54);
        CHECK(t6.header[14 + 6] == 4);
        CHECK(eb::get16(eb::Bytes(t6.header, t6.header + 54), 12) == 0x86DD);
    }
}

TEST_CASE("build_template refuses inconsistent parameters", "[encap][template]")
{
    TemplateParams p = params(EncapKind::geneve, false);
    SECTION("address families differ")
    {
        p.dst = to_ip(eb::kPeer6);
        CHECK_THROWS_AS(build_template(p), std::invalid_argument);
    }
    SECTION("no family")
    {
        p.src = IpAddr{};
        p.dst = IpAddr{};
        CHECK_THROWS_AS(build_template(p), std::invalid_argument);
    }
    SECTION("TTL 0")
    {
        p.ttl = 0;
        CHECK_THROWS_AS(build_template(p), std::invalid_argument);
    }
    SECTION("GENEVE port 0")
    {
        p.domain.geneve_port = 0;
        CHECK_THROWS_AS(build_template(p), std::invalid_argument);
    }
    SECTION("IPv6 MTU below 1280")
    {
        p = params(EncapKind::ipip, true);
        p.mtu = 1279;
        CHECK_THROWS_AS(build_template(p), std::invalid_argument);
        p.mtu = 1280;
        CHECK_NOTHROW(build_template(p));
    }
}

TEST_CASE("encap_packet writes exactly the RFC frame", "[encap]")
{
    struct Case {
        const char *name;
        EncapKind kind;
        bool outer6;
        bool inner6;
        bool zero_csum;
    };
    const Case cases[] = {
        {.name = "GENEVE/IPv4, inner IPv4",
         .kind = EncapKind::geneve,
         .outer6 = false,
         .inner6 = false,
         .zero_csum = false},
        {.name = "GENEVE/IPv4, inner IPv6",
         .kind = EncapKind::geneve,
         .outer6 = false,
         .inner6 = true,
         .zero_csum = false},
        {.name = "GENEVE/IPv6, inner IPv4",
         .kind = EncapKind::geneve,
         .outer6 = true,
         .inner6 = false,
         .zero_csum = false},
        {.name = "GENEVE/IPv6, inner IPv6",
         .kind = EncapKind::geneve,
         .outer6 = true,
         .inner6 = true,
         .zero_csum = false},
        {.name = "GENEVE/IPv6 zero checksum",
         .kind = EncapKind::geneve,
         .outer6 = true,
         .inner6 = true,
         .zero_csum = true},
        {.name = "IPv4 in IPv4 (proto 4)",
         .kind = EncapKind::ipip,
         .outer6 = false,
         .inner6 = false,
         .zero_csum = false},
        {.name = "IPv6 in IPv4 (proto 41)",
         .kind = EncapKind::ipip,
         .outer6 = false,
         .inner6 = true,
         .zero_csum = false},
        {.name = "IPv4 in IPv6 (next header 4)",
         .kind = EncapKind::ipip,
         .outer6 = true,
         .inner6 = false,
         .zero_csum = false},
        {.name = "IPv6 in IPv6 (next header 41)",
         .kind = EncapKind::ipip,
         .outer6 = true,
         .inner6 = true,
         .zero_csum = false},
    };
    const uint32_t hashes[] = {0, 1, 0x3FFF, 0x4000, 0xDEADBEEF, 0xFFFFFFFF};
    const std::vector<std::vector<uint16_t>> tag_sets = {{}, {0x0064}, {0x0064, 0x00C8}};

    for (const Case &c : cases) {
        for (uint32_t hash : hashes) {
            for (const auto &tags : tag_sets) {
                INFO(c.name << ", hash " << hash << ", " << tags.size() << " VLAN tags");
                const EncapTemplate t = build_template(params(c.kind, c.outer6, c.zero_csum));
                const Input in = make_input(c.inner6, tags, 100, hash);
                FakeMbuf fm(in.frame);
                /* Offload lengths a previous use of the mbuf left behind. */
                fm.get()->tx_offload = rte_mbuf_tx_offload(18, 60, 32, 1400, 20, 14, 0);
                REQUIRE(encap_packet(fm.get(), t, in.meta) == EncapStatus::ok);
                const eb::Bytes out = fm.bytes();
                const bool geneve = c.kind == EncapKind::geneve;
                const eb::Bytes want = geneve ? expected_geneve(c.outer6, in, c.zero_csum)
                                              : expected_ipip(c.outer6, in);
                CHECK(out == want);
                CHECK(fm.get()->pkt_len == want.size());
                CHECK(fm.get()->l2_len == 14);
                CHECK(fm.get()->l3_len == (c.outer6 ? 40 : 20));
                /* The other offload lengths, and the word's unused bits, zero. */
                CHECK(fm.get()->tx_offload ==
                      rte_mbuf_tx_offload(14, c.outer6 ? 40 : 20, 0, 0, 0, 0, 0));
                CHECK(encapsulated_ip_length(t, in.meta) == out.size() - 14);
                check_outer_checksums(out, c.outer6, geneve, c.zero_csum);
                if (geneve) {
                    const size_t udp = c.outer6 ? 54 : 34;
                    const uint16_t sport = eb::get16(out, udp);
                    CHECK(sport >= 49152);
                    CHECK(sport == expected_sport(hash));
                    CHECK(eb::get16(out, udp + 2) == kGenevePortUnderTest);
                }
            }
        }
    }
}

TEST_CASE("encap_packet trims Ethernet padding", "[encap]")
{
    /* 20 + 8 + 4 bytes of IP: the frame is padded from 46 to 60 bytes. */
    Input in;
    in.inner_ip = eb::ipv4_udp(eb::kClient4, eb::kVip4, 5000, 53, eb::payload(4));
    in.frame = eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800, in.inner_ip, {}, true);
    REQUIRE(in.frame.size() == 60);
    in.meta = EncapMeta{.flow_hash = 77,
                        .l3_offset = 14,
                        .l3_len = 32,
                        .inner_family = Family::ipv4,
                        .hops = 1,
                        .ingress_node = 1};
    for (EncapKind kind : {EncapKind::geneve, EncapKind::ipip}) {
        for (bool outer6 : {false, true}) {
            const EncapTemplate t = build_template(params(kind, outer6));
            FakeMbuf fm(in.frame);
            REQUIRE(encap_packet(fm.get(), t, in.meta) == EncapStatus::ok);
            const eb::Bytes want =
                kind == EncapKind::geneve ? expected_geneve(outer6, in) : expected_ipip(outer6, in);
            CHECK(fm.bytes() == want);
            CHECK(fm.get()->pkt_len == t.header_len + (kind == EncapKind::geneve ? 14 : 0) + 32u);
        }
    }
}

TEST_CASE("encap_packet refuses too big packets without touching them", "[encap]")
{
    for (EncapKind kind : {EncapKind::geneve, EncapKind::ipip}) {
        for (bool outer6 : {false, true}) {
            EncapTemplate t = build_template(params(kind, outer6));
            const Input in = make_input(false, {0x0064}, 1200);
            const uint32_t outer_len = encapsulated_ip_length(t, in.meta);
            const uint32_t overhead =
                (outer6 ? 40u : 20u) + (kind == EncapKind::geneve ? 8u + 8u + 12u + 14u : 0u);
            CHECK(outer_len == overhead + in.inner_ip.size());

            t.mtu = static_cast<uint16_t>(outer_len - 1);
            FakeMbuf big(in.frame);
            const Snapshot before = snap(big);
            CHECK(encap_packet(big.get(), t, in.meta) == EncapStatus::too_big);
            check_unchanged(big, before);

            t.mtu = static_cast<uint16_t>(outer_len);
            FakeMbuf fits(in.frame);
            CHECK(encap_packet(fits.get(), t, in.meta) == EncapStatus::ok);
        }
    }
}

TEST_CASE("encap_packet refuses without headroom, leaving the mbuf", "[encap]")
{
    for (EncapKind kind : {EncapKind::geneve, EncapKind::ipip}) {
        for (bool outer6 : {false, true}) {
            const EncapTemplate t = build_template(params(kind, outer6));
            const Input in = make_input(true, {0x0064});
            /* The VLAN tag and (IP-in-IP) the Ethernet header free some room. */
            const int freed = in.meta.l3_offset - (kind == EncapKind::geneve ? 14 : 0);
            const auto needed = static_cast<uint16_t>(t.header_len - freed);

            FakeMbuf tight(in.frame, static_cast<uint16_t>(needed - 1));
            const Snapshot before = snap(tight);
            CHECK(encap_packet(tight.get(), t, in.meta) == EncapStatus::no_headroom);
            check_unchanged(tight, before);

            FakeMbuf exact(in.frame, needed);
            REQUIRE(encap_packet(exact.get(), t, in.meta) == EncapStatus::ok);
            CHECK(exact.get()->data_off == 0);
            CHECK(exact.bytes() == (kind == EncapKind::geneve ? expected_geneve(outer6, in)
                                                              : expected_ipip(outer6, in)));
        }
    }
}

TEST_CASE("encap_packet refuses metadata that does not describe the mbuf", "[encap]")
{
    const EncapTemplate t = build_template(params(EncapKind::geneve, false));
    Input in = make_input(false);
    in.meta.l3_len = static_cast<uint16_t>(in.frame.size()); /* runs past the frame */
    FakeMbuf fm(in.frame);
    const Snapshot before = snap(fm);
    CHECK(encap_packet(fm.get(), t, in.meta) == EncapStatus::no_headroom);
    check_unchanged(fm, before);
}

TEST_CASE("encap_packet refuses an IP header that its first segment does not hold", "[encap]")
{
    /* The caller's contract: the inner IP header's first 20 bytes in the
     * first segment, where encap_packet() reads the TOS. */
    const Input in = make_input(false);
    const size_t split = GENERATE(14, 15, 33, 34);
    FakeMbuf head(eb::slice(in.frame, 0, split));
    FakeMbuf rest(eb::slice(in.frame, split, in.frame.size() - split), 0);
    head.get()->next = rest.get();
    head.get()->nb_segs = 2;
    head.get()->pkt_len = static_cast<uint32_t>(in.frame.size());
    const EncapTemplate t = build_template(params(EncapKind::geneve, false));
    INFO("first segment " << split << " bytes");
    if (split >= 14 + 20) {
        CHECK(encap_packet(head.get(), t, in.meta) == EncapStatus::ok);
        return;
    }
    const Snapshot before = snap(head);
    CHECK(encap_packet(head.get(), t, in.meta) == EncapStatus::no_headroom);
    check_unchanged(head, before);
}

TEST_CASE("encap_packet over a two-segment mbuf", "[encap]")
{
    /* The IPv6 UDP checksum must cover both segments, however they split
     * the datagram (a part of odd length makes the next one's bytes swap
     * places in the sum); padding in the last one is trimmed. */
    const Input in = make_input(true, {}, 300);
    const size_t split = GENERATE(99, 100, 101, 151, 298);
    eb::Bytes tail = eb::slice(in.frame, split, in.frame.size() - split);
    tail.insert(tail.end(), 6, 0); /* trailing padding */
    FakeMbuf head(eb::slice(in.frame, 0, split));
    FakeMbuf rest(tail, 0);
    head.get()->next = rest.get();
    head.get()->nb_segs = 2;
    head.get()->pkt_len = static_cast<uint32_t>(split + tail.size());

    const EncapTemplate t = build_template(params(EncapKind::geneve, true));
    REQUIRE(encap_packet(head.get(), t, in.meta) == EncapStatus::ok);
    eb::Bytes out = head.bytes();
    const eb::Bytes second = rest.bytes();
    out.insert(out.end(), second.begin(), second.end());
    CHECK(head.get()->pkt_len == out.size());
    CHECK(out == expected_geneve(true, in));
    check_outer_checksums(out, true, true, false);
}

TEST_CASE("encap -> parse -> decap returns the original inner packet", "[encap][roundtrip]")
{
    PeerDirectory peers;
    peers.add(to_ip(eb::kOur4), kSelf);
    peers.add(to_ip(eb::kOur6), kSelf);
    DecapConfig cfg;
    cfg.local_v4 = to_ip(eb::kPeer4);
    cfg.local_v6 = to_ip(eb::kPeer6);
    cfg.geneve_port = kGenevePortUnderTest;

    for (EncapKind kind : {EncapKind::geneve, EncapKind::ipip}) {
        for (bool outer6 : {false, true}) {
            for (bool inner6 : {false, true}) {
                INFO((kind == EncapKind::geneve ? "GENEVE" : "IP-in-IP")
                     << " outer " << (outer6 ? 6 : 4) << " inner " << (inner6 ? 6 : 4));
                const EncapTemplate t = build_template(params(kind, outer6));
                const Input in = make_input(inner6, {0x0064, 0x00C8}, 333, 0x12345678);
                FakeMbuf fm(in.frame);
                REQUIRE(encap_packet(fm.get(), t, in.meta) == EncapStatus::ok);

                ParsedPacket outer;
                REQUIRE(parse_packet(fm.data(), fm.get()->data_len, fm.get()->pkt_len, outer) ==
                        ParseStatus::ok);
                const DecapResult r = decap_packet(fm.get(), outer, peers, cfg);
                REQUIRE(r.status == DecapStatus::ok);
                CHECK(r.from_peer == kSelf);

                const eb::Bytes got = fm.bytes();
                REQUIRE(got.size() == 14 + in.inner_ip.size());
                CHECK(eb::slice(got, 14, in.inner_ip.size()) == in.inner_ip);
                /* GENEVE: the inner Ethernet header we wrote; IP-in-IP: the outer addresses. */
                CHECK(eb::slice(got, 0, 6) == eb::Bytes(eb::kPeerMac.begin(), eb::kPeerMac.end()));
                CHECK(eb::slice(got, 6, 6) == eb::Bytes(eb::kOurMac.begin(), eb::kOurMac.end()));
                CHECK(eb::get16(got, 12) == (inner6 ? 0x86DD : 0x0800));
                if (kind == EncapKind::geneve) {
                    CHECK(r.ingress_node == in.meta.ingress_node);
                    CHECK(r.hops == in.meta.hops);
                    CHECK(r.affinity == in.meta.affinity);
                    CHECK(r.service_version == in.meta.service_version);
                } else {
                    CHECK(r.ingress_node == kSelf);
                    CHECK(r.hops == kHopsSpent); /* IP-in-IP carries no count */
                }
                ParsedPacket inner;
                CHECK(parse_packet(fm.data(), fm.get()->data_len, fm.get()->pkt_len, inner) ==
                      ParseStatus::ok);
            }
        }
    }
}

TEST_CASE("PeerDirectory maps peer addresses to node ids", "[encap][peers]")
{
    PeerDirectory d;
    const eb::Ip4 addrs4[] = {{192, 0, 2, 9}, {192, 0, 2, 1}, {198, 51, 100, 1}, {203, 0, 113, 4}};
    NodeId id = 10;
    for (const auto &a : addrs4)
        d.add(to_ip(a), id++);
    d.add(to_ip(eb::kPeer6), 20);
    d.add(to_ip(eb::v6(0x2001, 0xFFFF)), 21);
    d.add(to_ip(eb::v6(0x0001, 0x0000)), 22);
    CHECK(d.size() == 7);

    id = 10;
    for (const auto &a : addrs4) {
        CHECK(d.find(to_ip(a)) == id);
        uint32_t be;
        std::memcpy(&be, a.data(), 4);
        CHECK(d.find_v4(be) == id);
        ++id;
    }
    CHECK(d.find(to_ip(eb::kPeer6)) == 20);
    CHECK(d.find_v6(eb::v6(0x2001, 0xFFFF).data()) == 21);
    CHECK(d.find(to_ip(eb::v6(0x0001, 0x0000))) == 22);
    CHECK(d.find(to_ip(eb::v4(192, 0, 2, 3))) == kInvalidNode);
    CHECK(d.find(to_ip(eb::kOur6)) == kInvalidNode);
    CHECK(d.find(IpAddr{}) == kInvalidNode);

    /* A peer listed twice is a configuration error, never silently accepted. */
    CHECK_THROWS_WITH(d.add(to_ip(eb::v4(192, 0, 2, 1)), 99),
                      Catch::Contains("192.0.2.1 is already listed (node 11)"));
    CHECK_THROWS_WITH(d.add(to_ip(eb::kPeer6), 99), Catch::Contains("already listed (node 20)"));
    CHECK_THROWS_AS(d.add(IpAddr{}, 99), std::invalid_argument);
    CHECK_THROWS_AS(d.add(to_ip(eb::v4(192, 0, 2, 3)), kInvalidNode), std::invalid_argument);
    CHECK(d.size() == 7);
    CHECK(d.find(to_ip(eb::v4(192, 0, 2, 1))) == 11);
    CHECK(d.find(to_ip(eb::kPeer6)) == 20);
}

namespace {

/* The input of make_input() with the inner TOS / traffic class @p tos. */
Input make_input_tos(bool inner6, uint8_t tos, const std::vector<uint16_t> &vlans = {})
{
    Input in = make_input(inner6, vlans);
    eb::set_tos_at(in.inner_ip, 0, tos);
    in.frame =
        eb::ether(eb::kOurMac, eb::kRouterMac, inner6 ? 0x86DD : 0x0800, in.inner_ip, vlans, true);
    return in;
}

} // namespace

TEST_CASE("encap_packet copies the inner ECN field, and the DSCP where the domain inherits it",
          "[encap][ecn]")
{
    /* RFC 6040 4.1 normal mode: the outer ECN field is the inner one's;
     * the DSCP is the domain's (pipe model) or the inner one's (uniform). */
    const EncapKind kind = GENERATE(EncapKind::geneve, EncapKind::ipip);
    const bool outer6 = GENERATE(false, true);
    const bool inner6 = GENERATE(false, true);
    const bool inherit = GENERATE(false, true);
    /* Not-ECT, DSCP EF with ECT(1), ECT(0), CE, CS1 with CE. */
    const uint8_t inner_tos = GENERATE(0x00, 0xB9, 0x02, 0x03, 0x23);
    /* Tags move the inner header, and where encap_packet() reads it. */
    const std::vector<uint16_t> vlans =
        GENERATE(std::vector<uint16_t>{}, std::vector<uint16_t>{0x0064, 0x00C8});
    INFO((kind == EncapKind::geneve ? "GENEVE" : "IP-in-IP")
         << " outer " << (outer6 ? 6 : 4) << " inner " << (inner6 ? 6 : 4)
         << (inherit ? " inherit" : " dscp 10") << " tos " << int{inner_tos} << " tags "
         << vlans.size());

    TemplateParams p = params(kind, outer6);
    p.domain.dscp = 10;
    p.domain.dscp_inherit = inherit;
    const EncapTemplate t = build_template(p);
    const Input in = make_input_tos(inner6, inner_tos, vlans);
    FakeMbuf fm(in.frame);
    REQUIRE(encap_packet(fm.get(), t, in.meta) == EncapStatus::ok);

    const eb::Bytes out = fm.bytes();
    const uint8_t want = inherit ? inner_tos : static_cast<uint8_t>(10 << 2 | (inner_tos & 3));
    CHECK(eb::tos_at(out, 14) == want);
    /* The rest is the frame the builder writes with that outer TOS. */
    eb::Bytes expected =
        kind == EncapKind::geneve ? expected_geneve(outer6, in) : expected_ipip(outer6, in);
    eb::set_tos_at(expected, 14, want);
    CHECK(out == expected);
    check_outer_checksums(out, outer6, kind == EncapKind::geneve, false);
}

TEST_CASE("build_template refuses a DSCP wider than six bits", "[encap][template]")
{
    TemplateParams p = params(EncapKind::geneve, false);
    p.domain.dscp = 64;
    CHECK_THROWS_AS(build_template(p), std::invalid_argument);
    p.domain.dscp = 63;
    CHECK(build_template(p).header[15] == 0xFC);
}
