/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of decap_packet(): frames written by the independent builder
 * (tests/support/encap_builder.hpp), parsed by parse_packet() as a worker
 * would, then decapsulated. Every refusal is checked for its DropReason and
 * for leaving the mbuf as it was.
 */
#include <catch2/catch.hpp>

#include <algorithm>
#include <utility>

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

/* We are the owner (kPeer4 / kPeer6); node 1 (kOur4 / kOur6) tunnels to us. */
constexpr NodeId kSender = 1;
const eb::Ip4 kStranger4{203, 0, 113, 66};

PeerDirectory peers()
{
    PeerDirectory d;
    d.add(to_ip(eb::kOur4), kSender);
    d.add(to_ip(eb::kOur6), kSender);
    d.add(to_ip(eb::v4(192, 0, 2, 3)), 3);
    return d;
}

DecapConfig config()
{
    DecapConfig c;
    c.local_v4 = to_ip(eb::kPeer4);
    c.local_v6 = to_ip(eb::kPeer6);
    c.geneve_port = 6081;
    return c;
}

eb::Bytes inner_ip4()
{
    return eb::ipv4_tcp(eb::kClient4, eb::kVip4, 40000, 80, 0x02, eb::payload(40));
}
eb::Bytes inner_ip6()
{
    return eb::ipv6_udp(eb::kClient6, eb::kVip6, 40000, 443, eb::payload(40));
}
eb::Bytes inner_frame4()
{
    return eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800, inner_ip4());
}

/* GENEVE over IPv4 from the sender to us, with any UDP payload. */
eb::Bytes gnv4(const eb::Bytes &udp_payload, const eb::Ip4 &src = eb::kOur4,
               const eb::Ip4 &dst = eb::kPeer4, uint16_t dport = 6081)
{
    return eb::udp4_frame(eb::kPeerMac, eb::kOurMac, src, dst, 50000, dport, udp_payload);
}

struct Outcome {
    ParseStatus parse;
    DecapResult result;
    eb::Bytes before;
    eb::Bytes after;
    bool fast = false; /* the fast path took it */
};

/* What a NIC may have said of a frame; decap_packet() forgets it on ok. */
void mark_received(FakeMbuf &fm)
{
    fm.get()->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    fm.get()->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_UDP;
}

/* The mbuf fields decapsulation may change, beside the bytes. */
bool same_mbuf(FakeMbuf &a, FakeMbuf &b)
{
    const rte_mbuf *x = a.get();
    const rte_mbuf *y = b.get();
    return a.bytes() == b.bytes() && x->data_off == y->data_off && x->pkt_len == y->pkt_len &&
           x->ol_flags == y->ol_flags && x->packet_type == y->packet_type;
}

/* Decapsulates @p frame, and checks that the general path alone gives the
 * same result and mbuf, and that the fast path, where it takes the frame,
 * does too (and leaves it alone where it does not). */
Outcome run(const eb::Bytes &frame, const DecapConfig &cfg = config())
{
    Outcome o;
    FakeMbuf fm(frame);
    mark_received(fm);
    ParsedPacket p;
    o.parse = parse_packet(fm.data(), fm.get()->data_len, fm.get()->pkt_len, p);
    o.before = fm.bytes();
    if (o.parse == ParseStatus::ok) {
        const PeerDirectory d = peers();
        o.result = decap_packet(fm.get(), p, d, cfg);
        FakeMbuf general(frame);
        mark_received(general);
        CHECK(detail::decap_packet_general(general.get(), p, d, cfg) == o.result);
        CHECK(same_mbuf(general, fm));
        FakeMbuf fast(frame);
        mark_received(fast);
        FakeMbuf untouched(frame);
        mark_received(untouched);
        DecapResult r;
        o.fast = detail::decap_plain_geneve(fast.get(), p, d, cfg, r);
        CHECK(same_mbuf(fast, o.fast ? fm : untouched));
        CHECK((o.fast ? r == o.result : r == DecapResult{}));
    }
    o.after = fm.bytes();
    return o;
}

eb::Bytes mac_bytes(const eb::Mac &m)
{
    return {m.begin(), m.end()};
}

} // namespace

TEST_CASE("decap of a flowhome GENEVE frame", "[decap]")
{
    const eb::Bytes opt = eb::flowhome_option(9, 1, 0x1234, 0x0506);
    const Outcome o = run(gnv4(eb::geneve(opt, 0x6558, inner_frame4())));
    REQUIRE(o.parse == ParseStatus::ok);
    REQUIRE(o.result.status == DecapStatus::ok);
    CHECK(o.result.from_peer == kSender);
    CHECK(o.result.ingress_node == 9);
    CHECK(o.result.hops == 1);
    CHECK(o.result.affinity == 0x1234);
    CHECK(o.result.service_version == 0x0506);
    CHECK(o.after == inner_frame4());
}

TEST_CASE("decap's fast path takes GENEVE as a peer writes it, and nothing else", "[decap][geneve]")
{
    /* run() checks, for every frame of this file, that the general path
     * alone gives the same result and bytes; here, which frames the fast
     * path takes. */
    const eb::Bytes ours = eb::flowhome_option(9, 1, 0, 0);
    const eb::Bytes inner = inner_frame4();
    const eb::Bytes inner6 = eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD, inner_ip6());
    const eb::Bytes as_sent = eb::geneve(ours, 0x6558, inner);
    const auto six = [](const eb::Bytes &udp_payload) {
        return eb::udp6_frame(eb::kPeerMac, eb::kOurMac, eb::kOur6, eb::kPeer6, 51000, 6081,
                              udp_payload);
    };
    eb::V4Opts with_options;
    with_options.options = {1, 1, 1, 0}; /* NOP, NOP, NOP, end */
    const eb::Bytes v4_options = eb::ether(
        eb::kPeerMac, eb::kOurMac, 0x0800,
        eb::ipv4(eb::kOur4, eb::kPeer4, 17, eb::udp(50000, 6081, as_sent, nullptr), with_options));
    eb::Bytes padded = gnv4(eb::geneve(ours, 0x6558, eb::payload(14)));
    padded.resize(padded.size() + 4, 0); /* Ethernet padding after the datagram */

    struct Case {
        const char *description;
        eb::Bytes frame;
        bool fast;
        DecapStatus status;
    };
    const Case cases[] = {
        {"IPv4, as a peer sends it", gnv4(as_sent), true, DecapStatus::ok},
        {"IPv6, as a peer sends it", six(eb::geneve(ours, 0x6558, inner6)), true, DecapStatus::ok},
        {"a shortest inner frame, padded", padded, true, DecapStatus::ok},
        {"from a stranger", gnv4(as_sent, kStranger4), true, DecapStatus::drop},
        {"to another address", gnv4(as_sent, eb::kOur4, eb::v4(192, 0, 2, 99)), true,
         DecapStatus::not_encapsulated},
        {"to another port", gnv4(as_sent, eb::kOur4, eb::kPeer4, 6082), false,
         DecapStatus::not_encapsulated},
        {"behind a VLAN tag",
         eb::udp4_frame(eb::kPeerMac, eb::kOurMac, eb::kOur4, eb::kPeer4, 50000, 6081, as_sent, 64,
                        {7}),
         false, DecapStatus::ok},
        {"outer IPv4 options", v4_options, false, DecapStatus::ok},
        {"the C bit", gnv4(eb::geneve(ours, 0x6558, inner, 0, false, true)), false,
         DecapStatus::ok},
        {"another option before ours",
         gnv4(eb::geneve(eb::cat(eb::geneve_option(0x0102, 0x05, eb::Bytes{}), ours), 0x6558,
                         inner)),
         false, DecapStatus::ok},
        {"without our option", gnv4(eb::geneve(eb::Bytes{}, 0x6558, inner)), false,
         DecapStatus::ok},
        {"a bare IP packet", gnv4(eb::geneve(ours, 0x0800, inner_ip4())), false, DecapStatus::ok},
        {"an inner frame shorter than its header", gnv4(eb::geneve(ours, 0x6558, eb::payload(13))),
         false, DecapStatus::drop},
        {"version 1", gnv4(eb::geneve(ours, 0x6558, inner, 1)), false, DecapStatus::drop},
    };
    for (const Case &c : cases) {
        INFO(c.description);
        const Outcome o = run(c.frame);
        REQUIRE(o.parse == ParseStatus::ok);
        CHECK(o.fast == c.fast);
        CHECK(o.result.status == c.status);
    }
}

TEST_CASE("decap of GENEVE from a routed peer addresses the inner frame to this node", "[decap]")
{
    /* The sender wrote its next hop, the router, as the inner destination;
     * the router then sent the outer frame to us. The local port's kernel
     * takes only frames for its own MAC: the inner frame gets the outer
     * frame's addresses, as if the router had sent it straight to us. VLAN
     * tags inside stay. */
    for (const std::vector<uint16_t> &vlans : {std::vector<uint16_t>{}, {7}}) {
        const eb::Bytes inner = eb::ether(eb::kRouterMac, eb::kOurMac, 0x0800, inner_ip4(), vlans);
        const eb::Bytes frame =
            eb::udp4_frame(eb::kPeerMac, eb::kRouterMac, eb::kOur4, eb::kPeer4, 50000, 6081,
                           eb::geneve(eb::flowhome_option(1, 1, 0, 0), 0x6558, inner));
        const Outcome o = run(frame);
        REQUIRE(o.result.status == DecapStatus::ok);
        REQUIRE(o.after.size() == inner.size());
        CHECK(eb::slice(o.after, 0, 6) == mac_bytes(eb::kPeerMac));
        CHECK(eb::slice(o.after, 6, 6) == mac_bytes(eb::kRouterMac));
        CHECK(eb::slice(o.after, 12, inner.size() - 12) == eb::slice(inner, 12, inner.size() - 12));
    }
}

TEST_CASE("decap of GENEVE over IPv6", "[decap]")
{
    /* The hop count as written; a peer's 0 counts as 1: the packet still
     * came through a tunnel. */
    const std::pair<uint8_t, uint8_t> written_read[] = {{2, 2}, {0, 1}};
    for (const auto &[written, read] : written_read) {
        const eb::Bytes inner = eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD, inner_ip6());
        const eb::Bytes frame =
            eb::udp6_frame(eb::kPeerMac, eb::kOurMac, eb::kOur6, eb::kPeer6, 51000, 6081,
                           eb::geneve(eb::flowhome_option(4, written, 0, 0), 0x6558, inner));
        const Outcome o = run(frame);
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.result.ingress_node == 4);
        CHECK(o.result.hops == read);
        CHECK(o.after == inner);
    }
}

TEST_CASE("decap of malformed GENEVE counts the rule it breaks", "[decap][geneve]")
{
    const eb::Bytes ours = eb::flowhome_option(9, 1, 0, 0);
    const eb::Bytes inner = inner_frame4();
    const eb::Bytes unknown_noncritical = eb::geneve_option(0x0102, 0x05, eb::payload(4));
    const eb::Bytes unknown_critical = eb::geneve_option(0x0102, 0x85, eb::payload(4));
    struct Case {
        const char *description;
        eb::Bytes udp_payload;
        DecapStatus status;
        DropReason reason;
    };
    const Case cases[] = {
        {.description = "shorter than the 8-byte GENEVE header",
         .udp_payload = eb::payload(7),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "version 1 (RFC 8926 3.4: MUST drop)",
         .udp_payload = eb::geneve(ours, 0x6558, inner, 1),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_bad_version},
        {.description = "version 3",
         .udp_payload = eb::geneve(ours, 0x6558, inner, 3),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_bad_version},
        {.description = "Opt Len runs past the datagram",
         .udp_payload = eb::geneve(eb::Bytes{}, 0x6558, eb::payload(8), 0, false, false, 63),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "OAM (O bit): no control plane here",
         .udp_payload = eb::geneve(ours, 0x6558, inner, 0, true),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_critical_option},
        {.description = "unknown critical option",
         .udp_payload = eb::geneve(eb::cat(unknown_critical, ours), 0x6558, inner, 0, false, true),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_critical_option},
        {.description = "our class with the critical bit is not ours",
         .udp_payload = eb::geneve(eb::geneve_option(0xFFF0, 0xC6, eb::payload(8)), 0x6558, inner),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_critical_option},
        {.description = "option length beyond Opt Len",
         .udp_payload =
             eb::geneve(eb::geneve_option(0x0102, 0x05, eb::payload(4), 5), 0x6558, inner),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "last option's data cut by Opt Len",
         .udp_payload =
             eb::geneve(eb::cat(ours, eb::geneve_option(0x0102, 0x05, eb::payload(4), 2)), 0x6558,
                        eb::cat(eb::payload(4), inner)),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "our option with too little data",
         .udp_payload = eb::geneve(eb::geneve_option(0xFFF0, 0x46, eb::payload(4)), 0x6558, inner),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "unknown protocol type",
         .udp_payload = eb::geneve(ours, 0x0806, inner),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_bad_protocol},
        {.description = "inner Ethernet frame shorter than 14 bytes",
         .udp_payload = eb::geneve(ours, 0x6558, eb::payload(13)),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "protocol IPv4 without a packet",
         .udp_payload = eb::geneve(ours, 0x0800, eb::Bytes{}),
         .status = DecapStatus::drop,
         .reason = DropReason::geneve_truncated},
        {.description = "protocol IPv4 carrying IPv6",
         .udp_payload = eb::geneve(ours, 0x0800, inner_ip6()),
         .status = DecapStatus::drop,
         .reason = DropReason::inner_malformed},
        {.description = "unknown non-critical option is skipped",
         .udp_payload = eb::geneve(eb::cat(unknown_noncritical, ours), 0x6558, inner),
         .status = DecapStatus::ok,
         .reason = DropReason{}},
        {.description = "C bit set without critical options is fine",
         .udp_payload = eb::geneve(ours, 0x6558, inner, 0, false, true),
         .status = DecapStatus::ok,
         .reason = DropReason{}},
    };
    for (const Case &c : cases) {
        INFO(c.description);
        const Outcome o = run(gnv4(c.udp_payload));
        REQUIRE(o.parse == ParseStatus::ok);
        CHECK(o.result.status == c.status);
        if (c.status == DecapStatus::drop) {
            CHECK(o.result.drop == c.reason);
            CHECK(o.result.from_peer == kSender);
            CHECK(o.after == o.before);
        } else {
            CHECK(o.after.size() >= 14);
        }
    }
}

TEST_CASE("decap skips unknown options and reads ours after them", "[decap][geneve]")
{
    const eb::Bytes opts = eb::cat(eb::geneve_option(0x0102, 0x05, eb::payload(12)),
                                   eb::cat(eb::geneve_option(0x0000, 0x7F, eb::Bytes{}),
                                           eb::flowhome_option(5, 1, 0xBEEF, 0x0001)));
    const Outcome o = run(gnv4(eb::geneve(opts, 0x6558, inner_frame4())));
    REQUIRE(o.result.status == DecapStatus::ok);
    CHECK(o.result.ingress_node == 5);
    CHECK(o.result.affinity == 0xBEEF);
    CHECK(o.result.service_version == 1);
    CHECK(o.after == inner_frame4());
}

TEST_CASE("decap of GENEVE without our option (a Linux geneve device)", "[decap][geneve]")
{
    const Outcome o = run(gnv4(eb::geneve(eb::Bytes{}, 0x6558, inner_frame4())));
    REQUIRE(o.result.status == DecapStatus::ok);
    CHECK(o.result.ingress_node == kSender);
    CHECK(o.result.hops == 1);
    CHECK(o.after == inner_frame4());
}

TEST_CASE("decap of GENEVE carrying a bare IP packet", "[decap][geneve]")
{
    SECTION("protocol 0x0800")
    {
        const Outcome o = run(gnv4(eb::geneve(eb::Bytes{}, 0x0800, inner_ip4())));
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800, inner_ip4()));
    }
    SECTION("protocol 0x86DD")
    {
        const Outcome o =
            run(gnv4(eb::geneve(eb::flowhome_option(2, 1, 0, 0), 0x86DD, inner_ip6())));
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD, inner_ip6()));
    }
}

TEST_CASE("decap refuses tunnels from strangers", "[decap]")
{
    const eb::Bytes gnv = eb::geneve(eb::flowhome_option(1, 1, 0, 0), 0x6558, inner_frame4());
    SECTION("GENEVE")
    {
        const Outcome o = run(gnv4(gnv, kStranger4));
        CHECK(o.result.status == DecapStatus::drop);
        CHECK(o.result.drop == DropReason::decap_unknown_peer);
        CHECK(o.after == o.before);
    }
    SECTION("IP-in-IP")
    {
        eb::V4Opts v;
        v.id = 0;
        const Outcome o = run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                                        eb::ipv4(kStranger4, eb::kPeer4, 4, inner_ip4(), v)));
        CHECK(o.result.status == DecapStatus::drop);
        CHECK(o.result.drop == DropReason::decap_unknown_peer);
        CHECK(o.after == o.before);
    }
}

TEST_CASE("a node takes GENEVE on the port of its domains", "[decap][geneve]")
{
    NodeConfig node;
    PortConfig wire;
    wire.ipv4 = to_ip(eb::kPeer4);
    node.ports = {wire};
    node.domains = {DomainConfig{.name = "dc", .geneve_port = 7000}};
    const DecapConfig cfg = decap_config(node);
    CHECK(cfg.local_v4 == to_ip(eb::kPeer4));
    CHECK_FALSE(cfg.local_v6);
    const eb::Bytes gnv = eb::geneve(eb::flowhome_option(1, 1, 0, 0), 0x6558, inner_frame4());
    CHECK(run(gnv4(gnv, eb::kOur4, eb::kPeer4, 7000), cfg).result.status == DecapStatus::ok);
    CHECK(run(gnv4(gnv), cfg).result.status == DecapStatus::not_encapsulated);
}

TEST_CASE("decap leaves what is not a tunnel to us alone", "[decap]")
{
    const eb::Bytes gnv = eb::geneve(eb::flowhome_option(1, 1, 0, 0), 0x6558, inner_frame4());
    struct Case {
        const char *description;
        eb::Bytes frame;
        DecapConfig cfg;
    };
    DecapConfig no_v4 = config();
    no_v4.local_v4.reset();
    eb::V4Opts frag;
    frag.more_fragments = true;
    const Case cases[] = {
        {.description = "GENEVE to another address",
         .frame = gnv4(gnv, eb::kOur4, eb::v4(192, 0, 2, 99)),
         .cfg = config()},
        {.description = "UDP to another port",
         .frame = gnv4(gnv, eb::kOur4, eb::kPeer4, 6082),
         .cfg = config()},
        {.description = "no local IPv4 address", .frame = gnv4(gnv), .cfg = no_v4},
        {.description = "plain TCP to a VIP",
         .frame = eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800, inner_ip4()),
         .cfg = config()},
        {.description = "IP-in-IP to another address",
         .frame = eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                            eb::ipv4(eb::kOur4, eb::v4(192, 0, 2, 99), 4, inner_ip4())),
         .cfg = config()},
        {.description = "fragment of an IP-in-IP packet",
         .frame = eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                            eb::ipv4(eb::kOur4, eb::kPeer4, 4, inner_ip4(), frag)),
         .cfg = config()},
    };
    for (const Case &c : cases) {
        INFO(c.description);
        const Outcome o = run(c.frame, c.cfg);
        REQUIRE(o.parse == ParseStatus::ok);
        CHECK(o.result.status == DecapStatus::not_encapsulated);
        CHECK(o.after == o.before);
    }
}

TEST_CASE("decap of IP-in-IP", "[decap][ipip]")
{
    eb::V4Opts v;
    v.id = 0;
    SECTION("IPv4 in IPv4 behind a VLAN tag, padding removed")
    {
        /* A bare 20-byte inner header (protocol 59, no next header): 14 + 4 + 40 bytes, padded
         * to 60. */
        const eb::Bytes small = eb::ipv4(eb::kClient4, eb::kVip4, 59, eb::Bytes{});
        const eb::Bytes frame =
            eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                      eb::ipv4(eb::kOur4, eb::kPeer4, 4, small, v), {0x0064}, true);
        REQUIRE(frame.size() == 60);
        const Outcome o = run(frame);
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.result.from_peer == kSender);
        CHECK(o.result.ingress_node == kSender);
        CHECK(o.result.hops == kHopsSpent);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800, small));
    }
    SECTION("IPv6 in IPv4 (protocol 41)")
    {
        const Outcome o = run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                                        eb::ipv4(eb::kOur4, eb::kPeer4, 41, inner_ip6(), v)));
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD, inner_ip6()));
    }
    SECTION("outer IPv4 with options")
    {
        eb::V4Opts with_opts = v;
        with_opts.options = {0x01, 0x01, 0x01, 0x00}; /* NOP NOP NOP EOL */
        const Outcome o =
            run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                          eb::ipv4(eb::kOur4, eb::kPeer4, 4, inner_ip4(), with_opts)));
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800, inner_ip4()));
    }
    SECTION("IPv4 in IPv6 (next header 4)")
    {
        const Outcome o = run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD,
                                        eb::ipv6(eb::kOur6, eb::kPeer6, 4, inner_ip4())));
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800, inner_ip4()));
    }
    SECTION("IPv6 in IPv6 behind a destination options header")
    {
        /* RFC 2473 6.7: the tunnel encapsulation limit travels in a destination option. */
        const eb::Bytes dest_opts{41, 0, 4, 1, 4, 1, 0, 0}; /* next 41, len 0, limit 4, PadN */
        const Outcome o =
            run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD,
                          eb::ipv6(eb::kOur6, eb::kPeer6, 60, eb::cat(dest_opts, inner_ip6()))));
        REQUIRE(o.result.status == DecapStatus::ok);
        CHECK(o.after == eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD, inner_ip6()));
    }
    SECTION("protocol 4 carrying IPv6 is malformed")
    {
        const Outcome o = run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                                        eb::ipv4(eb::kOur4, eb::kPeer4, 4, inner_ip6(), v)));
        CHECK(o.result.status == DecapStatus::drop);
        CHECK(o.result.drop == DropReason::inner_malformed);
        CHECK(o.after == o.before);
    }
    SECTION("empty IP-in-IP packet is malformed")
    {
        const Outcome o = run(eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                                        eb::ipv4(eb::kOur4, eb::kPeer4, 41, eb::Bytes{}, v)));
        CHECK(o.result.status == DecapStatus::drop);
        CHECK(o.result.drop == DropReason::inner_malformed);
        CHECK(o.after == o.before);
    }
}

TEST_CASE("decap forgets the RX checksum flags of the outer packet", "[decap]")
{
    /* Without our option (the general path) and with it (the fast path). */
    const eb::Bytes options = GENERATE(eb::Bytes{}, eb::flowhome_option(9, 1, 0, 0));
    const eb::Bytes frame = gnv4(eb::geneve(options, 0x6558, inner_frame4()));
    FakeMbuf fm(frame);
    fm.get()->ol_flags =
        RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_VLAN;
    fm.get()->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_UDP;
    ParsedPacket p;
    REQUIRE(parse_packet(fm.data(), fm.get()->data_len, fm.get()->pkt_len, p) == ParseStatus::ok);
    REQUIRE(decap_packet(fm.get(), p, peers(), config()).status == DecapStatus::ok);
    CHECK((fm.get()->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN);
    CHECK((fm.get()->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN);
    CHECK((fm.get()->ol_flags & RTE_MBUF_F_RX_VLAN) != 0);
    CHECK(fm.get()->packet_type == 0);
    CHECK(mac_bytes(eb::kPeerMac) == eb::slice(fm.bytes(), 0, 6));
}

TEST_CASE("decap reads the outer ECN field", "[decap][ecn]")
{
    const uint8_t ecn = GENERATE(kEcnNotEct, kEcnEct1, kEcnEct0, kEcnCe);
    const bool outer6 = GENERATE(false, true);
    const bool ipip = GENERATE(false, true);
    INFO("outer IPv" << (outer6 ? 6 : 4) << (ipip ? " IP-in-IP" : " GENEVE") << " ECN "
                     << int{ecn});
    const eb::Bytes inner = eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800, inner_ip4());
    const eb::Bytes gnv = eb::geneve(eb::flowhome_option(1, 1, 0, 0), 0x6558, inner);
    eb::V4Opts v;
    v.id = 0;
    eb::Bytes frame = ipip
                          ? (outer6 ? eb::ether(eb::kPeerMac, eb::kOurMac, 0x86DD,
                                                eb::ipv6(eb::kOur6, eb::kPeer6, 4, inner_ip4()))
                                    : eb::ether(eb::kPeerMac, eb::kOurMac, 0x0800,
                                                eb::ipv4(eb::kOur4, eb::kPeer4, 4, inner_ip4(), v)))
                          : (outer6 ? eb::udp6_frame(eb::kPeerMac, eb::kOurMac, eb::kOur6,
                                                     eb::kPeer6, 51000, 6081, gnv)
                                    : gnv4(gnv));
    eb::set_tos_at(frame, 14, static_cast<uint8_t>(0xB8 | ecn)); /* DSCP EF: not ECN */
    const Outcome o = run(frame);
    REQUIRE(o.result.status == DecapStatus::ok);
    CHECK(o.result.outer_ecn == ecn);
    CHECK(o.after == inner); /* the inner header is the caller's to change */
}

TEST_CASE("ecn_decapsulate follows RFC 6040's egress table", "[decap][ecn]")
{
    /* RFC 6040 section 4.2, figure 4: the inner ECN field leaving the
     * tunnel, by arriving inner (rows) and outer (columns: Not-ECT,
     * ECT(0), ECT(1), CE) fields; -1 drops the packet, and +4 marks the
     * figure's "(!!!)", forwarded as suspect. */
    constexpr int kDrop = -1;
    constexpr int kSuspect = 4;
    struct Row {
        uint8_t inner;
        int out[4];
    };
    constexpr Row table[] = {
        {kEcnNotEct, {kEcnNotEct, kEcnNotEct + kSuspect, kEcnNotEct + kSuspect, kDrop}},
        {kEcnEct0, {kEcnEct0, kEcnEct0, kEcnEct1, kEcnCe}},
        {kEcnEct1, {kEcnEct1, kEcnEct1, kEcnEct1, kEcnCe}},
        {kEcnCe, {kEcnCe, kEcnCe, kEcnCe + kSuspect, kEcnCe}},
    };
    constexpr uint8_t outer_of[4] = {kEcnNotEct, kEcnEct0, kEcnEct1, kEcnCe};
    const bool inner6 = GENERATE(false, true);
    for (const Row &row : table) {
        for (size_t col = 0; col < 4; ++col) {
            const uint8_t dscp_bits = 0x28; /* AF11: the DSCP stays */
            INFO("inner IPv" << (inner6 ? 6 : 4) << " ECN " << int{row.inner} << " outer "
                             << int{outer_of[col]});
            eb::Bytes ip = inner6 ? inner_ip6() : inner_ip4();
            eb::set_tos_at(ip, 0, static_cast<uint8_t>(dscp_bits | row.inner));
            const eb::Bytes before = ip;
            const EcnEgress e =
                ecn_decapsulate(ip.data(), inner6 ? Family::ipv6 : Family::ipv4, outer_of[col]);
            if (row.out[col] == kDrop) {
                CHECK(e == EcnEgress::drop);
                CHECK(ip == before);
                continue;
            }
            const int out = row.out[col] % kSuspect;
            CHECK(e == (row.out[col] >= kSuspect ? EcnEgress::suspect
                        : out == row.inner       ? EcnEgress::unchanged
                                                 : EcnEgress::marked));
            CHECK(eb::tos_at(ip, 0) == (dscp_bits | out));
            if (!inner6)
                CHECK(eb::checksum_ok(ip, 0, 20));
            /* Nothing else moves: the version, the flow label, the rest. */
            eb::Bytes want = before;
            eb::set_tos_at(want, 0, eb::tos_at(ip, 0));
            CHECK(ip == want);
        }
    }
}
