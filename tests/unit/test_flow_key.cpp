/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow keys, flow_hash, is_connection_opening and the RFC 1071 checksum.
 */
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_hash_crc.h>

#include "flowhome/packet.hpp"
#include "flowhome/vip.hpp"
#include "catch_strings.hpp"
#include "packet_builder.hpp"
#include "vip_reference.hpp"

using namespace flowhome;
using flowhome::test::Bytes;
using flowhome::test::FrameBuilder;
using flowhome::test::Ipv6ExtSpec;
using flowhome::test::truncated;

namespace {

constexpr uint8_t kSyn = tcp_flag::syn;
constexpr uint8_t kAck = tcp_flag::ack;

/* IPv4 Router Alert option (RFC 2113): 4 bytes. */
Bytes router_alert()
{
    return {0x94, 0x04, 0x00, 0x00};
}

} // namespace

TEST_CASE("flow key of an IPv4 TCP packet", "[flow_key]")
{
    const Bytes frame = FrameBuilder{}
                            .ipv4({.src = "192.0.2.1", .dst = "198.51.100.1"})
                            .tcp({.src_port = 1234, .dst_port = 80})
                            .build();
    ParsedPacket p;
    REQUIRE(parse_packet(frame.data(), static_cast<uint32_t>(frame.size()),
                         static_cast<uint32_t>(frame.size()), p) == ParseStatus::ok);
    const FlowKey key = flow_key_of(frame.data(), p);

    REQUIRE(key.family == Family::ipv4);
    CHECK(key.client() == *IpAddr::parse("192.0.2.1"));
    CHECK(key.vip() == *IpAddr::parse("198.51.100.1"));
    CHECK(key.client_port() == 1234);
    CHECK(key.vip_port() == 80);
    CHECK(key.proto() == kProtoTcp);
    CHECK(key.to_string() == "tcp 192.0.2.1:1234 -> 198.51.100.1:80");

    /* Canonical layout: client, VIP, client port, VIP port, proto, zero pad. */
    const uint8_t expected[16] = {192, 0, 2, 1, 198, 51, 100, 1, 0x04, 0xD2, 0, 80, 6, 0, 0, 0};
    CHECK(std::memcmp(&key.v4, expected, sizeof(expected)) == 0);

    const FlowKey made =
        FlowKey::make4(htonl(0xC0000201), htons(1234), htonl(0xC6336401), htons(80), kProtoTcp);
    CHECK(made == key);
    CHECK_FALSE(FlowKey::make4(htonl(0xC0000201), htons(1235), htonl(0xC6336401), htons(80),
                               kProtoTcp) == key);
    CHECK_FALSE(FlowKey::make4(htonl(0xC0000201), htons(1234), htonl(0xC6336401), htons(80),
                               kProtoUdp) == key);
    CHECK_FALSE(FlowKey::make4(htonl(0xC6336401), htons(80), htonl(0xC0000201), htons(1234),
                               kProtoTcp) == key);
}

TEST_CASE("flow key equality looks at the family and the key bytes only", "[flow_key]")
{
    const FlowKey v4 =
        FlowKey::make4(htonl(0xC0000201), htons(1234), htonl(0xC6336401), htons(80), kProtoTcp);

    SECTION("a v6 key with the same leading bytes differs")
    {
        FlowKey v6 = v4;
        v6.family = Family::ipv6;
        CHECK_FALSE(v6 == v4);
    }
    SECTION("bytes past a v4 key's 16 are not part of it")
    {
        FlowKey dirty = v4;
        std::memset(dirty.v6.vip_addr, 0xAB, sizeof(dirty.v6.vip_addr));
        std::memset(&dirty.v6.client_port, 0xCD, 8);
        CHECK(dirty == v4);
        CHECK(flow_hash(dirty) == flow_hash(v4));
    }
    SECTION("keys of no family are all equal")
    {
        FlowKey a;
        FlowKey b;
        b.v6.proto = 17;
        CHECK(a == b);
        CHECK(flow_hash(a) == flow_hash(b));
        CHECK(a.to_string() == "none");
    }
}

TEST_CASE("flow key of an IPv6 UDP packet", "[flow_key]")
{
    const Bytes frame =
        FrameBuilder{}
            .vlan()
            .ipv6({.src = "2001:db8::1", .dst = "2001:db8:1::80", .ext = {{.type = 0}}})
            .udp({.src_port = 5353, .dst_port = 53})
            .payload(4)
            .build();
    ParsedPacket p;
    REQUIRE(parse_packet(frame.data(), static_cast<uint32_t>(frame.size()),
                         static_cast<uint32_t>(frame.size()), p) == ParseStatus::ok);
    const FlowKey key = flow_key_of(frame.data(), p);

    REQUIRE(key.family == Family::ipv6);
    CHECK(key.client() == *IpAddr::parse("2001:db8::1"));
    CHECK(key.vip() == *IpAddr::parse("2001:db8:1::80"));
    CHECK(key.client_port() == 5353);
    CHECK(key.vip_port() == 53);
    CHECK(key.proto() == kProtoUdp);
    CHECK(key.to_string() == "udp [2001:db8::1]:5353 -> [2001:db8:1::80]:53");

    const auto client = flowhome::test::ipv6_addr("2001:db8::1");
    const auto vip = flowhome::test::ipv6_addr("2001:db8:1::80");
    CHECK(FlowKey::make6(client.data(), htons(5353), vip.data(), htons(53), kProtoUdp) == key);
    CHECK_FALSE(FlowKey::make6(vip.data(), htons(5353), client.data(), htons(53), kProtoUdp) ==
                key);
    CHECK_FALSE(FlowKey::make6(client.data(), htons(5353), vip.data(), htons(54), kProtoUdp) ==
                key);
    /* Every pad byte: rte_hash compares all 48 bytes of a key. */
    const uint8_t pad[sizeof(key.v6.pad)] = {};
    CHECK(std::memcmp(key.v6.pad, pad, sizeof(pad)) == 0);
}

namespace {

/* Bitwise CRC32-C (reflected Castagnoli polynomial 0x82F63B78), no pre- or
 * post-inversion: the register update the SSE4.2 crc32 instruction does. */
uint32_t crc32c_reference(const uint8_t *p, size_t n, uint32_t crc)
{
    for (size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0u);
    }
    return crc;
}

} // namespace

TEST_CASE("make_flow_key writes flow_key_of's key in place and returns its flow_hash", "[flow_key]")
{
    const std::vector<Bytes> frames{
        FrameBuilder{}.ipv4({.src = "192.0.2.1", .dst = "198.51.100.1"}).tcp().build(),
        FrameBuilder{}.vlan().ipv4({.src = "203.0.113.9", .dst = "198.51.100.2"}).udp().build(),
        FrameBuilder{}.ipv6({.src = "2001:db8::1", .dst = "2001:db8:1::80"}).tcp().build(),
        FrameBuilder{}
            .ipv6({.src = "2001:db8::2", .dst = "2001:db8:1::81", .ext = {{.type = 0}}})
            .udp()
            .build(),
    };
    for (const Bytes &frame : frames) {
        ParsedPacket p;
        REQUIRE(parse_packet(frame.data(), static_cast<uint32_t>(frame.size()),
                             static_cast<uint32_t>(frame.size()), p) == ParseStatus::ok);
        const FlowKey want = flow_key_of(frame.data(), p);
        /* A slot that held anything before: nothing of it may remain, the
         * IPv6 key's padding included. */
        FlowKey slot;
        std::memset(static_cast<void *>(&slot), 0xFF, sizeof(slot));
        const uint32_t hash = make_flow_key(slot, frame.data(), p);
        CHECK(slot == want);
        CHECK(std::memcmp(&slot.v6, &want.v6, sizeof(slot.v6)) == 0);
        CHECK(hash == flow_hash(want));
    }
}

TEST_CASE("flow_hash is CRC32-C with a fixed seed, the same on every node", "[flow_key]")
{
    /* The reference itself: the standard CRC-32C check value (RFC 3720 B.4
     * parameters: init and final XOR all ones). */
    const char check[] = "123456789";
    CHECK((crc32c_reference(reinterpret_cast<const uint8_t *>(check), 9, 0xFFFFFFFF) ^
           0xFFFFFFFF) == 0xE3069283);

    /* Part of the contract between nodes: a change re-places every flow. */
    STATIC_REQUIRE(kFlowHashSeed == 0x666C6F77);
    const FlowKey v4 =
        FlowKey::make4(htonl(0xC0000201), htons(1234), htonl(0xC6336401), htons(80), kProtoTcp);
    const auto client = flowhome::test::ipv6_addr("2001:db8::1");
    const auto vip = flowhome::test::ipv6_addr("2001:db8:1::80");
    const FlowKey v6 = FlowKey::make6(client.data(), htons(5353), vip.data(), htons(53), kProtoUdp);

    CHECK(flow_hash(v4) ==
          crc32c_reference(reinterpret_cast<const uint8_t *>(&v4.v4), 16, kFlowHashSeed));
    CHECK(flow_hash(v6) ==
          crc32c_reference(reinterpret_cast<const uint8_t *>(&v6.v6), 40, kFlowHashSeed));

    /* The ownership table hashes keys with rte_hash_crc and the same seed,
     * and is handed flow_hash() values: they must agree. (rte_hash_crc loads
     * 8 bytes at a time through a cast, hence the aligned copy.) */
    alignas(8) uint8_t aligned[40];
    std::memcpy(aligned, &v4.v4, 16);
    CHECK(flow_hash(v4) == rte_hash_crc(aligned, 16, kFlowHashSeed));
    std::memcpy(aligned, &v6.v6, 40);
    CHECK(flow_hash(v6) == rte_hash_crc(aligned, 40, kFlowHashSeed));
    /* Pinned: a change here changes the placement of every connection. */
    CHECK(flow_hash(v4) == 0x1C6361B3u);
    CHECK(flow_hash(v6) == 0x72B1BE55u);

    /* A one-bit change is always a different CRC. */
    const FlowKey other =
        FlowKey::make4(htonl(0xC0000201), htons(1235), htonl(0xC6336401), htons(80), kProtoTcp);
    CHECK(flow_hash(other) != flow_hash(v4));
}

TEST_CASE("is_connection_opening", "[parse]")
{
    auto opening = [](const Bytes &frame) {
        ParsedPacket p;
        REQUIRE(parse_packet(frame.data(), static_cast<uint32_t>(frame.size()),
                             static_cast<uint32_t>(frame.size()), p) == ParseStatus::ok);
        return is_connection_opening(p);
    };
    CHECK(opening(FrameBuilder{}.ipv4().tcp({.flags = kSyn}).build()));
    CHECK(opening(FrameBuilder{}.ipv6().tcp({.flags = kSyn | tcp_flag::psh}).build()));
    CHECK_FALSE(opening(FrameBuilder{}.ipv4().tcp({.flags = kSyn | kAck}).build()));
    CHECK_FALSE(opening(FrameBuilder{}.ipv4().tcp({.flags = kSyn | tcp_flag::rst}).build()));
    CHECK_FALSE(opening(FrameBuilder{}.ipv4().tcp({.flags = kSyn | tcp_flag::fin}).build()));
    CHECK_FALSE(opening(FrameBuilder{}.ipv4().tcp({.flags = kAck}).build()));
    CHECK_FALSE(opening(FrameBuilder{}.ipv4().tcp({.flags = tcp_flag::fin | kAck}).build()));
    CHECK(opening(FrameBuilder{}.ipv4().udp().build()));
    CHECK(opening(FrameBuilder{}.ipv6().udp().build()));
    CHECK_FALSE(opening(FrameBuilder{}.ipv4({.protocol = kProtoIcmp}).payload(8).build()));
}

TEST_CASE("RFC 1071 one's-complement sum", "[checksum]")
{
    /* RFC 1071 3: 0001 + f203 + f4f5 + f6f7 = 2ddf0, folded ddf2. */
    const uint8_t rfc_example[] = {0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7};
    CHECK(ones_complement_sum(rfc_example, sizeof(rfc_example)) == 0xDDF2);
    /* Same bytes at an odd address: no alignment assumption. */
    uint8_t shifted[sizeof(rfc_example) + 1] = {};
    std::memcpy(shifted + 1, rfc_example, sizeof(rfc_example));
    CHECK(ones_complement_sum(shifted + 1, sizeof(rfc_example)) == 0xDDF2);

    /* An odd last byte is the high byte of a word padded with zero. */
    const uint8_t odd[] = {0x01, 0x02, 0x03};
    CHECK(ones_complement_sum(odd, sizeof(odd)) == 0x0402);
    CHECK(ones_complement_sum(odd, 0) == 0);

    /* The initial value is added with end-around carry. */
    const uint8_t ones[] = {0xFF, 0xFF};
    CHECK(ones_complement_sum(ones, 2, 0x0001) == 0x0001);
    CHECK(ones_complement_sum(rfc_example, sizeof(rfc_example), 0x2DDF0) == 0xBBE5);
    CHECK(ones_complement_sum(odd, 0, 0xFFFFFFFF) == 0xFFFF);
}

TEST_CASE("IPv4 header checksum", "[checksum]")
{
    /* A captured UDP packet header, checksum b861 (hand-verified: the words
     * sum to 0x2479c, folded 0x479e, inverted 0xb861). */
    uint8_t header[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                          0xB8, 0x61, 0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7};
    CHECK(ipv4_header_checksum(header, sizeof(header)) == 0xB861);
    CHECK(ones_complement_sum(header, sizeof(header)) == 0xFFFF);
    /* The checksum field counts as zero whatever it holds. */
    header[10] = 0;
    header[11] = 0;
    CHECK(ipv4_header_checksum(header, sizeof(header)) == 0xB861);
    header[10] = 0x12;
    header[11] = 0x34;
    CHECK(ipv4_header_checksum(header, sizeof(header)) == 0xB861);

    /* With options, against the builder's own RFC 1071 loop. */
    const Bytes frame = FrameBuilder{}.ipv4({.ttl = 3, .options = router_alert()}).udp().build();
    const uint16_t stored = static_cast<uint16_t>(frame[14 + 10] << 8 | frame[14 + 11]);
    CHECK(ipv4_header_checksum(frame.data() + 14, 24) == stored);
    CHECK(ones_complement_sum(frame.data() + 14, 24) == 0xFFFF);
}

TEST_CASE("an IPv4 header verifies without folding its sum exactly when its folded sum is 0xFFFF",
          "[checksum]")
{
    /* The parser's test (a multiple of 0xFFFF other than 0) against the
     * folded sum, on the edges of the arithmetic and on random headers,
     * half of them with a correct checksum. */
    const auto agree = [](const uint8_t *h) {
        const bool valid = wire::ipv4_base_header_valid(h);
        return valid == (wire::ipv4_base_header_sum(h) == 0xFFFF) &&
               valid == (ones_complement_sum(h, 20) == 0xFFFF); /* RFC 1071, 16 bits at a time */
    };
    uint8_t h[20];
    for (const uint8_t fill : {0x00, 0xFF, 0x01, 0x80}) {
        std::memset(h, fill, sizeof(h));
        CHECK(agree(h));
    }
    std::memset(h, 0, sizeof(h));
    CHECK_FALSE(wire::ipv4_base_header_valid(h)); /* all zero: +0, no header */
    h[0] = 0xFF;
    h[1] = 0xFF; /* one word of 0xFFFF: -0, which verifies */
    CHECK(wire::ipv4_base_header_valid(h));
    CHECK(agree(h));

    std::mt19937_64 rng(7);
    unsigned valid = 0;
    for (int i = 0; i < 200000; ++i) {
        for (uint8_t &b : h)
            b = static_cast<uint8_t>(rng());
        if (i % 2 == 0) {
            h[10] = 0;
            h[11] = 0;
            const uint16_t csum = ipv4_header_checksum(h, sizeof(h));
            h[10] = static_cast<uint8_t>(csum >> 8);
            h[11] = static_cast<uint8_t>(csum);
        }
        valid += wire::ipv4_base_header_valid(h) ? 1 : 0;
        if (!agree(h)) {
            FAIL_CHECK("disagree on " << fmt::format("{:02x}", fmt::join(h, "")));
            break;
        }
    }
    CHECK(valid >= 100000);
}

TEST_CASE("a VIP set serves the flows its VIPs name, as it matches their packets", "[vip]")
{
    const auto ip = [](const char *s) { return *IpAddr::parse(s); };
    const flowhome::VipSet vips({VipConfig{ip("203.0.113.10"), VipProtocol::tcp, {80, 443}},
                                 VipConfig{ip("203.0.113.11"), VipProtocol::any, {}},
                                 VipConfig{ip("2001:db8::10"), VipProtocol::udp, {53}}});
    const auto key4 = [&](const char *vip, uint16_t port, uint8_t proto) {
        return FlowKey::make4(ip("198.51.100.7").v4_be(), htons(40000), ip(vip).v4_be(),
                              htons(port), proto);
    };
    const auto key6 = [&](uint16_t port, uint8_t proto) {
        return FlowKey::make6(ip("2001:db8::7").bytes.data(), htons(40000),
                              ip("2001:db8::10").bytes.data(), htons(port), proto);
    };
    CHECK(vips.serves(key4("203.0.113.10", 443, kProtoTcp)));
    CHECK_FALSE(vips.serves(key4("203.0.113.10", 8080, kProtoTcp))); /* not its port */
    CHECK_FALSE(vips.serves(key4("203.0.113.10", 80, kProtoUdp)));   /* not its protocol */
    CHECK(vips.serves(key4("203.0.113.11", 9, kProtoUdp)));          /* any, every port */
    CHECK_FALSE(vips.serves(key4("203.0.113.12", 80, kProtoTcp)));   /* no such VIP */
    CHECK(vips.serves(key6(53, kProtoUdp)));
    CHECK_FALSE(vips.serves(key6(53, kProtoTcp)));
}

TEST_CASE("a VIP set of many VIPs answers as its VIPs do one by one", "[vip]")
{
    /* Random VIP lists over a few addresses, so that VIPs share addresses
     * and port lists merge, against random packets to those addresses and
     * to others; sizes from one VIP to thousands. */
    std::mt19937 rng(20261203);
    std::vector<IpAddr> pool;
    for (unsigned i = 0; i < 40; ++i) {
        pool.push_back(*IpAddr::parse(fmt::format("203.0.113.{}", 1 + i * 6)));
        pool.push_back(*IpAddr::parse(fmt::format("2001:db8:{:x}::{:x}", i * 977, i)));
    }
    const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpv6};
    for (const unsigned n : {1u, 2u, 3u, 17u, 64u, 1000u, 3000u}) {
        std::vector<VipConfig> vips;
        for (unsigned i = 0; i < n; ++i) {
            VipConfig v{pool[rng() % pool.size()], static_cast<VipProtocol>(rng() % 3), {}};
            for (unsigned k = rng() % 4 == 0 ? 0 : rng() % 4; k > 0; --k)
                v.ports.push_back(static_cast<uint16_t>(1 + rng() % 64));
            vips.push_back(std::move(v));
        }
        const VipSet set(vips);
        unsigned matched = 0;
        for (unsigned t = 0; t < 20000; ++t) {
            /* Mostly a VIP's address; else one of the pool, or one in no VIP. */
            const IpAddr dst = t % 16 == 0   ? *IpAddr::parse("203.0.113.250")
                               : t % 16 == 8 ? *IpAddr::parse("2001:db8::ffff")
                               : t % 4 == 1  ? pool[rng() % pool.size()]
                                             : vips[rng() % n].address;
            const uint8_t proto = protos[rng() % 4];
            const auto port = static_cast<uint16_t>(1 + rng() % 70);
            const bool later_fragment = rng() % 8 == 0;

            uint8_t frame[64] = {};
            ParsedPacket p;
            p.family = dst.family;
            p.l3_offset = 14;
            p.l4_proto = proto;
            p.dst_port = port;
            p.later_fragment = later_fragment;
            if (dst.family == Family::ipv4)
                std::memcpy(frame + 14 + 16, dst.bytes.data(), 4);
            else
                std::memcpy(frame + 14 + 24, dst.bytes.data(), 16);

            const bool want = test::vip_reference_match(vips, dst.family, dst.bytes.data(), proto,
                                                        port, later_fragment);
            matched += want;
            INFO(n << " VIPs; packet to " << dst.to_string() << " proto " << int(proto) << " port "
                   << port << (later_fragment ? " (later fragment)" : ""));
            REQUIRE(set.match(frame, p) == want);
            if ((proto == kProtoTcp || proto == kProtoUdp) && !later_fragment) {
                const FlowKey key = dst.family == Family::ipv4
                                        ? FlowKey::make4(htonl(0xC6336407), htons(40000),
                                                         dst.v4_be(), htons(port), proto)
                                        : FlowKey::make6(dst.bytes.data(), htons(40000),
                                                         dst.bytes.data(), htons(port), proto);
                REQUIRE(set.serves(key) == want);
            }
        }
        /* Both answers occur at every size: the comparison means something. */
        CHECK(matched > 100);
        CHECK(matched < 19900);
    }
}
