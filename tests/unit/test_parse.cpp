/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse_packet (flow keys and checksums: test_flow_key.cpp).
 *
 * The frame tables are {description, frame, expected status, expected drop
 * reason or fields}. Every DropReason the parser can emit has at least one
 * fixture, and a test checks that it stays so.
 */
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <rte_hash_crc.h>

#include "flowhome/packet.hpp"
#include "catch_strings.hpp"
#include "packet_builder.hpp"

using namespace flowhome;
using flowhome::test::Bytes;
using flowhome::test::FrameBuilder;
using flowhome::test::Ipv6ExtSpec;
using flowhome::test::truncated;

namespace {

constexpr uint8_t kSyn = tcp_flag::syn;
constexpr uint8_t kAck = tcp_flag::ack;

/* MSS 1460, SACK permitted, timestamps, NOP, window scale 7: 20 bytes. */
Bytes syn_options()
{
    return {2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
}

/* RFC 2113 Router Alert. */
Bytes router_alert()
{
    return {0x94, 0x04, 0x00, 0x00};
}

Bytes patched(Bytes frame, size_t offset, uint8_t value)
{
    frame.at(offset) = value;
    return frame;
}

/* The frame with the IPv4 TTL (byte 8 of the header at offset 14) changed
 * and the checksum left as it was. */
Bytes ttl_changed(const Bytes &frame)
{
    return patched(frame, 14 + 8, static_cast<uint8_t>(frame.at(14 + 8) ^ 1));
}

Bytes nine_dest_opts_then_tcp()
{
    return FrameBuilder{}
        .ipv6({.ext = std::vector<Ipv6ExtSpec>(9, Ipv6ExtSpec{.type = 60})})
        .tcp()
        .build();
}

struct ParseCase {
    const char *description;
    Bytes frame;
    uint32_t len = 0; /**< readable bytes (first segment); 0: the whole frame */
    bool csum_verified = false;
    ParseStatus status;
    DropReason drop{};
    ParsedPacket expect{}; /**< compared field by field unless status is drop */
};

ParseStatus run(const ParseCase &c, ParsedPacket &out)
{
    const auto pkt_len = static_cast<uint32_t>(c.frame.size());
    const uint32_t len = c.len != 0 ? c.len : pkt_len;
    /* An exact-size copy of the readable part, so that ASan sees any read
     * past `len`. */
    const Bytes readable = truncated(c.frame, len);
    return parse_packet(readable.data(), len, pkt_len, out, c.csum_verified);
}

void check_fields(const ParsedPacket &got, const ParsedPacket &want)
{
    CHECK(got.l3_offset == want.l3_offset);
    CHECK(got.l4_offset == want.l4_offset);
    CHECK(got.l3_len == want.l3_len);
    CHECK(got.ether_type == want.ether_type);
    CHECK(got.src_port == want.src_port);
    CHECK(got.dst_port == want.dst_port);
    CHECK(got.payload_offset == want.payload_offset);
    CHECK(got.family == want.family);
    CHECK(got.l4_proto == want.l4_proto);
    CHECK(got.tcp_flags == want.tcp_flags);
    CHECK(got.vlan_count == want.vlan_count);
    CHECK(got.fragment == want.fragment);
    CHECK(got.later_fragment == want.later_fragment);
    CHECK(got.dont_fragment == want.dont_fragment);
}

/* The tables keep one fixture per paragraph, fields on few lines. */
// clang-format off
std::vector<ParseCase> accepted_cases()
{
    return {
        {.description = "IPv4 TCP SYN",
         .frame = FrameBuilder{}.ipv4().tcp().payload(10).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 50, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 54, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn}},
        {.description = "IPv4 TCP SYN with MSS, SACK, timestamp and window-scale options",
         .frame = FrameBuilder{}.ipv4().tcp({.options = syn_options()}).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 60, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 74, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn}},
        {.description = "IPv4 UDP",
         .frame = FrameBuilder{}.ipv4().udp().payload(20).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 48, .ether_type = kEtherTypeIpv4,
                    .src_port = 5353, .dst_port = 53, .payload_offset = 42, .family = Family::ipv4,
                    .l4_proto = kProtoUdp}},
        {.description = "IPv4 Router Alert option (IHL 6)",
         .frame = FrameBuilder{}.ipv4({.options = router_alert()}).udp().payload(4).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 38, .l3_len = 36, .ether_type = kEtherTypeIpv4,
                    .src_port = 5353, .dst_port = 53, .payload_offset = 46, .family = Family::ipv4,
                    .l4_proto = kProtoUdp}},
        {.description = "IPv4 with 40 bytes of options (IHL 15)",
         .frame = [] {
             Bytes nops(39, 1);
             nops.push_back(0);
             return FrameBuilder{}.ipv4({.options = nops}).tcp({.flags = kAck}).build();
         }(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 74, .l3_len = 80, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 94, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kAck}},
        {.description = "IPv4 Don't Fragment",
         .frame = FrameBuilder{}.ipv4({.df = true}).tcp({.flags = kAck | tcp_flag::psh})
                      .payload(100).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 140, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 54, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kAck | tcp_flag::psh,
                    .dont_fragment = true}},
        {.description = "one 802.1Q tag",
         .frame = FrameBuilder{}.vlan({.tci = 100}).ipv4().tcp().build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 18, .l4_offset = 38, .l3_len = 40, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 58, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .vlan_count = 1}},
        {.description = "802.1ad S-tag and 802.1Q C-tag",
         .frame = FrameBuilder{}
                      .vlan({.tpid = kEtherTypeQinQ, .tci = 100})
                      .vlan({.tpid = kEtherTypeVlan, .tci = 200})
                      .ipv4()
                      .udp()
                      .payload(8)
                      .build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 22, .l4_offset = 42, .l3_len = 36, .ether_type = kEtherTypeIpv4,
                    .src_port = 5353, .dst_port = 53, .payload_offset = 50, .family = Family::ipv4,
                    .l4_proto = kProtoUdp, .vlan_count = 2}},
        {.description = "two 802.1Q tags, IPv6 inside",
         .frame = FrameBuilder{}.vlan().vlan().ipv6().tcp().build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 22, .l4_offset = 62, .l3_len = 60, .ether_type = kEtherTypeIpv6,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 82, .family = Family::ipv6,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .vlan_count = 2,
                    .dont_fragment = true}},
        {.description = "Ethernet padding after the IPv4 packet is accepted",
         .frame = FrameBuilder{}.ipv4().tcp({.flags = kAck}).padding(6).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 40, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 54, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kAck}},
        {.description = "IPv4 first fragment: UDP header parsed, Length covers the datagram",
         .frame = FrameBuilder{}.ipv4({.mf = true}).udp({.length = 1008}).payload(48).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 76, .ether_type = kEtherTypeIpv4,
                    .src_port = 5353, .dst_port = 53, .payload_offset = 42, .family = Family::ipv4,
                    .l4_proto = kProtoUdp, .fragment = true}},
        /* Payload bytes 0, 1, 2, ...: byte 12 would be a TCP data offset of
         * 0, so any attempt to parse TCP here would drop. */
        {.description = "IPv4 middle fragment: no transport header",
         .frame = FrameBuilder{}.ipv4({.mf = true, .frag_offset = 7, .protocol = kProtoTcp})
                      .payload(24).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l3_len = 44, .ether_type = kEtherTypeIpv4,
                    .family = Family::ipv4, .l4_proto = kProtoTcp, .fragment = true,
                    .later_fragment = true}},
        {.description = "IPv4 last fragment: no transport header",
         .frame = FrameBuilder{}.ipv4({.frag_offset = 185, .protocol = kProtoUdp})
                      .payload(3).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l3_len = 23, .ether_type = kEtherTypeIpv4,
                    .family = Family::ipv4, .l4_proto = kProtoUdp, .fragment = true,
                    .later_fragment = true}},
        {.description = "ICMP echo request: located, no ports",
         .frame = FrameBuilder{}.ipv4({.protocol = kProtoIcmp})
                      .payload(Bytes{8, 0, 0xF7, 0xFF, 0, 0, 0, 0}).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 28, .ether_type = kEtherTypeIpv4,
                    .family = Family::ipv4, .l4_proto = kProtoIcmp}},
        {.description = "GRE: located, no ports",
         .frame = FrameBuilder{}.ipv4({.protocol = 47}).payload(4).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 24, .ether_type = kEtherTypeIpv4,
                    .family = Family::ipv4, .l4_proto = 47}},
        {.description = "bad IPv4 checksum accepted when the NIC verified it",
         .frame = ttl_changed(FrameBuilder{}.ipv4().tcp().build()),
         .csum_verified = true,
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 40, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 54, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn}},
        {.description = "multi-segment: headers in the first segment, payload beyond",
         .frame = FrameBuilder{}.ipv4().tcp({.flags = kAck}).payload(1000).build(),
         .len = 54,
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 34, .l3_len = 1040, .ether_type = kEtherTypeIpv4,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 54, .family = Family::ipv4,
                    .l4_proto = kProtoTcp, .tcp_flags = kAck}},
        {.description = "IPv6 TCP",
         .frame = FrameBuilder{}.ipv6().tcp().payload(10).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 54, .l3_len = 70, .ether_type = kEtherTypeIpv6,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 74, .family = Family::ipv6,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .dont_fragment = true}},
        {.description = "IPv6 UDP with Ethernet padding",
         .frame = FrameBuilder{}.ipv6().udp().payload(12).padding(4).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 54, .l3_len = 60, .ether_type = kEtherTypeIpv6,
                    .src_port = 5353, .dst_port = 53, .payload_offset = 62, .family = Family::ipv6,
                    .l4_proto = kProtoUdp, .dont_fragment = true}},
        {.description = "IPv6 Hop-by-Hop, Routing, Destination Options, AH, then TCP",
         .frame = FrameBuilder{}
                      .ipv6({.ext = {{.type = 0, .length = 8},
                                     {.type = 43, .length = 16},
                                     {.type = 60, .length = 24},
                                     {.type = 51, .length = 16}}})
                      .tcp()
                      .build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 118, .l3_len = 124, .ether_type = kEtherTypeIpv6,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 138, .family = Family::ipv6,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .dont_fragment = true}},
        {.description = "IPv6 eight extension headers (the most walked)",
         .frame = FrameBuilder{}.ipv6({.ext = std::vector<Ipv6ExtSpec>(8, Ipv6ExtSpec{.type = 60})})
                      .tcp().build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 118, .l3_len = 124, .ether_type = kEtherTypeIpv6,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 138, .family = Family::ipv6,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .dont_fragment = true}},
        {.description = "IPv6 first fragment: UDP header parsed",
         .frame = FrameBuilder{}
                      .ipv6({.ext = {{.type = 44, .more = true}}})
                      .udp({.length = 1208})
                      .payload(100)
                      .build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 62, .l3_len = 156, .ether_type = kEtherTypeIpv6,
                    .src_port = 5353, .dst_port = 53, .payload_offset = 70, .family = Family::ipv6,
                    .l4_proto = kProtoUdp, .fragment = true, .dont_fragment = true}},
        {.description = "IPv6 later fragment: no transport header",
         .frame = FrameBuilder{}
                      .ipv6({.ext = {{.type = 44, .frag_offset = 150}}, .next_header = kProtoTcp})
                      .payload(40)
                      .build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l3_len = 88, .ether_type = kEtherTypeIpv6,
                    .family = Family::ipv6, .l4_proto = kProtoTcp, .fragment = true,
                    .later_fragment = true, .dont_fragment = true}},
        {.description = "IPv6 atomic fragment is a whole packet (RFC 6946)",
         .frame = FrameBuilder{}.ipv6({.ext = {{.type = 44}}}).tcp().build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 62, .l3_len = 68, .ether_type = kEtherTypeIpv6,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 82, .family = Family::ipv6,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .dont_fragment = true}},
        {.description = "IPv6 first fragment, then an atomic fragment header: still a fragment",
         .frame = FrameBuilder{}.ipv6({.ext = {{.type = 44, .more = true}, {.type = 44}}}).tcp().build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 70, .l3_len = 76, .ether_type = kEtherTypeIpv6,
                    .src_port = 1234, .dst_port = 80, .payload_offset = 90, .family = Family::ipv6,
                    .l4_proto = kProtoTcp, .tcp_flags = kSyn, .fragment = true, .dont_fragment = true}},
        {.description = "IPv6 ESP ends the chain",
         .frame = FrameBuilder{}.ipv6({.ext = {{.type = 60}}, .next_header = 50})
                      .payload(32).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 62, .l3_len = 80, .ether_type = kEtherTypeIpv6,
                    .family = Family::ipv6, .l4_proto = 50, .dont_fragment = true}},
        {.description = "IPv6 No Next Header ends the chain",
         .frame = FrameBuilder{}.ipv6().build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 54, .l3_len = 40, .ether_type = kEtherTypeIpv6,
                    .family = Family::ipv6, .l4_proto = 59, .dont_fragment = true}},
        {.description = "ICMPv6 echo request",
         .frame = FrameBuilder{}.ipv6({.next_header = kProtoIcmpv6})
                      .payload(Bytes{128, 0, 0, 0, 0, 1, 0, 1}).build(),
         .status = ParseStatus::ok,
         .expect = {.l3_offset = 14, .l4_offset = 54, .l3_len = 48, .ether_type = kEtherTypeIpv6,
                    .family = Family::ipv6, .l4_proto = kProtoIcmpv6, .dont_fragment = true}},
        {.description = "ARP is not IP",
         .frame = FrameBuilder{}.ether_type(kEtherTypeArp).payload(28).build(),
         .status = ParseStatus::not_ip,
         .expect = {.l3_offset = 14, .ether_type = kEtherTypeArp}},
        {.description = "ARP in an 802.1Q tag is not IP",
         .frame = FrameBuilder{}.vlan().ether_type(kEtherTypeArp).payload(28).build(),
         .status = ParseStatus::not_ip,
         .expect = {.l3_offset = 18, .ether_type = kEtherTypeArp, .vlan_count = 1}},
        {.description = "LLDP is not IP",
         .frame = FrameBuilder{}.ether_type(0x88CC).payload(20).build(),
         .status = ParseStatus::not_ip,
         .expect = {.l3_offset = 14, .ether_type = 0x88CC}},
    };
}

std::vector<ParseCase> dropped_cases()
{
    const Bytes v4_tcp = FrameBuilder{}.ipv4().tcp().build();
    const Bytes v6_tcp = FrameBuilder{}.ipv6().tcp().build();
    auto drop = [](const char *description, Bytes frame, DropReason reason, uint32_t len = 0) {
        return ParseCase{.description = description,
                         .frame = std::move(frame),
                         .len = len,
                         .status = ParseStatus::drop,
                         .drop = reason};
    };
    using R = DropReason;
    return {
        drop("empty frame", {}, R::eth_truncated),
        drop("13-byte frame", truncated(v4_tcp, 13), R::eth_truncated),
        drop("VLAN tag cut short", truncated(FrameBuilder{}.vlan().ipv4().tcp().build(), 16),
             R::vlan_truncated),
        drop("inner VLAN tag cut short",
             truncated(FrameBuilder{}.vlan({.tpid = kEtherTypeQinQ}).vlan().ipv4().tcp().build(),
                       20),
             R::vlan_truncated),
        drop("three VLAN tags", FrameBuilder{}.vlan().vlan().vlan().ipv4().tcp().build(),
             R::vlan_too_many),
        drop("IPv4 header of 19 bytes", truncated(v4_tcp, 33), R::ipv4_truncated),
        drop("IPv4 IHL 15 but only 20 header bytes in the frame",
             FrameBuilder{}.ipv4({.ihl = 15}).build(), R::ipv4_truncated),
        drop("IPv4 options beyond the first segment",
             FrameBuilder{}.ipv4({.options = Bytes(8, 1)}).udp().payload(10).build(),
             R::ipv4_truncated, 14 + 22),
        drop("IPv4 version 6", FrameBuilder{}.ipv4({.version = 6}).tcp().build(),
             R::ipv4_bad_version),
        drop("IPv4 version 5", FrameBuilder{}.ipv4({.version = 5}).tcp().build(),
             R::ipv4_bad_version),
        drop("IPv4 IHL 4", FrameBuilder{}.ipv4({.ihl = 4}).tcp().build(), R::ipv4_bad_ihl),
        drop("IPv4 IHL 0", FrameBuilder{}.ipv4({.ihl = 0}).tcp().build(), R::ipv4_bad_ihl),
        drop("IPv4 total length 19", FrameBuilder{}.ipv4({.total_length = 19}).tcp().build(),
             R::ipv4_bad_total_length),
        drop("IPv4 total length 0", FrameBuilder{}.ipv4({.total_length = 0}).tcp().build(),
             R::ipv4_bad_total_length),
        drop("IPv4 total length below the header with options",
             FrameBuilder{}.ipv4({.options = router_alert(), .total_length = 20}).udp().build(),
             R::ipv4_bad_total_length),
        drop("IPv4 total length one byte beyond the frame",
             FrameBuilder{}.ipv4({.total_length = 41}).tcp().build(), R::ipv4_bad_total_length),
        drop("IPv4 TTL changed without the checksum", ttl_changed(v4_tcp), R::ipv4_bad_checksum),
        drop("IPv4 option byte changed without the checksum",
             patched(FrameBuilder{}.ipv4({.options = router_alert()}).udp().build(), 14 + 22, 1),
             R::ipv4_bad_checksum),
        drop("IPv6 header of 39 bytes", truncated(v6_tcp, 53), R::ipv6_truncated),
        drop("IPv6 version 4", FrameBuilder{}.ipv6({.version = 4}).tcp().build(),
             R::ipv6_bad_version),
        drop("IPv6 payload length one byte beyond the frame",
             FrameBuilder{}.ipv6({.payload_length = 21}).tcp().build(), R::ipv6_bad_payload_length),
        drop("IPv6 Hop-by-Hop announced, no payload",
             FrameBuilder{}.ipv6({.next_header = 0}).build(), R::ipv6_ext_truncated),
        drop("IPv6 Hop-by-Hop longer than the payload",
             FrameBuilder{}.ipv6({.ext = {{.type = 0, .length = 16}}, .payload_length = 8}).build(),
             R::ipv6_ext_truncated),
        drop("IPv6 fragment header of 4 bytes",
             FrameBuilder{}.ipv6({.next_header = 44}).payload(4).build(), R::ipv6_ext_truncated),
        drop("IPv6 AH length beyond the payload",
             FrameBuilder{}.ipv6({.ext = {{.type = 51, .length = 16, .hdr_ext_len = 200}}})
                 .tcp().build(),
             R::ipv6_ext_truncated),
        drop("IPv6 routing header beyond the first segment",
             FrameBuilder{}.ipv6({.ext = {{.type = 0}, {.type = 43, .length = 64}}}).tcp().build(),
             R::ipv6_ext_truncated, 14 + 40 + 8 + 10),
        drop("IPv6 nine extension headers", nine_dest_opts_then_tcp(), R::ipv6_ext_chain_too_long),
        drop("IPv6 hop-by-hop options after destination options",
             FrameBuilder{}.ipv6({.ext = {{.type = 60}, {.type = 0}}}).tcp().build(),
             R::ipv6_hop_by_hop_not_first),
        drop("TCP in IPv4: 19 bytes of segment",
             FrameBuilder{}.ipv4({.protocol = kProtoTcp}).payload(19).build(), R::tcp_truncated),
        drop("TCP in IPv6: 19 bytes of segment",
             FrameBuilder{}.ipv6({.next_header = kProtoTcp}).payload(19).build(), R::tcp_truncated),
        drop("TCP tiny first fragment (RFC 1858)",
             FrameBuilder{}.ipv4({.mf = true, .protocol = kProtoTcp}).payload(16).build(),
             R::tcp_truncated),
        drop("TCP fixed header beyond the first segment",
             FrameBuilder{}.ipv4().tcp().payload(100).build(), R::tcp_truncated, 14 + 20 + 19),
        drop("TCP options beyond the first segment",
             FrameBuilder{}.ipv4().tcp({.options = syn_options()}).payload(100).build(),
             R::tcp_truncated, 14 + 20 + 30),
        drop("TCP data offset 4", FrameBuilder{}.ipv4().tcp({.data_offset = 4}).build(),
             R::tcp_bad_data_offset),
        drop("TCP data offset 0", FrameBuilder{}.ipv6().tcp({.data_offset = 0}).build(),
             R::tcp_bad_data_offset),
        drop("TCP data offset 15 in a 20-byte segment",
             FrameBuilder{}.ipv4().tcp({.data_offset = 15}).build(), R::tcp_bad_data_offset),
        drop("TCP data offset one byte beyond the segment",
             FrameBuilder{}.ipv4().tcp({.data_offset = 6}).payload(3).build(),
             R::tcp_bad_data_offset),
        drop("UDP in IPv4: 7 bytes of datagram",
             FrameBuilder{}.ipv4({.protocol = kProtoUdp}).payload(7).build(), R::udp_truncated),
        drop("UDP header beyond the first segment",
             FrameBuilder{}.ipv4().udp().payload(100).build(), R::udp_truncated, 14 + 20 + 4),
        drop("UDP length 7", FrameBuilder{}.ipv4().udp({.length = 7}).build(), R::udp_bad_length),
        drop("UDP length 0 in IPv6", FrameBuilder{}.ipv6().udp({.length = 0}).payload(4).build(),
             R::udp_bad_length),
        drop("UDP length one byte beyond the IP payload",
             FrameBuilder{}.ipv4().udp({.length = 29}).payload(20).build(), R::udp_bad_length),
        drop("UDP length one byte short of the IP payload",
             FrameBuilder{}.ipv4().udp({.length = 27}).payload(20).build(), R::udp_bad_length),
        drop("UDP first fragment whose length does not exceed the fragment",
             FrameBuilder{}.ipv4({.mf = true}).udp({.length = 28}).payload(20).build(),
             R::udp_bad_length),
    };
}

// clang-format on

} // namespace

TEST_CASE("parse_packet accepts well-formed frames", "[parse]")
{
    for (const ParseCase &c : accepted_cases()) {
        DYNAMIC_SECTION(c.description)
        {
            ParsedPacket out;
            REQUIRE(run(c, out) == c.status);
            check_fields(out, c.expect);
        }
    }
}

TEST_CASE("parse_packet drops every malformed frame with its reason", "[parse]")
{
    for (const ParseCase &c : dropped_cases()) {
        DYNAMIC_SECTION(c.description)
        {
            ParsedPacket out;
            REQUIRE(run(c, out) == ParseStatus::drop);
            CHECK(out.drop == c.drop);
        }
    }
}

TEST_CASE("every drop reason the parser emits has a fixture", "[parse]")
{
    const std::set<DropReason> parser_reasons{
        DropReason::eth_truncated,           DropReason::vlan_truncated,
        DropReason::vlan_too_many,           DropReason::ipv4_truncated,
        DropReason::ipv4_bad_version,        DropReason::ipv4_bad_ihl,
        DropReason::ipv4_bad_total_length,   DropReason::ipv4_bad_checksum,
        DropReason::ipv6_truncated,          DropReason::ipv6_bad_version,
        DropReason::ipv6_bad_payload_length, DropReason::ipv6_ext_truncated,
        DropReason::ipv6_ext_chain_too_long, DropReason::ipv6_hop_by_hop_not_first,
        DropReason::tcp_truncated,           DropReason::tcp_bad_data_offset,
        DropReason::udp_truncated,           DropReason::udp_bad_length,
    };
    std::set<DropReason> covered;
    for (const ParseCase &c : dropped_cases())
        covered.insert(c.drop);
    CHECK(covered == parser_reasons);
}

TEST_CASE("parse_packet resets the output of a previous packet", "[parse]")
{
    ParsedPacket out;
    const Bytes tcp = FrameBuilder{}.vlan().ipv4({.df = true}).tcp().build();
    REQUIRE(parse_packet(tcp.data(), static_cast<uint32_t>(tcp.size()),
                         static_cast<uint32_t>(tcp.size()), out) == ParseStatus::ok);
    const Bytes arp = FrameBuilder{}.ether_type(kEtherTypeArp).payload(28).build();
    REQUIRE(parse_packet(arp.data(), static_cast<uint32_t>(arp.size()),
                         static_cast<uint32_t>(arp.size()), out) == ParseStatus::not_ip);
    check_fields(out, {.l3_offset = 14, .ether_type = kEtherTypeArp});
}

TEST_CASE("parse_packet never reads past len and drops every truncation", "[parse]")
{
    const std::vector<std::pair<const char *, Bytes>> frames{
        {"IPv4 TCP with options and payload", FrameBuilder{}
                                                  .ipv4({.options = router_alert()})
                                                  .tcp({.options = syn_options()})
                                                  .payload(7)
                                                  .build()},
        {"QinQ IPv4 UDP",
         FrameBuilder{}.vlan({.tpid = kEtherTypeQinQ}).vlan().ipv4().udp().payload(5).build()},
        {"IPv6 extension chain TCP",
         FrameBuilder{}
             .ipv6({.ext = {{.type = 0}, {.type = 43, .length = 24}, {.type = 51, .length = 12}}})
             .tcp()
             .payload(3)
             .build()},
        {"IPv6 first fragment UDP", FrameBuilder{}
                                        .ipv6({.ext = {{.type = 44, .more = true}}})
                                        .udp({.length = 500})
                                        .payload(9)
                                        .build()},
        {"IPv4 ICMP", FrameBuilder{}.ipv4({.protocol = kProtoIcmp}).payload(8).build()},
    };
    for (const auto &[name, frame] : frames) {
        DYNAMIC_SECTION(name)
        {
            const auto size = static_cast<uint32_t>(frame.size());
            ParsedPacket whole;
            REQUIRE(parse_packet(frame.data(), size, size, whole) == ParseStatus::ok);
            /* Where the headers the parser reads end. */
            const uint32_t headers_end =
                whole.payload_offset != 0 ? whole.payload_offset : whole.l4_offset;
            REQUIRE(headers_end > 0);

            for (uint32_t cut = 0; cut < size; ++cut) {
                INFO("cut at " << cut << " of " << size);
                const Bytes part = truncated(frame, cut);
                ParsedPacket out;
                /* A frame cut short: the IP length no longer fits. */
                CHECK(parse_packet(part.data(), cut, cut, out) == ParseStatus::drop);
                /* Only the first segment cut short: fine once the headers
                 * are in it. */
                const ParseStatus multi = parse_packet(part.data(), cut, size, out);
                CHECK(multi == (cut >= headers_end ? ParseStatus::ok : ParseStatus::drop));
            }
        }
    }
}

TEST_CASE("the fast paths for plain IPv4 and IPv6 agree with the general parser", "[parse]")
{
    /* Every frame the fast path takes, and its neighbours: each byte of the
     * headers set to values that matter to some rule, each length of first
     * segment and frame, with and without a NIC checksum verdict. */
    const std::vector<std::pair<const char *, Bytes>> frames{
        {"IPv4 TCP ACK", FrameBuilder{}.ipv4({.df = true}).tcp({.flags = kAck}).build()},
        {"IPv4 TCP SYN with options and payload",
         FrameBuilder{}.ipv4().tcp({.flags = kSyn, .options = syn_options()}).payload(5).build()},
        {"IPv4 UDP", FrameBuilder{}.ipv4().udp().payload(3).build()},
        {"IPv4 UDP, empty", FrameBuilder{}.ipv4().udp().build()},
        {"IPv6 TCP ACK", FrameBuilder{}.ipv6().tcp({.flags = kAck}).build()},
        {"IPv6 TCP SYN with options and payload",
         FrameBuilder{}.ipv6().tcp({.flags = kSyn, .options = syn_options()}).payload(5).build()},
        {"IPv6 UDP", FrameBuilder{}.ipv6().udp().payload(3).build()},
        {"IPv6 UDP, empty", FrameBuilder{}.ipv6().udp().build()},
    };
    const uint8_t values[] = {0x00, 0x01, 0x05, 0x06, 0x08, 0x11, 0x20, 0x3F,
                              0x40, 0x45, 0x46, 0x50, 0x7F, 0x80, 0xF0, 0xFF};
    /* Both outputs start out holding another packet (tagged IPv6, a first
     * fragment): a field the fast path forgot to set would show. */
    const Bytes other = FrameBuilder{}
                            .vlan()
                            .ipv6({.ext = {{.type = 44, .more = true}}})
                            .udp({.length = 500})
                            .payload(9)
                            .build();
    ParsedPacket previous;
    REQUIRE(parse_packet(other.data(), static_cast<uint32_t>(other.size()),
                         static_cast<uint32_t>(other.size()), previous) == ParseStatus::ok);
    REQUIRE(previous.fragment);
    const auto agree = [&previous](const Bytes &frame, uint32_t len, uint32_t pkt_len,
                                   bool verified) {
        const Bytes readable = truncated(frame, len);
        ParsedPacket fast = previous;
        ParsedPacket general = previous;
        const ParseStatus a = parse_packet(readable.data(), len, pkt_len, fast, verified);
        const ParseStatus b =
            detail::parse_packet_general(readable.data(), len, pkt_len, general, verified);
        return a == b && (a == ParseStatus::ok ? fast == general : fast.drop == general.drop);
    };
    unsigned ok_frames = 0;
    for (const auto &[name, frame] : frames) {
        DYNAMIC_SECTION(name)
        {
            const auto size = static_cast<uint32_t>(frame.size());
            for (bool verified : {false, true}) {
                for (size_t at = 0; at < size && at < 14 + 40 + 20; ++at) {
                    for (uint8_t v : values) {
                        const Bytes m = patched(frame, at, v);
                        INFO("byte " << at << " = " << int(v) << ", verified " << verified);
                        CHECK(agree(m, size, size, verified));
                        ParsedPacket out;
                        ok_frames +=
                            parse_packet(m.data(), size, size, out, verified) == ParseStatus::ok;
                    }
                }
                for (uint32_t cut = 0; cut <= size; ++cut) {
                    INFO("cut at " << cut << ", verified " << verified);
                    CHECK(agree(frame, cut, cut, verified));
                    CHECK(agree(frame, cut, size, verified));
                }
            }
        }
    }
    /* The mutations above include accepted frames, not only drops. */
    CHECK(ok_frames > 0);
}

#ifdef FLOWHOME_SOURCE_DIR
/*
 * Not a test: regenerates the libFuzzer seeds in fuzz/corpus/parse from the
 * same builder. Hidden; run with  unit_parse "[.write-fuzz-seeds]".
 * Each seed is the harness's control byte followed by a frame.
 */
TEST_CASE("write the parser's fuzz seeds", "[.write-fuzz-seeds]")
{
    const std::vector<std::tuple<const char *, uint8_t, Bytes>> seeds{
        {"ipv4_tcp_syn_options", 0x00,
         FrameBuilder{}.ipv4().tcp({.options = syn_options()}).build()},
        {"ipv4_udp_padding", 0x00, FrameBuilder{}.ipv4().udp().payload(4).padding(6).build()},
        {"ipv4_options_csum_verified", 0x01,
         FrameBuilder{}.ipv4({.options = router_alert()}).tcp({.flags = kAck}).payload(6).build()},
        {"qinq_ipv4_udp", 0x00,
         FrameBuilder{}.vlan({.tpid = kEtherTypeQinQ}).vlan().ipv4().udp().payload(8).build()},
        {"ipv4_first_fragment", 0x00,
         FrameBuilder{}.ipv4({.mf = true}).udp({.length = 200}).payload(16).build()},
        {"ipv4_later_fragment", 0x00,
         FrameBuilder{}.ipv4({.frag_offset = 3, .protocol = kProtoTcp}).payload(16).build()},
        {"ipv4_icmp", 0x00, FrameBuilder{}.ipv4({.protocol = kProtoIcmp}).payload(8).build()},
        {"ipv4_tcp_split", 0x02 | (20 << 2), FrameBuilder{}.ipv4().tcp().payload(40).build()},
        {"ipv6_tcp", 0x00, FrameBuilder{}.ipv6().tcp().payload(4).build()},
        {"ipv6_ext_chain", 0x00,
         FrameBuilder{}
             .ipv6({.ext = {{.type = 0},
                            {.type = 43, .length = 16},
                            {.type = 51, .length = 12},
                            {.type = 60}}})
             .udp()
             .build()},
        {"ipv6_first_fragment", 0x00,
         FrameBuilder{}
             .ipv6({.ext = {{.type = 44, .more = true}}})
             .udp({.length = 300})
             .payload(8)
             .build()},
        {"ipv6_later_fragment", 0x00,
         FrameBuilder{}
             .ipv6({.ext = {{.type = 44, .frag_offset = 9}}, .next_header = kProtoUdp})
             .payload(8)
             .build()},
        {"ipv6_esp", 0x00, FrameBuilder{}.ipv6({.next_header = 50}).payload(16).build()},
        {"vlan_arp", 0x00, FrameBuilder{}.vlan().ether_type(kEtherTypeArp).payload(28).build()},
    };
    const std::string dir = std::string(FLOWHOME_SOURCE_DIR) + "/fuzz/corpus/parse/";
    for (const auto &[name, control, frame] : seeds) {
        std::FILE *f = std::fopen((dir + name).c_str(), "wb");
        REQUIRE(f != nullptr);
        std::fputc(control, f);
        REQUIRE(std::fwrite(frame.data(), 1, frame.size(), f) == frame.size());
        std::fclose(f);
    }
}
#endif
