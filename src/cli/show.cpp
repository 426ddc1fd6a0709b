/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * show node | peers | ports | workers | stats | metrics, and clear stats.
 * Counters are read here (atomics); membership and engine state are copied
 * on the control lcore.
 */
#include <algorithm>

#include <fmt/ranges.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_log.h>

#include "console_impl.hpp"
#include "flowhome/capture.hpp"
#include "flowhome/gossip_engine.hpp"
#include "flowhome/metrics.hpp"

namespace flowhome {
namespace {

std::string vip_text(const VipConfig &v)
{
    if (v.ports.empty())
        return fmt::format("{} {} all ports", v.address.to_string(), to_string(v.protocol));
    return fmt::format("{} {} port {}", v.address.to_string(), to_string(v.protocol),
                       fmt::join(v.ports, ","));
}

/* Samples minus the baseline of the last `clear stats`; gauges as they are. */
std::map<std::string, uint64_t> deltas(CommandContext &c)
{
    std::map<std::string, uint64_t> out;
    for (const MetricSample &s : collect_metrics(c.node)) {
        const std::string k = s.key();
        const auto b = c.baseline.values.find(k);
        out[k] =
            b == c.baseline.values.end() || s.value < b->second ? s.value : s.value - b->second;
    }
    return out;
}

uint64_t get(const std::map<std::string, uint64_t> &v, std::string_view family,
             const std::string &labels)
{
    const auto it = v.find(fmt::format("{}{{{}}}", family, labels));
    return it == v.end() ? 0 : it->second;
}

/* The width of a column of port names: 10, or the longest name. */
size_t port_name_width(const NodeConfig &cfg)
{
    size_t w = 10;
    for (const PortConfig &p : cfg.ports)
        w = std::max(w, p.name.size());
    return w;
}

std::string stats_ports(CommandContext &c, const std::map<std::string, uint64_t> &v)
{
    const size_t w = port_name_width(c.node.config());
    std::string out = fmt::format(
        "{:<{}} {:>14} {:>14} {:>16} {:>16} {:>10} {:>10} {:>10} {:>10}\n", "port", w, "rx-packets",
        "tx-packets", "rx-bytes", "tx-bytes", "rx-missed", "rx-no-mbuf", "rx-errors", "tx-errors");
    for (const PortConfig &p : c.node.config().ports) {
        const std::string l = fmt::format("port=\"{}\"", p.name);
        out += fmt::format(
            "{:<{}} {:>14} {:>14} {:>16} {:>16} {:>10} {:>10} {:>10} {:>10}\n", p.name, w,
            get(v, "flowhome_port_rx_packets_total", l),
            get(v, "flowhome_port_tx_packets_total", l), get(v, "flowhome_port_rx_bytes_total", l),
            get(v, "flowhome_port_tx_bytes_total", l), get(v, "flowhome_port_rx_missed_total", l),
            get(v, "flowhome_port_rx_nombuf_total", l), get(v, "flowhome_port_rx_errors_total", l),
            get(v, "flowhome_port_tx_errors_total", l));
    }
    return out;
}

std::string stats_workers(CommandContext &c, const std::map<std::string, uint64_t> &v)
{
    const auto &workers = c.node.workers();
    std::string out = fmt::format("{:<20} {:>14}", "counter", "total");
    for (const auto &w : workers)
        out += fmt::format(" {:>12}", fmt::format("worker {}", w->index()));
    out += '\n';
    auto row = [&](std::string_view name, std::string_view family, auto labels_of) {
        uint64_t total = 0;
        std::string per;
        for (const auto &w : workers) {
            const uint64_t x = get(v, family, labels_of(w->index()));
            total += x;
            per += fmt::format(" {:>12}", x);
        }
        out += fmt::format("{:<20} {:>14}{}\n", name, total, per);
    };
    for (const WorkerCounterInfo &ci : worker_counters())
        row(ci.name, "flowhome_worker_packets_total",
            [&](unsigned i) { return fmt::format("worker=\"{}\",counter=\"{}\"", i, ci.name); });
    /* The drops row: the sum over reasons, per worker. */
    uint64_t all = 0;
    std::string per;
    for (const auto &w : workers) {
        uint64_t x = 0;
        for (const DropReasonInfo &d : kDropReasons)
            x += get(v, "flowhome_drops_total",
                     fmt::format("worker=\"{}\",reason=\"{}\"", w->index(), d.name));
        all += x;
        per += fmt::format(" {:>12}", x);
    }
    out += fmt::format("{:<20} {:>14}{}\n", "drops", all, per);
    for (const WorkerLoopCounterInfo &lc : worker_loop_counters())
        row(lc.name, lc.family, [](unsigned i) { return fmt::format("worker=\"{}\"", i); });
    return out;
}

std::string stats_drops(CommandContext &c, const std::map<std::string, uint64_t> &v)
{
    std::string out = fmt::format("{:<26} {:>14}  {}\n", "reason", "packets", "meaning");
    uint64_t all = 0;
    for (const DropReasonInfo &d : kDropReasons) {
        uint64_t total = 0;
        for (const auto &w : c.node.workers())
            total += get(v, "flowhome_drops_total",
                         fmt::format("worker=\"{}\",reason=\"{}\"", w->index(), d.name));
        all += total;
        if (total != 0)
            out += fmt::format("{:<26} {:>14}  {}\n", d.name, total, d.text);
    }
    out += fmt::format("{:<26} {:>14}\n", "total", all);
    return out;
}

std::string stats_gossip(CommandContext &c, const std::map<std::string, uint64_t> &v)
{
    if (c.node.engine() == nullptr)
        return "gossip is off (no gossip section in the configuration)\n";
    std::string out;
    for (const char *dir : {"out", "in"})
        out += fmt::format(
            "{:<22} {:>14} frames {:>14} records {:>16} bytes\n", fmt::format("{}", dir),
            get(v, "flowhome_gossip_frames_total", fmt::format("direction=\"{}\"", dir)),
            get(v, "flowhome_gossip_records_total", fmt::format("direction=\"{}\"", dir)),
            get(v, "flowhome_gossip_bytes_total", fmt::format("direction=\"{}\"", dir)));
    /* Events, then the reasons frames were refused for (those that were):
     * one column as wide as the longest name. */
    std::vector<std::pair<std::string, uint64_t>> rows;
    size_t w = 22;
    for (const auto &[k, x] : v) {
        constexpr std::string_view ev = "flowhome_gossip_events_total{event=\"";
        constexpr std::string_view rf = "flowhome_gossip_frames_refused_total{reason=\"";
        if (k.starts_with(ev))
            rows.emplace_back(k.substr(ev.size(), k.size() - ev.size() - 2), x);
        else if (k.starts_with(rf) && x != 0)
            rows.emplace_back("refused " + k.substr(rf.size(), k.size() - rf.size() - 2), x);
        else
            continue;
        w = std::max(w, rows.back().first.size());
    }
    for (const auto &[name, x] : rows)
        out += fmt::format("{:<{}} {:>14}\n", name, w, x);
    /* Gauges, sampled in microseconds: the snapshot's values as they are
     * (no baseline); the round trip has no sample until one is timed. */
    const uint64_t rtt_us = get(v, "flowhome_gossip_repair_round_trip_seconds", "");
    const uint64_t retry_us = get(v, "flowhome_gossip_repair_retry_seconds", "");
    out += rtt_us != 0
               ? fmt::format("repair: round trip {:.1f} ms, first retry after {:.1f} ms\n",
                             rtt_us / 1e3, retry_us / 1e3)
               : fmt::format("repair: no round trip timed yet, first retry after {:.1f} ms\n",
                             retry_us / 1e3);
    return out;
}

} // namespace

CommandResult cmd_show_stats(CommandContext &c)
{
    const std::map<std::string, uint64_t> v = deltas(c);
    const std::string what = c.args.empty() ? "" : c.args[0];
    if (what == "port")
        return ok(stats_ports(c, v));
    if (what == "worker")
        return ok(stats_workers(c, v));
    if (what == "drops")
        return ok(stats_drops(c, v));
    if (what == "gossip")
        return ok(stats_gossip(c, v));
    if (!what.empty())
        return fail(
            fmt::format("unknown statistics '{}'; expected port, worker, gossip or drops", what));
    return ok("ports\n" + stats_ports(c, v) + "\nworkers\n" + stats_workers(c, v) + "\ndrops\n" +
              stats_drops(c, v) +
              (c.node.engine() != nullptr ? "\ngossip\n" + stats_gossip(c, v) : ""));
}

CommandResult cmd_clear_stats(CommandContext &c)
{
    c.baseline.values.clear();
    const std::vector<MetricFamilyInfo> &families = metric_families();
    for (const MetricSample &s : collect_metrics(c.node)) {
        const auto f = std::ranges::find(families, s.family, &MetricFamilyInfo::name);
        if (f != families.end() && f->type == MetricType::counter)
            c.baseline.values[s.key()] = s.value;
    }
    return ok("statistics cleared (show stats counts from now; telemetry and metrics keep "
              "absolute values)\n");
}

CommandResult cmd_show_metrics(CommandContext &c)
{
    return ok(prometheus_text(collect_metrics(c.node)));
}

CommandResult cmd_show_node(CommandContext &c)
{
    const NodeConfig &cfg = c.node.config();
    DatapathShared &sh = c.node.shared();
    bool synced = true;
    if (GossipEngine *e = c.node.engine()) {
        if (!c.on_control([&](uint64_t) { synced = e->synced(); }))
            return control_timeout(c);
    }
    const OwnershipTable &t = c.node.table();
    const std::string workers = fmt::format("{}", fmt::join(cfg.lcores.workers, ","));
    const auto level = rte_log_get_global_level();
    const std::span<const std::string_view> levels = log_level_names();
    std::string out = fmt::format("node {} ({})\n", cfg.node_id, cfg.name);
    auto line = [&](std::string_view k, const std::string &v) {
        out += fmt::format("  {:<16} {}\n", k, v);
    };
    line("state", sh.draining.load() ? "draining" : "serving");
    line("miss-policy", to_string(sh.miss_policy.load()));
    line("log-level", level >= 1 && level <= levels.size() ? std::string(levels[level - 1])
                                                           : std::to_string(level));
    line("lcores", fmt::format("main {}, control {}, workers {}", cfg.lcores.main,
                               cfg.lcores.control, workers));
    line("ipv4 flows", fmt::format("{} / {}", t.count(Family::ipv4), t.capacity(Family::ipv4)));
    line("ipv6 flows", fmt::format("{} / {}", t.count(Family::ipv6), t.capacity(Family::ipv6)));
    line("reclaim waits", fmt::format("{}", t.reclaim_waits()));
    line("table memory",
         fmt::format("{}: {}", to_string(cfg.table.memory), c.node.table_heap().describe()));
    line("idle timeouts", fmt::format("tcp {} s, udp {} s", cfg.table.tcp_idle_timeout_s,
                                      cfg.table.udp_idle_timeout_s));
    line("flow cache", cfg.table.flow_cache ? "on" : "off");
    /* With unicast, a group (if given) only chose the address family. */
    const std::string group =
        cfg.gossip.unicast ? "" : fmt::format("group {} ", cfg.gossip.group.to_string());
    line("gossip", !cfg.gossip.enabled
                       ? std::string("off")
                       : fmt::format("cluster {}, {}port {}, {}, {}", cfg.gossip.cluster_id, group,
                                     cfg.gossip.port, cfg.gossip.unicast ? "unicast" : "multicast",
                                     synced ? "synced" : "syncing"));
    for (const VipConfig &v : cfg.vips)
        line("vip", vip_text(v));
    line("capture", c.capture->status());
    return ok(out);
}

CommandResult cmd_show_peers(CommandContext &c)
{
    const NodeConfig &cfg = c.node.config();
    if (cfg.peers.empty())
        return ok("no peers configured\n");
    std::vector<Member> members;
    uint64_t now_ms = 0;
    if (GossipEngine *e = c.node.engine()) {
        /* Room made here: the control lcore must not allocate (a failure
         * there would end the node). The members are the peers and us. */
        members.reserve(cfg.peers.size() + 1);
        if (!c.on_control([&](uint64_t now_us) {
                const auto m = e->membership().members();
                members.assign(m.begin(), m.begin() + static_cast<ptrdiff_t>(
                                                          std::min(m.size(), members.capacity())));
                now_ms = now_us / 1000;
            }))
            return control_timeout(c);
    }
    std::string out = fmt::format("{:<6} {:<28} {:<10} {:<7} {:<8} {:<9} {:>12} {:>14} {:>12}\n",
                                  "node", "address", "domain", "encap", "state", "draining",
                                  "incarnation", "last-heard", "redirects");
    for (const PeerConfig &p : cfg.peers) {
        const DomainConfig *d = cfg.domain(p.domain);
        uint64_t redirects = 0;
        for (const auto &w : c.node.workers())
            redirects += w->stats().redirects_to[p.id].get();
        std::string state = "-";
        std::string draining = "-";
        std::string inc = "-";
        std::string heard = "-";
        for (const Member &m : members) {
            if (m.id != p.id)
                continue;
            state = node_state_name(m.state);
            draining = m.draining ? "yes" : "no";
            inc = m.heard ? std::to_string(m.incarnation) : "-";
            heard = m.heard ? fmt::format("{} ms ago", now_ms - m.last_heard_ms) : "never";
        }
        out += fmt::format("{:<6} {:<28} {:<10} {:<7} {:<8} {:<9} {:>12} {:>14} {:>12}\n", p.id,
                           p.address.to_string(), p.domain, d ? to_string(d->encap) : "?", state,
                           draining, inc, heard, redirects);
    }
    if (c.node.engine() == nullptr)
        out += "(gossip is off: no membership; every peer is taken as alive)\n";
    return ok(out);
}

CommandResult cmd_show_ports(CommandContext &c)
{
    const size_t w = port_name_width(c.node.config());
    std::string out =
        fmt::format("{:<4} {:<{}} {:<6} {:<19} {:<6} {:<10} {:<8} {:<12} {}\n", "id", "name", w,
                    "role", "mac", "mtu", "link", "queues", "promiscuous", "device");
    for (const PortConfig &p : c.node.config().ports) {
        const uint16_t id = p.role == PortRole::wire ? c.node.ports().wire : c.node.ports().local;
        if (id == kNoPort)
            continue;
        rte_ether_addr mac{};
        rte_eth_macaddr_get(id, &mac);
        rte_eth_link link{};
        rte_eth_link_get_nowait(id, &link);
        rte_eth_dev_info info{};
        rte_eth_dev_info_get(id, &info);
        const std::string link_text =
            link.link_status ? fmt::format("up {}M", link.link_speed) : "down";
        out += fmt::format("{:<4} {:<{}} {:<6} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}   {:<6} "
                           "{:<10} {:<8} {:<12} {}\n",
                           id, p.name, w, to_string(p.role), mac.addr_bytes[0], mac.addr_bytes[1],
                           mac.addr_bytes[2], mac.addr_bytes[3], mac.addr_bytes[4],
                           mac.addr_bytes[5], p.mtu, link_text,
                           fmt::format("{}/{}", info.nb_rx_queues, info.nb_tx_queues),
                           rte_eth_promiscuous_get(id) == 1 ? "on" : "off", p.device_name());
        if (p.ipv4 || p.ipv6)
            out += fmt::format("     addresses {}{}{}\n", p.ipv4 ? p.ipv4->to_string() : "",
                               p.ipv4 && p.ipv6 ? ", " : "", p.ipv6 ? p.ipv6->to_string() : "");
    }
    return ok(out);
}

CommandResult cmd_show_workers(CommandContext &c)
{
    /* A quotient to a tenth, or "-" while its divisor is 0. */
    const auto per = [](uint64_t num, uint64_t den) {
        return den == 0
                   ? std::string("-")
                   : fmt::format("{:.1f}", static_cast<double>(num) / static_cast<double>(den));
    };
    /* The header and each worker's row, in one layout. */
    const auto line = [](const auto &...field) {
        return fmt::format("{:<7} {:<6} {:<6} {:>14} {:>14} {:>14} {:>14} {:>12} {:>10} {:>8} {}\n",
                           field...);
    };
    std::string out = line("worker", "lcore", "queue", "rx", "tx", "drops", "claims", "idle-sleeps",
                           "cyc/pkt", "pkt/poll", "state");
    const NodeConfig &cfg = c.node.config();
    for (const auto &w : c.node.workers()) {
        const WorkerStats &s = w->stats();
        const unsigned lcore = cfg.lcores.workers[w->index()];
        const uint64_t rx = s.rx_wire.get() + s.rx_local.get();
        /* What a packet costs this worker, its busy cycles (polls that
         * found work) over the packets it received; and how full its
         * bursts are, those packets over its busy polls. */
        out += line(w->index(), lcore, w->index(), rx, s.tx_wire.get() + s.tx_local.get(),
                    s.total_drops(), s.claims.get(), s.idle_sleeps.get(),
                    per(s.busy_cycles.get(), rx), per(rx, s.busy_polls.get()),
                    rte_eal_get_lcore_state(lcore) == RUNNING ? "running" : "stopped");
    }
    return ok(out);
}

} // namespace flowhome
