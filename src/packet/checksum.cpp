/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 1071 Internet checksum. The sum is returned in host order (the value
 * of the big-endian 16-bit words added as numbers), so that callers can add
 * host-order fields to it and store the result with rte_cpu_to_be_16.
 */
#include "flowhome/packet.hpp"
#include "flowhome/wire.hpp"

#include <rte_byteorder.h>
#include <rte_ip.h>

namespace flowhome {
namespace {

using namespace wire;

constexpr size_t kIpv4ChecksumOffset = 10;

} // namespace

uint16_t ones_complement_sum(const void *data, size_t len, uint32_t initial) noexcept
{
    /* rte_raw_cksum adds the words as they lie in memory and pads an odd last
     * byte with a zero after it; RFC 1071 2(B) lets the folded sum be
     * byte-swapped afterwards, which yields the network-order sum. */
    const uint16_t memory_order = rte_raw_cksum(data, len);
    return fold(static_cast<uint64_t>(initial) + rte_be_to_cpu_16(memory_order));
}

uint16_t ipv4_header_checksum(const uint8_t *header, size_t header_len) noexcept
{
    /* RFC 791 3.1: the checksum field counts as zero while computing, so
     * skip it instead of requiring callers to clear it first. */
    const uint16_t before = ones_complement_sum(header, kIpv4ChecksumOffset);
    const uint16_t sum = ones_complement_sum(header + kIpv4ChecksumOffset + 2,
                                             header_len - kIpv4ChecksumOffset - 2, before);
    return static_cast<uint16_t>(~sum);
}

} // namespace flowhome
