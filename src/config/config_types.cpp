/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/config.hpp"

#include <fmt/format.h>

namespace flowhome {

namespace {

/** "file:line:col: key: message", dropping the parts that are unknown. */
std::string format_what(const std::string &file, int line, int column, const std::string &key,
                        const std::string &message)
{
    std::string out = file;
    if (line > 0) {
        out += fmt::format(":{}", line);
        if (column > 0)
            out += fmt::format(":{}", column);
    }
    out += ": ";
    if (!key.empty()) {
        out += key;
        out += ": ";
    }
    out += message;
    return out;
}

} // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key,
                         std::string message)
    : std::runtime_error(format_what(file, line, column, key, message)), file_(std::move(file)),
      line_(line), column_(column), key_(std::move(key)), message_(std::move(message))
{
}

std::string PortConfig::device_name() const
{
    if (is_vdev())
        return device.substr(0, device.find(','));
    return device;
}

const PortConfig *NodeConfig::wire_port() const noexcept
{
    for (const auto &p : ports)
        if (p.role == PortRole::wire)
            return &p;
    return nullptr;
}

const PortConfig *NodeConfig::local_port() const noexcept
{
    for (const auto &p : ports)
        if (p.role == PortRole::local)
            return &p;
    return nullptr;
}

uint16_t NodeConfig::geneve_receive_port() const noexcept
{
    for (const auto &d : domains)
        if (d.encap == EncapKind::geneve)
            return d.geneve_port;
    return DomainConfig{}.geneve_port;
}

const DomainConfig *NodeConfig::domain(const std::string &domain_name) const noexcept
{
    for (const auto &d : domains)
        if (d.name == domain_name)
            return &d;
    return nullptr;
}

const char *to_string(MissPolicy p) noexcept
{
    switch (p) {
    case MissPolicy::drop:
        return "drop";
    case MissPolicy::local:
        return "local";
    case MissPolicy::hash:
        return "hash";
    }
    return "?";
}

const char *to_string(TableMemory m) noexcept
{
    switch (m) {
    case TableMemory::automatic:
        return "auto";
    case TableMemory::eal:
        return "eal";
    case TableMemory::thp:
        return "thp";
    }
    return "?";
}

const char *to_string(EncapKind e) noexcept
{
    switch (e) {
    case EncapKind::geneve:
        return "geneve";
    case EncapKind::ipip:
        return "ipip";
    }
    return "?";
}

const char *to_string(PortRole r) noexcept
{
    switch (r) {
    case PortRole::wire:
        return "wire";
    case PortRole::local:
        return "local";
    }
    return "?";
}

const char *to_string(VipProtocol p) noexcept
{
    switch (p) {
    case VipProtocol::tcp:
        return "tcp";
    case VipProtocol::udp:
        return "udp";
    case VipProtocol::any:
        return "any";
    }
    return "?";
}

} // namespace flowhome
