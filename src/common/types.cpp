/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/types.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace flowhome {

IpAddr IpAddr::v4(uint32_t network_order) noexcept
{
    IpAddr a;
    a.family = Family::ipv4;
    std::memcpy(a.bytes.data(), &network_order, 4);
    return a;
}

IpAddr IpAddr::v6(const uint8_t *network_order) noexcept
{
    IpAddr a;
    a.family = Family::ipv6;
    std::memcpy(a.bytes.data(), network_order, 16);
    return a;
}

uint32_t IpAddr::v4_be() const noexcept
{
    uint32_t v;
    std::memcpy(&v, bytes.data(), 4);
    return v;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text)
{
    // inet_pton stops at a NUL: "192.0.2.1\0junk" must not parse as 192.0.2.1.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('\0') != text.npos)
        return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';

    IpAddr a;
    if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
        a.family = Family::ipv4;
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
        a.family = Family::ipv6;
        return a;
    }
    return std::nullopt;
}

std::string IpAddr::to_string() const
{
    char buf[INET6_ADDRSTRLEN] = "-";
    if (family == Family::ipv4)
        inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
    else if (family == Family::ipv6)
        inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
    return buf;
}

std::string IpAddr::with_port(uint16_t port) const
{
    if (family == Family::ipv6)
        return fmt::format("[{}]:{}", to_string(), port);
    return fmt::format("{}:{}", to_string(), port);
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text)
{
    const auto slash = text.find('/');
    if (slash == std::string_view::npos)
        return std::nullopt;
    auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr)
        return std::nullopt;
    const auto len_text = text.substr(slash + 1);
    unsigned len = 0;
    const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    const unsigned max = addr->family == Family::ipv4 ? 32 : 128;
    if (ec != std::errc{} || end != len_text.data() + len_text.size() || len_text.empty() ||
        len > max)
        return std::nullopt;
    return IpPrefix{*addr, static_cast<uint8_t>(len)};
}

bool IpPrefix::contains(const IpAddr &a) const noexcept
{
    if (a.family != addr.family)
        return false;
    unsigned bits = length;
    for (size_t i = 0; bits > 0; ++i) {
        const unsigned take = bits >= 8 ? 8 : bits;
        const uint8_t mask = static_cast<uint8_t>(0xFF00u >> take);
        if ((a.bytes[i] & mask) != (addr.bytes[i] & mask))
            return false;
        bits -= take;
    }
    return true;
}

std::string IpPrefix::to_string() const
{
    return fmt::format("{}/{}", addr.to_string(), length);
}

std::optional<MacAddr> MacAddr::parse(std::string_view text)
{
    if (text.size() != 17)
        return std::nullopt;
    MacAddr m;
    for (size_t i = 0; i < 6; ++i) {
        const char *p = text.data() + i * 3;
        if (i < 5 && p[2] != ':')
            return std::nullopt;
        uint8_t v = 0;
        const auto [end, ec] = std::from_chars(p, p + 2, v, 16);
        if (ec != std::errc{} || end != p + 2)
            return std::nullopt;
        m.bytes[i] = v;
    }
    return m;
}

std::string MacAddr::to_string() const
{
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                       bytes[3], bytes[4], bytes[5]);
}

} // namespace flowhome
