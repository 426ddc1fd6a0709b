/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The counter snapshot behind `show stats`, the Prometheus text and the
 * telemetry commands. Reads atomics and ethdev statistics only, so it runs
 * on the console, socket or telemetry thread while the node forwards.
 */
#include "flowhome/metrics.hpp"

#include <array>
#include <map>
#include <mutex>
#include <span>

#include <fmt/format.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_transport.hpp"
#include "flowhome/log_relay.hpp"
#include "flowhome/node.hpp"
#include "flowhome/ports.hpp"

namespace flowhome {
namespace {

constexpr WorkerCounterInfo kWorkerCounters[] = {
    {"rx_wire", &WorkerStats::rx_wire},
    {"rx_local", &WorkerStats::rx_local},
    {"tx_wire", &WorkerStats::tx_wire},
    {"tx_local", &WorkerStats::tx_local},
    {"local_hits", &WorkerStats::local_hits},
    {"claims", &WorkerStats::claims},
    {"pending_hits", &WorkerStats::pending_hits},
    {"redirects", &WorkerStats::redirects},
    {"decapsulated", &WorkerStats::decapsulated},
    {"ecn_suspect", &WorkerStats::ecn_suspect},
    {"passthrough", &WorkerStats::passthrough},
    {"from_local", &WorkerStats::from_local},
    {"miss_local", &WorkerStats::miss_local},
    {"miss_hash", &WorkerStats::miss_hash},
    {"failover", &WorkerStats::failover},
    {"drain_redirects", &WorkerStats::drain_redirects},
    {"opening_table_full", &WorkerStats::opening_table_full},
    {"claim_ring_full", &WorkerStats::claim_ring_full},
    {"claim_retries", &WorkerStats::claim_retries},
    {"refreshes", &WorkerStats::refreshes},
    {"refresh_ring_full", &WorkerStats::refresh_ring_full},
    {"icmp_too_big", &WorkerStats::icmp_too_big},
    {"icmp_rate_limited", &WorkerStats::icmp_rate_limited},
    {"icmp_to_owner", &WorkerStats::icmp_to_owner},
    {"gossip_handoff", &WorkerStats::gossip_handoff},
    {"flow_cache_hits", &WorkerStats::flow_cache_hits},
    {"flow_cache_misses", &WorkerStats::flow_cache_misses},
    {"flow_cache_rested", &WorkerStats::flow_cache_rested},
};

constexpr WorkerLoopCounterInfo kWorkerLoopCounters[] = {
    {"idle_sleeps", "flowhome_worker_idle_sleeps_total", &WorkerStats::idle_sleeps},
    {"busy_cycles", "flowhome_worker_busy_cycles_total", &WorkerStats::busy_cycles},
    {"busy_polls", "flowhome_worker_busy_polls_total", &WorkerStats::busy_polls},
};

const std::vector<MetricFamilyInfo> kFamilies = {
    {"flowhome_port_rx_packets_total", MetricType::counter, "Packets received by the port"},
    {"flowhome_port_tx_packets_total", MetricType::counter, "Packets sent by the port"},
    {"flowhome_port_rx_bytes_total", MetricType::counter, "Bytes received by the port"},
    {"flowhome_port_tx_bytes_total", MetricType::counter, "Bytes sent by the port"},
    {"flowhome_port_rx_missed_total", MetricType::counter,
     "Packets the port dropped for want of a free RX descriptor"},
    {"flowhome_port_rx_nombuf_total", MetricType::counter,
     "Packets the port dropped for want of an mbuf (the pool ran dry)"},
    {"flowhome_port_rx_errors_total", MetricType::counter, "Erroneous packets received"},
    {"flowhome_port_tx_errors_total", MetricType::counter, "Packets the port failed to send"},
    {"flowhome_worker_packets_total", MetricType::counter,
     "Packets a worker handled, by what happened to them (counter label)"},
    {"flowhome_worker_idle_sleeps_total", MetricType::counter,
     "Times an idle worker slept to yield its CPU"},
    {"flowhome_worker_busy_cycles_total", MetricType::counter,
     "TSC cycles of a worker's polls that found work"},
    {"flowhome_worker_busy_polls_total", MetricType::counter,
     "A worker's polls that found work (packets received over them: the mean burst)"},
    {"flowhome_drops_total", MetricType::counter, "Packets a worker dropped, by reason"},
    {"flowhome_redirects_total", MetricType::counter,
     "Packets encapsulated toward another node, by owner node"},
    {"flowhome_control_messages_total", MetricType::counter,
     "Claims and refreshes the control lcore took from the workers"},
    {"flowhome_control_message_outcomes_total", MetricType::counter,
     "What the control lcore did with them without gossip, by outcome"},
    {"flowhome_control_aged_out_total", MetricType::counter,
     "Expired table entries: removed, or (this node's own, with gossip) released"},
    {"flowhome_control_operator_requests_total", MetricType::counter,
     "Console and control-socket requests the control lcore ran"},
    {"flowhome_gossip_frames_total", MetricType::counter, "Gossip frames, by direction"},
    {"flowhome_gossip_records_total", MetricType::counter, "Gossip records, by direction"},
    {"flowhome_gossip_bytes_total", MetricType::counter, "Gossip frame bytes, by direction"},
    {"flowhome_gossip_events_total", MetricType::counter, "Gossip engine events, by event"},
    {"flowhome_gossip_frames_refused_total", MetricType::counter,
     "Received gossip frames refused, by reason"},
    {"flowhome_gossip_repair_round_trip_seconds", MetricType::gauge,
     "Smoothed round trip of this node's timed resend requests (absent until one is timed)",
     1'000'000},
    {"flowhome_gossip_repair_retry_seconds", MetricType::gauge,
     "How long a gap still open waits for its second resend request", 1'000'000},
    {"flowhome_peer_state", MetricType::gauge,
     "Membership state of each peer: 0 alive, 1 suspect, 2 dead"},
    {"flowhome_table_flows", MetricType::gauge, "Live entries of the ownership table"},
    {"flowhome_table_capacity_flows", MetricType::gauge, "Capacity of the ownership table"},
    {"flowhome_table_reclaim_waits_total", MetricType::counter,
     "Deletes that waited for an RCU grace period: the table's defer queue was full"},
};

void add(std::vector<MetricSample> &out, std::string_view family, std::string labels,
         uint64_t value)
{
    out.push_back(MetricSample{family, std::move(labels), value});
}

void port_samples(std::vector<MetricSample> &out, const std::string &name, uint16_t port)
{
    if (port == kNoPort)
        return;
    rte_eth_stats s;
    read_port_stats(port, s);
    const std::string l = fmt::format("port=\"{}\"", name);
    add(out, kFamilies[0].name, l, s.ipackets);
    add(out, kFamilies[1].name, l, s.opackets);
    add(out, kFamilies[2].name, l, s.ibytes);
    add(out, kFamilies[3].name, l, s.obytes);
    add(out, kFamilies[4].name, l, s.imissed);
    add(out, kFamilies[5].name, l, s.rx_nombuf);
    add(out, kFamilies[6].name, l, s.ierrors);
    add(out, kFamilies[7].name, l, s.oerrors);
}

void gossip_samples(std::vector<MetricSample> &out, Node &node)
{
    const GossipEngine *e = node.engine();
    if (e == nullptr)
        return;
    const GossipStats &g = e->stats();
    add(out, "flowhome_gossip_frames_total", "direction=\"out\"", g.frames_out.get());
    add(out, "flowhome_gossip_frames_total", "direction=\"in\"", g.frames_in.get());
    add(out, "flowhome_gossip_records_total", "direction=\"out\"", g.records_out.get());
    add(out, "flowhome_gossip_records_total", "direction=\"in\"", g.records_in.get());
    add(out, "flowhome_gossip_bytes_total", "direction=\"out\"", g.bytes_out.get());
    add(out, "flowhome_gossip_bytes_total", "direction=\"in\"", g.bytes_in.get());
    for (const GossipCounterInfo &c : gossip_counters(*e, node.transport(), node.log_relay()))
        add(out, "flowhome_gossip_events_total", fmt::format("event=\"{}\"", c.name),
            c.counter->get());
    const GossipRxStats &rx = e->rx_stats();
    for (size_t i = 0; i < kGossipStatusCount; ++i) {
        const auto st = static_cast<GossipStatus>(i);
        if (st != GossipStatus::ok)
            add(out, "flowhome_gossip_frames_refused_total",
                fmt::format("reason=\"{}\"", gossip_status_name(st)), rx.by_status[i].get());
    }
    /* No sample until a round trip has been timed: 0 is no round trip. */
    if (const uint64_t rtt_us = e->repair_round_trip_us(); rtt_us != 0)
        add(out, "flowhome_gossip_repair_round_trip_seconds", "", rtt_us);
    add(out, "flowhome_gossip_repair_retry_seconds", "", e->repair_retry_us());
}

/* The telemetry thread reads the node through this pointer; the mutex
 * keeps attach_telemetry(nullptr) from returning while a callback reads. */
std::mutex g_tel_mu;
Node *g_tel_node = nullptr;

/* One dictionary per command: the samples of @p families. */
int tel_dict(rte_tel_data *d, const std::vector<std::string_view> &families, bool strip_family)
{
    rte_tel_data_start_dict(d);
    std::lock_guard lock(g_tel_mu);
    if (g_tel_node == nullptr)
        return 0;
    for (const auto &[name, value] : telemetry_entries(collect_metrics(*g_tel_node), families,
                                                       strip_family, RTE_TEL_MAX_DICT_ENTRIES))
        rte_tel_data_add_dict_u64(d, name.c_str(), value);
    return 0;
}

int tel_stats(const char *, const char *, rte_tel_data *d)
{
    return tel_dict(d, {"flowhome_worker_packets_total"}, true);
}

int tel_ports(const char *, const char *, rte_tel_data *d)
{
    /* Every port family, from the one list: a counter added there is here. */
    std::vector<std::string_view> ports;
    for (const MetricFamilyInfo &f : kFamilies)
        if (f.name.starts_with("flowhome_port_"))
            ports.push_back(f.name);
    return tel_dict(d, ports, false);
}

int tel_drops(const char *, const char *, rte_tel_data *d)
{
    return tel_dict(d, {"flowhome_drops_total"}, true);
}

int tel_gossip(const char *, const char *, rte_tel_data *d)
{
    return tel_dict(d,
                    {"flowhome_gossip_frames_total", "flowhome_gossip_records_total",
                     "flowhome_gossip_bytes_total", "flowhome_gossip_events_total"},
                    false);
}

int tel_peers(const char *, const char *, rte_tel_data *d)
{
    return tel_dict(d, {"flowhome_peer_state"}, true);
}

} // namespace

std::vector<TelemetryEntry> telemetry_entries(const std::vector<MetricSample> &samples,
                                              std::span<const std::string_view> families,
                                              bool strip_family, size_t room)
{
    std::map<std::string, uint64_t> sums;
    for (const MetricSample &s : samples) {
        for (std::string_view f : families) {
            if (s.family != f)
                continue;
            /* Label values only, '/'-joined: a telemetry name is at most 63
             * characters of [A-Za-z0-9_/.-]. Per-worker samples are summed.
             * Label values never hold ',' or '"' (they are names and ids). */
            std::string key = strip_family ? "" : std::string(f.substr(9)); /* "flowhome_" */
            for (std::string_view rest = s.labels; !rest.empty();) {
                const size_t comma = rest.find(',');
                const std::string_view pair = rest.substr(0, comma);
                rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
                const size_t eq = pair.find('=');
                if (eq == std::string_view::npos || pair.substr(0, eq) == "worker")
                    continue;
                const std::string_view value = pair.substr(eq + 2, pair.size() - eq - 3);
                if (!key.empty())
                    key += '/';
                key += value;
            }
            sums[key.substr(0, 63)] += s.value;
        }
    }
    /* A dictionary holds RTE_TEL_MAX_DICT_ENTRIES (256): one more than
     * fits (peers of a large fleet) ends with how many were left out, not
     * silently without them. */
    std::vector<TelemetryEntry> out;
    for (const auto &entry : sums) {
        if (sums.size() > room && out.size() == room - 1)
            break;
        out.push_back(entry);
    }
    if (out.size() < sums.size())
        out.emplace_back("truncated", sums.size() - out.size());
    return out;
}

std::string MetricSample::key() const
{
    return fmt::format("{}{{{}}}", family, labels);
}

std::span<const WorkerCounterInfo> worker_counters() noexcept
{
    return kWorkerCounters;
}

std::span<const WorkerLoopCounterInfo> worker_loop_counters() noexcept
{
    return kWorkerLoopCounters;
}

std::vector<GossipCounterInfo>
gossip_counters(const GossipEngine &engine, const GossipTransport *transport, const LogRelay *log)
{
    const GossipStats &g = engine.stats();
    std::vector<GossipCounterInfo> out = {
        {"claims_applied", &g.claims_applied},
        {"claims_ignored", &g.claims_ignored},
        {"claims_refreshed", &g.claims_refreshed},
        {"releases_applied", &g.releases_applied},
        {"conflicts_lost", &g.conflicts_lost},
        {"claims_raised", &g.claims_raised},
        {"store_full", &g.store_full},
        {"peers_left", &g.peers_left},
        {"peers_timed_out", &g.peers_timed_out},
        {"unknown_senders", &g.unknown_senders},
        {"failovers", &g.failovers},
        {"guesses_yielded", &g.guesses_yielded},
        {"reclaimed", &g.reclaimed},
        {"reannounced", &g.reannounced},
        {"digests_mismatched", &g.digests_mismatched},
        {"sync_requests_out", &g.sync_requests_out},
        {"sync_requests_in", &g.sync_requests_in},
        {"sync_entries_in", &g.sync_entries_in},
        {"sync_responses_out", &g.sync_responses_out},
        {"syncs_completed", &g.syncs_completed},
        {"orphans", &g.orphans},
        {"moves_claimed", &g.moves_claimed},
        {"seal_failed", &g.seal_failed},
        {"unknown_records", &g.unknown_records},
        {"requests_refused", &g.requests_refused},
        {"records_ignored", &g.records_ignored},
        {"resend_requests_out", &g.resend_requests_out},
        {"resend_requests_in", &g.resend_requests_in},
        {"resend_requests_spared", &g.resend_requests_spared},
        {"resent_flows", &g.resent_flows},
        {"gaps_abandoned", &g.gaps_abandoned},
        {"gaps_bare", &g.gaps_bare},
        {"unproven_changes", &g.unproven_changes},
        {"receive_bursts", &g.receive_bursts},
    };
    if (transport != nullptr) {
        const GossipTransportStats &t = transport->stats();
        /* Datagrams: with unicast gossip, one per peer and frame. */
        out.insert(out.end(), {
                                  {"datagrams_out", &t.tx_frames},
                                  {"datagram_bytes_out", &t.tx_bytes},
                                  {"tx_no_mbuf", &t.tx_no_mbuf},
                                  {"tx_queue_full", &t.tx_queue_full},
                                  {"datagrams_in", &t.rx_frames},
                                  {"rx_own", &t.rx_own},
                                  {"rx_not_gossip", &t.rx_not_gossip},
                                  {"group_reports_out", &t.group_reports},
                              });
    }
    if (log != nullptr)
        out.push_back({"log_lines_dropped", &log->dropped()});
    return out;
}

const std::vector<MetricFamilyInfo> &metric_families()
{
    return kFamilies;
}

std::vector<MetricSample> collect_metrics(Node &node)
{
    std::vector<MetricSample> out;
    const NodeConfig &cfg = node.config();
    port_samples(out, cfg.wire_port()->name, node.ports().wire);
    if (const PortConfig *local = cfg.local_port())
        port_samples(out, local->name, node.ports().local);

    for (const auto &w : node.workers()) {
        const WorkerStats &s = w->stats();
        for (const WorkerCounterInfo &c : kWorkerCounters)
            add(out, "flowhome_worker_packets_total",
                fmt::format("worker=\"{}\",counter=\"{}\"", w->index(), c.name),
                (s.*c.field).get());
        for (const WorkerLoopCounterInfo &c : kWorkerLoopCounters)
            add(out, c.family, fmt::format("worker=\"{}\"", w->index()), (s.*c.field).get());
    }
    for (const auto &w : node.workers())
        for (const DropReasonInfo &d : kDropReasons)
            add(out, "flowhome_drops_total",
                fmt::format("worker=\"{}\",reason=\"{}\"", w->index(), d.name),
                w->stats().drops[static_cast<size_t>(d.reason)].get());
    for (const PeerConfig &p : cfg.peers) {
        uint64_t total = 0;
        for (const auto &w : node.workers())
            total += w->stats().redirects_to[p.id].get();
        add(out, "flowhome_redirects_total", fmt::format("owner=\"{}\"", p.id), total);
    }

    const ControlStats &c = node.control().stats();
    /* One family per quantity: summing a family over its labels must not
     * count anything twice. */
    add(out, "flowhome_control_messages_total", "", c.msgs.get());
    const std::pair<const char *, const Counter *> control[] = {
        {"claims_inserted", &c.claims_inserted},
        {"claims_existing", &c.claims_existing},
        {"refreshes", &c.refreshes},
        {"refresh_not_owner", &c.refresh_not_owner},
        {"table_full", &c.table_full},
        {"table_errors", &c.table_errors},
    };
    for (const auto &[name, counter] : control)
        add(out, "flowhome_control_message_outcomes_total", fmt::format("outcome=\"{}\"", name),
            counter->get());
    add(out, "flowhome_control_aged_out_total", "", c.aged_out.get());
    add(out, "flowhome_control_operator_requests_total", "", c.operator_requests.get());

    gossip_samples(out, node);
    for (const PeerConfig &p : cfg.peers)
        add(out, "flowhome_peer_state", fmt::format("node=\"{}\"", p.id),
            node.shared().node_state[p.id].load(std::memory_order_relaxed));
    const OwnershipTable &t = node.table();
    add(out, "flowhome_table_flows", "family=\"ipv4\"", t.count(Family::ipv4));
    add(out, "flowhome_table_flows", "family=\"ipv6\"", t.count(Family::ipv6));
    add(out, "flowhome_table_capacity_flows", "family=\"ipv4\"", t.capacity(Family::ipv4));
    add(out, "flowhome_table_capacity_flows", "family=\"ipv6\"", t.capacity(Family::ipv6));
    add(out, "flowhome_table_reclaim_waits_total", "", t.reclaim_waits());
    return out;
}

std::string prometheus_text(const std::vector<MetricSample> &samples)
{
    std::string out;
    for (const MetricFamilyInfo &f : kFamilies) {
        bool header = false;
        for (const MetricSample &s : samples) {
            if (s.family != f.name)
                continue;
            if (!header) {
                out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name,
                                   f.type == MetricType::counter ? "counter" : "gauge");
                header = true;
            }
            if (f.per_unit == 1)
                out += fmt::format("{}{{{}}} {}\n", s.family, s.labels, s.value);
            else
                out += fmt::format("{}{{{}}} {}\n", s.family, s.labels,
                                   static_cast<double>(s.value) / f.per_unit);
        }
    }
    return out;
}

void attach_telemetry(Node *node)
{
    static std::once_flag once;
    std::call_once(once, [] {
        rte_telemetry_register_cmd("/flowhome/stats", tel_stats,
                                   "Worker packet counters, summed over workers. No parameters");
        rte_telemetry_register_cmd("/flowhome/ports", tel_ports,
                                   "Port counters, as <counter>/<port>. No parameters");
        rte_telemetry_register_cmd("/flowhome/drops", tel_drops,
                                   "Dropped packets by reason, summed over workers. No parameters");
        rte_telemetry_register_cmd("/flowhome/gossip", tel_gossip,
                                   "Gossip frames, records, bytes and events. No parameters");
        rte_telemetry_register_cmd("/flowhome/peers", tel_peers,
                                   "Peer state by node id: 0 alive, 1 suspect, 2 dead");
    });
    std::lock_guard lock(g_tel_mu);
    g_tel_node = node;
}

} // namespace flowhome
