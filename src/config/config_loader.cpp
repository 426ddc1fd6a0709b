/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node file's schema and its cross-checks. The key-by-key mechanics
 * (paths, marks, scalar syntax) live in yaml_reader.hpp; this file says what
 * each key means and which combinations are refused. Reference:
 * docs/configuration.md — keep the two in step.
 */
#include "flowhome/config.hpp"

#include <algorithm>
#include <bitset>
#include <map>
#include <system_error>

#include <yaml-cpp/depthguard.h>

#include "config_sections.hpp"
#include "flowhome/drop_reason.hpp"
#include "flowhome/eal_options.hpp"
#include "flowhome/encap.hpp"
#include "flowhome/small_file.hpp"
#include "vip_overlaps.hpp"
#include "yaml_reader.hpp"
#include "yaml_screen.hpp"

namespace flowhome {

namespace {

using config_detail::Cursor;
using config_detail::EnumName;
using config_detail::MapReader;
using config_detail::read_backoff;
using config_detail::read_console;
using config_detail::read_gossip;
using config_detail::read_table;

/*
 * Highest lcore id: RTE_MAX_LCORE - 1 of Debian's DPDK 22.11 build. Not taken
 * from rte_build_config.h so that the loader and its fuzzer build without
 * DPDK; the app still checks that each lcore is enabled in the EAL.
 */
constexpr unsigned kMaxLcore = 127;
/* Highest CPU an lcore may be pinned to: glibc's cpu_set_t holds CPU_SETSIZE
 * (1024), as the EAL's --lcores does; whether the CPU exists, the EAL says. */
constexpr unsigned kMaxCpu = 1023;
/* A node file is a few KiB; refuse anything that is clearly not one. */
constexpr size_t kMaxFileBytes = size_t{1} << 20;
constexpr EnumName<PortRole> kRoles[] = {{"wire", PortRole::wire}, {"local", PortRole::local}};
constexpr EnumName<VipProtocol> kProtocols[] = {
    {"tcp", VipProtocol::tcp}, {"udp", VipProtocol::udp}, {"any", VipProtocol::any}};
constexpr EnumName<EncapKind> kEncaps[] = {{"geneve", EncapKind::geneve},
                                           {"ipip", EncapKind::ipip}};
constexpr EnumName<MissPolicy> kMissPolicies[] = {
    {"drop", MissPolicy::drop}, {"local", MissPolicy::local}, {"hash", MissPolicy::hash}};

bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

unsigned hex_value(std::string_view digits)
{
    unsigned v = 0;
    for (const char ch : digits)
        v = v * 16 + static_cast<unsigned>(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    return v;
}

/*
 * "[DDDD:]BB:DD.F" as DPDK's PCI bus parses it, returned in the full,
 * lower-case form the EAL names the device by ("0000:3b:00.0"), so that
 * device_name() finds the port and "3b:00.0" and "0000:3B:00.0" compare equal.
 */
std::optional<std::string> normalise_pci(std::string_view s)
{
    std::string domain = "0000";
    if (s.size() == 12) {
        if (s[4] != ':')
            return std::nullopt;
        domain = std::string(s.substr(0, 4));
        s.remove_prefix(5);
    }
    if (s.size() != 7 || s[2] != ':' || s[5] != '.')
        return std::nullopt;
    const std::string_view bus = s.substr(0, 2), dev = s.substr(3, 2), fn = s.substr(6, 1);
    for (const auto part : {std::string_view(domain), bus, dev, fn})
        for (const char ch : part)
            if (!is_hex(ch))
                return std::nullopt;
    if (hex_value(dev) > 0x1f || hex_value(fn) > 7)
        return std::nullopt;
    std::string out = fmt::format("{}:{}:{}.{}", domain, bus, dev, fn);
    for (char &ch : out)
        ch = static_cast<char>(ch >= 'A' && ch <= 'F' ? ch | 0x20 : ch);
    return out;
}

std::string read_device(const Cursor &c)
{
    const std::string s = c.as_string();
    if (s.rfind("net_", 0) == 0) {
        const std::string_view driver = std::string_view(s).substr(0, s.find(','));
        bool ok = driver.size() > 4;
        for (const char ch : driver)
            ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
        if (ok)
            return s;
    } else if (auto pci = normalise_pci(s)) {
        return *pci;
    }
    c.fail(fmt::format("expected a PCI address like 0000:3b:00.0 or a vdev like "
                       "net_pcap0,iface=eth0, got {}",
                       c.describe()));
}

uint16_t read_descriptors(const MapReader &m, std::string_view key, uint16_t def)
{
    const auto c = m.find(key);
    if (!c)
        return def;
    // Several PMDs (ixgbe, i40e, ice) need a power of two; asking for it everywhere is simplest.
    const auto v = c->as_uint_of<uint16_t>(64, 16384);
    if ((v & (v - 1)) != 0)
        c->fail(fmt::format("expected a power of two from 64 to 16384, got {}", v));
    return v;
}

void read_node(const MapReader &root, NodeConfig &cfg)
{
    const MapReader m = root.require("node").as_map({"id", "name"});
    cfg.node_id = m.require("id").as_uint_of<NodeId>(1, kMaxNodeId);
    if (auto name = m.find("name"))
        cfg.name = name->as_name(63);
    else
        cfg.name = fmt::format("node{}", cfg.node_id);
}

/* Why eal.extra may not hold @p arg, which the EAL reads as the reserved option @p o. */
std::string reserved_message(std::string_view arg, const ReservedEalOption &o)
{
    const std::string_view written = arg.substr(0, arg.find('='));
    const bool is_long = o.name.starts_with("--");
    std::string what(o.name); // "--file-prefix=x", "-m512"
    if (is_long && written != o.name)
        what = fmt::format("{} abbreviates {}, which", written, o.name);
    else if (!is_long && !written.starts_with(o.name))
        what = fmt::format("{} gives {}, which", written, o.name); // "-vm512"
    return fmt::format("{} is set by {}; remove it from eal.extra", what, o.key);
}

void read_eal(const MapReader &root, EalConfig &eal)
{
    const auto c = root.find("eal");
    if (!c)
        return;
    const MapReader m = c->as_map({"memory_mb", "huge_pages", "file_prefix", "extra"});
    m.uint_if("memory_mb", eal.memory_mb, 64, 1u << 20);
    m.bool_if("huge_pages", eal.huge_pages);
    if (auto p = m.find("file_prefix")) {
        eal.file_prefix = p->as_name(32);
        /* The EAL's runtime folder is /var/run/dpdk/<prefix>: ".." would
         * put it in /var/run, "." in the folder of every node's. */
        if (file_prefix_names_no_folder(eal.file_prefix))
            p->fail(
                fmt::format("a file prefix of dots alone names no folder of its own, got \"{}\"",
                            eal.file_prefix));
    }
    const auto extra = m.find("extra");
    if (!extra)
        return;
    for (const Cursor &item : extra->items()) {
        std::string arg = item.as_string();
        if (const ReservedEalOption *reserved = reserved_eal_option(arg))
            item.fail(reserved_message(arg, *reserved));
        if (arg == "--")
            item.fail("\"--\" would end the EAL's options: the command line's after it would be "
                      "the program's, not the EAL's");
        eal.extra.push_back(std::move(arg));
    }
}

void read_ports(const MapReader &root, NodeConfig &cfg)
{
    const Cursor list = root.require("ports");
    const std::vector<Cursor> items = list.items();
    if (items.empty())
        list.fail("expected at least one port (the wire port)");
    std::optional<size_t> wire, local;
    for (size_t i = 0; i < items.size(); ++i) {
        const MapReader m =
            items[i].as_map({"name", "device", "role", "rx_descriptors", "tx_descriptors", "mtu",
                             "mac", "ipv4", "ipv6", "promiscuous"});
        PortConfig p;
        const Cursor name = m.require("name");
        p.name = name.as_name(32);
        const Cursor device = m.require("device");
        p.device = read_device(device);
        const auto role = m.find("role");
        if (role)
            p.role = role->as_enum(kRoles);
        p.rx_descriptors = read_descriptors(m, "rx_descriptors", p.rx_descriptors);
        p.tx_descriptors = read_descriptors(m, "tx_descriptors", p.tx_descriptors);
        m.uint_if("mtu", p.mtu, 68, 9216);
        if (auto mac = m.find("mac"))
            p.mac = mac->as_mac();
        if (auto a = m.find("ipv4"))
            p.ipv4 = a->as_ip(Family::ipv4);
        if (auto a = m.find("ipv6"))
            p.ipv6 = a->as_ip(Family::ipv6);
        m.bool_if("promiscuous", p.promiscuous);

        /* `capture start NAME` takes a port or a drop reason by name. */
        for (const DropReasonInfo &d : kDropReasons)
            if (d.name == p.name)
                name.fail(fmt::format("port name \"{}\" is a drop reason's name; `capture start "
                                      "{}` could not tell them apart",
                                      p.name, p.name));
        for (size_t j = 0; j < i; ++j) {
            if (cfg.ports[j].name == p.name)
                name.fail(fmt::format("duplicate port name \"{}\" (also ports[{}])", p.name, j));
            if (cfg.ports[j].device_name() == p.device_name())
                device.fail(fmt::format("device {} is also ports[{}] (\"{}\")", p.device_name(), j,
                                        cfg.ports[j].name));
        }
        auto &slot = p.role == PortRole::wire ? wire : local;
        if (slot) {
            const Cursor &at = role ? *role : items[i];
            at.fail(fmt::format("a second {} port: ports[{}] (\"{}\") is already one, and at "
                                "most one is allowed",
                                to_string(p.role), *slot, cfg.ports[*slot].name));
        }
        slot = i;
        cfg.ports.push_back(std::move(p));
    }
    if (!wire)
        list.fail("expected exactly one port with role wire, found none");
}

/* lcores.cpus: {lcore: cpu, ...} naming the CPU of every lcore, or of none. */
void read_lcore_cpus(const Cursor &cpus, LcoreConfig &lc)
{
    // "cpus:" and "cpus: {}" map no lcore, as an empty optional value means its default.
    if (cpus.node().IsNull() || (cpus.node().IsMap() && cpus.node().begin() == cpus.node().end()))
        return;
    if (!cpus.node().IsMap())
        cpus.fail(fmt::format("expected a mapping of lcore to CPU, e.g. {{0: 0, 1: 0, 2: 1}}, "
                              "got {}",
                              cpus.describe()));
    for (const auto &kv : cpus.node()) {
        const Cursor key(cpus.file(), kv.first, cpus.path(), cpus.mark());
        const auto lcore = key.as_uint_of<unsigned>(0, kMaxLcore);
        const Cursor value(cpus.file(), kv.second,
                           config_detail::child_path(cpus.path(), std::to_string(lcore)),
                           key.mark());
        const auto cpu = value.as_uint_of<unsigned>(0, kMaxCpu);
        const bool used =
            lcore == lc.main || lcore == lc.control ||
            std::find(lc.workers.begin(), lc.workers.end(), lcore) != lc.workers.end();
        if (!used)
            key.fail(fmt::format("lcore {} is not lcores.main, lcores.control or a worker", lcore));
        if (!lc.cpus.emplace(lcore, cpu).second)
            key.fail(fmt::format("lcore {} is mapped twice", lcore));
    }
    std::vector<unsigned> all{lc.main, lc.control};
    all.insert(all.end(), lc.workers.begin(), lc.workers.end());
    for (unsigned l : all)
        if (!lc.cpus.count(l))
            cpus.fail(fmt::format("lcore {} has no CPU; map every lcore or none", l));
}

void read_lcores(const MapReader &root, LcoreConfig &lc)
{
    const MapReader m = root.require("lcores").as_map({"main", "control", "workers", "cpus"});
    m.uint_if("main", lc.main, 0, kMaxLcore);
    m.uint_if("control", lc.control, 0, kMaxLcore);
    if (lc.control == lc.main) {
        // Only reachable when at least one of the two is written: the defaults differ.
        const Cursor at = m.has("control") ? *m.find("control") : *m.find("main");
        at.fail(fmt::format("lcores.main and lcores.control are both lcore {}; the control "
                            "core needs an lcore of its own (control defaults to 1)",
                            lc.control));
    }
    const Cursor workers = m.require("workers");
    const std::vector<Cursor> items = workers.items();
    if (items.empty())
        workers.fail("expected at least one worker lcore");
    for (size_t i = 0; i < items.size(); ++i) {
        const auto w = items[i].as_uint_of<unsigned>(0, kMaxLcore);
        if (w == lc.main || w == lc.control)
            items[i].fail(fmt::format("lcore {} is lcores.{}; workers need lcores of their own", w,
                                      w == lc.main ? "main" : "control"));
        for (size_t j = 0; j < i; ++j)
            if (lc.workers[j] == w)
                items[i].fail(
                    fmt::format("lcore {} is listed twice (also lcores.workers[{}])", w, j));
        lc.workers.push_back(w);
    }
    if (auto cpus = m.find("cpus"))
        read_lcore_cpus(*cpus, lc);
}

/* Which of this node's port addresses @p a is, if any: "ports[0].ipv4". */
std::optional<std::string> own_address(const NodeConfig &cfg, const IpAddr &a)
{
    for (size_t i = 0; i < cfg.ports.size(); ++i) {
        if (cfg.ports[i].ipv4 == a)
            return fmt::format("ports[{}].ipv4", i);
        if (cfg.ports[i].ipv6 == a)
            return fmt::format("ports[{}].ipv6", i);
    }
    return std::nullopt;
}

/* vips[i].ports: each 1..65535, each once. A list may hold every port. */
std::vector<uint16_t> read_vip_ports(const Cursor &list)
{
    std::vector<uint16_t> ports;
    std::bitset<65536> seen;
    for (const Cursor &item : list.items()) {
        const auto port = item.as_uint_of<uint16_t>(1, 65535);
        if (seen.test(port)) {
            const auto first = std::find(ports.begin(), ports.end(), port) - ports.begin();
            item.fail(
                fmt::format("port {} is listed twice (also {}[{}])", port, list.path(), first));
        }
        seen.set(port);
        ports.push_back(port);
    }
    return ports;
}

void read_vips(const MapReader &root, NodeConfig &cfg)
{
    const Cursor list = root.require("vips");
    const std::vector<Cursor> items = list.items();
    if (items.empty())
        list.fail("expected at least one VIP");
    config_detail::VipOverlaps overlaps;
    for (size_t i = 0; i < items.size(); ++i) {
        const MapReader m = items[i].as_map({"address", "protocol", "ports"});
        VipConfig v;
        const Cursor address = m.require("address");
        v.address = address.as_ip(Family::none);
        if (auto own = own_address(cfg, v.address))
            address.fail(
                fmt::format("{} is this node's own address ({})", v.address.to_string(), *own));
        if (auto p = m.find("protocol"))
            v.protocol = p->as_enum(kProtocols);
        if (auto ports = m.find("ports"))
            v.ports = read_vip_ports(*ports);
        if (auto j = overlaps.first_overlap(v))
            address.fail(fmt::format("overlaps vips[{}]: same address {}, and their "
                                     "protocols and ports intersect",
                                     *j, v.address.to_string()));
        overlaps.add(v, i);
        cfg.vips.push_back(std::move(v));
    }
}

void read_domains(const MapReader &root, NodeConfig &cfg)
{
    const auto list = root.find("domains");
    if (!list)
        return;
    const std::vector<Cursor> items = list->items();
    /* Each domain against those before it, in one pass over them all: a
     * file may hold tens of thousands. */
    std::map<std::string, size_t, std::less<>> index_of;
    std::optional<size_t> first_geneve;
    for (size_t i = 0; i < items.size(); ++i) {
        const MapReader m = items[i].as_map(
            {"name", "encap", "next_hop_mac", "geneve_port", "udp6_zero_checksum", "dscp"});
        DomainConfig d;
        const Cursor name = m.require("name");
        d.name = name.as_name(32);
        if (auto e = m.find("encap"))
            d.encap = e->as_enum(kEncaps);
        if (auto mac = m.find("next_hop_mac"))
            d.next_hop_mac = mac->as_mac();
        m.uint_if("geneve_port", d.geneve_port, 1, 65535);
        m.bool_if("udp6_zero_checksum", d.udp6_zero_checksum);
        if (auto dscp = m.find("dscp")) {
            const std::optional<uint64_t> v = dscp->as_uint_or("inherit", 0, kMaxDscp);
            d.dscp_inherit = !v;
            d.dscp = static_cast<uint8_t>(v.value_or(0));
        }
        if (d.encap != EncapKind::geneve)
            for (const auto key : {"geneve_port", "udp6_zero_checksum"})
                if (auto c = m.find(key))
                    c->fail(fmt::format("applies to encap geneve only; domain \"{}\" uses {}",
                                        d.name, to_string(d.encap)));
        /* The earlier of the two domains it clashes with is named, the
         * name first on a tie, as a walk of those before it would. */
        const auto [at, added] = index_of.try_emplace(d.name, i);
        const std::optional<size_t> same_name =
            added ? std::nullopt : std::optional<size_t>(at->second);
        /* Every node takes GENEVE on one port: the one its peers send to. */
        const std::optional<size_t> other_port =
            d.encap == EncapKind::geneve && first_geneve &&
                    cfg.domains[*first_geneve].geneve_port != d.geneve_port
                ? first_geneve
                : std::nullopt;
        if (same_name && (!other_port || *same_name <= *other_port))
            name.fail(
                fmt::format("duplicate domain name \"{}\" (also domains[{}])", d.name, *same_name));
        if (other_port) {
            const DomainConfig &other = cfg.domains[*other_port];
            m.find_or_self("geneve_port")
                .fail_at(fmt::format("domains[{}].geneve_port", i),
                         fmt::format("{}{} differs from domains[{}] (\"{}\"), which uses {}: "
                                     "a node takes GENEVE on one port, so every geneve domain "
                                     "must use the same",
                                     d.geneve_port, m.has("geneve_port") ? "" : " (the default)",
                                     *other_port, other.name, other.geneve_port));
        }
        if (d.encap == EncapKind::geneve && !first_geneve)
            first_geneve = i;
        cfg.domains.push_back(std::move(d));
    }
}

std::string domain_names(const NodeConfig &cfg)
{
    if (cfg.domains.empty())
        return "no domains are defined";
    std::vector<std::string_view> names;
    for (const auto &d : cfg.domains)
        names.push_back(d.name);
    return "defined domains: " + config_detail::join_names(names, ", ");
}

/* Each VIP address with the first VIP that has it. */
std::map<IpAddr, size_t> vip_addresses(const NodeConfig &cfg)
{
    std::map<IpAddr, size_t> out;
    for (size_t i = 0; i < cfg.vips.size(); ++i)
        out.try_emplace(cfg.vips[i].address, i);
    return out;
}

bool any_vip_of(const NodeConfig &cfg, Family f)
{
    return std::any_of(cfg.vips.begin(), cfg.vips.end(),
                       [f](const VipConfig &v) { return v.address.family == f; });
}

void read_peers(const MapReader &root, NodeConfig &cfg)
{
    const auto list = root.find("peers");
    if (!list)
        return;
    const PortConfig *wire = cfg.wire_port();
    const std::map<IpAddr, size_t> vips = vip_addresses(cfg);
    const std::vector<Cursor> items = list->items();
    for (size_t i = 0; i < items.size(); ++i) {
        const MapReader m = items[i].as_map({"id", "address", "domain", "mac"});
        PeerConfig p;
        const Cursor id = m.require("id");
        p.id = id.as_uint_of<NodeId>(1, kMaxNodeId);
        if (p.id == cfg.node_id)
            id.fail(fmt::format("peer id {} is this node's own id (node.id)", p.id));
        const Cursor address = m.require("address");
        p.address = address.as_ip(Family::none);
        if (auto own = own_address(cfg, p.address))
            address.fail(
                fmt::format("{} is this node's own address ({})", p.address.to_string(), *own));
        // The router hands a VIP's packets to any node of the fleet, and a
        // node takes them for VIP traffic: a redirect must reach the peer itself.
        if (const auto vip = vips.find(p.address); vip != vips.end())
            address.fail(fmt::format("{} is also vips[{}].address: redirects to this peer would be "
                                     "sent to an address the fleet advertises",
                                     p.address.to_string(), vip->second));
        // Redirects leave through the wire port with its address as the outer source.
        const bool v4 = p.address.family == Family::ipv4;
        if (!wire->address(p.address.family))
            address.fail(fmt::format("an {} peer needs ports[{}].{} (the wire port \"{}\") to "
                                     "send from",
                                     v4 ? "IPv4" : "IPv6", wire - cfg.ports.data(),
                                     v4 ? "ipv4" : "ipv6", wire->name));
        const Cursor domain = m.require("domain");
        p.domain = domain.as_name(32);
        const DomainConfig *d = cfg.domain(p.domain);
        if (!d)
            domain.fail(fmt::format("unknown domain \"{}\"; {}", p.domain, domain_names(cfg)));
        /* RFC 8200 section 5: IPv6 needs every link to carry 1280-byte
         * packets, the tunnel's too when it runs over IPv6. */
        if (!v4 && wire->mtu < kMinIpv6Mtu)
            items[i].fail(fmt::format("a tunnel to this peer runs over IPv6, whose links carry "
                                      "1280-byte packets (RFC 8200); the wire port \"{}\" has {}",
                                      wire->name, wire->mtu));
        /* A packet too big is told the MTU that fits once encapsulated, and
         * no less than its family's minimum (1280 for IPv6, RFC 8200
         * section 5; 68 for IPv4, RFC 791): one that still does not fit at
         * that size is lost for good. */
        for (const Family f : {Family::ipv6, Family::ipv4}) {
            const uint32_t least = f == Family::ipv6 ? kMinIpv6Mtu : kMinIpv4Mtu;
            const uint32_t needs = least + encap_overhead(d->encap, p.address.family);
            if (any_vip_of(cfg, f) && wire->mtu < needs)
                items[i].fail(fmt::format(
                    "redirecting a {0}-byte {1} packet (the {1} minimum MTU; this node has {1} "
                    "VIPs) to this peer over {2} in {3} takes an MTU of {4}; the wire port \"{5}\" "
                    "has {6}",
                    least, f == Family::ipv6 ? "IPv6" : "IPv4", to_string(d->encap),
                    v4 ? "IPv4" : "IPv6", needs, wire->name, wire->mtu));
        }
        if (auto mac = m.find("mac"))
            p.mac = mac->as_mac();
        else if (!d->next_hop_mac)
            items[i].fail(fmt::format("no mac, and domain \"{}\" has no next_hop_mac: set one "
                                      "of them",
                                      d->name));
        for (size_t j = 0; j < i; ++j) {
            if (cfg.peers[j].id == p.id)
                id.fail(fmt::format("duplicate peer id {} (also peers[{}])", p.id, j));
            if (cfg.peers[j].address == p.address)
                address.fail(fmt::format("duplicate peer address {} (also peers[{}])",
                                         p.address.to_string(), j));
        }
        cfg.peers.push_back(std::move(p));
    }
    /* A VIP's packet too big to redirect is answered with the MTU that
     * fits (RFC 1191, RFC 8201), from the wire port's address of its
     * family: without one its sender is never told, and each full-size
     * packet of a redirected connection is lost. */
    for (const Family f : {Family::ipv4, Family::ipv6}) {
        const bool v4 = f == Family::ipv4;
        if (!items.empty() && any_vip_of(cfg, f) && !wire->address(f))
            list->fail(fmt::format(
                "this node has {0} VIPs and peers: an {0} packet too big to redirect is answered "
                "with an ICMP{1} error from ports[{2}].{3} (the wire port \"{4}\"), which is not "
                "set",
                v4 ? "IPv4" : "IPv6", v4 ? "" : "v6", wire - cfg.ports.data(), v4 ? "ipv4" : "ipv6",
                wire->name));
    }
}

NodeConfig read_root(const Cursor &root_cursor)
{
    const MapReader root = root_cursor.as_map(
        {"node", "eal", "ports", "lcores", "vips", "domains", "peers", "table", "miss_policy",
         "max_hops", "backoff", "gossip", "drain", "bypass_ownership", "console"});
    NodeConfig cfg;
    cfg.source_file = root_cursor.file();
    // Order matters: later sections are checked against earlier ones.
    read_node(root, cfg);
    read_eal(root, cfg.eal);
    read_ports(root, cfg);
    read_lcores(root, cfg.lcores);
    read_vips(root, cfg);
    read_domains(root, cfg);
    read_peers(root, cfg);
    read_table(root, cfg.table);
    if (auto p = root.find("miss_policy"))
        cfg.miss_policy = p->as_enum(kMissPolicies);
    root.uint_if("max_hops", cfg.max_hops, 1, 8);
    read_backoff(root, cfg.backoff);
    read_gossip(root, cfg);
    root.bool_if("drain", cfg.drain);
    root.bool_if("bypass_ownership", cfg.bypass_ownership);
    read_console(root, cfg.console);
    return cfg;
}

} // namespace

NodeConfig load_config_text(const std::string &text, const std::string &name)
{
    using config_detail::mark_column;
    using config_detail::mark_line;
    using config_detail::screen_yaml;

    YAML::Node root;
    try {
        screen_yaml(text, name);
        root = YAML::Load(text);
    } catch (const YAML::DeepRecursion &e) {
        // yaml-cpp's own guard against stack exhaustion; its message says only "bad file".
        throw ConfigError(name, mark_line(e.mark), mark_column(e.mark), "",
                          "collections nested too deeply for the YAML parser");
    } catch (const YAML::ParserException &e) {
        throw ConfigError(name, mark_line(e.mark), mark_column(e.mark), "",
                          "YAML syntax error: " + e.msg);
    }
    try {
        return read_root(Cursor(name, root, "", YAML::Mark()));
    } catch (const YAML::Exception &e) {
        // Defensive: the reader checks node types before converting, so yaml-cpp
        // should not throw here; if it does, it must still surface as a ConfigError.
        throw ConfigError(name, mark_line(e.mark), mark_column(e.mark), "", e.msg);
    }
}

NodeConfig load_config(const std::string &path)
{
    /* Any readable file, a pipe too (--config <(...)): read once, at start. */
    const SmallFile f = read_small_file(path, kMaxFileBytes, FileKind::any);
    const std::string errno_text = std::error_code(f.error, std::generic_category()).message();
    switch (f.status) {
    case SmallFile::Status::ok:
        return load_config_text(f.content, path);
    case SmallFile::Status::cannot_open:
        throw ConfigError(path, 0, 0, "", "cannot open: " + errno_text);
    case SmallFile::Status::not_regular: /* FileKind::any takes any file */
        throw ConfigError(path, 0, 0, "", "not a file to read");
    case SmallFile::Status::cannot_read:
        throw ConfigError(path, 0, 0, "", "cannot read: " + errno_text);
    case SmallFile::Status::too_large:
        break;
    }
    throw ConfigError(
        path, 0, 0, "",
        fmt::format("larger than {} KiB; a node file is a few KiB", kMaxFileBytes / 1024));
}

} // namespace flowhome
