/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for VipSet::match() and VipSet::serves(): a VIP set
 * built from the input, and any frame the parser accepts.
 *
 * Run it with scripts/fuzz (which builds it), or by hand from build-fuzz:
 *   build-fuzz/fuzz/fuzz_vip -max_total_time=60 /tmp/vip_work fuzz/corpus/vip
 * (libFuzzer writes new inputs to the first directory: keep it outside the tree.)
 *
 * Input: one byte n (bits 0-2: 0..7 VIPs; bit 3: ipv4_csum_verified), then
 * n VIPs of eight bytes each, then the frame:
 *   v[0] bit 0     IPv6 (else IPv4)
 *        bits 1-2  protocol: 0 tcp, 1 udp, 2 and 3 any
 *        bit 3     address: the frame's own destination when its family
 *                  is the VIP's (a VIP the packet is addressed to);
 *        bit 7     (bit 3 clear) the frame's destination with byte
 *                  v[1] >> 4 (mod the address length) XORed with
 *                  (v[1] & 15) | 1: a near miss in any byte;
 *                  neither: 203.0.113.v[1] / 2001:db8::v[1]
 *        bits 4-5  0..3 ports, v[2..7] big-endian
 *        bit 6     the first port is the frame's own destination port
 * so that inputs reach every branch, not only VIPs the packet misses.
 *
 * Checks, trapping when one breaks:
 *  - match() agrees with vip_reference_match() (tests/support), the
 *    contract of vip.hpp checked VIP by VIP;
 *  - serves(flow_key_of(packet)) == match(packet) for every packet that
 *    has a key (all but later fragments).
 */
#include <cstdint>
#include <cstring>
#include <vector>

#include "flowhome/config.hpp"
#include "flowhome/packet.hpp"
#include "flowhome/vip.hpp"
#include "vip_reference.hpp"

using namespace flowhome;

namespace {

constexpr size_t kVipBytes = 8;

void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

const uint8_t *dst_addr(const uint8_t *frame, const ParsedPacket &p)
{
    return frame + p.l3_offset + (p.family == Family::ipv4 ? 16 : 24);
}

VipConfig make_vip(const uint8_t *v, const uint8_t *frame, const ParsedPacket &p)
{
    VipConfig vip;
    const Family family = (v[0] & 1) ? Family::ipv6 : Family::ipv4;
    switch ((v[0] >> 1) & 3) {
    case 0:
        vip.protocol = VipProtocol::tcp;
        break;
    case 1:
        vip.protocol = VipProtocol::udp;
        break;
    default:
        vip.protocol = VipProtocol::any;
        break;
    }
    if ((v[0] & 0x88) && family == p.family) {
        vip.address = family == Family::ipv4 ? IpAddr::v4(0) : IpAddr::v6(dst_addr(frame, p));
        if (family == Family::ipv4)
            std::memcpy(vip.address.bytes.data(), dst_addr(frame, p), 4);
        if (!(v[0] & 8)) /* a neighbour: one byte of the destination changed */
            vip.address.bytes[(v[1] >> 4) % (family == Family::ipv4 ? 4 : 16)] ^=
                static_cast<uint8_t>((v[1] & 15) | 1);
    } else if (family == Family::ipv4) {
        vip.address = IpAddr::v4(0);
        const uint8_t a[4] = {203, 0, 113, v[1]};
        std::memcpy(vip.address.bytes.data(), a, 4);
    } else {
        uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
        a[15] = v[1];
        vip.address = IpAddr::v6(a);
    }
    const unsigned ports = (v[0] >> 4) & 3;
    for (unsigned i = 0; i < ports; ++i)
        vip.ports.push_back(static_cast<uint16_t>(v[2 + 2 * i] << 8 | v[3 + 2 * i]));
    if ((v[0] & 0x40) && ports > 0)
        vip.ports[0] = p.dst_port;
    return vip;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const size_t n = data[0] & 7;
    const size_t head = 1 + n * kVipBytes;
    if (size < head)
        return 0;
    const uint8_t *frame = data + head;
    const auto len = static_cast<uint32_t>(size - head);
    ParsedPacket p;
    if (parse_packet(frame, len, len, p, (data[0] & 8) != 0) != ParseStatus::ok)
        return 0;

    std::vector<VipConfig> vips;
    for (size_t i = 0; i < n; ++i)
        vips.push_back(make_vip(data + 1 + i * kVipBytes, frame, p));
    const VipSet set(vips);

    const bool matched = set.match(frame, p);
    check(matched == test::vip_reference_match(vips, p.family, dst_addr(frame, p), p.l4_proto,
                                               p.dst_port, p.later_fragment));
    if (!p.later_fragment)
        check(set.serves(flow_key_of(frame, p)) == matched);
    return 0;
}
