/* SPDX-License-Identifier: BSD-3-Clause */
/* lcores.cpus, gossip and console: the sections about how a node runs. */
#include <fmt/format.h>

#include "config_test_util.hpp"

#include "flowhome/eal.hpp"

TEST_CASE("lcores.cpus maps every lcore to a CPU", "[config]")
{
    const std::string head = kMinimal.substr(0, kMinimal.find("lcores:"));
    const std::string vips = "vips:\n  - address: 198.51.100.10\n";
    const NodeConfig c = load_config_text(
        head + "lcores:\n  workers: [2]\n  cpus: {0: 0, 1: 0, 2: 1}\n" + vips, "t.yaml");
    REQUIRE(c.lcores.cpus.size() == 3);
    CHECK(c.lcores.cpus.at(0) == 0);
    CHECK(c.lcores.cpus.at(1) == 0);
    CHECK(c.lcores.cpus.at(2) == 1);
    CHECK(load_config_text(kMinimal, "t.yaml").lcores.cpus.empty());
    // An empty value maps none, as absent: each lcore runs on the CPU of its number.
    for (const char *none : {"  cpus: {}\n", "  cpus:\n"}) {
        INFO(none);
        const NodeConfig e =
            load_config_text(head + "lcores:\n  workers: [2]\n" + none + vips, "t.yaml");
        CHECK(e.lcores.cpus.empty());
        CHECK(flowhome::eal_arguments(e, "fh")[1] == "-l");
    }

    // head is six lines: lcores start on line 7, cpus on line 9.
    check_error(head + "lcores:\n  workers: [2]\n  cpus: {0: 0, 2: 1}\n" + vips, 9, 9,
                "lcores.cpus", "lcore 1 has no CPU; map every lcore or none");
    check_error(head + "lcores:\n  workers: [2]\n  cpus: {0: 0, 1: 0, 2: 1, 7: 1}\n" + vips, 9, 0,
                "lcores.cpus", "lcore 7 is not lcores.main, lcores.control or a worker");
    /* A CPU past the lcores' range, on a large host; not past cpu_set_t's. */
    CHECK(load_config_text(head + "lcores:\n  workers: [2]\n  cpus: {0: 0, 1: 0, 2: 1023}\n" + vips,
                           "t.yaml")
              .lcores.cpus.at(2) == 1023);
    check_error(head + "lcores:\n  workers: [2]\n  cpus: {0: 0, 1: 0, 2: 1024}\n" + vips, 9, 25,
                "lcores.cpus.2", "expected an integer from 0 to 1023, got 1024");
    check_error(head + "lcores:\n  workers: [2]\n  cpus: [0, 1]\n" + vips, 9, 9, "lcores.cpus",
                "expected a mapping of lcore to CPU, e.g. {0: 0, 1: 0, 2: 1}, got a sequence");
}

TEST_CASE("the gossip section", "[config]")
{
    // kMinimal is ten lines: the gossip section starts on line 11.
    const NodeConfig c = load_config_text(kMinimal + R"(gossip:
  cluster_id: 7
  group: 239.1.2.3
  port: 7000
  key_file: keys/gossip.keys
  heartbeat_interval_ms: 50
  suspect_after_ms: 200
  dead_after_ms: 600
drain: true
)",
                                          "/etc/flowhome/node.yaml");
    CHECK(c.gossip.enabled);
    CHECK(c.gossip.cluster_id == 7);
    CHECK(c.gossip.group == ip("239.1.2.3"));
    CHECK(c.gossip.port == 7000);
    CHECK(c.gossip.key_file == "/etc/flowhome/keys/gossip.keys");
    CHECK(c.gossip.dead_after_ms == 600);
    CHECK(c.drain);
    CHECK_FALSE(load_config_text(kMinimal, "t.yaml").gossip.enabled);

    // Unicast gossip needs no group: it speaks the peers' family.
    const std::string routed = kMinimal + R"(domains:
  - {name: d, encap: geneve, next_hop_mac: "02:00:00:00:00:fe"}
peers:
  - {id: 2, address: 192.0.2.2, domain: d}
gossip:
  key_file: k
  unicast: true
)";
    const NodeConfig u = load_config_text(routed + "  ttl: 3\n", "t.yaml");
    CHECK(u.gossip.unicast);
    CHECK(u.gossip.group.family == Family::ipv4);
    CHECK(u.gossip.ttl == 3);
    // The peer has no mac: it is behind the domain's router, which TTL 1 does not pass.
    const std::string ttl_refused = "peers[0] (node 2) has no mac: it is reached through domain "
                                    "\"d\"'s next hop, a router, which drops gossip sent with a "
                                    "TTL of 1 (the default); set gossip.ttl to the number of "
                                    "routers in between plus one";
    check_error(routed, 16, 3, "gossip.ttl", ttl_refused);
    check_error(routed + "  ttl: 1\n", 18, 8, "gossip.ttl", ttl_refused);
    // A group a router never forwards, whatever the TTL, reaches no routed peer.
    const std::string multicast = routed.substr(0, routed.find("  unicast: true\n")) + "  ttl: 3\n";
    check_error(multicast + "  group: 224.0.0.251\n", 18, 10, "gossip.group",
                "peers[0] (node 2) has no mac: it is reached through domain \"d\"'s next hop, a "
                "router, which never forwards 224.0.0.251 (link-local); use a group of wider "
                "scope, or unicast: true");
    CHECK(load_config_text(multicast + "  group: 224.0.1.251\n", "t.yaml").gossip.ttl == 3);
    // IPv6: link-local scope (ffx2::/16), whatever the flags.
    std::string multicast6 = multicast;
    const std::string v4_line = "    ipv4: 192.0.2.1\n";
    multicast6.insert(multicast6.find(v4_line) + v4_line.size(), "    ipv6: 2001:db8::1\n");
    for (const char *group : {"ff02::42", "ff12::42", "ff72::42"})
        check_error(multicast6 + "  group: " + group + "\n", 19, 10, "gossip.group",
                    std::string("peers[0] (node 2) has no mac: it is reached through domain "
                                "\"d\"'s next hop, a router, which never forwards ") +
                        group + " (link-local); use a group of wider scope, or unicast: true");
    CHECK(load_config_text(multicast6 + "  group: ff05::42\n", "t.yaml").gossip.group ==
          ip("ff05::42"));
    CHECK(load_config_text(multicast + "  group: 224.0.0.251\n  unicast: true\n", "t.yaml")
              .gossip.unicast);
    CHECK(load_config_text(routed.substr(0, routed.find("domain: d}")) +
                               "domain: d, mac: \"02:00:00:00:00:02\"}\ngossip:\n  key_file: "
                               "k\n  unicast: true\n",
                           "t.yaml")
              .gossip.ttl == 1);
    check_error(R"(node: {id: 1}
ports:
  - {name: uplink, device: net_ring0, ipv4: 192.0.2.1, ipv6: "2001:db8::1"}
lcores: {workers: [2]}
vips:
  - address: 198.51.100.10
domains:
  - {name: d, encap: geneve, next_hop_mac: "02:00:00:00:00:fe"}
peers:
  - {id: 2, address: 192.0.2.2, domain: d}
  - {id: 3, address: "2001:db8::3", domain: d}
gossip:
  key_file: k
  unicast: true
)",
                14, 12, "gossip.unicast",
                "unicast gossip is sent in one address family, ipv4 (peers[0]'s), but peers[1] "
                "(node 3) has an ipv6 address: it would hear nothing and be declared dead");
    check_error(kMinimal + "gossip:\n  key_file: k\n", 12, 3, "gossip.group",
                "missing required key \"group\"");

    // Membership reports of the group: every 30 s by default, 0 for none;
    // unicast gossip has no group to report.
    CHECK(c.gossip.group_report_interval_s == 30);
    const std::string reported = kMinimal + "gossip:\n  group: 239.1.2.3\n  key_file: k\n";
    CHECK(load_config_text(reported + "  group_report_interval_s: 0\n", "t.yaml")
              .gossip.group_report_interval_s == 0);
    check_error(reported + "  group_report_interval_s: 87\n", 14, 28,
                "gossip.group_report_interval_s", "expected an integer from 0 to 86, got 87");
    check_error(routed + "  ttl: 3\n  group_report_interval_s: 10\n", 19, 28,
                "gossip.group_report_interval_s",
                "unicast gossip joins no group: there is nothing to report");

    check_error(kMinimal + "gossip:\n  group: 192.0.2.9\n  key_file: k\n", 12, 10, "gossip.group",
                "expected an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast group, got "
                "\"192.0.2.9\"");
    check_error(kMinimal + "gossip:\n  group: ff05::1\n  key_file: k\n", 12, 10, "gossip.group",
                "the wire port has no ipv6 address to send gossip from");
    check_error(kMinimal + "gossip:\n  group: ff01::1:2\n  key_file: k\n", 12, 10, "gossip.group",
                "\"ff01::1:2\" is an interface-local or reserved-scope group: gossip sent to it "
                "never leaves this node");
    for (const std::string ssm : {"232.1.2.3", "ff35::db8:1"})
        check_error(kMinimal + "gossip:\n  group: " + ssm + "\n  key_file: k\n", 12, 10,
                    "gossip.group",
                    "\"" + ssm +
                        "\" is a source-specific multicast group: gossip needs an any-source "
                        "group, which every node may send to");
    check_error(kMinimal + "gossip:\n  group: 239.1.2.3\n", 12, 3, "gossip.key_file",
                "missing required key \"key_file\"");
    auto with_mtu = [](unsigned mtu) {
        return "node: {id: 1}\nports:\n  - {name: uplink, device: net_ring0, ipv4: 192.0.2.1, "
               "mtu: " +
               std::to_string(mtu) +
               "}\nlcores: {workers: [2]}\nvips:\n  - address: 198.51.100.10\n"
               "gossip: {group: 239.1.2.3, key_file: k}\n";
    };
    CHECK(load_config_text(with_mtu(140), "t.yaml").gossip.enabled);
    check_error(with_mtu(139), 7, 9, "gossip",
                "gossip over ipv4 needs a wire port MTU of at least 140 (a frame must hold one "
                "sync answer); the wire port \"uplink\" has 139");
    check_error(kMinimal + "gossip:\n  group: 239.1.2.3\n  port: 6081\n  key_file: k\n", 13, 9,
                "gossip.port",
                "port 6081 is the port this node takes GENEVE on: redirected packets would be "
                "taken for gossip");
    check_error(kMinimal + "gossip:\n  group: 239.1.2.3\n  key_file: k\n  suspect_after_ms: 900\n"
                           "  dead_after_ms: 800\n",
                15, 18, "gossip.dead_after_ms",
                "dead_after_ms (800) must exceed suspect_after_ms (900)");
}

TEST_CASE("the console section", "[config]")
{
    const NodeConfig d = load_config_text(kMinimal, "t.yaml");
    CHECK(d.console.socket.empty());
    CHECK_FALSE(d.console.metrics_address);

    const NodeConfig c = load_config_text(
        kMinimal + "console:\n  socket: /run/fh/n1.sock\n  metrics_listen: 127.0.0.1:9465\n",
        "t.yaml");
    CHECK(c.console.socket == "/run/fh/n1.sock");
    CHECK(c.console.metrics_address == ip("127.0.0.1"));
    CHECK(c.console.metrics_port == 9465);
    CHECK(load_config_text(kMinimal + "console: {socket: \"off\"}\n", "t.yaml").console.socket ==
          "off");

    check_error(kMinimal + "console:\n  socket: run/fh.sock\n", 12, 11, "console.socket",
                "expected an absolute path or \"off\", got \"run/fh.sock\"");
    check_error(kMinimal + "console:\n  metrics_listen: localhost\n", 12, 19,
                "console.metrics_listen",
                "expected IPV4:PORT (e.g. 127.0.0.1:9465), got \"localhost\"");
    check_error(kMinimal + "console:\n  metrics_listen: 127.0.0.1:70000\n", 12, 19,
                "console.metrics_listen",
                "expected IPV4:PORT (e.g. 127.0.0.1:9465), got \"127.0.0.1:70000\"");
    check_error(kMinimal + "console:\n  metrics_listen: 127.0.0.1:09465\n", 12, 19,
                "console.metrics_listen",
                "expected IPV4:PORT (e.g. 127.0.0.1:9465), got \"127.0.0.1:09465\"");
    for (const char *addr : {"224.0.0.1:9465", "255.255.255.255:9465"})
        check_error(
            kMinimal + "console:\n  metrics_listen: " + addr + "\n", 12, 19,
            "console.metrics_listen",
            fmt::format("expected a unicast address or 0.0.0.0 to listen on, got \"{}\"", addr));
    CHECK(load_config_text(kMinimal + "console:\n  metrics_listen: 0.0.0.0:9465\n", "t.yaml")
              .console.metrics_port == 9465);
    check_error(kMinimal + "console:\n  port: 1\n", 12, 3, "console.port",
                "unknown key \"port\"; allowed keys: socket, metrics_listen");
}
