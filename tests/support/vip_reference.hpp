/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * VipSet's contract spelt out VIP by VIP, with no merging, bitsets or
 * address words: the oracle of the VIP unit test and of fuzz_vip.
 */
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "flowhome/config.hpp"
#include "flowhome/packet.hpp"

namespace flowhome::test {

/**
 * True when one of @p vips matches a packet of @p family to @p dst (the
 * header's bytes): the same address; for TCP and UDP, protocol tcp, udp or
 * any and the port in the list if there is one, where a later fragment,
 * which has no ports, matches by address; any other protocol only a VIP of
 * protocol any without a port list.
 */
inline bool vip_reference_match(const std::vector<VipConfig> &vips, Family family,
                                const uint8_t *dst, uint8_t l4_proto, uint16_t dst_port,
                                bool later_fragment)
{
    const size_t alen = family == Family::ipv4 ? 4 : 16;
    const bool tcp = l4_proto == kProtoTcp;
    const bool udp = l4_proto == kProtoUdp;
    for (const VipConfig &v : vips) {
        if (v.address.family != family || std::memcmp(v.address.bytes.data(), dst, alen) != 0)
            continue;
        if (!tcp && !udp) {
            if (v.protocol == VipProtocol::any && v.ports.empty())
                return true;
            continue;
        }
        if ((v.protocol == VipProtocol::tcp && !tcp) || (v.protocol == VipProtocol::udp && !udp))
            continue;
        if (v.ports.empty() || later_fragment)
            return true;
        for (uint16_t port : v.ports)
            if (port == dst_port)
                return true;
    }
    return false;
}

} // namespace flowhome::test
