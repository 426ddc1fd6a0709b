/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of make_packet_too_big(): the ICMP "fragmentation needed"
 * (RFC 792 / RFC 1191) and ICMPv6 "packet too big" (RFC 4443) built in place,
 * checked field by field and with checksums recomputed by the independent
 * builder; and every case where no error may be sent.
 */
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <algorithm>

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

DecapConfig local()
{
    DecapConfig c;
    c.local_v4 = to_ip(eb::kOur4);
    c.local_v6 = to_ip(eb::kOur6);
    return c;
}

struct Run {
    bool sent = false;
    eb::Bytes before;
    eb::Bytes after;
    uint32_t pkt_len = 0;
    uint16_t data_off_before = 0;
    uint16_t data_off_after = 0;
};

Run run(const eb::Bytes &frame, uint16_t mtu, const DecapConfig &cfg = local(),
        uint16_t headroom = FakeMbuf::kHeadroom)
{
    Run r;
    FakeMbuf fm(frame, headroom);
    ParsedPacket p;
    REQUIRE(parse_packet(fm.data(), fm.get()->data_len, fm.get()->pkt_len, p) == ParseStatus::ok);
    r.before = fm.bytes();
    r.data_off_before = fm.get()->data_off;
    /* Offload lengths a previous use of the mbuf left behind. */
    fm.get()->tx_offload = rte_mbuf_tx_offload(18, 60, 32, 1400, 20, 14, 0);
    r.sent = make_packet_too_big(fm.get(), p, mtu, cfg);
    if (r.sent) {
        /* The error's own Ethernet and IP header lengths, nothing else. */
        const uint16_t ip_len = p.family == Family::ipv4 ? 20 : 40;
        CHECK(fm.get()->tx_offload == rte_mbuf_tx_offload(p.l3_offset, ip_len, 0, 0, 0, 0, 0));
    }
    r.after = fm.bytes();
    r.pkt_len = fm.get()->pkt_len;
    r.data_off_after = fm.get()->data_off;
    return r;
}

void check_unchanged(const Run &r)
{
    CHECK_FALSE(r.sent);
    CHECK(r.after == r.before);
    CHECK(r.data_off_after == r.data_off_before);
}

eb::Bytes v4_frame(const eb::Bytes &ip, const std::vector<uint16_t> &vlans = {})
{
    return eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800, ip, vlans, true);
}
eb::Bytes v6_frame(const eb::Bytes &ip, const std::vector<uint16_t> &vlans = {})
{
    return eb::ether(eb::kOurMac, eb::kRouterMac, 0x86DD, ip, vlans, true);
}

/* Verifies the reply's Ethernet header: MACs swapped, tags kept. */
void check_l2(const eb::Bytes &out, const eb::Bytes &in, size_t l2_len)
{
    CHECK(eb::slice(out, 0, 6) == eb::Bytes(eb::kRouterMac.begin(), eb::kRouterMac.end()));
    CHECK(eb::slice(out, 6, 6) == eb::Bytes(eb::kOurMac.begin(), eb::kOurMac.end()));
    CHECK(eb::slice(out, 12, l2_len - 12) == eb::slice(in, 12, l2_len - 12));
}

} // namespace

TEST_CASE("IPv4 with DF gets fragmentation needed with the next-hop MTU", "[icmp]")
{
    const eb::Bytes ip = eb::ipv4_tcp(eb::kClient4, eb::kVip4, 40000, 80, 0x10, eb::payload(1400));
    const eb::Bytes frame = v4_frame(ip, {0x0064});
    const Run r = run(frame, 1442);
    REQUIRE(r.sent);
    const eb::Bytes &out = r.after;
    const size_t l3 = 18;
    check_l2(out, frame, l3);

    /* RFC 1812 4.3.2.3: 576 bytes at most; the quote is the start of the original packet. */
    REQUIRE(out.size() == l3 + 576);
    CHECK(r.pkt_len == out.size());
    CHECK(out[l3] == 0x45);
    CHECK(eb::get16(out, l3 + 2) == 576);
    CHECK(out[l3 + 8] == 64);
    CHECK(out[l3 + 9] == 1);
    CHECK(eb::slice(out, l3 + 12, 4) == eb::Bytes(eb::kOur4.begin(), eb::kOur4.end()));
    CHECK(eb::slice(out, l3 + 16, 4) == eb::Bytes(eb::kClient4.begin(), eb::kClient4.end()));
    CHECK(eb::checksum_ok(out, l3, 20));

    const size_t icmp = l3 + 20;
    CHECK(out[icmp] == 3);
    CHECK(out[icmp + 1] == 4);
    CHECK(eb::get16(out, icmp + 4) == 0);
    CHECK(eb::get16(out, icmp + 6) == 1442);
    CHECK(eb::checksum_ok(out, icmp, 576 - 20));
    CHECK(eb::slice(out, icmp + 8, 548) == eb::slice(ip, 0, 548));
}

TEST_CASE("IPv4 small packet: the whole packet is quoted, padding dropped", "[icmp]")
{
    const eb::Bytes ip = eb::ipv4_udp(eb::kClient4, eb::kVip4, 5000, 53, eb::payload(4));
    const eb::Bytes frame = v4_frame(ip);
    REQUIRE(frame.size() == 60);
    const Run r = run(frame, 1000);
    REQUIRE(r.sent);
    const eb::Bytes &out = r.after;
    REQUIRE(out.size() == 14 + 28 + ip.size());
    check_l2(out, frame, 14);
    CHECK(eb::get16(out, 14 + 2) == 28 + ip.size());
    CHECK(eb::checksum_ok(out, 14, 20));
    CHECK(eb::checksum_ok(out, 34, 8 + ip.size()));
    CHECK(eb::get16(out, 34 + 6) == 1000);
    CHECK(eb::slice(out, 42, ip.size()) == ip);
}

TEST_CASE("IPv4 refusals leave the packet unchanged", "[icmp]")
{
    const eb::Bytes data = eb::payload(1400);
    eb::V4Opts no_df;
    no_df.df = false;
    eb::V4Opts later;
    later.frag_offset = 100;
    later.df = false;
    eb::V4Opts later_df = later;
    later_df.df = true;

    SECTION("DF clear: the router may fragment")
    {
        check_unchanged(
            run(v4_frame(eb::ipv4_tcp(eb::kClient4, eb::kVip4, 1, 80, 0x10, data, no_df)), 1400));
    }
    SECTION("non-initial fragment")
    {
        check_unchanged(run(v4_frame(eb::ipv4(eb::kClient4, eb::kVip4, 6, data, later_df)), 1400));
    }
    SECTION("ICMP errors are never answered")
    {
        for (uint8_t type : {3, 4, 5, 11, 12})
            check_unchanged(run(
                v4_frame(eb::ipv4(eb::kClient4, eb::kVip4, 1, eb::icmp4(type, 0, data))), 1400));
    }
    SECTION("multicast, zero, loopback and broadcast sources")
    {
        for (const eb::Ip4 &src : {eb::v4(224, 0, 0, 5), eb::v4(0, 0, 0, 0), eb::v4(127, 0, 0, 1),
                                   eb::v4(255, 255, 255, 255), eb::v4(240, 1, 1, 1)})
            check_unchanged(run(v4_frame(eb::ipv4_tcp(src, eb::kVip4, 1, 80, 0x10, data)), 1400));
    }
    SECTION("multicast destination")
    {
        check_unchanged(
            run(v4_frame(eb::ipv4_udp(eb::kClient4, eb::v4(239, 1, 1, 1), 1, 2, data)), 1400));
    }
    SECTION("link-layer broadcast and multicast frames")
    {
        for (const eb::Mac &group : {eb::Mac{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
                                     eb::Mac{0x01, 0x00, 0x5E, 0x00, 0x00, 0x01}})
            check_unchanged(
                run(eb::ether(group, eb::kRouterMac, 0x0800,
                              eb::ipv4_tcp(eb::kClient4, eb::kVip4, 1, 80, 0x10, data), {}, true),
                    1400));
    }
    SECTION("no local IPv4 address")
    {
        DecapConfig cfg = local();
        cfg.local_v4.reset();
        check_unchanged(
            run(v4_frame(eb::ipv4_tcp(eb::kClient4, eb::kVip4, 1, 80, 0x10, data)), 1400, cfg));
    }
    SECTION("no headroom for the new headers")
    {
        check_unchanged(run(v4_frame(eb::ipv4_tcp(eb::kClient4, eb::kVip4, 1, 80, 0x10, data)),
                            1400, local(), 27));
    }
}

TEST_CASE("IPv4 ICMP echo does get an error", "[icmp]")
{
    const Run r = run(
        v4_frame(eb::ipv4(eb::kClient4, eb::kVip4, 1, eb::icmp4(8, 0, eb::payload(1400)))), 1300);
    CHECK(r.sent);
    CHECK(r.after[34] == 3);
    CHECK(r.data_off_after == r.data_off_before - 28);
}

TEST_CASE("IPv6 gets packet too big within 1280 bytes", "[icmp]")
{
    const eb::Bytes ip = eb::ipv6_tcp(eb::kClient6, eb::kVip6, 40000, 443, 0x10, eb::payload(1400));
    const eb::Bytes frame = v6_frame(ip, {0x0064, 0x00C8});
    for (const auto &[mtu, advertised] :
         {std::pair<uint16_t, uint32_t>{1400, 1400}, std::pair<uint16_t, uint32_t>{1000, 1280}}) {
        INFO("mtu " << mtu);
        const Run r = run(frame, mtu);
        REQUIRE(r.sent);
        const eb::Bytes &out = r.after;
        const size_t l3 = 22;
        check_l2(out, frame, l3);
        /* RFC 4443 2.4(c): the error packet must not exceed the minimum IPv6 MTU. */
        REQUIRE(out.size() == l3 + 1280);
        CHECK(out[l3] >> 4 == 6);
        CHECK(eb::get16(out, l3 + 4) == 1240);
        CHECK(out[l3 + 6] == 58);
        CHECK(eb::slice(out, l3 + 8, 16) == eb::Bytes(eb::kOur6.begin(), eb::kOur6.end()));
        CHECK(eb::slice(out, l3 + 24, 16) == eb::Bytes(eb::kClient6.begin(), eb::kClient6.end()));
        const size_t icmp = l3 + 40;
        CHECK(out[icmp] == 2);
        CHECK(out[icmp + 1] == 0);
        CHECK(eb::get32(out, icmp + 4) == advertised);
        CHECK(eb::checksum_ok(out, icmp, 1240, eb::pseudo6_at(out, l3, 58, 1240)));
        CHECK(eb::slice(out, icmp + 8, 1232) == eb::slice(ip, 0, 1232));
    }
}

TEST_CASE("IPv6 refusals leave the packet unchanged", "[icmp]")
{
    const eb::Bytes data = eb::payload(1400);
    SECTION("ICMPv6 errors are never answered")
    {
        for (uint8_t type : {1, 2, 3, 4, 127})
            check_unchanged(
                run(v6_frame(eb::ipv6(eb::kClient6, eb::kVip6, 58,
                                      eb::icmp6(eb::kClient6, eb::kVip6, type, 0, data))),
                    1280));
    }
    SECTION("multicast, unspecified, loopback and IPv4-mapped sources")
    {
        check_unchanged(
            run(v6_frame(eb::ipv6_udp(eb::v6(0xFF02, 1), eb::kVip6, 1, 2, data)), 1280));
        check_unchanged(run(v6_frame(eb::ipv6_udp(eb::v6(0, 0), eb::kVip6, 1, 2, data)), 1280));
        check_unchanged(run(v6_frame(eb::ipv6_udp(eb::v6(0, 1), eb::kVip6, 1, 2, data)), 1280));
        eb::Ip6 mapped = eb::v6(0, 0x0201); /* ::ffff:192.0.2.1 */
        mapped[10] = mapped[11] = 0xFF;
        mapped[12] = 192;
        mapped[13] = 0;
        check_unchanged(run(v6_frame(eb::ipv6_udp(mapped, eb::kVip6, 1, 2, data)), 1280));
        /* One bit off the IPv4-mapped prefix: a host, answered. */
        mapped[11] = 0xFE;
        CHECK(run(v6_frame(eb::ipv6_udp(mapped, eb::kVip6, 1, 2, data)), 1280).sent);
    }
    SECTION("link-layer broadcast and multicast frames")
    {
        /* RFC 4443 2.4(e.4, e.5) would allow a Packet Too Big, but the
         * error would leave from the group's address. */
        for (const eb::Mac &group : {eb::Mac{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
                                     eb::Mac{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}})
            check_unchanged(
                run(eb::ether(group, eb::kRouterMac, 0x86DD,
                              eb::ipv6_udp(eb::kClient6, eb::kVip6, 1, 2, data), {}, true),
                    1280));
    }
    SECTION("no local IPv6 address")
    {
        DecapConfig cfg = local();
        cfg.local_v6.reset();
        check_unchanged(
            run(v6_frame(eb::ipv6_udp(eb::kClient6, eb::kVip6, 1, 2, data)), 1280, cfg));
    }
    SECTION("no headroom")
    {
        check_unchanged(
            run(v6_frame(eb::ipv6_udp(eb::kClient6, eb::kVip6, 1, 2, data)), 1280, local(), 47));
    }
}

TEST_CASE("IPv6 echo request gets packet too big", "[icmp]")
{
    const eb::Bytes ip = eb::ipv6(eb::kClient6, eb::kVip6, 58,
                                  eb::icmp6(eb::kClient6, eb::kVip6, 128, 0, eb::payload(100)));
    const Run r = run(v6_frame(ip), 1280);
    REQUIRE(r.sent);
    REQUIRE(r.after.size() == 14 + 48 + ip.size());
    CHECK(r.after[54] == 2);
    CHECK(eb::checksum_ok(r.after, 54, 8 + ip.size(),
                          eb::pseudo6_at(r.after, 14, 58, static_cast<uint32_t>(8 + ip.size()))));
    CHECK(eb::slice(r.after, 62, ip.size()) == ip);
}

TEST_CASE("the flow an ICMP error to a VIP is about", "[icmp]")
{
    /* A router between the VIP's owner and the client sends the error to
     * the VIP, quoting the owner's reply: VIP:80 -> client:40000. */
    const eb::Ip4 router = eb::v4(203, 0, 113, 1);
    const eb::Bytes reply4 = eb::ipv4_tcp(eb::kVip4, eb::kClient4, 80, 40000, 0x10, eb::payload(8));
    const eb::Bytes reply6 = eb::ipv6_udp(eb::kVip6, eb::kClient6, 443, 40001, eb::payload(8));
    const FlowKey want4 = FlowKey::make4(to_ip(eb::kClient4).v4_be(), htons(40000),
                                         to_ip(eb::kVip4).v4_be(), htons(80), kProtoTcp);
    const FlowKey want6 = FlowKey::make6(to_ip(eb::kClient6).bytes.data(), htons(40001),
                                         to_ip(eb::kVip6).bytes.data(), htons(443), kProtoUdp);
    auto flow_of = [](const eb::Bytes &frame, FlowKey &key) {
        ParsedPacket p;
        REQUIRE(parse_packet(frame.data(), static_cast<uint32_t>(frame.size()),
                             static_cast<uint32_t>(frame.size()), p) == ParseStatus::ok);
        return icmp_error_flow(frame.data(), static_cast<uint32_t>(frame.size()), p, key);
    };
    auto to_vip4 = [&](uint8_t type, const eb::Bytes &quote) {
        return eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800,
                         eb::ipv4(router, eb::kVip4, kProtoIcmp, eb::icmp4(type, 4, quote)));
    };
    auto to_vip6 = [&](uint8_t type, const eb::Bytes &quote) {
        const eb::Ip6 router6 = eb::v6(0x2001, 0xfe);
        return eb::ether(eb::kOurMac, eb::kRouterMac, 0x86DD,
                         eb::ipv6(router6, eb::kVip6, kProtoIcmpv6,
                                  eb::icmp6(router6, eb::kVip6, type, 0, quote)));
    };
    FlowKey key;
    /* Fragmentation needed (3), time exceeded (11), parameter problem (12). */
    for (const uint8_t type : {3, 11, 12}) {
        CAPTURE(int{type});
        REQUIRE(flow_of(to_vip4(type, eb::slice(reply4, 0, 28)), key));
        CHECK(key == want4);
    }
    /* Unreachable, packet too big, time exceeded, parameter problem. */
    for (const uint8_t type : {1, 2, 3, 4}) {
        CAPTURE(int{type});
        REQUIRE(flow_of(to_vip6(type, eb::slice(reply6, 0, 48)), key));
        CHECK(key == want6);
    }
    /* Not errors, or quotes without the ports. */
    CHECK_FALSE(flow_of(to_vip4(8, eb::slice(reply4, 0, 28)), key)); /* echo request */
    CHECK_FALSE(flow_of(to_vip4(3, eb::slice(reply4, 0, 23)), key));
    CHECK_FALSE(flow_of(to_vip6(128, eb::slice(reply6, 0, 48)), key));
    CHECK_FALSE(flow_of(to_vip6(2, eb::slice(reply6, 0, 43)), key));
    /* A quoted later fragment holds no ports (RFC 791): its first bytes
     * are payload. The first fragment (offset 0, more fragments) has them.
     * The quoted header's checksum is not checked, so it is left as is. */
    eb::Bytes later = eb::slice(reply4, 0, 28);
    later[6] = 0x20; /* more fragments, offset 8 x 23 */
    later[7] = 23;
    CHECK_FALSE(flow_of(to_vip4(3, later), key));
    eb::Bytes first = eb::slice(reply4, 0, 28);
    first[6] = 0x20; /* more fragments, offset 0 */
    REQUIRE(flow_of(to_vip4(3, first), key));
    CHECK(key == want4);
    /* A quoted ICMP packet is no flow of ours. */
    const eb::Bytes echo = eb::ipv4(eb::kVip4, eb::kClient4, kProtoIcmp, eb::icmp4(0, 0, {}));
    CHECK_FALSE(flow_of(to_vip4(3, echo), key));
}
