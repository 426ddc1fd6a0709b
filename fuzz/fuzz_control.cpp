/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the control socket's framing (src/cli/
 * control_protocol.hpp): the first two bytes pick how the rest arrives (in
 * pieces of 1 to 256 bytes) and a line limit (1 to 255, or the server's
 * own, 4096); the rest is what a client sends, or a node's reply headers.
 *
 * Run it with scripts/fuzz (which builds it), or by hand from build-fuzz:
 *   build-fuzz/fuzz/fuzz_control -max_total_time=60 /tmp/control_work fuzz/corpus/control
 *
 * Checks, trapping when one breaks:
 *  - take_line() over the pieces as they arrive, against the buffer's first
 *    line measured byte by byte: a line is taken exactly when the buffer
 *    holds a newline within the limit, and it is the next part of the
 *    input; too_long exactly when the first line, whole or not, passes the
 *    limit, leaving the buffer as it was; otherwise partial, the buffer
 *    untouched. At the end of the input, a last line without its newline
 *    is taken once one is added (as the server does).
 *  - parse_reply_header() of every line accepts exactly what an
 *    independent reference does ("ok", "error" or "closed", one space, a
 *    decimal without sign or leading zero that fits a size_t); what it
 *    accepts is in the form framed_reply() writes (its kind word, and the
 *    length as std::to_string writes it).
 *  - is_metrics_request() agrees with a reference.
 */
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "control_protocol.hpp"

using namespace flowhome;

namespace {

void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

constexpr std::string_view kKinds[] = {"ok", "error", "closed"};

/* The reference: the header's kind and length, or nullopt. */
std::optional<ReplyHeader> reference_header(std::string_view line)
{
    const size_t space = line.find(' ');
    if (space == std::string_view::npos)
        return std::nullopt;
    std::optional<ReplyHeader> h;
    for (size_t k = 0; k < 3; ++k)
        if (line.substr(0, space) == kKinds[k])
            h = ReplyHeader{static_cast<ReplyKind>(k), 0};
    const std::string_view n = line.substr(space + 1);
    if (!h || n.empty() || (n.size() > 1 && n[0] == '0'))
        return std::nullopt;
    for (const char c : n)
        if (c < '0' || c > '9')
            return std::nullopt;
    /* Fits a size_t: fewer digits than its largest value, or as many and
     * not above it. */
    const std::string most = std::to_string(SIZE_MAX);
    if (n.size() > most.size() || (n.size() == most.size() && n > std::string_view(most)))
        return std::nullopt;
    for (const char c : n)
        h->length = h->length * 10 + static_cast<size_t>(c - '0');
    return h;
}

void check_header(std::string_view line)
{
    const std::optional<ReplyHeader> got = parse_reply_header(line);
    const std::optional<ReplyHeader> want = reference_header(line);
    check(got.has_value() == want.has_value());
    if (!got)
        return;
    check(got->kind == want->kind && got->length == want->length);
    /* Written back: the same header (the text itself is not built: its
     * length may be anything). */
    const std::string again = framed_reply(got->kind, "");
    check(again.substr(0, again.find(' ')) == line.substr(0, line.find(' ')));
    check(line.substr(line.find(' ') + 1) == std::to_string(got->length));
    check(framed_reply(got->kind, std::string(got->length % 64, 'x'))
              .starts_with(std::string(kKinds[static_cast<size_t>(got->kind)]) + ' ' +
                           std::to_string(got->length % 64) + '\n'));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const size_t piece = size_t{data[0]} + 1;
    const size_t max = data[1] == 0 ? kMaxControlLine : size_t{data[1]};
    const std::string_view input(reinterpret_cast<const char *>(data) + 2, size - 2);

    std::string buffer;
    std::string line;
    size_t arrived = 0;
    size_t taken = 0; /* bytes of the input taken as lines, newlines included */
    bool refused = false;
    /* One take, checked; true when a line was taken. */
    auto take = [&]() {
        const std::string before = buffer;
        size_t first = 0; /* the first line's length, or the buffer's without a newline */
        while (first < before.size() && before[first] != '\n')
            ++first;
        const LineTake took = take_line(buffer, line, max);
        if (first < before.size() && first <= max) {
            check(took == LineTake::line && line.size() == first);
            check(line == before.substr(0, first) && buffer == before.substr(first + 1));
            /* The next part of the input (whose end has no newline, given
             * one at the end of input). */
            check(input.substr(taken, first) == line);
            check(taken + first == input.size() || input[taken + first] == '\n');
            taken += first + 1;
            check_header(line);
            check(is_metrics_request(line) ==
                  (line.substr(0, 13) == "GET /metrics " || line.substr(0, 13) == "GET /metrics?"));
            return true;
        }
        check(took == (first > max ? LineTake::too_long : LineTake::partial));
        check(buffer == before);
        refused = took == LineTake::too_long; /* the server ends such a session */
        return false;
    };
    while (!refused && arrived < input.size()) {
        const size_t n = std::min(piece, input.size() - arrived);
        buffer.append(input.substr(arrived, n));
        arrived += n;
        while (take()) {
        }
    }
    if (!refused) {
        check(taken + buffer.size() == input.size());
        if (!buffer.empty()) {
            buffer += '\n';
            check(take() && buffer.empty());
        }
    }
    return 0;
}
