/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for parse_packet, flow_key_of and flow_hash.
 *
 * Built by hand (from the repository root) with:
 *   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -Iinclude \
 *       $(pkg-config --cflags libdpdk | sed 's/-I/-isystem /g') \
 *       fuzz/fuzz_parse.cpp src/packet/datapath/parse.cpp \
 *       src/packet/datapath/flow_key.cpp src/packet/checksum.cpp \
 *       src/common/types.cpp $(pkg-config --libs libdpdk) -lfmt -o /tmp/fuzz_parse
 *   mkdir -p /tmp/fuzz_parse_work
 *   /tmp/fuzz_parse -max_total_time=60 /tmp/fuzz_parse_work fuzz/corpus/parse
 * (libFuzzer writes new inputs to the first directory: keep it outside the
 * tree. The seeds come from unit_parse "[.write-fuzz-seeds]".)
 *
 * Input: one control byte, then the frame.
 *   bit 0     ipv4_csum_verified
 *   bit 1     split: the first segment is (control >> 2) bytes short of the
 *             frame (len < pkt_len, as for a chained mbuf)
 * The readable part is copied into an exact-size heap buffer so that
 * AddressSanitizer catches any read past `len`. Beyond memory safety the
 * harness checks the parser's promises, and that its fast paths for plain
 * IPv4 and IPv6 frames agree with the general path, and traps when one
 * breaks.
 */
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "flowhome/packet.hpp"

using namespace flowhome;

namespace {

void require(bool promise)
{
    if (!promise)
        __builtin_trap();
}

void check_ok(const uint8_t *frame, uint32_t len, uint32_t pkt_len, const ParsedPacket &p)
{
    require(p.family == Family::ipv4 || p.family == Family::ipv6);
    require(p.ether_type == (p.family == Family::ipv4 ? kEtherTypeIpv4 : kEtherTypeIpv6));
    require(p.vlan_count <= kMaxVlanTags);
    require(p.l3_offset == 14 + 4 * p.vlan_count);
    /* The IP packet fits in the frame, its fixed header in the first segment. */
    require(uint32_t{p.l3_offset} + p.l3_len <= pkt_len);
    require(uint32_t{p.l3_offset} + (p.family == Family::ipv4 ? 20u : 40u) <= len);
    require(!p.later_fragment || p.fragment);
    if (p.later_fragment) {
        require(p.l4_offset == 0 && p.payload_offset == 0);
        require(p.src_port == 0 && p.dst_port == 0);
        return;
    }
    require(p.l4_offset > p.l3_offset && p.l4_offset <= p.l3_offset + p.l3_len);
    require(p.l4_offset <= len);
    if (p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp) {
        /* Every header byte the parser read lies in the first segment. */
        require(p.payload_offset >= p.l4_offset + 8);
        require(p.payload_offset <= len);
        require(p.payload_offset <= p.l3_offset + p.l3_len);
    } else {
        require(p.payload_offset == 0 && p.src_port == 0 && p.dst_port == 0);
    }

    const FlowKey key = flow_key_of(frame, p);
    require(key.family == p.family);
    require(key.client_port() == p.src_port && key.vip_port() == p.dst_port);
    require(key.proto() == p.l4_proto);
    const FlowKey copy = key;
    require(copy == key && flow_hash(copy) == flow_hash(key));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t control = data[0];
    const auto pkt_len = static_cast<uint32_t>(size - 1);
    uint32_t len = pkt_len;
    if (control & 0x02) {
        const uint32_t short_by = control >> 2;
        len = short_by < pkt_len ? pkt_len - short_by : 0;
    }

    std::unique_ptr<uint8_t[]> readable(new uint8_t[len == 0 ? 1 : len]);
    std::memcpy(readable.get(), data + 1, len);

    ParsedPacket p;
    const bool verified = (control & 0x01) != 0;
    const ParseStatus status = parse_packet(readable.get(), len, pkt_len, p, verified);
    ParsedPacket general;
    require(detail::parse_packet_general(readable.get(), len, pkt_len, general, verified) ==
            status);
    require(status == ParseStatus::ok ? general == p
                                      : status != ParseStatus::drop || general.drop == p.drop);
    switch (status) {
    case ParseStatus::ok: {
        check_ok(readable.get(), len, pkt_len, p);
        /* The ICMP error reader takes the same untrusted bytes; the key it
         * makes is TCP or UDP, or there is none. */
        FlowKey key;
        if (icmp_error_flow(readable.get(), len, p, key))
            require(key.proto() == kProtoTcp || key.proto() == kProtoUdp);
        break;
    }
    case ParseStatus::not_ip:
        require(p.ether_type != kEtherTypeIpv4 && p.ether_type != kEtherTypeIpv6);
        require(p.ether_type != kEtherTypeVlan && p.ether_type != kEtherTypeQinQ);
        break;
    case ParseStatus::drop:
        require(static_cast<size_t>(p.drop) < kDropReasonCount);
        break;
    }
    return 0;
}
