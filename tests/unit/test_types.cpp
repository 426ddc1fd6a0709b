/* SPDX-License-Identifier: BSD-3-Clause */
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "flowhome/drop_reason.hpp"
#include "flowhome/types.hpp"

using flowhome::Family;
using flowhome::IpAddr;
using flowhome::IpPrefix;
using flowhome::MacAddr;

using namespace std::string_view_literals;

TEST_CASE("IpAddr parses and formats IPv4", "[types]")
{
    const auto a = IpAddr::parse("192.0.2.1");
    REQUIRE(a);
    CHECK(a->family == Family::ipv4);
    CHECK(a->bytes[0] == 192);
    CHECK(a->bytes[1] == 0);
    CHECK(a->bytes[2] == 2);
    CHECK(a->bytes[3] == 1);
    for (size_t i = 4; i < 16; ++i)
        CHECK(a->bytes[i] == 0); // equality compares all 16 bytes
    CHECK(a->to_string() == "192.0.2.1");

    // v4() takes and v4_be() gives network order: the bytes are the wire bytes.
    const auto b = IpAddr::v4(a->v4_be());
    CHECK(b == *a);
    CHECK(IpAddr::parse("192.0.2.2") != a);
}

TEST_CASE("IpAddr parses and formats IPv6 in RFC 5952 form", "[types]")
{
    const auto a = IpAddr::parse("2001:DB8:0:0:0:0:0:1");
    REQUIRE(a);
    CHECK(a->family == Family::ipv6);
    CHECK(a->bytes[0] == 0x20);
    CHECK(a->bytes[1] == 0x01);
    CHECK(a->bytes[15] == 0x01);
    CHECK(a->to_string() == "2001:db8::1"); // lower case, longest zero run compressed
    CHECK(a->with_port(443) == "[2001:db8::1]:443"); // RFC 5952 6
    CHECK(IpAddr::parse("192.0.2.1")->with_port(80) == "192.0.2.1:80");

    const auto b = IpAddr::v6(a->bytes.data());
    CHECK(b == *a);

    const auto mapped = IpAddr::parse("::ffff:192.0.2.1");
    REQUIRE(mapped);
    CHECK(mapped->family == Family::ipv6);
    CHECK(mapped->to_string() == "::ffff:192.0.2.1");

    const auto longest = IpAddr::parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    REQUIRE(longest);
    CHECK(longest->family == Family::ipv6);
}

TEST_CASE("IpAddr refuses text that is not an address", "[types]")
{
    const std::string_view bad[] = {
        ""sv,
        "192.0.2"sv,
        "192.0.2.256"sv,
        "192.0.2.1 "sv,
        " 192.0.2.1"sv,
        "192.0.2.1/24"sv,
        "01.0.2.1"sv, // leading zero: octal to some parsers
        "0x7f.0.0.1"sv,
        "2001:db8::1::2"sv,
        "2001:db8::g"sv,
        "fe80::1%eth0"sv, // zone ids are not addresses
        "localhost"sv,
        "192.0.2.1\0junk"sv, // embedded NUL: the tail must not be ignored
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:ffff:ffff"sv,
    };
    for (const auto text : bad) {
        INFO("text: " << std::string(text));
        CHECK_FALSE(IpAddr::parse(text));
    }
    CHECK(IpAddr{}.to_string() == "-");
}

TEST_CASE("IpPrefix parses, formats and matches", "[types]")
{
    const auto p = IpPrefix::parse("198.51.100.0/24");
    REQUIRE(p);
    CHECK(p->length == 24);
    CHECK(p->to_string() == "198.51.100.0/24");
    CHECK(p->contains(*IpAddr::parse("198.51.100.255")));
    CHECK_FALSE(p->contains(*IpAddr::parse("198.51.101.0")));
    CHECK_FALSE(p->contains(*IpAddr::parse("2001:db8::1"))); // other family

    const auto odd = IpPrefix::parse("192.0.2.128/25");
    REQUIRE(odd);
    CHECK(odd->contains(*IpAddr::parse("192.0.2.200")));
    CHECK_FALSE(odd->contains(*IpAddr::parse("192.0.2.127"))); // the partial-byte mask matters

    const auto v6 = IpPrefix::parse("2001:db8:80::/48");
    REQUIRE(v6);
    CHECK(v6->to_string() == "2001:db8:80::/48");
    CHECK(v6->contains(*IpAddr::parse("2001:db8:80:ffff::1")));
    CHECK_FALSE(v6->contains(*IpAddr::parse("2001:db8:81::1")));

    const auto all = IpPrefix::parse("0.0.0.0/0");
    REQUIRE(all);
    CHECK(all->contains(*IpAddr::parse("203.0.113.7")));

    const auto host = IpPrefix::parse("2001:db8::1/128");
    REQUIRE(host);
    CHECK(host->contains(*IpAddr::parse("2001:db8::1")));
    CHECK_FALSE(host->contains(*IpAddr::parse("2001:db8::2")));
}

TEST_CASE("IpPrefix refuses bad text", "[types]")
{
    const std::string_view bad[] = {
        "198.51.100.0"sv,    "198.51.100.0/"sv,     "198.51.100.0/33"sv, "2001:db8::/129"sv,
        "198.51.100.0/-1"sv, "198.51.100.0/+8"sv,   "198.51.100.0/8x"sv, "/8"sv,
        "198.51.100/24"sv,   "198.51.100.0/24/8"sv,
    };
    for (const auto text : bad) {
        INFO("text: " << std::string(text));
        CHECK_FALSE(IpPrefix::parse(text));
    }
}

TEST_CASE("MacAddr parses and formats", "[types]")
{
    const auto m = MacAddr::parse("00:00:5E:00:53:0a");
    REQUIRE(m);
    CHECK(m->bytes[0] == 0x00);
    CHECK(m->bytes[2] == 0x5e);
    CHECK(m->bytes[5] == 0x0a);
    CHECK(m->to_string() == "00:00:5e:00:53:0a");
    CHECK(MacAddr::parse("ff:ff:ff:ff:ff:ff")->to_string() == "ff:ff:ff:ff:ff:ff");

    const std::string_view bad[] = {
        ""sv,
        "00:00:5e:00:53"sv,
        "00:00:5e:00:53:0a:01"sv,
        "00-00-5e-00-53-0a"sv,
        "00:00:5e:00:53:0g"sv,
        "0:00:5e:00:53:0a:"sv,
        "+0:00:5e:00:53:0a"sv,
        "-0:00:5e:00:53:0a"sv,
        "00:00:5e:00:53: a"sv,
        "0000.5e00.530a00"sv,
    };
    for (const auto text : bad) {
        INFO("text: " << std::string(text));
        CHECK_FALSE(MacAddr::parse(text));
    }
}

TEST_CASE("The operations guide lists every drop reason, with its meaning, and no other", "[types]")
{
    std::ifstream in(std::string(FLOWHOME_SOURCE_DIR) + "/docs/operations.md");
    REQUIRE(in);
    /* The table's rows: from its header line to the first line that is no row. */
    std::vector<std::string> rows;
    bool in_table = false;
    for (std::string line; std::getline(in, line);) {
        if (line == "| reason | meaning |")
            in_table = true;
        else if (in_table && line.starts_with("| `"))
            rows.push_back(line);
        else if (in_table && !line.starts_with("|---"))
            break;
    }
    REQUIRE(rows.size() == flowhome::kDropReasonCount);
    for (size_t i = 0; i < rows.size(); ++i) {
        const flowhome::DropReasonInfo &d = flowhome::kDropReasons[i];
        CHECK(rows[i] == "| `" + std::string(d.name) + "` | " + std::string(d.text) + " |");
    }
}
