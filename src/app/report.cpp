/* SPDX-License-Identifier: BSD-3-Clause */
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <rte_ethdev.h>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_transport.hpp"
#include "flowhome/metrics.hpp"
#include "flowhome/node.hpp"
#include "flowhome/ports.hpp"

namespace flowhome {
namespace {

void port_line(std::string &out, const char *role, uint16_t port)
{
    if (port == kNoPort)
        return;
    rte_eth_stats s;
    read_port_stats(port, s);
    out += fmt::format("  {:<6} port {:<2} rx-packets {:>12}  tx-packets {:>12}  rx-missed {:>8}  "
                       "rx-no-mbuf {:>8}  rx-errors {:>8}  tx-errors {:>8}\n",
                       role, port, s.ipackets, s.opackets, s.imissed, s.rx_nombuf, s.ierrors,
                       s.oerrors);
}

/* A counter's name as the console and the metrics spell it, with the
 * report's dashes. */
std::string dashed(std::string_view name)
{
    std::string out(name);
    std::replace(out.begin(), out.end(), '_', '-');
    return out;
}

} // namespace

std::string Node::stats_report() const
{
    std::string out = fmt::format("node {} ({})\n", cfg_.node_id, cfg_.name);
    out += "ports\n";
    port_line(out, "wire", ports_.wire);
    port_line(out, "local", ports_.local);

    /* The counters the console and the metrics show, in their order, with
     * the report's dashes; then the poll loop's own. */
    std::vector<std::pair<std::string, Counter WorkerStats::*>> rows;
    for (const WorkerCounterInfo &c : worker_counters())
        rows.emplace_back(dashed(c.name), c.field);
    for (const WorkerLoopCounterInfo &c : worker_loop_counters())
        rows.emplace_back(dashed(c.name), c.field);
    out += "workers\n";
    for (const auto &[name, field] : rows) {
        uint64_t total = 0;
        std::string per;
        for (const auto &w : workers_) {
            const uint64_t v = (w->stats().*field).get();
            total += v;
            per += fmt::format(" {:>10}", v);
        }
        out += fmt::format("  {:<18} {:>12}{}\n", name, total, workers_.size() > 1 ? per : "");
    }

    out += "drops\n";
    uint64_t all_drops = 0;
    for (const DropReasonInfo &d : kDropReasons) {
        uint64_t total = 0;
        for (const auto &w : workers_)
            total += w->stats().drops[static_cast<size_t>(d.reason)].get();
        all_drops += total;
        if (total != 0)
            out += fmt::format("  {:<24} {:>12}  {}\n", d.name, total, d.text);
    }
    out += fmt::format("  {:<24} {:>12}\n", "total", all_drops);

    out += "redirects by owner\n";
    for (const PeerConfig &p : cfg_.peers) {
        uint64_t total = 0;
        for (const auto &w : workers_)
            total += w->stats().redirects_to[p.id].get();
        out += fmt::format("  node {:<5} {:<40} {:>12}\n", p.id,
                           fmt::format("{} ({})", p.address.to_string(), p.domain), total);
    }

    const ControlStats &c = control_->stats();
    out += "control\n";
    out += fmt::format("  {:<18} {:>12}\n", "messages", c.msgs.get());
    out += fmt::format("  {:<18} {:>12}\n", "claims-inserted", c.claims_inserted.get());
    out += fmt::format("  {:<18} {:>12}\n", "claims-existing", c.claims_existing.get());
    out += fmt::format("  {:<18} {:>12}\n", "refreshes", c.refreshes.get());
    out += fmt::format("  {:<18} {:>12}\n", "refresh-not-owner", c.refresh_not_owner.get());
    out += fmt::format("  {:<18} {:>12}\n", "table-full", c.table_full.get());
    out += fmt::format("  {:<18} {:>12}\n", "table-errors", c.table_errors.get());
    out += fmt::format("  {:<18} {:>12}\n", "aged-out", c.aged_out.get());
    out += fmt::format("  {:<18} {:>12}\n", "operator-requests", c.operator_requests.get());
    if (engine_ != nullptr)
        out += gossip_report();
    out += "table\n";
    out += fmt::format("  {:<18} {:>12} / {}\n", "ipv4-flows", table_->count(Family::ipv4),
                       table_->capacity(Family::ipv4));
    out += fmt::format("  {:<18} {:>12} / {}\n", "ipv6-flows", table_->count(Family::ipv6),
                       table_->capacity(Family::ipv6));
    out += fmt::format("  {:<18} {:>12}\n", "reclaim-waits", table_->reclaim_waits());
    return out;
}

std::string Node::gossip_report() const
{
    /* Only counters, gauges and the published node states: safe to read
     * while the control lcore runs. */
    const GossipStats &g = engine_->stats();
    std::string out = "gossip\n";
    out += fmt::format("  {:<18} {}\n", "path", gossip_path_);
    std::vector<std::pair<std::string, uint64_t>> rows = {
        {"frames-out", g.frames_out.get()}, {"records-out", g.records_out.get()},
        {"bytes-out", g.bytes_out.get()},   {"frames-in", g.frames_in.get()},
        {"records-in", g.records_in.get()}, {"bytes-in", g.bytes_in.get()},
    };
    /* The events the console and the metrics show, in their order, with
     * the report's dashes. */
    for (const GossipCounterInfo &c : gossip_counters(*engine_, transport_.get(), log_.get()))
        rows.emplace_back(dashed(c.name), c.counter->get());
    rows.emplace_back("repair-round-trip-us", g.repair_round_trip_us.get());
    rows.emplace_back("repair-retry-us", g.repair_retry_us.get());
    for (const auto &[name, value] : rows)
        out += fmt::format("  {:<18} {:>12}\n", name, value);
    out += "  frames refused\n";
    const GossipRxStats &rx = engine_->rx_stats();
    for (size_t i = 0; i < kGossipStatusCount; ++i) {
        const auto status = static_cast<GossipStatus>(i);
        if (status != GossipStatus::ok && rx.by_status[i].get() != 0)
            out += fmt::format("    {:<22} {:>12}\n", gossip_status_name(status),
                               rx.by_status[i].get());
    }
    out += "  peers\n";
    for (const PeerConfig &p : cfg_.peers) {
        const uint8_t st = shared_.node_state[p.id].load(std::memory_order_relaxed);
        out += fmt::format("    node {:<5} {:<8}\n", p.id, node_state_name(st));
    }
    return out;
}

} // namespace flowhome
