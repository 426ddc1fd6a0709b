/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * show flows, show flow, flow claim, flow release. Every table access runs
 * on the control lcore (the table's single writer), so iterating never
 * races an insert and a claim goes through the gossip engine.
 */
#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/ranges.h>
#include <rte_hash.h>

#include "console_impl.hpp"
#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_state.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {
namespace {

constexpr uint64_t kMaxLimit = 10000;

struct Endpoint {
    IpAddr addr;
    uint16_t port = 0;
};

/* "192.0.2.1:80" or "[2001:db8::1]:80" */
std::optional<Endpoint> parse_endpoint(std::string_view s, std::string &why)
{
    std::string_view host;
    std::string_view port;
    if (s.starts_with("[")) {
        const size_t close = s.find("]:");
        if (close == std::string_view::npos) {
            why = "an IPv6 endpoint is written [ADDRESS]:PORT";
            return std::nullopt;
        }
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        const size_t colon = s.rfind(':');
        if (colon == std::string_view::npos || s.find(':') != colon) {
            why = "expected ADDRESS:PORT (IPv6: [ADDRESS]:PORT)";
            return std::nullopt;
        }
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    const auto addr = IpAddr::parse(host);
    if (!addr) {
        why = fmt::format("'{}' is not an IPv4 or IPv6 address", host);
        return std::nullopt;
    }
    if (addr->family == Family::ipv4 && s.starts_with("[")) {
        why = "an IPv4 endpoint is written ADDRESS:PORT, without brackets";
        return std::nullopt;
    }
    const auto p = parse_number(port, 1, 65535);
    if (!p) {
        why = bad_number("port", port, 1, 65535);
        return std::nullopt;
    }
    return Endpoint{*addr, static_cast<uint16_t>(*p)};
}

std::string flags_text(uint8_t flags)
{
    std::vector<std::string_view> names;
    if (flags & owner_flag::pinned)
        names.push_back("pinned");
    if (flags & gossip_flag::released)
        names.push_back("released");
    if (flags & gossip_flag::guessed)
        names.push_back("guessed");
    if (flags & gossip_flag::moved)
        names.push_back("moved");
    return names.empty() ? "-" : fmt::format("{}", fmt::join(names, ","));
}

std::string state_of(Node &node, NodeId id)
{
    if (id == node.config().node_id)
        return "this node";
    if (node.engine() == nullptr)
        return "peer";
    const uint8_t st = node.shared().node_state[id & kMaxNodeId].load(std::memory_order_relaxed);
    return fmt::format("peer, {}", node_state_name(st));
}

std::string route_text(Node &node, NodeId owner)
{
    const NodeConfig &cfg = node.config();
    if (owner == cfg.node_id) {
        const PortConfig *local = cfg.local_port();
        return local != nullptr
                   ? "delivered locally on port " + local->name
                   : std::string("this node has no local port (dropped as no_local_port)");
    }
    const TemplateSet *ts = node.shared().templates.load(std::memory_order_acquire);
    const EncapTemplate *t = ts == nullptr ? nullptr : ts->find(owner);
    const PeerConfig *peer = nullptr;
    for (const PeerConfig &p : cfg.peers)
        if (p.id == owner)
            peer = &p;
    if (t == nullptr || peer == nullptr)
        return fmt::format("node {}: no template (dropped as owner_unreachable)", owner);
    MacAddr next_hop;
    std::memcpy(next_hop.bytes.data(), t->header, 6);
    return fmt::format("node {}: {} to {} (domain {}), next hop {}, mtu {}", owner,
                       to_string(t->kind), peer->address.to_string(), peer->domain,
                       next_hop.to_string(), t->mtu);
}

} // namespace

std::optional<FlowKey> parse_flow(const std::vector<std::string> &a, CommandResult &err)
{
    uint8_t proto = 0;
    if (a[0] == "tcp")
        proto = kProtoTcp;
    else if (a[0] == "udp")
        proto = kProtoUdp;
    else {
        err = fail(fmt::format("unknown protocol '{}'; expected tcp or udp", a[0]));
        return std::nullopt;
    }
    std::string why;
    const auto client = parse_endpoint(a[1], why);
    if (!client) {
        err = fail(fmt::format("malformed client address '{}': {}", a[1], why));
        return std::nullopt;
    }
    const auto vip = parse_endpoint(a[2], why);
    if (!vip) {
        err = fail(fmt::format("malformed VIP address '{}': {}", a[2], why));
        return std::nullopt;
    }
    if (client->addr.family != vip->addr.family) {
        err = fail("the client and the VIP must be of the same address family");
        return std::nullopt;
    }
    const uint16_t cp = wire::be16(client->port);
    const uint16_t vp = wire::be16(vip->port);
    if (client->addr.family == Family::ipv4) {
        uint32_t c4;
        uint32_t v4;
        std::memcpy(&c4, client->addr.bytes.data(), 4);
        std::memcpy(&v4, vip->addr.bytes.data(), 4);
        return FlowKey::make4(c4, cp, v4, vp, proto);
    }
    return FlowKey::make6(client->addr.bytes.data(), cp, vip->addr.bytes.data(), vp, proto);
}

CommandResult cmd_show_flow(CommandContext &c)
{
    CommandResult err;
    const auto key = parse_flow(c.args, err);
    if (!key)
        return err;
    std::optional<OwnerRecord> rec;
    NodeId effective = kInvalidNode;
    uint16_t now_epoch = 0;
    if (!c.on_control([&](uint64_t now_us) {
            rec = c.node.table().lookup(*key);
            now_epoch = epoch_of(now_us);
            if (rec)
                effective = c.node.engine() != nullptr
                                ? c.node.engine()->effective_owner(*rec, flow_hash(*key))
                                : rec->owner;
        }))
        return control_timeout(c);
    if (!rec)
        return fail(fmt::format("unknown flow {}: not in the ownership table", key->to_string()));
    const TableConfig &tc = c.node.config().table;
    const bool tcp = key->proto() == kProtoTcp;
    std::string out = fmt::format("flow {}\n", key->to_string());
    auto line = [&](std::string_view k, const std::string &v) {
        out += fmt::format("  {:<14} {}\n", k, v);
    };
    line("owner", fmt::format("node {} ({})", rec->owner, state_of(c.node, rec->owner)));
    line("version", std::to_string(rec->version));
    line("flags", flags_text(rec->flags));
    line("age", fmt::format("{} s since the last refresh ({} idle timeout {} s{})",
                            static_cast<uint16_t>(now_epoch - rec->epoch), tcp ? "tcp" : "udp",
                            tcp ? tc.tcp_idle_timeout_s : tc.udp_idle_timeout_s,
                            rec->flags & owner_flag::pinned ? ", pinned: never aged" : ""));
    if (rec->flags & gossip_flag::released)
        line("packets go", "released: treated as unknown (claimed anew by an opening packet)");
    else {
        if (effective != rec->owner)
            line("failover",
                 fmt::format("{}: packets go to node {}",
                             c.node.shared().node_state[rec->owner & kMaxNodeId].load() ==
                                     static_cast<uint8_t>(NodeState::dead)
                                 ? "owner is dead"
                                 : "the owner restarted since this record was made",
                             effective));
        line("packets go", route_text(c.node, effective));
    }
    return ok(out);
}

CommandResult cmd_show_flows(CommandContext &c)
{
    std::optional<IpAddr> vip;
    std::optional<NodeId> owner;
    uint64_t limit = 20;
    for (size_t i = 0; i < c.args.size(); i += 2) {
        const std::string &k = c.args[i];
        if (std::none_of(kFlowsFilters.begin(), kFlowsFilters.end(),
                         [&](const FlowsFilter &f) { return f.keyword == k; }))
            return fail(fmt::format("unknown filter '{}'; expected vip, owner or limit", k));
        for (size_t j = 0; j < i; j += 2)
            if (c.args[j] == k)
                return fail(fmt::format("'{}' is given twice", k));
        if (i + 1 >= c.args.size())
            return fail(fmt::format("'{}' needs a value", k));
        const std::string &v = c.args[i + 1];
        if (k == "vip") {
            vip = IpAddr::parse(v);
            if (!vip)
                return fail(fmt::format("malformed VIP address '{}'", v));
        } else if (k == "owner") {
            const auto n = parse_number(v, 1, kMaxNodeId);
            if (!n)
                return fail(bad_number("owner", v, 1, kMaxNodeId));
            owner = static_cast<NodeId>(*n);
        } else {
            const auto n = parse_number(v, 1, kMaxLimit);
            if (!n)
                return fail(bad_number("limit", v, 1, kMaxLimit));
            limit = *n;
        }
    }
    struct Row {
        FlowKey key;
        OwnerRecord rec;
    };
    std::vector<Row> rows;
    bool more = false;
    uint16_t now_epoch = 0;
    rows.reserve(limit);
    /* The walk runs on the control lcore in slices, one request each: with
     * a filter that matches little it covers the whole table, which at
     * millions of flows takes a second or more, and the control lcore must
     * not miss its heartbeats and gossip meanwhile. */
    OwnershipTable::Walk walk;
    uint64_t visited = 0;
    const auto start = std::chrono::steady_clock::now();
    bool stopped = false;
    while (!walk.ended && !more) {
        if (std::chrono::steady_clock::now() - start >= c.opt.flows_walk_limit) {
            stopped = true;
            break;
        }
        if (!c.on_control([&](uint64_t now_us) {
                now_epoch = epoch_of(now_us);
                FlowKey key;
                OwnerRecord rec;
                /* 16384 by default: about 2 ms of a busy table's walk here,
                 * and at most one pass over the empty positions of a sparse
                 * one (13-30 ms at 10M). */
                for (uint32_t n = 0; n < c.opt.flows_per_request; ++n) {
                    if (!c.node.table().next(walk, key, rec))
                        return;
                    ++visited;
                    if ((vip && key.vip() != *vip) || (owner && rec.owner != *owner))
                        continue;
                    if (rows.size() == limit) {
                        more = true;
                        return;
                    }
                    rows.push_back({key, rec});
                }
            }))
            return control_timeout(c);
    }
    /* 44 wide, or as wide as the longest endpoint (an IPv6 one takes up to 47). */
    size_t w = 44;
    for (const Row &r : rows)
        w = std::max({w, r.key.client().with_port(r.key.client_port()).size(),
                      r.key.vip().with_port(r.key.vip_port()).size()});
    std::string out = fmt::format("{:<5} {:<{}} {:<{}} {:>6} {:>8} {:>8} {}\n", "proto", "client",
                                  w, "vip", w, "owner", "version", "age-s", "flags");
    for (const Row &r : rows)
        out += fmt::format("{:<5} {:<{}} {:<{}} {:>6} {:>8} {:>8} {}\n",
                           r.key.proto() == kProtoTcp ? "tcp" : "udp",
                           r.key.client().with_port(r.key.client_port()), w,
                           r.key.vip().with_port(r.key.vip_port()), w, r.rec.owner, r.rec.version,
                           static_cast<uint16_t>(now_epoch - r.rec.epoch), flags_text(r.rec.flags));
    std::string why_short;
    if (more)
        why_short = fmt::format(" (limit {} reached; more exist)", limit);
    else if (stopped)
        why_short = fmt::format(" (the walk stopped after {} ms, {} entries in, before the end of "
                                "the {} table: narrow it with vip or owner)",
                                c.opt.flows_walk_limit.count(), visited,
                                walk.family == Family::ipv4 ? "IPv4" : "IPv6");
    out += fmt::format("{} flow{} shown{}\n", rows.size(), rows.size() == 1 ? "" : "s", why_short);
    return ok(out);
}

CommandResult cmd_flow_claim(CommandContext &c)
{
    CommandResult err;
    const auto key = parse_flow(c.args, err);
    if (!key)
        return err;
    /* A claim is pinned (never aged) and announced to the cluster: a typo
     * would stay for good. Only flows a VIP serves. */
    if (!c.node.shared().vips->serves(*key))
        return fail(fmt::format("no VIP serves {} {}: a claim is for a flow to a VIP (show node "
                                "lists them)",
                                c.args[0], c.args[2]));
    const NodeId self = c.node.config().node_id;
    /* Empty when the table refused; 0 is a version like any other (the
     * one after 65535, serial arithmetic). */
    std::optional<uint16_t> version;
    if (!c.on_control([&](uint64_t now_us) {
            if (GossipEngine *e = c.node.engine()) {
                version = e->operator_claim(*key, now_us);
                return;
            }
            const auto cur = c.node.table().lookup(*key);
            const auto v = static_cast<uint16_t>(cur ? cur->version + 1 : 1);
            const UpsertResult r = c.node.table().upsert(
                *key, OwnerRecord{self, v, epoch_of(now_us), owner_flag::pinned, 0},
                cur ? Presence::present : Presence::absent);
            if (r == UpsertResult::inserted || r == UpsertResult::updated)
                version = v;
        }))
        return control_timeout(c);
    if (!version)
        return fail(fmt::format("cannot claim {}: the ownership table is full", key->to_string()));
    return ok(fmt::format("flow {} claimed by node {} at version {} (pinned){}\n", key->to_string(),
                          self, *version,
                          c.node.engine() != nullptr ? ", announced to the cluster" : ""));
}

CommandResult cmd_flow_release(CommandContext &c)
{
    CommandResult err;
    const auto key = parse_flow(c.args, err);
    if (!key)
        return err;
    const NodeId self = c.node.config().node_id;
    std::optional<OwnerRecord> before;
    bool released = false;
    if (!c.on_control([&](uint64_t now_us) {
            before = c.node.table().lookup(*key);
            if (!before || (before->flags & gossip_flag::released) || before->owner != self)
                return;
            if (GossipEngine *e = c.node.engine())
                released = e->local_release(*key, now_us);
            else
                released = c.node.table().remove(*key);
        }))
        return control_timeout(c);
    if (!before)
        return fail(fmt::format("unknown flow {}: not in the ownership table", key->to_string()));
    if (before->flags & gossip_flag::released)
        return fail(fmt::format("flow {} is released already (node {}, version {})",
                                key->to_string(), before->owner, before->version));
    if (before->owner != self)
        return fail(fmt::format("flow {} is owned by node {}, not this node; release it there",
                                key->to_string(), before->owner));
    if (!released) /* the tombstone's write refused: the flow stays ours */
        return fail(fmt::format("cannot release {}: the ownership table refused the write",
                                key->to_string()));
    return ok(fmt::format("flow {} released by node {}{}\n", key->to_string(), self,
                          c.node.engine() != nullptr ? ", announced to the cluster" : ""));
}

} // namespace flowhome
