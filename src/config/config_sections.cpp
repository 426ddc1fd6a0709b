/* SPDX-License-Identifier: BSD-3-Clause */
#include "config_sections.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "flowhome/gossip_wire.hpp"
#include "flowhome/group_report.hpp"

namespace flowhome::config_detail {
namespace {

constexpr EnumName<TableMemory> kTableMemories[] = {
    {"auto", TableMemory::automatic}, {"eal", TableMemory::eal}, {"thp", TableMemory::thp}};

} // namespace

void read_table(const MapReader &root, TableConfig &t)
{
    const auto c = root.find("table");
    if (!c)
        return;
    const MapReader m = c->as_map({"memory", "capacity_ipv4", "capacity_ipv6", "tcp_idle_timeout_s",
                                   "udp_idle_timeout_s", "claim_grace_ms", "flow_cache"});
    if (auto v = m.find("memory"))
        t.memory = v->as_enum(kTableMemories);
    // rte_hash keeps its free slots in a ring of the next power of two above
    // the entries, and a ring holds at most 2^31 - 1: 2^30 - 1 entries.
    m.uint_if("capacity_ipv4", t.capacity_ipv4, 1024, (1u << 30) - 1);
    m.uint_if("capacity_ipv6", t.capacity_ipv6, 1024, (1u << 30) - 1);
    // Records carry a 16-bit seconds clock; ages are taken modulo 2^16.
    m.uint_if("tcp_idle_timeout_s", t.tcp_idle_timeout_s, 1, 32767);
    m.uint_if("udp_idle_timeout_s", t.udp_idle_timeout_s, 1, 32767);
    m.uint_if("claim_grace_ms", t.claim_grace_ms, 1, 10000);
    m.bool_if("flow_cache", t.flow_cache);
}

void read_backoff(const MapReader &root, BackoffConfig &b)
{
    const auto c = root.find("backoff");
    if (!c)
        return;
    const MapReader m = c->as_map({"idle_polls", "pause_polls", "sleep_us"});
    m.uint_if("idle_polls", b.idle_polls, 0, 10'000'000);
    m.uint_if("pause_polls", b.pause_polls, 0, 10'000'000);
    m.uint_if("sleep_us", b.sleep_us, 0, 100'000);
    if (!m.has("pause_polls"))
        b.pause_polls = std::min(b.pause_polls, b.idle_polls); /* the default, where it fits */
    if (b.pause_polls > b.idle_polls) {
        m.find("pause_polls")
            ->fail_at("backoff.pause_polls",
                      fmt::format("pause_polls ({}) must not exceed idle_polls ({}): a worker "
                                  "pauses before it sleeps",
                                  b.pause_polls, b.idle_polls));
    }
}

void read_gossip(const MapReader &root, NodeConfig &cfg)
{
    const auto c = root.find("gossip");
    if (!c)
        return;
    GossipConfig &g = cfg.gossip;
    const MapReader m =
        c->as_map({"cluster_id", "group", "port", "ttl", "key_file", "unicast", "batch_interval_us",
                   "heartbeat_interval_ms", "suspect_after_ms", "dead_after_ms",
                   "reannounce_interval_ms", "sync_timeout_ms", "group_report_interval_s"});
    g.enabled = true;
    m.uint_if("cluster_id", g.cluster_id, 0, 0xFFFFFFFFu);
    m.bool_if("unicast", g.unicast);
    const PortConfig *wire = cfg.wire_port();
    if (const auto group = m.find("group")) {
        const auto addr = IpAddr::parse(group->as_string());
        if (!addr || !is_multicast(*addr))
            group->fail(fmt::format("expected an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) "
                                    "multicast group, got {}",
                                    group->describe()));
        g.group = *addr;
        /* RFC 4291 2.7: scope 1 is interface-local, 0 reserved. */
        if (g.group.family == Family::ipv6 && (g.group.bytes[1] & 0x0F) <= 1)
            group->fail(fmt::format("{} is an interface-local or reserved-scope group: gossip "
                                    "sent to it never leaves this node",
                                    group->describe()));
        /* RFC 4607 1: 232.0.0.0/8 and ff3x::/32 are source-specific; a
         * router or snooping switch ignores the any-source membership a
         * node reports for them (RFC 4604 2.2). */
        if (g.group.family == Family::ipv4 ? g.group.bytes[0] == 232
                                           : (g.group.bytes[1] & 0xF0) == 0x30 &&
                                                 g.group.bytes[2] == 0 && g.group.bytes[3] == 0)
            group->fail(fmt::format("{} is a source-specific multicast group: gossip needs an "
                                    "any-source group, which every node may send to",
                                    group->describe()));
        if (!wire->address(g.group.family))
            group->fail(fmt::format("the wire port has no {} address to send gossip from",
                                    g.group.family == Family::ipv4 ? "ipv4" : "ipv6"));
    } else if (!g.unicast) {
        (void)m.require("group"); // throws: multicast gossip needs its group
    } else if (cfg.peers.empty()) {
        m.find("unicast")->fail("unicast gossip needs peers to send to");
    } else {
        /* Unicast without a group: gossip in the peers' address family. */
        g.group.family = cfg.peers.front().address.family;
        if (!wire->address(g.group.family))
            m.find("unicast")->fail(
                fmt::format("the wire port has no {} address to gossip with the peers from",
                            g.group.family == Family::ipv4 ? "ipv4" : "ipv6"));
    }
    const bool v6 = g.group.family == Family::ipv6;
    if (wire->mtu < gossip_min_mtu(v6))
        m.self().fail_at(
            "gossip", fmt::format("gossip over {} needs a wire port MTU of at least {} (a frame "
                                  "must hold one sync answer); the wire port \"{}\" has {}",
                                  v6 ? "ipv6" : "ipv4", gossip_min_mtu(v6), wire->name, wire->mtu));
    if (g.unicast)
        for (size_t i = 0; i < cfg.peers.size(); ++i)
            if (cfg.peers[i].address.family != g.group.family)
                m.find("unicast")->fail(fmt::format(
                    "unicast gossip is sent in one address family, {} ({}), but peers[{}] (node "
                    "{}) has an {} address: it would hear nothing and be declared dead",
                    g.group.family == Family::ipv4 ? "ipv4" : "ipv6",
                    m.has("group") ? "gossip.group's" : "peers[0]'s", i, cfg.peers[i].id,
                    cfg.peers[i].address.family == Family::ipv4 ? "ipv4" : "ipv6"));
    m.uint_if("port", g.port, 1, 65535);
    if (g.port == cfg.geneve_receive_port())
        m.find_or_self("port").fail_at(
            "gossip.port", fmt::format("port {} is the port this node takes GENEVE on: redirected "
                                       "packets would be taken for gossip",
                                       g.port));
    m.uint_if("ttl", g.ttl, 1, 255);
    /* A peer without a MAC of its own is reached through its domain's next
     * hop, a router, which drops a frame of TTL 1 (multicast too: the group
     * reaches another subnet only through a multicast router). */
    for (size_t i = 0; i < cfg.peers.size() && g.ttl == 1; ++i)
        if (!cfg.peers[i].mac)
            m.find_or_self("ttl").fail_at(
                "gossip.ttl", fmt::format("peers[{}] (node {}) has no mac: it is reached through "
                                          "domain \"{}\"'s next hop, a router, which drops gossip "
                                          "sent with a TTL of 1 (the default); set gossip.ttl to "
                                          "the number of routers in between plus one",
                                          i, cfg.peers[i].id, cfg.peers[i].domain));
    /* A peer behind a router would hear nothing of a group it never
     * forwards. */
    for (size_t i = 0; i < cfg.peers.size() && !g.unicast && link_local_group(g.group); ++i)
        if (!cfg.peers[i].mac)
            m.find_or_self("group").fail_at(
                "gossip.group",
                fmt::format("peers[{}] (node {}) has no mac: it is reached through domain "
                            "\"{}\"'s next hop, a router, which never forwards {} (link-local); "
                            "use a group of wider scope, or unicast: true",
                            i, cfg.peers[i].id, cfg.peers[i].domain, g.group.to_string()));
    const Cursor key = m.require("key_file");
    g.key_file = key.as_string();
    if (g.key_file.front() != '/') {
        // Relative to the node file, so a file and its keys move together.
        const auto slash = cfg.source_file.rfind('/');
        if (slash != std::string::npos)
            g.key_file = cfg.source_file.substr(0, slash + 1) + g.key_file;
    }
    m.uint_if("batch_interval_us", g.batch_interval_us, 10, 1'000'000);
    m.uint_if("heartbeat_interval_ms", g.heartbeat_interval_ms, 1, 60'000);
    m.uint_if("suspect_after_ms", g.suspect_after_ms, 2, 600'000);
    m.uint_if("dead_after_ms", g.dead_after_ms, 3, 3'600'000);
    m.uint_if("reannounce_interval_ms", g.reannounce_interval_ms, 10, 3'600'000);
    m.uint_if("sync_timeout_ms", g.sync_timeout_ms, 10, 600'000);
    if (g.unicast && m.has("group_report_interval_s"))
        m.find("group_report_interval_s")
            ->fail("unicast gossip joins no group: there is nothing to report");
    /* Two reports in a row may be lost before a switch forgets the group:
     * its Multicast Listener Interval is 260 s by default. */
    m.uint_if("group_report_interval_s", g.group_report_interval_s, 0, 86);
    if (g.suspect_after_ms <= g.heartbeat_interval_ms)
        m.find_or_self("suspect_after_ms")
            .fail_at("gossip.suspect_after_ms",
                     fmt::format("suspect_after_ms ({}) must exceed heartbeat_interval_ms ({}): "
                                 "a node is suspect only after missing heartbeats",
                                 g.suspect_after_ms, g.heartbeat_interval_ms));
    if (g.dead_after_ms <= g.suspect_after_ms)
        m.find_or_self("dead_after_ms")
            .fail_at("gossip.dead_after_ms",
                     fmt::format("dead_after_ms ({}) must exceed suspect_after_ms ({})",
                                 g.dead_after_ms, g.suspect_after_ms));
    // Remote records live only as long as their owner re-announces them: an
    // idle timeout shorter than a few re-announce periods would age out
    // connections whose re-announcement was merely late or lost.
    const uint64_t shortest_ms =
        uint64_t{std::min(cfg.table.tcp_idle_timeout_s, cfg.table.udp_idle_timeout_s)} * 1000;
    if (shortest_ms < uint64_t{g.reannounce_interval_ms} * 3)
        m.find_or_self("reannounce_interval_ms")
            .fail_at("gossip.reannounce_interval_ms",
                     fmt::format("reannounce_interval_ms ({}) must be at most a third of the "
                                 "shortest table idle timeout ({} ms)",
                                 g.reannounce_interval_ms, shortest_ms));
    if (g.unicast && cfg.peers.empty())
        m.find("unicast")->fail("unicast gossip needs peers to send to");
}

void read_console(const MapReader &root, ConsoleConfig &con)
{
    const auto c = root.find("console");
    if (!c)
        return;
    const MapReader m = c->as_map({"socket", "metrics_listen"});
    if (const auto s = m.find("socket")) {
        con.socket = s->as_string();
        if (con.socket.empty() || (con.socket != "off" && con.socket.front() != '/'))
            s->fail(fmt::format("expected an absolute path or \"off\", got {}", s->describe()));
        if (con.socket.size() >= 108) /* sizeof(sockaddr_un::sun_path) */
            s->fail("the socket path is longer than 107 bytes");
    }
    if (const auto l = m.find("metrics_listen")) {
        const std::string v = l->as_string();
        const auto colon = v.rfind(':');
        const auto addr =
            colon == std::string::npos ? std::nullopt : IpAddr::parse(v.substr(0, colon));
        unsigned long port = 0;
        /* Plain decimal, as every other number in the file: no leading zero. */
        if (colon != std::string::npos && colon + 1 < v.size() && v.size() - colon <= 6 &&
            v[colon + 1] != '0' &&
            v.find_first_not_of("0123456789", colon + 1) == std::string::npos)
            port = std::stoul(v.substr(colon + 1));
        if (!addr || addr->family != Family::ipv4 || port == 0 || port > 65535)
            l->fail(fmt::format("expected IPV4:PORT (e.g. 127.0.0.1:9465), got {}", l->describe()));
        /* What bind() would refuse when the node starts, refused now;
         * 0.0.0.0 listens on every address. */
        if (const AddressKind kind = address_kind(*addr);
            kind != AddressKind::unicast && kind != AddressKind::unspecified)
            l->fail(fmt::format("expected a unicast address or 0.0.0.0 to listen on, got {}",
                                l->describe()));
        con.metrics_address = *addr;
        con.metrics_port = static_cast<uint16_t>(port);
    }
}

} // namespace flowhome::config_detail
