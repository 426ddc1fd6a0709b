/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * A running node: its ports, ownership table, rings, templates, one control
 * loop and its workers, assembled from a NodeConfig.
 *
 * Threading: constructed, started, stopped and destroyed on the main lcore,
 * after rte_eal_init(). Errors: the constructor and start() throw
 * std::runtime_error naming what failed (start-up may throw; the datapath
 * never does).
 */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flowhome/config.hpp"
#include "flowhome/control.hpp"
#include "flowhome/gossip_auth.hpp"
#include "flowhome/log_relay.hpp"
#include "flowhome/ownership.hpp"
#include "flowhome/placement.hpp"
#include "flowhome/table_heap.hpp"
#include "flowhome/template_set.hpp"
#include "flowhome/vip.hpp"
#include "flowhome/worker.hpp"

struct rte_mempool;

namespace flowhome {
class GossipEngine;
class GossipTransport;
class FlowStore;
} // namespace flowhome

struct rte_ring;
struct rte_rcu_qsbr;

namespace flowhome {

/**
 * Data room of the node's mbufs: headroom (where redirects' outer headers
 * go) plus the largest frame a port's MTU allows, two VLAN tags and the CRC
 * included, rounded up to 1 KB (the coarsest receive-buffer granularity of
 * common NICs), and never less than DPDK's default. One mbuf holds any
 * frame a port receives or gossip sends, so no port needs scattered
 * receive (configure_port() refuses a port that would scatter anyway).
 */
uint16_t mbuf_data_room(const NodeConfig &cfg) noexcept;

/**
 * The keys of @p g's key file, read and checked as the node starts gossip
 * (and `--check` does): with @p warn, a warning the file deserves (its
 * permissions) is printed to stderr. Throws std::runtime_error
 * "gossip.key_file: ..." for a file that cannot be read or parsed.
 */
KeyFile load_gossip_keys(const GossipConfig &g, bool warn = true);

class Node {
public:
    /** DPDK port ids of the node's ports; kNoPort when absent. */
    struct PortIds {
        uint16_t wire = kNoPort;
        uint16_t local = kNoPort;
    };

    /**
     * Resolves the ports of @p cfg by device name (or takes @p ids, for
     * ports created by the caller), and configures and starts them with one
     * RX/TX queue pair per worker (and, with gossip, the control lcore's
     * queues on the wire port: docs/design.md). Throws std::runtime_error
     * with the reason; whatever it built by then is released.
     */
    explicit Node(const NodeConfig &cfg, std::optional<PortIds> ids = std::nullopt);
    ~Node();
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;

    /** Launches the control loop and the workers on their lcores. Once: a
     *  node that has stopped told the fleet it left (throws std::logic_error). */
    void start();
    /** Asks every loop to stop and waits for them; idempotent. */
    void stop() noexcept;

    /** A multi-line report of every counter, as printed on exit. */
    std::string stats_report() const;

    const NodeConfig &config() const noexcept { return cfg_; }
    OwnershipTable &table() noexcept { return *table_; }
    const TableHeap &table_heap() const noexcept { return *table_heap_; }
    ControlLoop &control() noexcept { return *control_; }
    std::vector<std::unique_ptr<Worker>> &workers() noexcept { return workers_; }
    DatapathShared &shared() noexcept { return shared_; }
    PortIds ports() const noexcept { return ports_; }
    rte_mempool *mempool() const noexcept { return pool_; }
    /** The gossip engine, or nullptr when the node runs without gossip. */
    GossipEngine *engine() noexcept { return engine_.get(); }
    const GossipTransport *transport() const noexcept { return transport_.get(); }
    /** Where the control lcore logs membership changes; nullptr without gossip. */
    const LogRelay *log_relay() const noexcept { return log_.get(); }

private:
    void build(std::optional<PortIds> ids);
    /* What the destructor frees; also run when the constructor throws. */
    void release() noexcept;
    void start_gossip(bool try_steering, bool own_tx_queue, uint16_t nworkers);
    std::string gossip_report() const;

    NodeConfig cfg_;
    PortIds ports_;
    rte_mempool *pool_ = nullptr;
    rte_rcu_qsbr *qsbr_ = nullptr;
    rte_ring *to_control_ = nullptr;
    SharedClock clock_;
    std::unique_ptr<TableHeap> table_heap_; /**< outlives table_ */
    std::unique_ptr<OwnershipTable> table_;
    std::unique_ptr<VipSet> vips_;
    PeerDirectory peers_;
    std::unique_ptr<TemplateSet> templates_;
    std::unique_ptr<ClusterView> view_;
    DatapathShared shared_;
    std::unique_ptr<LogRelay> log_; /**< the control lcore's log; outlives control_ */
    std::unique_ptr<ControlLoop> control_;
    std::vector<std::unique_ptr<Worker>> workers_;
    rte_ring *handoff_ = nullptr;
    rte_ring *gossip_tx_ = nullptr;
    std::unique_ptr<GossipTransport> transport_;
    std::unique_ptr<FlowStore> store_;
    std::unique_ptr<GossipEngine> engine_;
    std::string gossip_path_;
    std::atomic<bool> control_stop_{false}; /**< set before shared_.stop: see stop() */
    /** A node runs once: built, then running, then stopped for good. */
    enum class Phase : uint8_t { built, running, stopped } phase_ = Phase::built;
    bool ports_started_ = false; /**< the wire port, stopped by release() */
    /** A port's queues were set up from the pool: it stays (release()). */
    bool pool_given_ = false;
    bool local_started_ = false;
    bool steered_ = false; /* an rte_flow rule steers gossip to the control queue */
};

} // namespace flowhome
