/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * A node's configuration, loaded from one YAML file (reference:
 * docs/configuration.md, examples: config/).
 *
 * Threading: loading runs on the main lcore at start-up (and later on the
 * console); the result is an immutable value handed to the other planes.
 * Errors: load_config() throws ConfigError naming the file, line, column, key
 * and what was expected. Unknown keys are errors. Nothing is defaulted
 * silently that the reference does not document as a default.
 */
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowhome/types.hpp"

namespace flowhome {

class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string file, int line, int column, std::string key, std::string message);

    const std::string &file() const noexcept { return file_; }
    int line() const noexcept { return line_; }              /**< 1-based; 0 when unknown */
    int column() const noexcept { return column_; }          /**< 1-based; 0 when unknown */
    const std::string &key() const noexcept { return key_; } /**< e.g. "ports[1].mtu" */
    const std::string &message() const noexcept { return message_; }

private:
    std::string file_;
    int line_;
    int column_;
    std::string key_;
    std::string message_;
};

/** What a port is for. */
enum class PortRole : uint8_t {
    wire,  /**< toward the router and the peers: VIP traffic in, redirects out */
    local, /**< toward this host's kernel / backend: owned traffic out, replies in */
};

struct PortConfig {
    std::string name;   /**< operator's name, e.g. "uplink" */
    std::string device; /**< PCI address "0000:3b:00.0" or vdev "net_pcap0,iface=..." */
    PortRole role = PortRole::wire;
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    uint16_t mtu = 1500;
    std::optional<MacAddr> mac; /**< override of the device's MAC */
    std::optional<IpAddr> ipv4; /**< this node's address on the port (outer source) */
    std::optional<IpAddr> ipv6;
    bool promiscuous = false;

    bool is_vdev() const noexcept { return device.rfind("net_", 0) == 0; }
    /** The port's address of family @p f (ipv4 or ipv6), if it has one. */
    const std::optional<IpAddr> &address(Family f) const noexcept
    {
        return f == Family::ipv4 ? ipv4 : ipv6;
    }
    /** The EAL device name: the vdev string up to its first ',' or the PCI address. */
    std::string device_name() const;
};

struct LcoreConfig {
    unsigned main = 0;
    unsigned control = 1;
    std::vector<unsigned> workers; /**< at least one */
    /**
     * lcore -> CPU for every lcore, or empty when lcore ids are CPU ids.
     * Lets several lcores share a CPU (a small test machine).
     */
    std::map<unsigned, unsigned> cpus;
};

enum class VipProtocol : uint8_t { tcp, udp, any };

struct VipConfig {
    IpAddr address;
    VipProtocol protocol = VipProtocol::any;
    std::vector<uint16_t> ports; /**< empty: every port */
};

enum class EncapKind : uint8_t { geneve, ipip };

/** A DSCP is six bits (RFC 2474 section 3). */
inline constexpr uint8_t kMaxDscp = 63;

struct DomainConfig {
    std::string name;
    EncapKind encap = EncapKind::geneve;
    std::optional<MacAddr> next_hop_mac; /**< for peers without their own mac */
    uint16_t geneve_port = 6081;
    /** Send GENEVE over IPv6 with a zero UDP checksum (RFC 6935); peers must accept it. */
    bool udp6_zero_checksum = false;
    /** DSCP of the outer header (RFC 2474), 0..63, unless dscp_inherit. */
    uint8_t dscp = 0;
    /** The outer header takes the inner packet's DSCP (RFC 2983's uniform model). */
    bool dscp_inherit = false;
};

struct PeerConfig {
    NodeId id = kInvalidNode;
    IpAddr address;
    std::string domain;
    std::optional<MacAddr> mac; /**< next hop to the peer; else the domain's next_hop_mac */
};

/** Where the ownership table's memory comes from (see TableHeap). */
enum class TableMemory : uint8_t {
    automatic, /**< the EAL heap on hugepages; without them, transparent huge pages if enabled */
    eal,       /**< always the EAL heap */
    thp,       /**< always anonymous memory advised for transparent huge pages */
};

struct TableConfig {
    TableMemory memory = TableMemory::automatic;
    uint32_t capacity_ipv4 = 1u << 20;
    uint32_t capacity_ipv6 = 1u << 16;
    uint32_t tcp_idle_timeout_s = 300;
    uint32_t udp_idle_timeout_s = 60;
    /** How long a worker treats its own fresh claim as owned before the table has it. */
    uint32_t claim_grace_ms = 200;
    /** Each worker keeps its last lookups' records (docs/design.md, "The flow cache"). */
    bool flow_cache = true;
};

enum class MissPolicy : uint8_t {
    drop,  /**< wait: TCP retransmits once ownership is known */
    local, /**< hand to this node's local port (its kernel answers, usually RST) */
    hash,  /**< redirect to the node rendezvous hashing names, at most once */
};

struct BackoffConfig {
    uint32_t idle_polls = 100; /**< empty polls before the worker sleeps */
    uint32_t pause_polls = 10; /**< empty polls before it starts pausing between polls */
    uint32_t sleep_us = 50;    /**< sleep length once idle; 0 busy-polls forever */
};

/** Gossip between the nodes (docs/gossip-protocol.md). */
struct GossipConfig {
    bool enabled = false; /**< a `gossip` section is present */
    uint32_t cluster_id = 1;
    IpAddr group;         /**< multicast group, e.g. 239.0.0.1 */
    uint16_t port = 7471; /**< UDP port of the group */
    uint8_t ttl = 1;      /**< IPv4 TTL / IPv6 hop limit of gossip frames */
    std::string key_file; /**< absolute, or relative to the node file */
    bool unicast = false; /**< send a copy to every peer instead of the group */
    uint32_t batch_interval_us = 1000;
    uint32_t heartbeat_interval_ms = 100;
    uint32_t suspect_after_ms = 500;
    uint32_t dead_after_ms = 1500;
    uint32_t reannounce_interval_ms = 2000;
    uint32_t sync_timeout_ms = 500;
    /** Multicast: seconds between the IGMP / MLD reports of the group after
     *  the join; 0: the node reports nothing (static memberships). */
    uint32_t group_report_interval_s = 30;
};

struct EalConfig {
    uint32_t memory_mb = 512;
    bool huge_pages = true;
    std::string file_prefix;        /**< empty: "flowhome<node id>" */
    std::vector<std::string> extra; /**< appended verbatim */
};

/** The operator's ways in (docs/console.md). */
struct ConsoleConfig {
    /** Control socket path; empty: /var/run/flowhome/<file prefix>.sock; "off": none. */
    std::string socket;
    /** Prometheus HTTP endpoint (GET /metrics); absent: no endpoint. IPv4 only. */
    std::optional<IpAddr> metrics_address;
    uint16_t metrics_port = 0;
};

struct NodeConfig {
    std::string source_file;
    NodeId node_id = kInvalidNode;
    std::string name;
    EalConfig eal;
    std::vector<PortConfig> ports;
    LcoreConfig lcores;
    std::vector<VipConfig> vips;
    std::vector<DomainConfig> domains;
    std::vector<PeerConfig> peers;
    TableConfig table;
    MissPolicy miss_policy = MissPolicy::drop;
    uint8_t max_hops = 1; /**< redirects a packet may take in total */
    BackoffConfig backoff;
    GossipConfig gossip;
    bool drain = false; /**< start draining: serve what it owns, claim nothing new */
    /** Serve every VIP packet locally without looking up ownership: what a
     *  fleet without flowhome does (for comparisons and tests). */
    bool bypass_ownership = false;
    ConsoleConfig console;

    const PortConfig *wire_port() const noexcept;
    const PortConfig *local_port() const noexcept;
    const DomainConfig *domain(const std::string &name) const noexcept;
    /** The UDP port this node takes GENEVE on: its GENEVE domains' port (the
     *  loader makes them agree), 6081 without one. */
    uint16_t geneve_receive_port() const noexcept;
};

/** Loads and validates @p path. Throws ConfigError. */
NodeConfig load_config(const std::string &path);
/** As load_config() from text; @p name is used in messages as the file name. */
NodeConfig load_config_text(const std::string &text, const std::string &name);

const char *to_string(MissPolicy p) noexcept;
const char *to_string(TableMemory m) noexcept;
const char *to_string(EncapKind e) noexcept;
const char *to_string(PortRole r) noexcept;
const char *to_string(VipProtocol p) noexcept;

} // namespace flowhome
