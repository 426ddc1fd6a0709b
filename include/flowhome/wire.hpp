/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Header sizes and big-endian loads and stores shared by every codec (packet
 * parser, encapsulation, ICMP, gossip). The loads and stores go through
 * memcpy, so they are defined for any alignment (Ethernet leaves the IP
 * header 2-byte aligned at best) and compile to one load or store and a byte
 * swap.
 *
 * The swaps are the compiler's builtins, not rte_bswap16/32/64: on x86 those
 * are volatile inline assembly (an exchange of a register's two low bytes,
 * which only four registers have; bswap), which the compiler may not fold
 * into a constant compare, combine with a load, drop or move. Each packet
 * parsed and each header written pays for a dozen of them.
 *
 * Threading: pure functions. Errors: none.
 */
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace flowhome::wire {

/** Host to network byte order and back (the same swap both ways). */
constexpr uint16_t be16(uint16_t v) noexcept
{
    if constexpr (std::endian::native == std::endian::big)
        return v;
    return __builtin_bswap16(v);
}
constexpr uint32_t be32(uint32_t v) noexcept
{
    if constexpr (std::endian::native == std::endian::big)
        return v;
    return __builtin_bswap32(v);
}
constexpr uint64_t be64(uint64_t v) noexcept
{
    if constexpr (std::endian::native == std::endian::big)
        return v;
    return __builtin_bswap64(v);
}

inline constexpr uint16_t kEthHeaderLen = 14;
inline constexpr uint16_t kVlanTagLen = 4;
inline constexpr uint16_t kIpv4HeaderLen = 20; /**< without options */
inline constexpr uint16_t kIpv6HeaderLen = 40;
inline constexpr uint16_t kUdpHeaderLen = 8;
inline constexpr uint16_t kTcpMinHeaderLen = 20;
inline constexpr uint16_t kGeneveHeaderLen = 8;       /**< RFC 8926 3.4, without options */
inline constexpr uint16_t kGeneveOptionHeaderLen = 4; /**< RFC 8926 3.5 */

inline uint16_t load16(const uint8_t *p) noexcept
{
    uint16_t v;
    std::memcpy(&v, p, sizeof(v));
    return be16(v);
}

inline uint32_t load32(const uint8_t *p) noexcept
{
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return be32(v);
}

inline uint64_t load64(const uint8_t *p) noexcept
{
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    return be64(v);
}

inline void store16(uint8_t *p, uint16_t v) noexcept
{
    const uint16_t be = be16(v);
    std::memcpy(p, &be, sizeof(be));
}

inline void store32(uint8_t *p, uint32_t v) noexcept
{
    const uint32_t be = be32(v);
    std::memcpy(p, &be, sizeof(be));
}

inline void store64(uint8_t *p, uint64_t v) noexcept
{
    const uint64_t be = be64(v);
    std::memcpy(p, &be, sizeof(be));
}

/** Folds a one's-complement sum to 16 bits (RFC 1071 section 4.1), not inverted. */
constexpr uint16_t fold(uint64_t sum) noexcept
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

/* The five 32-bit words of a 20-byte header, added into 64 bits: a sum
 * that folds to the header's one's-complement sum (2^32 and 2^16 are 1
 * modulo 0xFFFF, so each fold keeps the value modulo 0xFFFF). */
inline uint64_t ipv4_base_header_words(const uint8_t *ip) noexcept
{
    /* Loaded straight from the packet, two 8-byte words and a 4-byte one.
     * Copied into a uint32_t[5] instead, the header went through the stack
     * as one 16-byte store read back 4 bytes at a time, and the reads at an
     * offset waited for the store to complete (no store-to-load forwarding
     * there on the AMD cores measured): a tenth of the parsing loop's
     * samples. */
    uint64_t a;
    uint64_t b;
    uint32_t c;
    std::memcpy(&a, ip, sizeof(a));
    std::memcpy(&b, ip + 8, sizeof(b));
    std::memcpy(&c, ip + 16, sizeof(c));
    return (a & 0xFFFFFFFF) + (a >> 32) + (b & 0xFFFFFFFF) + (b >> 32) + c;
}

/**
 * One's-complement sum of a 20-byte (option-less) IPv4 header, folded, in
 * memory order (RFC 1071 2(B) and 2(C): 32-bit words into a 64-bit
 * accumulator). 0xFFFF, in either byte order, when its checksum verifies.
 */
inline uint16_t ipv4_base_header_sum(const uint8_t *ip) noexcept
{
    uint64_t acc = ipv4_base_header_words(ip);
    acc = (acc >> 32) + (acc & 0xFFFFFFFF);
    acc = (acc >> 16) + (acc & 0xFFFF);
    acc = (acc >> 16) + (acc & 0xFFFF);
    return static_cast<uint16_t>((acc >> 16) + (acc & 0xFFFF));
}

/**
 * Whether a 20-byte IPv4 header's checksum verifies: its one's-complement
 * sum is 0xFFFF, which is to say its words add up to a multiple of 0xFFFF
 * other than 0. A multiply and a compare instead of four folds.
 */
inline bool ipv4_base_header_valid(const uint8_t *ip) noexcept
{
    const uint64_t words = ipv4_base_header_words(ip);
    return words % 0xFFFF == 0 && words != 0;
}

} // namespace flowhome::wire
