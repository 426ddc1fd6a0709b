/* SPDX-License-Identifier: BSD-3-Clause */
#include <fmt/format.h>
#include <rte_ethdev.h>

#include "flowhome/node.hpp"

namespace flowhome {
namespace {

void port_line(std::string &out, const char *role, uint16_t port)
{
    if (port == kNoPort)
        return;
    rte_eth_stats s{};
    rte_eth_stats_get(port, &s);
    out += fmt::format("  {:<6} port {:<2} rx {:>12}  tx {:>12}  rx-missed {:>8}  rx-err {:>8}  "
                       "tx-err {:>8}\n",
                       role, port, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors);
}

} // namespace

std::string Node::stats_report() const
{
    std::string out = fmt::format("node {} ({})\n", cfg_.node_id, cfg_.name);
    out += "ports\n";
    port_line(out, "wire", ports_.wire);
    port_line(out, "local", ports_.local);

    struct Row {
        const char *name;
        Counter WorkerStats::*field;
    };
    static constexpr Row kRows[] = {
        {"rx-wire", &WorkerStats::rx_wire},
        {"rx-local", &WorkerStats::rx_local},
        {"tx-wire", &WorkerStats::tx_wire},
        {"tx-local", &WorkerStats::tx_local},
        {"local-hits", &WorkerStats::local_hits},
        {"claims", &WorkerStats::claims},
        {"pending-hits", &WorkerStats::pending_hits},
        {"redirects", &WorkerStats::redirects},
        {"decapsulated", &WorkerStats::decapsulated},
        {"passthrough", &WorkerStats::passthrough},
        {"from-local", &WorkerStats::from_local},
        {"miss-local", &WorkerStats::miss_local},
        {"miss-hash", &WorkerStats::miss_hash},
        {"claim-ring-full", &WorkerStats::claim_ring_full},
        {"refreshes", &WorkerStats::refreshes},
        {"refresh-ring-full", &WorkerStats::refresh_ring_full},
        {"icmp-too-big", &WorkerStats::icmp_too_big},
        {"idle-sleeps", &WorkerStats::idle_sleeps},
    };
    out += "workers\n";
    for (const Row &r : kRows) {
        uint64_t total = 0;
        std::string per;
        for (const auto &w : workers_) {
            const uint64_t v = (w->stats().*r.field).get();
            total += v;
            per += fmt::format(" {:>10}", v);
        }
        out += fmt::format("  {:<18} {:>12}{}\n", r.name, total, workers_.size() > 1 ? per : "");
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
    out += "table\n";
    out += fmt::format("  {:<18} {:>12} / {}\n", "ipv4-flows", table_->count(Family::ipv4),
                       table_->capacity(Family::ipv4));
    out += fmt::format("  {:<18} {:>12} / {}\n", "ipv6-flows", table_->count(Family::ipv6),
                       table_->capacity(Family::ipv6));
    return out;
}

} // namespace flowhome
