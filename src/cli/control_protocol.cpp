/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket's framing: reply headers written and read back
 * strictly, and lines taken from a session's input with a length limit.
 */
#include "control_protocol.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

namespace flowhome {
namespace {

constexpr std::array<std::string_view, 3> kKinds = {"ok", "error", "closed"};

} // namespace

std::string framed_reply(ReplyKind kind, std::string_view text)
{
    return fmt::format("{} {}\n{}", kKinds[static_cast<size_t>(kind)], text.size(), text);
}

std::optional<ReplyHeader> parse_reply_header(std::string_view line) noexcept
{
    const size_t space = line.find(' ');
    if (space == std::string_view::npos)
        return std::nullopt;
    ReplyHeader h;
    const std::string_view kind = line.substr(0, space);
    size_t k = 0;
    while (k < kKinds.size() && kKinds[k] != kind)
        ++k;
    if (k == kKinds.size())
        return std::nullopt;
    h.kind = static_cast<ReplyKind>(k);
    /* Digits only (from_chars takes no sign or blank for an unsigned, but
     * check anyway), no leading zero, no overflow, nothing after them. */
    const std::string_view digits = line.substr(space + 1);
    if (digits.empty() || (digits.size() > 1 && digits.front() == '0') || digits.front() < '0' ||
        digits.front() > '9')
        return std::nullopt;
    const char *end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, h.length);
    if (ec != std::errc() || ptr != end)
        return std::nullopt;
    return h;
}

LineTake take_line(std::string &buffer, std::string &line, size_t max)
{
    const size_t nl = buffer.find('\n');
    if (nl != std::string::npos && nl <= max) {
        line.assign(buffer, 0, nl);
        buffer.erase(0, nl + 1);
        return LineTake::line;
    }
    /* Past the limit, with or without its newline: it never fits. */
    return std::min(nl, buffer.size()) > max ? LineTake::too_long : LineTake::partial;
}

bool is_metrics_request(std::string_view request_line) noexcept
{
    return request_line.starts_with("GET /metrics ") || request_line.starts_with("GET /metrics?");
}

} // namespace flowhome
