/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket's framing (docs/console.md, "Control socket") and the
 * one line of HTTP the metrics endpoint reads: what the server, the attach
 * client and fuzz_control share. Pure functions over strings; no I/O.
 *
 * A client sends one command per line. For each the server answers a
 * header line, "ok <n>" or "error <n>", then exactly n bytes of text; a
 * session the node closes of its own accord (the 17th, or the idle one it
 * replaced) gets a last "closed <n>" and its text, unasked. n is written in
 * decimal without sign or leading zeros, and read back only in that form.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowhome {

/* The longest command line the server runs, HTTP request line it reads,
 * and reply header the client reads. */
inline constexpr size_t kMaxControlLine = 4096;

enum class ReplyKind : uint8_t { ok, error, closed };

struct ReplyHeader {
    ReplyKind kind = ReplyKind::ok;
    size_t length = 0; /* bytes of text after the header line */
};

/* The header line, with its '\n', and @p text after it. */
std::string framed_reply(ReplyKind kind, std::string_view text);

/* A header line without its '\n'; nullopt unless it is exactly as
 * framed_reply() writes one. */
std::optional<ReplyHeader> parse_reply_header(std::string_view line) noexcept;

enum class LineTake : uint8_t {
    line,     /* @p line holds the first line, taken from the front of the buffer */
    partial,  /* no whole line yet, and what there is may still become one */
    too_long, /* the first line is, or will be, longer than the limit */
};

/* Takes the first '\n'-terminated line (without its '\n') of at most
 * @p max bytes from the front of @p buffer. */
LineTake take_line(std::string &buffer, std::string &line, size_t max = kMaxControlLine);

/* An HTTP request line asking for the metrics: "GET /metrics", with or
 * without a query, followed by the protocol version. */
bool is_metrics_request(std::string_view request_line) noexcept;

} // namespace flowhome
