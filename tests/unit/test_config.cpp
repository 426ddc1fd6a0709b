/* SPDX-License-Identifier: BSD-3-Clause */
#include "config_test_util.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "flowhome/eal.hpp"
#include "flowhome/eal_options.hpp"
#include "flowhome/node.hpp"

TEST_CASE("a full file loads with every field", "[config]")
{
    const NodeConfig c = load_config_text(R"(node:
  id: 7
  name: lb-test
eal:
  memory_mb: 1024
  huge_pages: false
  file_prefix: fh-test
  extra: ["--log-level=8", "--vdev=net_null9"]
ports:
  - name: uplink
    device: 3B:00.0
    role: wire
    rx_descriptors: 2048
    tx_descriptors: 512
    mtu: 9000
    mac: 00:00:5e:00:53:01
    ipv4: 203.0.113.7
    ipv6: 2001:db8::7
    promiscuous: true
  - name: host
    device: net_tap0,iface=fh0
    role: local
lcores:
  main: 3
  control: 4
  workers: [5, 6]
vips:
  - address: 198.51.100.1
    protocol: tcp
    ports: [80, 443]
  - address: 2001:db8:80::1
    protocol: udp
domains:
  - name: dc1
    encap: geneve
    next_hop_mac: 00:00:5e:00:53:fe
    geneve_port: 7081
    udp6_zero_checksum: true
  - name: old
    encap: ipip
peers:
  - id: 8
    address: 203.0.113.8
    domain: dc1
  - id: 9
    address: 2001:db8::9
    domain: old
    mac: 00:00:5e:00:53:09
table:
  memory: thp
  capacity_ipv4: 2048
  capacity_ipv6: 4096
  tcp_idle_timeout_s: 100
  udp_idle_timeout_s: 10
  claim_grace_ms: 50
  flow_cache: false
miss_policy: hash
max_hops: 2
backoff:
  idle_polls: 500
  pause_polls: 50
  sleep_us: 0
)",
                                          "full.yaml");
    CHECK(c.source_file == "full.yaml");
    CHECK(c.node_id == 7);
    CHECK(c.name == "lb-test");

    CHECK(c.eal.memory_mb == 1024);
    CHECK_FALSE(c.eal.huge_pages);
    CHECK(c.eal.file_prefix == "fh-test");
    CHECK(c.eal.extra == std::vector<std::string>{"--log-level=8", "--vdev=net_null9"});

    REQUIRE(c.ports.size() == 2);
    const auto &up = c.ports[0];
    CHECK(up.name == "uplink");
    CHECK(up.device == "0000:3b:00.0"); // normalised to the name the EAL gives the device
    CHECK(up.device_name() == "0000:3b:00.0");
    CHECK_FALSE(up.is_vdev());
    CHECK(up.role == PortRole::wire);
    CHECK(up.rx_descriptors == 2048);
    CHECK(up.tx_descriptors == 512);
    CHECK(up.mtu == 9000);
    CHECK(up.mac == mac("00:00:5e:00:53:01"));
    CHECK(up.ipv4 == ip("203.0.113.7"));
    CHECK(up.ipv6 == ip("2001:db8::7"));
    CHECK(up.promiscuous);
    const auto &host = c.ports[1];
    CHECK(host.name == "host");
    CHECK(host.device == "net_tap0,iface=fh0");
    CHECK(host.device_name() == "net_tap0");
    CHECK(host.is_vdev());
    CHECK(host.role == PortRole::local);
    CHECK(c.wire_port() == &c.ports[0]);
    CHECK(c.local_port() == &c.ports[1]);

    CHECK(c.lcores.main == 3);
    CHECK(c.lcores.control == 4);
    CHECK(c.lcores.workers == std::vector<unsigned>{5, 6});

    REQUIRE(c.vips.size() == 2);
    CHECK(c.vips[0].address == ip("198.51.100.1"));
    CHECK(c.vips[0].protocol == VipProtocol::tcp);
    CHECK(c.vips[0].ports == std::vector<uint16_t>{80, 443});
    CHECK(c.vips[1].address == ip("2001:db8:80::1"));
    CHECK(c.vips[1].protocol == VipProtocol::udp);
    CHECK(c.vips[1].ports.empty());

    REQUIRE(c.domains.size() == 2);
    CHECK(c.domains[0].name == "dc1");
    CHECK(c.domains[0].encap == EncapKind::geneve);
    CHECK(c.domains[0].next_hop_mac == mac("00:00:5e:00:53:fe"));
    CHECK(c.domains[0].geneve_port == 7081);
    CHECK(c.domains[0].udp6_zero_checksum);
    CHECK(c.domains[1].name == "old");
    CHECK(c.domains[1].encap == EncapKind::ipip);
    CHECK_FALSE(c.domains[1].next_hop_mac);
    CHECK(c.domain("old") == &c.domains[1]);
    CHECK(c.domain("nope") == nullptr);

    REQUIRE(c.peers.size() == 2);
    CHECK(c.peers[0].id == 8);
    CHECK(c.peers[0].address == ip("203.0.113.8"));
    CHECK(c.peers[0].domain == "dc1");
    CHECK_FALSE(c.peers[0].mac);
    CHECK(c.peers[1].id == 9);
    CHECK(c.peers[1].address == ip("2001:db8::9"));
    CHECK(c.peers[1].domain == "old");
    CHECK(c.peers[1].mac == mac("00:00:5e:00:53:09"));

    CHECK(c.table.memory == TableMemory::thp);
    CHECK(c.table.capacity_ipv4 == 2048);
    CHECK(c.table.capacity_ipv6 == 4096);
    CHECK(c.table.tcp_idle_timeout_s == 100);
    CHECK(c.table.udp_idle_timeout_s == 10);
    CHECK(c.table.claim_grace_ms == 50);
    CHECK_FALSE(c.table.flow_cache);
    CHECK(c.miss_policy == MissPolicy::hash);
    CHECK(c.max_hops == 2);
    CHECK(c.backoff.idle_polls == 500);
    CHECK(c.backoff.pause_polls == 50);
    CHECK(c.backoff.sleep_us == 0);
}

TEST_CASE("optional keys take their documented defaults", "[config]")
{
    const NodeConfig c = load_config_text(kMinimal, "min.yaml");
    CHECK(c.node_id == 1);
    CHECK(c.name == "node1");
    CHECK(c.eal.memory_mb == 512);
    CHECK(c.eal.huge_pages);
    CHECK(c.eal.file_prefix.empty());
    CHECK(c.eal.extra.empty());
    REQUIRE(c.ports.size() == 1);
    CHECK(c.ports[0].role == PortRole::wire);
    CHECK(c.ports[0].rx_descriptors == 1024);
    CHECK(c.ports[0].tx_descriptors == 1024);
    CHECK(c.ports[0].mtu == 1500);
    CHECK_FALSE(c.ports[0].mac);
    CHECK_FALSE(c.ports[0].ipv6);
    CHECK_FALSE(c.ports[0].promiscuous);
    CHECK(c.local_port() == nullptr);
    CHECK(c.lcores.main == 0);
    CHECK(c.lcores.control == 1);
    CHECK(c.vips[0].protocol == VipProtocol::any);
    CHECK(c.vips[0].ports.empty());
    CHECK(c.domains.empty());
    CHECK(c.peers.empty());
    CHECK(c.table.memory == TableMemory::automatic);
    CHECK(c.table.capacity_ipv4 == 1u << 20);
    CHECK(c.table.capacity_ipv6 == 1u << 16);
    CHECK(c.table.tcp_idle_timeout_s == 300);
    CHECK(c.table.udp_idle_timeout_s == 60);
    CHECK(c.table.claim_grace_ms == 200);
    CHECK(c.table.flow_cache);
    CHECK(c.miss_policy == MissPolicy::drop);
    CHECK(c.max_hops == 1);
    CHECK(c.backoff.idle_polls == 100);
    CHECK(c.backoff.pause_polls == 10);
    CHECK(c.backoff.sleep_us == 50);

    // Fewer idle polls than the default pause: the worker pauses from its
    // first empty poll, no pause_polls needed.
    for (const uint32_t idle : {0u, 5u}) {
        const NodeConfig b = load_config_text(
            kMinimal + fmt::format("backoff:\n  idle_polls: {}\n", idle), "min.yaml");
        CHECK(b.backoff.idle_polls == idle);
        CHECK(b.backoff.pause_polls == idle);
    }

    // An empty optional section means "all defaults", as if it were absent.
    const NodeConfig e = load_config_text(kMinimal + "eal:\ntable:\npeers:\n", "min.yaml");
    CHECK(e.eal.memory_mb == 512);
    CHECK(e.peers.empty());
}

TEST_CASE("what() reads file:line:column: key: message", "[config]")
{
    const ConfigError e = expect_error(R"(node:
  id: 1
ports:
  - name: uplink
    device: net_ring0
    mtu: abc
)");
    CHECK(std::string(e.what()) ==
          "t.yaml:6:10: ports[0].mtu: expected an integer from 68 to 9216, got \"abc\"");

    CHECK(std::string(ConfigError("f.yaml", 0, 0, "", "cannot open").what()) ==
          "f.yaml: cannot open");
    CHECK(std::string(ConfigError("f.yaml", 3, 0, "a.b", "bad").what()) == "f.yaml:3: a.b: bad");
    CHECK(std::string(ConfigError("f.yaml", 3, 4, "", "bad").what()) == "f.yaml:3:4: bad");
}

TEST_CASE("YAML syntax errors carry yaml-cpp's position", "[config]")
{
    check_error(R"(node:
  id: 1
  name: [a, b
ports: x
)",
                4, 0, "", "YAML syntax error: end of sequence flow not found");
    check_error("node:\n  id: 1\n   name: x\n", 3, 0, "", "YAML syntax error: illegal map value");
}

TEST_CASE("file-level problems", "[config]")
{
    SECTION("empty file")
    {
        check_error("", 0, 0, "", "no YAML document: the file is empty or only comments");
        check_error("# nothing\n", 0, 0, "",
                    "no YAML document: the file is empty or only comments");
    }
    SECTION("a second document")
    {
        check_error(kMinimal + "---\nnode: {id: 2}\n", 11, 1, "",
                    "text after the first YAML document; a node file holds exactly one "
                    "document");
    }
    SECTION("input on which yaml-cpp's LoadAll() never ends (a fuzzer finding)")
    {
        check_error("!s80, 4430\n", 1, 5, "",
                    "text after the first YAML document; a node file holds exactly one "
                    "document");
    }
    SECTION("not a mapping")
    {
        check_error("- node\n", 1, 1, "", "expected a mapping, got a sequence");
    }
    SECTION("a NUL byte")
    {
        check_error(std::string("node:\n  id: 1\n  name: a\0b\n", 25), 3, 10, "",
                    "a NUL byte: a node file is text");
    }
    SECTION("anchors and aliases")
    {
        // Each alias would be read in full: a few thousand of one long list took hours.
        const std::string refused = "a YAML anchor (&name): anchors and aliases (*name) are not "
                                    "accepted; write each value out in full";
        check_error(kMinimal + "    ports: &web [80, 443]\n  - address: 198.51.100.11\n"
                               "    ports: *web\n",
                    11, 12, "", refused);
        check_error(kMinimal + "    ports: [80, &p 443]\n", 11, 17, "", refused);
        check_error(kMinimal + "table: &t\n", 11, 8, "", refused);
        check_error(kMinimal + "&k max_hops: 1\n", 11, 1, "", refused);
    }
    SECTION("tags")
    {
        // A tag would decide a value's type against the loader's rules:
        // "!!str 1" is a string to yaml-cpp, as if quoted, and "!!int true" a number.
        struct Tagged {
            const char *text;
            int column;
            const char *tag;
        };
        const Tagged tagged[] = {
            {"max_hops: !!str 1\n", 11, "!!str"},
            {"drain: !!int true\n", 8, "!!int"},
            {"miss_policy: !!str drop\n", 14, "!!str"},
            {"eal: {huge_pages: !!str true}\n", 19, "!!str"},
            {"    ports: !!str [80]\n", 12, "!!str"},
            {"table: !!map {memory: eal}\n", 8, "!!map"},
            {"!!str drain: true\n", 1, "!!str"},
            {"max_hops: ! 1\n", 11, "!"},
            {"console: {socket: !path /run/fh.sock}\n", 19, "!path"},
            {"max_hops: !<tag:example.com,2024:n> 1\n", 11, "!<tag:example.com,2024:n>"},
        };
        for (const auto &t : tagged)
            check_error(kMinimal + t.text, 11, t.column, "",
                        fmt::format("a YAML tag ({}): tags are not accepted; quote a string, "
                                    "write other values plain",
                                    t.tag));
        // After a byte order mark, which yaml-cpp's positions do not count.
        check_error("\xef\xbb\xbf" + kMinimal + "max_hops: ! 1\n", 11, 11, "",
                    "a YAML tag (!): tags are not accepted; quote a string, write other values "
                    "plain");
        // Quoted and block scalars carry no tag of their own.
        CHECK(load_config_text("\xef\xbb\xbf" + kMinimal + "console: {socket: '/run/a.sock'}\n",
                               "t.yaml")
                  .console.socket == "/run/a.sock");
        CHECK(load_config_text(kMinimal + "console:\n  socket: >-\n    /run/b.sock\n", "t.yaml")
                  .console.socket == "/run/b.sock");
    }
    SECTION("nesting deeper than the parser allows")
    {
        const ConfigError e = expect_error(std::string(3000, '[') + std::string(3000, ']'));
        CHECK(e.message() == "collections nested too deeply for the YAML parser");
        CHECK(e.line() == 1);
    }
}

TEST_CASE("unknown keys are errors that list the allowed keys", "[config]")
{
    SECTION("top level")
    {
        check_error(kMinimal + "colour: blue\n", 11, 1, "colour",
                    "unknown key \"colour\"; allowed keys: node, eal, ports, lcores, vips, "
                    "domains, peers, table, miss_policy, max_hops, backoff, gossip, drain, "
                    "bypass_ownership, console");
    }
    SECTION("a key holding control characters is quoted, in the path too")
    {
        check_error(kMinimal + "\"col\\x1b[31mour\": blue\n", 11, 1, "\"col\\x1b[31mour\"",
                    "unknown key \"col\\x1b[31mour\"; allowed keys: node, eal, ports, lcores, "
                    "vips, domains, peers, table, miss_policy, max_hops, backoff, gossip, drain, "
                    "bypass_ownership, console");
    }
    SECTION("nested in a sequence item")
    {
        check_error(R"(node:
  id: 1
ports:
  - name: uplink
    device: net_ring0
    mtux: 9000
)",
                    6, 5, "ports[0].mtux",
                    "unknown key \"mtux\"; allowed keys: name, device, role, rx_descriptors, "
                    "tx_descriptors, mtu, mac, ipv4, ipv6, promiscuous");
    }
    SECTION("nested in a mapping")
    {
        check_error(kMinimal + "table:\n  capacity: 5\n", 12, 3, "table.capacity",
                    "unknown key \"capacity\"; allowed keys: memory, capacity_ipv4, "
                    "capacity_ipv6, tcp_idle_timeout_s, udp_idle_timeout_s, claim_grace_ms, "
                    "flow_cache");
    }
    SECTION("a key given twice")
    {
        check_error(kMinimal + "max_hops: 1\nmax_hops: 2\n", 12, 1, "max_hops",
                    "duplicate key \"max_hops\" (first at line 11)");
    }
    SECTION("a key that is not a scalar")
    {
        check_error(kMinimal + "[a, b]: 1\n", 11, 1, "", "expected a key name, got a sequence");
    }
}

TEST_CASE("values of the wrong type", "[config]")
{
    const std::string head = "node:\n  id: 1\nports:\n  - name: uplink\n    device: net_ring0\n";
    SECTION("text for an integer")
    {
        check_error(head + "    mtu: abc\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"abc\"");
    }
    SECTION("a float, a sign, a leading zero, hex, a quoted number, a bool")
    {
        check_error(head + "    mtu: 1500.0\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"1500.0\"");
        check_error(head + "    mtu: -1500\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"-1500\"");
        check_error(head + "    mtu: +1500\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"+1500\"");
        check_error(head + "    mtu: 0x5dc\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"0x5dc\"");
        check_error(head + "    mtu: \"1500\"\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got the quoted string \"1500\"");
        check_error(head + "    mtu: true\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"true\"");
        check_error(head + "    mtu: 01500\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got \"01500\" (a leading zero is "
                    "octal in YAML 1.1: write it without)");
    }
    SECTION("nothing, a sequence or a mapping for a scalar")
    {
        check_error(head + "    mtu:\n", 6, 5, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got nothing");
        check_error(head + "    mtu: [1500]\n", 6, 10, "ports[0].mtu",
                    "expected an integer from 68 to 9216, got a sequence");
        check_error("node:\n  id: 1\nports:\n  - device: net_ring0\n    name: {a: b}\n", 5, 11,
                    "ports[0].name",
                    "expected a name of 1 to 32 letters, digits, '_', '-' or '.', got a mapping");
    }
    SECTION("booleans are true or false only")
    {
        check_error(head + "    promiscuous: yes\n", 6, 18, "ports[0].promiscuous",
                    "expected true or false, got \"yes\"");
        check_error(head + "    promiscuous: 1\n", 6, 18, "ports[0].promiscuous",
                    "expected true or false, got \"1\"");
        check_error(kMinimal + "table:\n  flow_cache: on\n", 12, 15, "table.flow_cache",
                    "expected true or false, got \"on\"");
    }
    SECTION("a mapping where a sequence belongs, and the reverse")
    {
        check_error(kMinimal + "peers: {id: 2}\n", 11, 8, "peers",
                    "expected a sequence, got a mapping");
        check_error(kMinimal + "table: [1]\n", 11, 8, "table",
                    "expected a mapping, got a sequence");
    }
    SECTION("strings are UTF-8 without control characters")
    {
        const std::string device = "node:\n  id: 1\nports:\n  - name: uplink\n    device: ";
        const std::string control = "expected a string without control characters, got the quoted "
                                    "string \"net_ring0,iface=a";
        const std::string not_utf8 = "expected a string of UTF-8 text, got \"net_ring0,iface=a";
        const std::pair<std::string, std::string> refused[] = {
            {"\"net_ring0,iface=a\\tb\"", control + "\\tb\""},
            {"\"net_ring0,iface=a\x7f\"", control + "\\x7f\""},
            // C1 controls, written raw and escaped.
            {"\"net_ring0,iface=a\xc2\x85\"", control + "\\x85\""},
            {"\"net_ring0,iface=a\\x9b\"", control + "\\x9b\""},
            // A stray byte, a truncated sequence, an overlong '/', a surrogate, above U+10FFFF.
            {"net_ring0,iface=a\xff", not_utf8 + "\\xff\""},
            {"net_ring0,iface=a\xe2\x82", not_utf8 + "\\xe2\\x82\""},
            {"net_ring0,iface=a\xc0\xaf", not_utf8 + "\\xc0\\xaf\""},
            {"net_ring0,iface=a\xed\xa0\x80", not_utf8 + "\\xed\\xa0\\x80\""},
            {"net_ring0,iface=a\xf4\x90\x80\x80", not_utf8 + "\\xf4\\x90\\x80\\x80\""},
        };
        for (const auto &[value, message] : refused)
            check_error(device + value + "\n", 5, 13, "ports[0].device", message);
        // yaml-cpp 0.7 writes YAML's escape \N (U+0085) as the one byte 0x85.
        CHECK(expect_error(device + "\"net_ring0,iface=a\\N\"\n").message() ==
              "expected a string of UTF-8 text, got the quoted string \"net_ring0,iface=a\\x85\"");
        // Other characters are text, whatever their script.
        const std::string socket = "/run/fh/n\xc3\xa9\xe2\x80\xa8\xf0\x9f\x90\x8d.sock";
        CHECK(load_config_text(kMinimal + "console: {socket: \"" + socket + "\"}\n", "t.yaml")
                  .console.socket == socket);
    }
    SECTION("names")
    {
        check_error("node:\n  id: 1\nports:\n  - device: net_ring0\n    name: up link\n", 5, 11,
                    "ports[0].name",
                    "expected a name of 1 to 32 letters, digits, '_', '-' or '.', got \"up link\"");
    }
}

TEST_CASE("numbers out of range", "[config]")
{
    const std::string head = "node:\n  id: 1\nports:\n  - name: uplink\n    device: net_ring0\n";
    check_error(head + "    mtu: 10000\n", 6, 10, "ports[0].mtu",
                "expected an integer from 68 to 9216, got 10000");
    check_error(head + "    mtu: 99999999999999999999999\n", 6, 10, "ports[0].mtu",
                "expected an integer from 68 to 9216, got \"99999999999999999999999\"");
    check_error(head + "    rx_descriptors: 1000\n", 6, 21, "ports[0].rx_descriptors",
                "expected a power of two from 64 to 16384, got 1000");
    check_error("node:\n  id: 4096\n", 2, 7, "node.id",
                "expected an integer from 1 to 4095, got 4096");
    check_error("node:\n  id: 0\n", 2, 7, "node.id", "expected an integer from 1 to 4095, got 0");
    check_error(kMinimal + "  - address: 198.51.100.11\n    ports: [80, 0]\n", 12, 17,
                "vips[1].ports[1]", "expected an integer from 1 to 65535, got 0");
    check_error(kMinimal + "  - address: 198.51.100.11\n    ports: [65536]\n", 12, 13,
                "vips[1].ports[0]", "expected an integer from 1 to 65535, got 65536");
    check_error(kMinimal + "max_hops: 9\n", 11, 11, "max_hops",
                "expected an integer from 1 to 8, got 9");
    check_error(kMinimal + "backoff:\n  pause_polls: 200\n", 12, 16, "backoff.pause_polls",
                "pause_polls (200) must not exceed idle_polls (100): a worker pauses before it "
                "sleeps");
    for (const char *null : {"null", "~", "NULL"})
        check_error(fmt::format("node:\n  id: 1\n  name: {}\n", null), 3, 3, "node.name",
                    "expected a name of 1 to 63 letters, digits, '_', '-' or '.', got nothing "
                    "(YAML reads an empty value, null and ~ as none: quote a text spelt so, "
                    "\"null\")");
    check_error(kMinimal + "backoff:\n  idle_polls: 5\n  pause_polls: 6\n", 13, 16,
                "backoff.pause_polls",
                "pause_polls (6) must not exceed idle_polls (5): a worker pauses before it "
                "sleeps");
}

TEST_CASE("missing required keys name the parent mapping's line", "[config]")
{
    check_error("node:\n  name: a\n", 2, 3, "node.id", "missing required key \"id\"");
    check_error("node:\n  id: 1\n", 1, 1, "ports", "missing required key \"ports\"");
    check_error(R"(node:
  id: 1
ports:
  - name: uplink
    mtu: 1500
)",
                4, 5, "ports[0].device", "missing required key \"device\"");
    check_error(kMinimal + "peers:\n  - id: 2\n    domain: dc1\n", 12, 5, "peers[0].address",
                "missing required key \"address\"");
    // An empty section has no position of its own: the error points at its key.
    check_error("node:\nports: []\n", 1, 1, "node.id", "missing required key \"id\"");
}

TEST_CASE("addresses and MACs", "[config]")
{
    const std::string head = "node:\n  id: 1\nports:\n  - name: uplink\n    device: net_ring0\n";
    check_error(head + "    ipv4: 192.0.2.300\n", 6, 11, "ports[0].ipv4",
                "expected a unicast IPv4 address, got \"192.0.2.300\"");
    check_error(head + "    ipv4: 2001:db8::1\n", 6, 11, "ports[0].ipv4",
                "expected a unicast IPv4 address, got the IPv6 address \"2001:db8::1\"");
    check_error(head + "    ipv6: 192.0.2.1\n", 6, 11, "ports[0].ipv6",
                "expected a unicast IPv6 address, got the IPv4 address \"192.0.2.1\"");
    check_error(head + "    ipv4: 0.0.0.0\n", 6, 11, "ports[0].ipv4",
                "expected a unicast IPv4 address, got the unspecified address \"0.0.0.0\"");
    check_error(kMinimal + "  - address: 224.0.0.5\n", 11, 14, "vips[1].address",
                "expected a unicast IPv4 or IPv6 address, got the multicast address "
                "\"224.0.0.5\"");
    check_error(kMinimal + "  - address: ff02::1\n", 11, 14, "vips[1].address",
                "expected a unicast IPv4 or IPv6 address, got the multicast address \"ff02::1\"");
    check_error(kMinimal + "  - address: \"::ffff:224.0.0.1\"\n", 11, 14, "vips[1].address",
                "expected a unicast IPv4 or IPv6 address, got the IPv4-mapped address "
                "\"::ffff:224.0.0.1\"; write the IPv4 address");
    check_error(head + "    ipv6: \"::ffff:192.0.2.1\"\n", 6, 11, "ports[0].ipv6",
                "expected a unicast IPv6 address, got the IPv4-mapped address "
                "\"::ffff:192.0.2.1\"; write the IPv4 address");
    check_error(head + "    mac: 00:00:5e:00:53\n", 6, 10, "ports[0].mac",
                "expected a unicast MAC address like 02:00:5e:00:53:01, got \"00:00:5e:00:53\"");
    check_error(head + "    mac: 01:00:5e:00:00:01\n", 6, 10, "ports[0].mac",
                "expected a unicast MAC address like 02:00:5e:00:53:01, got the group "
                "(multicast) address \"01:00:5e:00:00:01\"");
    check_error(head + "    mac: 00:00:00:00:00:00\n", 6, 10, "ports[0].mac",
                "expected a unicast MAC address like 02:00:5e:00:53:01, got the all-zero address");
    check_error(head + "    device: eth0\n", 6, 5, "ports[0].device",
                "duplicate key \"device\" (first at line 5)");
    check_error("node:\n  id: 1\nports:\n  - name: uplink\n    device: eth0\n", 5, 13,
                "ports[0].device",
                "expected a PCI address like 0000:3b:00.0 or a vdev like net_pcap0,iface=eth0, "
                "got \"eth0\"");
    check_error("node:\n  id: 1\nports:\n  - name: uplink\n    device: 0000:3b:20.0\n", 5, 13,
                "ports[0].device",
                "expected a PCI address like 0000:3b:00.0 or a vdev like net_pcap0,iface=eth0, "
                "got \"0000:3b:20.0\"");
}

TEST_CASE("enums list their choices", "[config]")
{
    const std::string head = "node:\n  id: 1\nports:\n  - name: uplink\n    device: net_ring0\n";
    check_error(head + "    role: uplink\n", 6, 11, "ports[0].role",
                "expected one of wire|local, got \"uplink\"");
    check_error(kMinimal + "    protocol: sctp\n", 11, 15, "vips[0].protocol",
                "expected one of tcp|udp|any, got \"sctp\"");
    check_error(kMinimal + "domains:\n  - name: dc1\n    encap: vxlan\n", 13, 12,
                "domains[0].encap", "expected one of geneve|ipip, got \"vxlan\"");
    check_error(kMinimal + "miss_policy: forward\n", 11, 14, "miss_policy",
                "expected one of drop|local|hash, got \"forward\"");
    check_error(kMinimal + "miss_policy: \"drop\"\n", 11, 14, "miss_policy",
                "expected one of drop|local|hash, got the quoted string \"drop\"");
    check_error(kMinimal + "table:\n  memory: hugepages\n", 12, 11, "table.memory",
                "expected one of auto|eal|thp, got \"hugepages\"");
    /* rte_hash's ring of free slots must hold the next power of two above the entries. */
    CHECK(load_config_text(kMinimal + "table:\n  capacity_ipv4: 1073741823\n", "t.yaml")
              .table.capacity_ipv4 == (1u << 30) - 1);
    check_error(kMinimal + "table:\n  capacity_ipv4: 1073741824\n", 12, 18, "table.capacity_ipv4",
                "expected an integer from 1024 to 1073741823, got 1073741824");
}

TEST_CASE("ports: exactly one wire port, at most one local, no duplicates", "[config]")
{
    const std::string head = "node:\n  id: 1\nports:\n";
    check_error(head + "  - name: host\n    device: net_tap0\n    role: local\n", 4, 3, "ports",
                "expected exactly one port with role wire, found none");
    check_error("node:\n  id: 1\nports: []\n", 3, 8, "ports",
                "expected at least one port (the wire port)");
    check_error(head + "  - name: a\n    device: net_ring0\n  - name: b\n    device: net_ring1\n",
                6, 5, "ports[1]",
                "a second wire port: ports[0] (\"a\") is already one, and at most one is allowed");
    check_error(head + "  - name: a\n    device: net_ring0\n  - name: b\n    device: net_tap0\n"
                       "    role: local\n  - name: c\n    device: net_tap1\n    role: local\n",
                11, 11, "ports[2].role",
                "a second local port: ports[1] (\"b\") is already one, and at most one is "
                "allowed");
    check_error(head + "  - name: a\n    device: net_ring0\n  - name: a\n    device: net_tap0\n"
                       "    role: local\n",
                6, 11, "ports[1].name", "duplicate port name \"a\" (also ports[0])");
    check_error(head + "  - name: tx_full_wire\n    device: net_ring0\n", 4, 11, "ports[0].name",
                "port name \"tx_full_wire\" is a drop reason's name; `capture start "
                "tx_full_wire` could not tell them apart");
    // The same EAL device written two ways.
    check_error(head + "  - name: a\n    device: 0000:3b:00.0\n  - name: b\n    device: 3B:00.0\n"
                       "    role: local\n",
                7, 13, "ports[1].device", "device 0000:3b:00.0 is also ports[0] (\"a\")");
    check_error(head + "  - name: a\n    device: net_pcap0,iface=x\n  - name: b\n"
                       "    device: net_pcap0,iface=y\n    role: local\n",
                7, 13, "ports[1].device", "device net_pcap0 is also ports[0] (\"a\")");
}

TEST_CASE("lcore conflicts", "[config]")
{
    const std::string head = kMinimal.substr(0, kMinimal.find("lcores:"));
    const std::string vips = "vips:\n  - address: 198.51.100.10\n";
    // head is six lines: lcores start on line 7.
    check_error(head + "lcores:\n  workers: [2, 0]\n" + vips, 8, 16, "lcores.workers[1]",
                "lcore 0 is lcores.main; workers need lcores of their own");
    check_error(head + "lcores:\n  workers: [1]\n" + vips, 8, 13, "lcores.workers[0]",
                "lcore 1 is lcores.control; workers need lcores of their own");
    check_error(head + "lcores:\n  workers: [2, 3, 2]\n" + vips, 8, 19, "lcores.workers[2]",
                "lcore 2 is listed twice (also lcores.workers[0])");
    check_error(head + "lcores:\n  main: 5\n  control: 5\n  workers: [2]\n" + vips, 9, 12,
                "lcores.control",
                "lcores.main and lcores.control are both lcore 5; the control core needs an "
                "lcore of its own (control defaults to 1)");
    check_error(head + "lcores:\n  main: 1\n  workers: [2]\n" + vips, 8, 9, "lcores.main",
                "lcores.main and lcores.control are both lcore 1; the control core needs an "
                "lcore of its own (control defaults to 1)");
    check_error(head + "lcores:\n  workers: []\n" + vips, 8, 12, "lcores.workers",
                "expected at least one worker lcore");
    check_error(head + "lcores:\n  workers: [128]\n" + vips, 8, 13, "lcores.workers[0]",
                "expected an integer from 0 to 127, got 128");
}

TEST_CASE("VIPs must not overlap", "[config]")
{
    check_error(kMinimal + "  - address: 198.51.100.10\n", 11, 14, "vips[1].address",
                "overlaps vips[0]: same address 198.51.100.10, and their protocols and ports "
                "intersect");
    const std::string two = R"(node:
  id: 1
ports:
  - name: uplink
    device: net_ring0
    ipv4: 192.0.2.1
lcores:
  workers: [2]
vips:
  - address: 2001:db8::80
    protocol: tcp
    ports: [80, 443]
)";
    // Other protocol or disjoint ports: no overlap.
    CHECK_NOTHROW(load_config_text(two + "  - address: 2001:db8::80\n    protocol: udp\n", "t"));
    CHECK_NOTHROW(load_config_text(two + "  - address: 2001:db8::80\n    ports: [8080]\n", "t"));
    check_error(two + "  - address: 2001:db8::80\n    ports: [443]\n", 13, 14, "vips[1].address",
                "overlaps vips[0]: same address 2001:db8::80, and their protocols and ports "
                "intersect");
    check_error(two + "  - address: 2001:db8::81\n    ports: [22, 22]\n", 14, 17,
                "vips[1].ports[1]", "port 22 is listed twice (also vips[1].ports[0])");
    check_error(two + "  - address: 192.0.2.1\n", 13, 14, "vips[1].address",
                "192.0.2.1 is this node's own address (ports[0].ipv4)");
    check_error("node:\n  id: 1\nports:\n  - name: a\n    device: net_ring0\nlcores:\n"
                "  workers: [2]\nvips: []\n",
                8, 7, "vips", "expected at least one VIP");
}

TEST_CASE("domains", "[config]")
{
    check_error(kMinimal + "domains:\n  - name: dc1\n  - name: dc1\n", 13, 11, "domains[1].name",
                "duplicate domain name \"dc1\" (also domains[0])");
    check_error(kMinimal + "domains:\n  - name: old\n    encap: ipip\n    geneve_port: 6081\n", 14,
                18, "domains[0].geneve_port",
                "applies to encap geneve only; domain \"old\" uses ipip");
    check_error(kMinimal + "domains:\n  - name: dc1\n    geneve_port: 0\n", 13, 18,
                "domains[0].geneve_port", "expected an integer from 1 to 65535, got 0");

    /* A node takes GENEVE on one port: its geneve domains agree on it. */
    const NodeConfig c = load_config_text(kMinimal + R"(domains:
  - {name: a, geneve_port: 7000}
  - {name: b, encap: ipip}
  - {name: c, geneve_port: 7000}
)",
                                          "t.yaml");
    CHECK(c.geneve_receive_port() == 7000);
    CHECK(load_config_text(kMinimal, "t.yaml").geneve_receive_port() == 6081);
    check_error(kMinimal + "domains:\n  - name: a\n  - name: b\n    geneve_port: 7000\n", 14, 18,
                "domains[1].geneve_port",
                "7000 differs from domains[0] (\"a\"), which uses 6081: a node takes GENEVE on "
                "one port, so every geneve domain must use the same");
    check_error(kMinimal + "domains:\n  - name: a\n    geneve_port: 7000\n  - name: b\n", 14, 5,
                "domains[1].geneve_port",
                "6081 (the default) differs from domains[0] (\"a\"), which uses 7000: a node "
                "takes GENEVE on one port, so every geneve domain must use the same");
    // Both a name and a port clash: the earlier domain is named.
    check_error(kMinimal + "domains:\n  - name: a\n  - name: b\n  - name: b\n    geneve_port: "
                           "7000\n",
                15, 18, "domains[2].geneve_port",
                "7000 differs from domains[0] (\"a\"), which uses 6081: a node takes GENEVE on "
                "one port, so every geneve domain must use the same");
    check_error(kMinimal + "domains:\n  - name: a\n  - name: a\n    geneve_port: 7000\n", 13, 11,
                "domains[1].name", "duplicate domain name \"a\" (also domains[0])");
}

TEST_CASE("a domain's outer DSCP: a number, or the inner packet's", "[config]")
{
    const NodeConfig c = load_config_text(kMinimal + R"(domains:
  - {name: a}
  - {name: b, dscp: 46}
  - {name: c, encap: ipip, dscp: inherit}
  - {name: d, dscp: 0}
)",
                                          "t.yaml");
    REQUIRE(c.domains.size() == 4);
    CHECK((c.domains[0].dscp == 0 && !c.domains[0].dscp_inherit));
    CHECK((c.domains[1].dscp == 46 && !c.domains[1].dscp_inherit));
    CHECK(c.domains[2].dscp_inherit);
    CHECK((c.domains[3].dscp == 0 && !c.domains[3].dscp_inherit));

    const std::string expected = "expected inherit or an integer from 0 to 63, got ";
    check_error(kMinimal + "domains:\n  - name: a\n    dscp: 64\n", 13, 11, "domains[0].dscp",
                expected + "64");
    check_error(kMinimal + "domains:\n  - name: a\n    dscp: copy\n", 13, 11, "domains[0].dscp",
                expected + "\"copy\"");
    check_error(kMinimal + "domains:\n  - name: a\n    dscp: \"inherit\"\n", 13, 11,
                "domains[0].dscp", expected + "the quoted string \"inherit\"");
    check_error(kMinimal + "domains:\n  - name: a\n    dscp: 046\n", 13, 11, "domains[0].dscp",
                expected + "\"046\" (a leading zero is octal in YAML 1.1: write it without)");
}

TEST_CASE("an IPv6 VIP needs a wire MTU that carries 1280-byte packets encapsulated", "[config]")
{
    const std::string head = R"(node: {id: 1}
ports:
  - {name: uplink, device: net_ring0, ipv4: 192.0.2.1, ipv6: "2001:db8::1", mtu: MTU}
lcores: {workers: [2]}
vips:
  - address: "2001:db8:100::10"
domains:
  - {name: g, next_hop_mac: "02:00:00:00:00:fe"}
  - {name: i, encap: ipip, next_hop_mac: "02:00:00:00:00:fe"}
peers:
  - {id: 2, address: 192.0.2.2, domain: i}
  - {id: 3, address: "2001:db8::3", domain: g}
)";
    auto with_mtu = [&](unsigned mtu) {
        std::string t = head;
        t.replace(t.find("MTU"), 3, std::to_string(mtu));
        return t;
    };
    /* GENEVE over IPv6: 40 + 8 + 8 + 12 + 14 = 82 bytes more. */
    CHECK(load_config_text(with_mtu(1362), "t.yaml").peers.size() == 2);
    check_error(with_mtu(1361), 12, 5, "peers[1]",
                "redirecting a 1280-byte IPv6 packet (the IPv6 minimum MTU; this node has IPv6 "
                "VIPs) to this peer over geneve in IPv6 takes an MTU of 1362; the wire port "
                "\"uplink\" has 1361");
    /* IP-in-IP over IPv4: 20 bytes more. */
    check_error(with_mtu(1299), 11, 5, "peers[0]",
                "redirecting a 1280-byte IPv6 packet (the IPv6 minimum MTU; this node has IPv6 "
                "VIPs) to this peer over ipip in IPv4 takes an MTU of 1300; the wire port "
                "\"uplink\" has 1299");
}

TEST_CASE("an IPv4 VIP needs a wire MTU that carries 68-byte packets encapsulated; an IPv6 "
          "tunnel, 1280",
          "[config]")
{
    const std::string head = R"(node: {id: 1}
ports:
  - {name: uplink, device: net_ring0, ipv4: 192.0.2.1, ipv6: "2001:db8::1", mtu: MTU}
lcores: {workers: [2]}
vips:
  - address: 198.51.100.10
domains:
  - {name: g, next_hop_mac: "02:00:00:00:00:fe"}
peers:
  - {id: 2, address: 192.0.2.2, domain: g}
)";
    auto with_mtu = [&](const std::string &text, unsigned mtu) {
        std::string t = text;
        t.replace(t.find("MTU"), 3, std::to_string(mtu));
        return t;
    };
    /* GENEVE over IPv4: 20 + 8 + 8 + 12 + 14 = 62 bytes more than 68. */
    CHECK(load_config_text(with_mtu(head, 130), "t.yaml").peers.size() == 1);
    check_error(with_mtu(head, 129), 10, 5, "peers[0]",
                "redirecting a 68-byte IPv4 packet (the IPv4 minimum MTU; this node has IPv4 "
                "VIPs) to this peer over geneve in IPv4 takes an MTU of 130; the wire port "
                "\"uplink\" has 129");
    /* Whatever the VIPs, a tunnel over IPv6 needs the IPv6 minimum MTU. */
    const std::string v6_peer = head + "  - {id: 3, address: \"2001:db8::3\", domain: g}\n";
    CHECK(load_config_text(with_mtu(v6_peer, 1280), "t.yaml").peers.size() == 2);
    check_error(with_mtu(v6_peer, 1279), 11, 5, "peers[1]",
                "a tunnel to this peer runs over IPv6, whose links carry 1280-byte packets (RFC "
                "8200); the wire port \"uplink\" has 1279");
}

TEST_CASE("peers", "[config]")
{
    // Lines 11-13 define a domain; peers start on line 14.
    const std::string base =
        kMinimal + "domains:\n  - name: dc1\n    next_hop_mac: 00:00:5e:00:53:fe\n";
    const std::string peer2 = "peers:\n  - id: 2\n    address: 192.0.2.2\n    domain: dc1\n";

    SECTION("a valid peer uses the domain's next hop")
    {
        const NodeConfig c = load_config_text(base + peer2, "t");
        REQUIRE(c.peers.size() == 1);
        CHECK_FALSE(c.peers[0].mac);
        CHECK(c.domain(c.peers[0].domain)->next_hop_mac == mac("00:00:5e:00:53:fe"));
    }
    SECTION("VIPs of a family the wire port has no address of")
    {
        // A packet too big to redirect could not be answered.
        const std::string v6_vip =
            kMinimal + "  - address: 2001:db8::80\n" + base.substr(kMinimal.size());
        check_error(v6_vip + peer2, 16, 3, "peers",
                    "this node has IPv6 VIPs and peers: an IPv6 packet too big to redirect is "
                    "answered with an ICMPv6 error from ports[0].ipv6 (the wire port \"uplink\"), "
                    "which is not set");
        CHECK(load_config_text(v6_vip, "t").vips.size() == 2); // no peers: nothing redirected
        // IPv4 VIPs and a wire port of IPv6 alone.
        std::string v6_wire =
            base + "peers:\n  - id: 2\n    address: 2001:db8::2\n    domain: dc1\n";
        v6_wire.replace(v6_wire.find("ipv4: 192.0.2.1"), 15, "ipv6: 2001:db8::1");
        check_error(v6_wire, 15, 3, "peers",
                    "this node has IPv4 VIPs and peers: an IPv4 packet too big to redirect is "
                    "answered with an ICMP error from ports[0].ipv4 (the wire port \"uplink\"), "
                    "which is not set");
    }
    SECTION("duplicate id")
    {
        check_error(base + peer2 + "  - id: 2\n    address: 192.0.2.3\n    domain: dc1\n", 18, 9,
                    "peers[1].id", "duplicate peer id 2 (also peers[0])");
    }
    SECTION("duplicate address")
    {
        check_error(base + peer2 + "  - id: 3\n    address: 192.0.2.2\n    domain: dc1\n", 19, 14,
                    "peers[1].address", "duplicate peer address 192.0.2.2 (also peers[0])");
    }
    SECTION("unknown domain")
    {
        check_error(base + "peers:\n  - id: 2\n    address: 192.0.2.2\n    domain: dc2\n", 17, 13,
                    "peers[0].domain", "unknown domain \"dc2\"; defined domains: dc1");
        check_error(kMinimal + "peers:\n  - id: 2\n    address: 192.0.2.2\n    domain: dc1\n", 14,
                    13, "peers[0].domain", "unknown domain \"dc1\"; no domains are defined");
    }
    SECTION("no mac and no next_hop_mac")
    {
        check_error(kMinimal + "domains:\n  - name: dc1\n" +
                        "peers:\n  - id: 2\n    address: 192.0.2.2\n    domain: dc1\n",
                    14, 5, "peers[0]",
                    "no mac, and domain \"dc1\" has no next_hop_mac: set one of them");
    }
    SECTION("the node's own id or address")
    {
        check_error(base + "peers:\n  - id: 1\n    address: 192.0.2.2\n    domain: dc1\n", 15, 9,
                    "peers[0].id", "peer id 1 is this node's own id (node.id)");
        check_error(base + "peers:\n  - id: 2\n    address: 192.0.2.1\n    domain: dc1\n", 16, 14,
                    "peers[0].address", "192.0.2.1 is this node's own address (ports[0].ipv4)");
    }
    SECTION("address family without a wire port address of that family")
    {
        check_error(base + "peers:\n  - id: 2\n    address: 2001:db8::2\n    domain: dc1\n", 16, 14,
                    "peers[0].address",
                    "an IPv6 peer needs ports[0].ipv6 (the wire port \"uplink\") to send from");
    }
    SECTION("bad id")
    {
        check_error(base + "peers:\n  - id: 5000\n    address: 192.0.2.2\n    domain: dc1\n", 15, 9,
                    "peers[0].id", "expected an integer from 1 to 4095, got 5000");
    }
}

TEST_CASE("eal section", "[config]")
{
    // As the EAL's getopt_long() reads them: with a value attached, after a
    // short option that takes none, and abbreviated to any prefix.
    const std::pair<const char *, const char *> reserved[] = {
        {"--no-huge", "--no-huge is set by eal.huge_pages: false"},
        {"\"--file-prefix=x\"", "--file-prefix is set by eal.file_prefix"},
        {"-m512", "-m is set by eal.memory_mb"},
        {"-vm512", "-vm512 gives -m, which is set by eal.memory_mb"},
        {"\"--file-pref=x\"",
         "--file-pref abbreviates --file-prefix, which is set by eal.file_prefix"},
        {"\"--socket-m=64\"", "--socket-m abbreviates --socket-mem, which is set by eal.memory_mb"},
        {"\"--main-lc=2\"", "--main-lc abbreviates --main-lcore, which is set by lcores.main"},
        {"--lcore", "--lcore abbreviates --lcores, which is set by lcores"},
        {"--no-h", "--no-h abbreviates --no-huge, which is set by eal.huge_pages: false"},
    };
    for (const auto &[extra, why] : reserved)
        check_error(kMinimal + "eal:\n  extra: [" + extra + "]\n", 12, 11, "eal.extra[0]",
                    std::string(why) + "; remove it from eal.extra");
    check_error(kMinimal + "eal:\n  extra: [--no-pci, \"--\"]\n", 12, 21, "eal.extra[1]",
                "\"--\" would end the EAL's options: the command line's after it would be the "
                "program's, not the EAL's");
    check_error(kMinimal + "eal:\n  file_prefix: a/b\n", 12, 16, "eal.file_prefix",
                "expected a name of 1 to 32 letters, digits, '_', '-' or '.', got \"a/b\"");
    check_error(kMinimal + "eal:\n  memory_mb: 8\n", 12, 14, "eal.memory_mb",
                "expected an integer from 64 to 1048576, got 8");
    // Options without a key of their own pass through, and so do values that
    // only look like reserved options ("-am512" is -a with the value m512).
    CHECK(
        load_config_text(kMinimal + "eal:\n  extra: [--main-lcorex, -n4, --no-pci, -am512]\n", "t")
            .eal.extra == std::vector<std::string>{"--main-lcorex", "-n4", "--no-pci", "-am512"});
    // A prefix of dots names no folder of its own: /var/run/dpdk/.. is /var/run.
    for (const char *dots : {".", "..", "..."})
        check_error(kMinimal + "eal:\n  file_prefix: \"" + dots + "\"\n", 12, 16, "eal.file_prefix",
                    std::string("a file prefix of dots alone names no folder of its own, got \"") +
                        dots + "\"");
    CHECK(load_config_text(kMinimal + "eal:\n  file_prefix: fh.1\n", "t").eal.file_prefix ==
          "fh.1");
}

TEST_CASE("the file prefix the command line gives the EAL", "[config]")
{
    using Args = std::vector<std::string>;
    using flowhome::eal_file_prefix;
    CHECK(eal_file_prefix(Args{"--no-pci"}).empty());
    CHECK(eal_file_prefix(Args{"--file-prefix=a", "--file-pref", "b"}) == "b");
    CHECK(eal_file_prefix(Args{"--file-prefix", ".."}) == "..");
    CHECK(eal_file_prefix(Args{"--file-prefix"}).empty());
    CHECK(flowhome::file_prefix_names_no_folder(".."));
    CHECK_FALSE(flowhome::file_prefix_names_no_folder("a.."));
    CHECK_FALSE(flowhome::file_prefix_names_no_folder(""));
}

TEST_CASE("EAL options that turn off the shared configuration", "[config]")
{
    using flowhome::eal_option_unshares;
    for (const char *a : {"--no-shconf", "--no-shc", "--in-memory", "--in-mem", "--in"})
        CHECK(eal_option_unshares(a));
    for (const char *a : {"--no-huge", "--no-pci", "-n4", "--vdev=net_null0", "--", "in-memory",
                          "--in-memoryx", "--no-shconfx"})
        CHECK_FALSE(eal_option_unshares(a));
}

TEST_CASE("load_config reads a file and names it in errors", "[config]")
{
    SECTION("a readable file")
    {
        const TempFile f(kMinimal);
        const NodeConfig c = load_config(f.path.string());
        CHECK(c.source_file == f.path.string());
        CHECK(c.node_id == 1);
    }
    SECTION("an error names the path")
    {
        const TempFile f(kMinimal + "max_hops: x\n");
        try {
            (void)load_config(f.path.string());
            FAIL("loaded a bad file");
        } catch (const ConfigError &e) {
            CHECK(e.file() == f.path.string());
            CHECK(e.line() == 11);
            CHECK(e.key() == "max_hops");
        }
    }
    SECTION("a missing file")
    {
        try {
            (void)load_config("/nonexistent/flowhome.yaml");
            FAIL("loaded a missing file");
        } catch (const ConfigError &e) {
            CHECK(e.file() == "/nonexistent/flowhome.yaml");
            CHECK(e.line() == 0);
            CHECK(e.column() == 0);
            CHECK(e.key().empty());
            CHECK(e.message() == "cannot open: No such file or directory");
            CHECK(std::string(e.what()) ==
                  "/nonexistent/flowhome.yaml: cannot open: No such file or directory");
        }
    }
    SECTION("a directory")
    {
        try {
            (void)load_config(std::filesystem::temp_directory_path().string());
            FAIL("loaded a directory");
        } catch (const ConfigError &e) {
            CHECK(e.line() == 0);
            CHECK(e.message() == "cannot read: Is a directory");
        }
    }
    SECTION("a file past 1 MiB")
    {
        const TempFile big(kMinimal + '#' + std::string(size_t{1} << 20, 'x') + '\n');
        try {
            (void)load_config(big.path.string());
            FAIL("loaded a file past the limit");
        } catch (const ConfigError &e) {
            CHECK(e.message() == "larger than 1024 KiB; a node file is a few KiB");
        }
    }
    SECTION("a pipe, as from --config <(...)")
    {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        REQUIRE(::write(fds[1], kMinimal.data(), kMinimal.size()) ==
                static_cast<ssize_t>(kMinimal.size()));
        ::close(fds[1]);
        const NodeConfig c = load_config(fmt::format("/proc/self/fd/{}", fds[0]));
        ::close(fds[0]);
        CHECK(c.node_id == 1);
    }
}

TEST_CASE("every example in config/ loads", "[config]")
{
    const std::filesystem::path dir = std::filesystem::path(FLOWHOME_SOURCE_DIR) / "config";
    int loaded = 0;
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".yaml")
            continue;
        INFO("file: " << entry.path().string());
        try {
            const NodeConfig c = load_config(entry.path().string());
            CHECK(c.wire_port() != nullptr);
        } catch (const ConfigError &e) {
            FAIL(e.what());
        }
        ++loaded;
    }
    CHECK(loaded >= 2); // node-single.yaml and node-fleet.yaml at least

    const NodeConfig fleet = load_config((dir / "node-fleet.yaml").string());
    CHECK(fleet.domains.size() == 2);
    CHECK(fleet.peers.size() >= 3);
    CHECK(fleet.gossip.enabled); /* a fleet shares ownership */
    const NodeConfig single = load_config((dir / "node-single.yaml").string());
    CHECK_FALSE(single.eal.huge_pages);
    CHECK(single.eal.memory_mb == 256);
}

TEST_CASE("to_string names every enum value as the file spells it", "[config]")
{
    CHECK(std::string(flowhome::to_string(MissPolicy::drop)) == "drop");
    CHECK(std::string(flowhome::to_string(MissPolicy::local)) == "local");
    CHECK(std::string(flowhome::to_string(MissPolicy::hash)) == "hash");
    CHECK(std::string(flowhome::to_string(EncapKind::geneve)) == "geneve");
    CHECK(std::string(flowhome::to_string(EncapKind::ipip)) == "ipip");
    CHECK(std::string(flowhome::to_string(PortRole::wire)) == "wire");
    CHECK(std::string(flowhome::to_string(PortRole::local)) == "local");
    CHECK(std::string(flowhome::to_string(VipProtocol::tcp)) == "tcp");
    CHECK(std::string(flowhome::to_string(VipProtocol::udp)) == "udp");
    CHECK(std::string(flowhome::to_string(VipProtocol::any)) == "any");
    CHECK(std::string(flowhome::to_string(TableMemory::automatic)) == "auto");
    CHECK(std::string(flowhome::to_string(TableMemory::eal)) == "eal");
    CHECK(std::string(flowhome::to_string(TableMemory::thp)) == "thp");
}

TEST_CASE("the EAL command line follows the lcores, memory and ports", "[config][eal]")
{
    using flowhome::eal_arguments;
    using Args = std::vector<std::string>;
    const NodeConfig cfg =
        load_config_text(kMinimal + "eal: {memory_mb: 512, huge_pages: false}\n", "t.yaml");
    /* main 0 and control 1 by default; one list, each lcore once. */
    CHECK(eal_arguments(cfg, "fh") == Args{"fh", "-l", "0,1,2", "--main-lcore=0", "-m", "512",
                                           "--no-huge", "--no-shconf", "--file-prefix=flowhome1",
                                           "--vdev=net_ring0", "--no-pci"});
    /* An lcore list of the operator's own replaces the derived one. */
    const Args own = eal_arguments(cfg, "fh", {"-l", "3-5"});
    CHECK(std::find(own.begin(), own.end(), "--main-lcore=0") == own.end());
    CHECK(Args(own.end() - 2, own.end()) == Args{"-l", "3-5"});
    /* However the EAL reads it: an abbreviation is the option too. */
    for (const Args &given : {Args{"--lcore=0@0,1@0,2@1"}, Args{"--main-lc=0"}, Args{"-vl0-2"}}) {
        INFO(given[0]);
        const Args own_lcores = eal_arguments(cfg, "fh", given);
        CHECK(std::find(own_lcores.begin(), own_lcores.end(), "-l") == own_lcores.end());
    }
    const Args own_prefix = eal_arguments(cfg, "fh", {"--file-pref=mine"});
    CHECK(std::find(own_prefix.begin(), own_prefix.end(), "--file-prefix=flowhome1") ==
          own_prefix.end());

    const NodeConfig pinned = load_config_text(R"(node: {id: 2}
ports:
  - {name: uplink, device: "0000:00:1f.6", ipv4: 192.0.2.1}
lcores: {main: 0, control: 1, workers: [2], cpus: {0: 0, 1: 0, 2: 1}}
vips:
  - address: 198.51.100.10
eal: {memory_mb: 300, huge_pages: true, extra: [--log-level=warning]}
)",
                                               "t.yaml");
    CHECK(eal_arguments(pinned, "fh", {"--file-prefix=other"}) ==
          Args{"fh", "--lcores=0@0,1@0,2@1", "--main-lcore=0", "-m", "300", "-a", "0000:00:1f.6",
               "--log-level=warning", "--file-prefix=other"});
}

TEST_CASE("mbufs hold the largest frame a port's MTU allows", "[config][eal]")
{
    NodeConfig cfg = load_config_text(kMinimal, "t.yaml");
    /* 1500: DPDK's default data room (2048) is larger. */
    CHECK(flowhome::mbuf_data_room(cfg) == RTE_PKTMBUF_HEADROOM + RTE_MBUF_DEFAULT_DATAROOM);
    /* The frame, two VLAN tags and the CRC, rounded up to 1 KB: NICs round
     * their buffers down (ixgbe to 1 KB), and 9000 + 26 would scatter. */
    cfg.ports[0].mtu = 9000;
    CHECK(flowhome::mbuf_data_room(cfg) == RTE_PKTMBUF_HEADROOM + 9216);
    cfg.ports[0].mtu = 2022; /* 2022 + 26 = 2048: one KB-multiple exactly */
    CHECK(flowhome::mbuf_data_room(cfg) == RTE_PKTMBUF_HEADROOM + 2048);
    cfg.ports[0].mtu = 2023;
    CHECK(flowhome::mbuf_data_room(cfg) == RTE_PKTMBUF_HEADROOM + 3072);
    cfg.ports[0].mtu = 9216; /* the largest the loader takes */
    CHECK(flowhome::mbuf_data_room(cfg) == RTE_PKTMBUF_HEADROOM + 10240);
}
