/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket's framing: reply headers read back only as written,
 * lines taken with their limit, the metrics endpoint's request line.
 */
#include <string>

#include <catch2/catch.hpp>

#include "control_protocol.hpp"

using namespace flowhome;

TEST_CASE("reply headers are read back as they are written", "[cli][protocol]")
{
    for (const ReplyKind kind : {ReplyKind::ok, ReplyKind::error, ReplyKind::closed})
        for (const std::string &text : {std::string(), std::string("x"), std::string(12345, 'y')}) {
            const std::string r = framed_reply(kind, text);
            const size_t nl = r.find('\n');
            REQUIRE(nl != std::string::npos);
            CHECK(r.substr(nl + 1) == text);
            const auto h = parse_reply_header(std::string_view(r).substr(0, nl));
            REQUIRE(h);
            CHECK(h->kind == kind);
            CHECK(h->length == text.size());
        }
    CHECK(framed_reply(ReplyKind::error, "no\n") == "error 3\nno\n");
    const auto most = parse_reply_header("ok " + std::to_string(SIZE_MAX));
    REQUIRE(most);
    CHECK(most->length == SIZE_MAX);
}

TEST_CASE("a reply header in any other form is refused", "[cli][protocol]")
{
    for (const char *bad : {"", "ok", "ok ", "ok  1", "ok -1", "ok +1", "ok 01", "ok 1x", "ok 1 ",
                            "ok 0x10", "OK 1", "okay 1", " ok 1", "ok\t1", "fine 1", "closed",
                            "ok 18446744073709551616", "error 99999999999999999999"}) {
        INFO("'" << bad << "'");
        CHECK_FALSE(parse_reply_header(bad));
    }
    CHECK(parse_reply_header("ok 0"));
    CHECK(parse_reply_header("closed 7"));
}

TEST_CASE("lines are taken one at a time, up to the limit", "[cli][protocol]")
{
    std::string in = "show node\nshow peers\nsho";
    std::string line;
    REQUIRE(take_line(in, line) == LineTake::line);
    CHECK(line == "show node");
    REQUIRE(take_line(in, line) == LineTake::line);
    CHECK(line == "show peers");
    CHECK(take_line(in, line) == LineTake::partial);
    CHECK(in == "sho");
    in += "w\n";
    REQUIRE(take_line(in, line) == LineTake::line);
    CHECK(line == "show");
    CHECK(in.empty());
    CHECK(take_line(in, line) == LineTake::partial);
    std::string blank(1, '\n');
    REQUIRE(take_line(blank, line) == LineTake::line);
    CHECK(line.empty());

    /* The limit counts the line without its newline. */
    in = std::string(8, 'a') + "\n";
    CHECK(take_line(in, line, 8) == LineTake::line);
    in = std::string(9, 'a') + "\n";
    CHECK(take_line(in, line, 8) == LineTake::too_long);
    CHECK(in.size() == 10); /* left as it was */
    in = std::string(8, 'a');
    CHECK(take_line(in, line, 8) == LineTake::partial);
    in += "a";
    CHECK(take_line(in, line, 8) == LineTake::too_long); /* before its newline arrives */
    in = std::string(kMaxControlLine, 'b') + "\n";
    CHECK(take_line(in, line) == LineTake::line);
    in = std::string(kMaxControlLine + 1, 'b');
    CHECK(take_line(in, line) == LineTake::too_long);
}

TEST_CASE("the metrics endpoint answers GET /metrics only", "[cli][protocol]")
{
    CHECK(is_metrics_request("GET /metrics HTTP/1.1\r"));
    CHECK(is_metrics_request("GET /metrics?name[]=x HTTP/1.0"));
    CHECK_FALSE(is_metrics_request("GET /metrics"));
    CHECK_FALSE(is_metrics_request("GET /metricsx HTTP/1.1"));
    CHECK_FALSE(is_metrics_request("POST /metrics HTTP/1.1"));
    CHECK_FALSE(is_metrics_request("GET / HTTP/1.1"));
    CHECK_FALSE(is_metrics_request(""));
}
