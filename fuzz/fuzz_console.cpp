/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the console's parsers: any bytes as one command
 * line, split into words (split_words), each word read as a number
 * (parse_number) and the first three as a flow (parse_flow, the arguments
 * of show flow, flow claim and flow release). Running the commands needs a
 * node and is the console tests' job (tests/cli).
 *
 * Run it with scripts/fuzz (which builds it), or by hand from build-fuzz:
 *   build-fuzz/fuzz/fuzz_console -max_total_time=60 /tmp/console_work fuzz/corpus/console
 * (libFuzzer writes new inputs to the first directory: keep it outside the tree.)
 *
 * Checks, trapping when one breaks:
 *  - words are non-empty, hold no blank, none starts a comment, they come
 *    in the line's order, and joining them with spaces splits back to them;
 *  - parse_number() agrees with a digit-by-digit reference (no leading
 *    zero) for several ranges;
 *  - parse_flow() either fails with a message (one line, ending in '\n')
 *    or gives a key of the family its addresses are (bracketed for IPv6
 *    only), the protocol and the ports the words say; that key printed (FlowKey::to_string, as show
 *    flow and the flow commands print it) and read back, less its "->", is
 *    the same key.
 */
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "console_impl.hpp"

using namespace flowhome;

namespace {

void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void check_words(std::string_view line, const std::vector<std::string> &words)
{
    size_t at = 0;
    std::string joined;
    for (const std::string &w : words) {
        check(!w.empty() && w.front() != '#');
        for (const char c : w)
            check(!is_blank(c));
        at = line.find(w, at);
        check(at != std::string_view::npos);
        at += w.size();
        joined += w + ' ';
    }
    check(split_words(joined) == words);
}

/* Decimal digits only, no sign, blank or leading zero, value in [lo, hi]. */
std::optional<uint64_t> reference_number(std::string_view s, uint64_t lo, uint64_t hi)
{
    if (s.empty() || (s.size() > 1 && s[0] == '0'))
        return std::nullopt;
    uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9' || __builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v))
            return std::nullopt;
    }
    if (v < lo || v > hi)
        return std::nullopt;
    return v;
}

void check_number(std::string_view w)
{
    static constexpr uint64_t kRanges[][2] = {
        {0, UINT64_MAX}, {1, 65535}, {0, 4095}, {1, 10000}, {1, 1'000'000'000}};
    for (const auto &r : kRanges)
        check(parse_number(w, r[0], r[1]) == reference_number(w, r[0], r[1]));
}

/* The port after an endpoint's last ':' (both forms end in ":PORT"). */
uint64_t port_of(std::string_view endpoint)
{
    const auto p = reference_number(endpoint.substr(endpoint.rfind(':') + 1), 1, 65535);
    check(p.has_value());
    return *p;
}

void check_flow(const std::vector<std::string> &words)
{
    const std::vector<std::string> args(words.begin(), words.begin() + 3);
    CommandResult err;
    const std::optional<FlowKey> key = parse_flow(args, err);
    if (!key) {
        check(!err.ok && err.text.find('\n') == err.text.size() - 1);
        return;
    }
    check(key->family != Family::none && key->client().family == key->family &&
          key->vip().family == key->family);
    check(key->proto() == (args[0] == "tcp" ? kProtoTcp : kProtoUdp));
    check(args[0] == "tcp" || args[0] == "udp");
    check(key->client_port() == port_of(args[1]) && key->vip_port() == port_of(args[2]));
    /* Brackets are IPv6's form only. */
    check(args[1].starts_with('[') == (key->family == Family::ipv6) &&
          args[2].starts_with('[') == (key->family == Family::ipv6));

    /* "tcp 192.0.2.1:1234 -> 198.51.100.1:80" */
    const std::vector<std::string> printed = split_words(key->to_string());
    check(printed.size() == 4 && printed[2] == "->");
    CommandResult again_err;
    const auto again = parse_flow({printed[0], printed[1], printed[3]}, again_err);
    check(again.has_value() && *again == *key);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string_view line(reinterpret_cast<const char *>(data), size);
    const std::vector<std::string> words = split_words(line);
    check_words(line, words);
    for (const std::string &w : words)
        check_number(w);
    if (words.size() >= 3)
        check_flow(words);
    return 0;
}
