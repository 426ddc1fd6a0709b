/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/group_report.hpp"

#include <cstring>

#include "flowhome/packet.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {
namespace {

using namespace wire;

constexpr uint8_t kIgmpv3Report = 0x22;   /* RFC 3376 4.2 */
constexpr uint8_t kMldv2Report = 143;     /* RFC 3810 5.2 */
constexpr uint16_t kIpv4RaHeaderLen = 24; /* with the 4-byte Router Alert option */
constexpr uint16_t kGroupRecord4Len = 8;
constexpr uint16_t kGroupRecord6Len = 20;
constexpr uint16_t kReportHeaderLen = 8; /* type, reserved, checksum, reserved, records */
constexpr uint16_t kHopByHopLen = 8;

constexpr IpAddr kAllIgmpv3Routers{Family::ipv4, {224, 0, 0, 22}};
constexpr IpAddr kAllMldv2Routers{Family::ipv6,
                                  {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16}};

/* RFC 3376 4.2.12 and RFC 3810 5.2.12 number the record types alike. */
uint8_t record_type(GroupReport kind) noexcept
{
    switch (kind) {
    case GroupReport::join:
        return 4; /* CHANGE_TO_EXCLUDE_MODE */
    case GroupReport::current:
        return 2; /* MODE_IS_EXCLUDE */
    case GroupReport::leave:
        return 3; /* CHANGE_TO_INCLUDE_MODE */
    }
    return 2;
}

/* The report header and its one record of @p addr_len bytes, sourceless;
 * the checksum is left 0. Returns the bytes written. */
uint16_t write_report(uint8_t *r, uint8_t type, GroupReport kind, const IpAddr &group,
                      size_t addr_len) noexcept
{
    r[0] = type;
    r[1] = 0;
    store16(r + 2, 0);
    store16(r + 4, 0);
    store16(r + 6, 1); /* one group record */
    uint8_t *rec = r + kReportHeaderLen;
    rec[0] = record_type(kind);
    rec[1] = 0;          /* no auxiliary data */
    store16(rec + 2, 0); /* no sources */
    std::memcpy(rec + 4, group.bytes.data(), addr_len);
    return static_cast<uint16_t>(kReportHeaderLen + 4 + addr_len);
}

size_t igmpv3(uint8_t *h, const MacAddr &src_mac, const IpAddr &src4, const IpAddr &group,
              GroupReport kind) noexcept
{
    /* RFC 1112 6.4: 224.0.0.22 maps to 01:00:5e:00:00:16. */
    write_eth_header(h, multicast_mac(kAllIgmpv3Routers), src_mac, kEtherTypeIpv4);
    uint8_t *ip = h + kEthHeaderLen;
    uint8_t *igmp = ip + kIpv4RaHeaderLen;
    const uint16_t igmp_len = write_report(igmp, kIgmpv3Report, kind, group, 4);
    store16(igmp + 2, static_cast<uint16_t>(~ones_complement_sum(igmp, igmp_len)));

    ip[0] = 0x46; /* version 4, six words of header */
    ip[1] = 0xC0; /* Internetwork Control (RFC 3376 4) */
    store16(ip + 2, static_cast<uint16_t>(kIpv4RaHeaderLen + igmp_len));
    store16(ip + 4, 0);
    store16(ip + 6, 0x4000); /* DF */
    ip[8] = 1;               /* TTL 1: RFC 3376 4 */
    ip[9] = kProtoIgmp;
    store16(ip + 10, 0);
    std::memcpy(ip + 12, src4.bytes.data(), 4);
    std::memcpy(ip + 16, kAllIgmpv3Routers.bytes.data(), 4);
    store32(ip + 20, 0x94040000); /* Router Alert: routers examine the packet (RFC 2113) */
    store16(ip + 10, ipv4_header_checksum(ip, kIpv4RaHeaderLen));
    static_assert(kEthHeaderLen + kIpv4RaHeaderLen + kReportHeaderLen + kGroupRecord4Len <=
                  kGroupReportMaxLen);
    return kEthHeaderLen + kIpv4RaHeaderLen + igmp_len;
}

size_t mldv2(uint8_t *h, const MacAddr &src_mac, const IpAddr &group, GroupReport kind) noexcept
{
    /* RFC 2464 7: ff02::16 maps to 33:33:00:00:00:16. */
    write_eth_header(h, multicast_mac(kAllMldv2Routers), src_mac, kEtherTypeIpv6);
    uint8_t *ip = h + kEthHeaderLen;
    uint8_t *hbh = ip + kIpv6HeaderLen;
    uint8_t *mld = hbh + kHopByHopLen;
    const uint16_t mld_len = write_report(mld, kMldv2Report, kind, group, 16);

    store32(ip, 0x60000000u); /* version 6 */
    store16(ip + 4, static_cast<uint16_t>(kHopByHopLen + mld_len));
    ip[6] = kIpv6ExtHopByHop;
    ip[7] = 1; /* hop limit 1: RFC 3810 5 */
    const IpAddr src = link_local_of(src_mac);
    std::memcpy(ip + 8, src.bytes.data(), 16);
    std::memcpy(ip + 24, kAllMldv2Routers.bytes.data(), 16);

    /* RFC 2711: Router Alert, value 0 (MLD), then a PadN of two bytes to
     * fill the header's eight. */
    static constexpr uint8_t kHopByHop[kHopByHopLen] = {kProtoIcmpv6, 0, 0x05, 0x02, 0, 0, 0x01, 0};
    std::memcpy(hbh, kHopByHop, kHopByHopLen);

    /* RFC 4443 2.3: checksum over the pseudo-header (addresses, length,
     * next header 58) and the message. */
    const uint16_t pseudo = ones_complement_sum(ip + 8, 32);
    const uint16_t sum =
        ones_complement_sum(mld, mld_len, uint32_t{pseudo} + mld_len + kProtoIcmpv6);
    store16(mld + 2, static_cast<uint16_t>(~sum));
    static_assert(kEthHeaderLen + kIpv6HeaderLen + kHopByHopLen + kReportHeaderLen +
                      kGroupRecord6Len ==
                  kGroupReportMaxLen);
    return kEthHeaderLen + kIpv6HeaderLen + kHopByHopLen + mld_len;
}

} // namespace

IpAddr link_local_of(const MacAddr &mac) noexcept
{
    IpAddr a;
    a.family = Family::ipv6;
    a.bytes = {0xfe,
               0x80,
               0,
               0,
               0,
               0,
               0,
               0,
               static_cast<uint8_t>(mac.bytes[0] ^ 0x02), /* universal/local bit inverted */
               mac.bytes[1],
               mac.bytes[2],
               0xff,
               0xfe,
               mac.bytes[3],
               mac.bytes[4],
               mac.bytes[5]};
    return a;
}

MacAddr multicast_mac(const IpAddr &group) noexcept
{
    const auto &b = group.bytes;
    if (group.family == Family::ipv4)
        return MacAddr{{0x01, 0x00, 0x5e, static_cast<uint8_t>(b[1] & 0x7F), b[2], b[3]}};
    return MacAddr{{0x33, 0x33, b[12], b[13], b[14], b[15]}};
}

bool link_local_group(const IpAddr &group) noexcept
{
    const auto &b = group.bytes;
    if (group.family == Family::ipv4)
        return b[0] == 224 && b[1] == 0 && b[2] == 0;
    return group.family == Family::ipv6 && b[0] == 0xff && (b[1] & 0x0F) <= 2;
}

bool reportable(const IpAddr &group) noexcept
{
    const auto &b = group.bytes;
    if (group.family == Family::ipv4)
        return (b[0] & 0xF0) == 0xE0 && !link_local_group(group);
    if (group.family != Family::ipv6 || b[0] != 0xff)
        return false;
    const unsigned scope = b[1] & 0x0F;
    static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return scope > 1 && std::memcmp(b.data(), kAllNodes, 16) != 0;
}

size_t build_group_report(std::span<uint8_t> out, const MacAddr &src_mac, const IpAddr &src4,
                          const IpAddr &group, GroupReport kind) noexcept
{
    if (out.size() < kGroupReportMaxLen || !reportable(group))
        return 0;
    return group.family == Family::ipv4 ? igmpv3(out.data(), src_mac, src4, group, kind)
                                        : mldv2(out.data(), src_mac, group, kind);
}

} // namespace flowhome
