/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Small value types shared by every plane: node ids, IP and MAC addresses.
 *
 * Threading: plain values, safe to copy anywhere. The parse functions may be
 * called from any thread; they never throw.
 */
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowhome {

/** Identifier of a node in the fleet, unique within a cluster. 0 is invalid. */
using NodeId = uint16_t;
inline constexpr NodeId kInvalidNode = 0;
/** Largest node id; ids index arrays of this size + 1. */
inline constexpr NodeId kMaxNodeId = 4095;

enum class Family : uint8_t { none = 0, ipv4 = 4, ipv6 = 6 };

/** An IPv4 or IPv6 address, bytes in network order (IPv4 in bytes[0..3]). */
struct IpAddr {
    Family family = Family::none;
    std::array<uint8_t, 16> bytes{};

    static IpAddr v4(uint32_t network_order) noexcept;
    static IpAddr v6(const uint8_t *network_order) noexcept;
    /** IPv4 address in network byte order; only valid when family is ipv4. */
    uint32_t v4_be() const noexcept;

    /** Parses dotted-quad or RFC 5952 text; nullopt when it is neither. */
    static std::optional<IpAddr> parse(std::string_view text);
    std::string to_string() const;
    /** "ADDRESS:PORT", an IPv6 address in brackets (RFC 5952 6). */
    std::string with_port(uint16_t port) const;

    friend bool operator==(const IpAddr &, const IpAddr &) = default;
    /** Family, then bytes: an order for sorted containers, not a numeric one across families. */
    friend auto operator<=>(const IpAddr &, const IpAddr &) = default;
};

/** An IPv4 or IPv6 prefix, e.g. 192.0.2.0/24. */
struct IpPrefix {
    IpAddr addr;
    uint8_t length = 0;

    static std::optional<IpPrefix> parse(std::string_view text);
    bool contains(const IpAddr &a) const noexcept;
    std::string to_string() const;
};

struct MacAddr {
    std::array<uint8_t, 6> bytes{};

    /** Parses "aa:bb:cc:dd:ee:ff"; nullopt otherwise. */
    static std::optional<MacAddr> parse(std::string_view text);
    std::string to_string() const;

    friend bool operator==(const MacAddr &, const MacAddr &) = default;
};

} // namespace flowhome
