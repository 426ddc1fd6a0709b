/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/node.hpp"

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_flow.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_membership.hpp"
#include "flowhome/gossip_transport.hpp"
#include "flowhome/ports.hpp"
#include "flowhome/table_flow_store.hpp"

namespace flowhome {
namespace {

constexpr unsigned kControlRingSize = 16384;
constexpr unsigned kMbufCache = 256;
constexpr unsigned kGossipHandoffRing = 4096; /* frames the workers hand to the control lcore */
constexpr unsigned kGossipTxRing = 1024;      /* frames worker 0 sends for it */

int worker_main(void *arg)
{
    return static_cast<Worker *>(arg)->run();
}

int control_main(void *arg)
{
    return static_cast<ControlLoop *>(arg)->run();
}

uint16_t refresh_interval(const TableConfig &t)
{
    /* Restamp an owned record after a quarter of the shortest timeout, so
     * an active connection is refreshed several times before it could
     * expire. */
    const uint32_t shortest = std::min(t.tcp_idle_timeout_s, t.udp_idle_timeout_s);
    return static_cast<uint16_t>(std::clamp<uint32_t>(shortest / 4, 1, 8191));
}

} // namespace

uint16_t mbuf_data_room(const NodeConfig &cfg) noexcept
{
    /* NICs size their receive buffers from the data room rounded down to
     * their granularity (i40e 128 bytes, ixgbe and igc 1 KB) and count the
     * CRC in: a data room just large enough for the frame would make them
     * scatter the largest frames over two mbufs. */
    constexpr uint32_t kGranularity = 1024;
    uint32_t frame = RTE_MBUF_DEFAULT_DATAROOM;
    for (const PortConfig &p : cfg.ports)
        frame = std::max<uint32_t>(frame, uint32_t{p.mtu} + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN +
                                              2 * RTE_VLAN_HLEN);
    frame = (frame + kGranularity - 1) / kGranularity * kGranularity;
    return static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + frame);
}

Node::Node(const NodeConfig &cfg, std::optional<PortIds> ids) : cfg_(cfg)
{
    /* A constructor that throws gets no destructor: what was built so far
     * (a started port, rings, the flow rule) is released here. */
    try {
        build(ids);
    } catch (...) {
        release();
        throw;
    }
}

void Node::build(std::optional<PortIds> ids)
{
    /* First: the rest takes time (a table of millions of flows, ports, a
     * new incarnation) that a wrong -l on the command line would waste. */
    auto check_lcore = [](unsigned lcore, const char *role) {
        if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore())
            throw std::runtime_error(
                fmt::format("{} lcore {} is not an enabled worker lcore", role, lcore));
    };
    check_lcore(cfg_.lcores.control, "control");
    for (const unsigned lcore : cfg_.lcores.workers)
        check_lcore(lcore, "worker");
    const PortConfig *wire = cfg_.wire_port();
    const PortConfig *local = cfg_.local_port();
    if (wire == nullptr)
        throw std::runtime_error("configuration has no wire port");
    const auto nworkers = static_cast<uint16_t>(cfg_.lcores.workers.size());
    if (nworkers == 0)
        throw std::runtime_error("configuration has no worker lcore");

    if (ids) {
        ports_ = *ids;
    } else {
        ports_.wire = find_port(*wire);
        ports_.local = local ? find_port(*local) : kNoPort;
    }

    /* With gossip the control lcore gets a TX queue of its own on the wire
     * port and, on a NIC, an RX queue that rte_flow steers gossip to;
     * virtual devices hand gossip over through a ring instead. */
    const bool gossip = cfg_.gossip.enabled;
    rte_eth_dev_info wire_info{};
    if (int rc = rte_eth_dev_info_get(ports_.wire, &wire_info); rc != 0)
        throw std::runtime_error(
            fmt::format("port '{}': cannot get device info: {}", wire->name, rte_strerror(-rc)));
    bool try_steering = gossip && !wire->is_vdev() && wire_info.max_rx_queues > nworkers;
    /* A device without a spare TX queue (net_af_packet's queues come in
     * pairs) gets gossip frames sent by worker 0 from a ring. */
    bool own_tx_queue = gossip && wire_info.max_tx_queues > nworkers;
    auto wire_rx = static_cast<uint16_t>(nworkers + (try_steering ? 1 : 0));
    auto wire_tx = static_cast<uint16_t>(nworkers + (own_tx_queue ? 1 : 0));

    /* Enough mbufs to fill every descriptor ring of every queue (a NIC's TX
     * ring keeps sent mbufs until it wraps) and the gossip rings, plus the
     * workers' in-flight bursts and a cache for every lcore. */
    unsigned nb_mbufs = 0;
    auto ring_slots = [&](uint16_t port_id, const PortConfig &p, unsigned rxq, unsigned txq) {
        /* As many as the device will take: configure_port() raises a count
         * below its minimum (and rounds it to its alignment) the same way. */
        uint16_t rxd = p.rx_descriptors;
        uint16_t txd = p.tx_descriptors;
        rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd);
        nb_mbufs += rxq * rxd + txq * txd;
    };
    ring_slots(ports_.wire, *wire, wire_rx, wire_tx);
    if (local != nullptr && ports_.local != kNoPort)
        ring_slots(ports_.local, *local, nworkers, nworkers);
    if (gossip)
        nb_mbufs += kGossipHandoffRing + kGossipTxRing;
    /* A mempool cache holds up to 1.5 times its size before it flushes. */
    nb_mbufs += nworkers * 4 * kBurst + (nworkers + 2) * kMbufCache * 3 / 2 + 2048;
    const int socket = static_cast<int>(rte_socket_id());
    /* Packet buffers where the wire port's device is: its DMA stays on its
     * NUMA node. */
    const int port_socket = rte_eth_dev_socket_id(ports_.wire);
    const std::string pool_name = fmt::format("fh_pool_{}", cfg_.node_id);
    const uint16_t data_room = mbuf_data_room(cfg_);
    std::vector<uint16_t> pool_ports{ports_.wire};
    if (ports_.local != kNoPort)
        pool_ports.push_back(ports_.local);
    pool_ = create_packet_pool(pool_name.c_str(), nb_mbufs, kMbufCache, data_room,
                               port_socket >= 0 ? port_socket : socket, pool_ports);
    if (pool_ == nullptr)
        throw std::runtime_error(fmt::format(
            "cannot create a pool of {} mbufs of {} bytes (the ports' MTU and headroom): {}{}",
            nb_mbufs, data_room, rte_strerror(rte_errno),
            rte_errno != ENOMEM   ? ""
            : cfg_.eal.huge_pages ? "; the host has no free hugepages left for it"
                                  : "; raise eal.memory_mb"));

    const size_t qsbr_size = rte_rcu_qsbr_get_memsize(nworkers);
    qsbr_ = static_cast<rte_rcu_qsbr *>(rte_zmalloc("fh_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
    if (qsbr_ == nullptr || rte_rcu_qsbr_init(qsbr_, nworkers) != 0)
        throw std::runtime_error("cannot allocate the RCU QSBR variable");

    const std::string ring_name = fmt::format("fh_ctl_{}", cfg_.node_id);
    to_control_ = rte_ring_create_elem(ring_name.c_str(), sizeof(ControlMsg), kControlRingSize,
                                       socket, RING_F_SC_DEQ);
    if (to_control_ == nullptr)
        throw std::runtime_error(
            fmt::format("cannot create the control ring: {}", rte_strerror(rte_errno)));

    table_heap_ = std::make_unique<TableHeap>(
        cfg_.table.memory, fmt::format("fh_tables_{}", cfg_.node_id),
        OwnershipTable::memory_bound(cfg_.table.capacity_ipv4, cfg_.table.capacity_ipv6));
    table_ = std::make_unique<OwnershipTable>(OwnershipTable::Params{
        .name = fmt::format("fh_own_{}", cfg_.node_id),
        .capacity_ipv4 = cfg_.table.capacity_ipv4,
        .capacity_ipv6 = cfg_.table.capacity_ipv6,
        .socket_id = table_heap_->socket_id(),
        .qsbr = qsbr_,
    });
    vips_ = std::make_unique<VipSet>(cfg_.vips);
    for (const PeerConfig &p : cfg_.peers)
        peers_.add(p.address, p.id);

    /* From the first queue set up, a device may hold mbufs of the pool
     * (net_tap fills its RX rings there, others when they start), also
     * after configure_port() fails and stops it. */
    pool_given_ = true;
    try {
        configure_port(ports_.wire, *wire, wire_rx, wire_tx, nworkers, pool_);
    } catch (const PortQueuesRefused &e) {
        if (wire_rx == nworkers && wire_tx == nworkers)
            throw;
        /* Devices may refuse the control lcore's queues in ways their info
         * does not show: net_tap wants as many TX queues as RX queues,
         * vmxnet3 a power of two, some NICs refuse the RSS table that keeps
         * workers off the gossip queue. Gossip then goes through the
         * workers, as on a device with no queue to spare. */
        fmt::print(stderr,
                   "flowhome: port '{}' refused {} RX / {} TX queues ({}); gossip goes through "
                   "the workers' queues instead\n",
                   wire->name, wire_rx, wire_tx, e.what());
        try_steering = false;
        own_tx_queue = false;
        wire_rx = wire_tx = nworkers;
        configure_port(ports_.wire, *wire, wire_rx, wire_tx, nworkers, pool_);
    }
    ports_started_ = true; /* configure_port() stops a port it fails after starting */
    if (ports_.local != kNoPort && local != nullptr) {
        configure_port(ports_.local, *local, nworkers, nworkers, nworkers, pool_);
        local_started_ = true;
    }
    templates_ = std::make_unique<TemplateSet>(
        build_template_set(cfg_, wire->mac ? *wire->mac : port_mac(ports_.wire), ports_.wire));

    view_ = std::make_unique<ClusterView>();
    view_->eligible.push_back(cfg_.node_id);
    for (const PeerConfig &p : cfg_.peers)
        view_->eligible.push_back(p.id);
    std::sort(view_->eligible.begin(), view_->eligible.end());

    shared_.self = cfg_.node_id;
    shared_.miss_policy = cfg_.miss_policy;
    shared_.max_hops = cfg_.max_hops;
    shared_.refresh_after_s = refresh_interval(cfg_.table);
    shared_.claim_grace_tsc = rte_get_tsc_hz() / 1000 * cfg_.table.claim_grace_ms;
    shared_.backoff = cfg_.backoff;
    shared_.decap = decap_config(cfg_);
    shared_.wire_port = ports_.wire;
    shared_.local_port = ports_.local;
    shared_.bypass_ownership = cfg_.bypass_ownership;
    shared_.flow_cache = cfg_.table.flow_cache;
    shared_.vips = vips_.get();
    shared_.table = table_.get();
    shared_.peers = &peers_;
    shared_.templates.store(templates_.get(), std::memory_order_release);
    shared_.view.store(view_.get(), std::memory_order_release);
    shared_.to_control = to_control_;
    shared_.qsbr = qsbr_;
    shared_.clock = &clock_;

    shared_.draining.store(cfg_.drain);
    if (gossip) {
        start_gossip(try_steering, own_tx_queue, nworkers);
        log_ = std::make_unique<LogRelay>(stderr);
    }
    control_ = std::make_unique<ControlLoop>(ControlLoop::Params{
        .self = cfg_.node_id,
        .table = table_.get(),
        .from_workers = to_control_,
        .clock = &clock_,
        .timeouts = cfg_.table,
        .backoff = cfg_.backoff,
        .stop = &control_stop_,
        .engine = engine_.get(),
        .transport = transport_.get(),
        .datapath = &shared_,
        .qsbr = qsbr_,
        .log = log_.get(),
    });
    for (uint16_t i = 0; i < nworkers; ++i)
        workers_.push_back(std::make_unique<Worker>(shared_, i, i));
}

KeyFile load_gossip_keys(const GossipConfig &g, bool warn)
{
    KeyFile keys;
    try {
        keys = load_key_file(g.key_file);
    } catch (const GossipKeyError &e) {
        throw std::runtime_error(fmt::format("gossip.key_file: {}", e.what()));
    }
    if (const std::string w = warn ? key_file_warning(keys, g.key_file) : ""; !w.empty())
        fmt::print(stderr, "flowhome: warning: {}\n", w);
    return keys;
}

void Node::start_gossip(bool try_steering, bool own_tx_queue, uint16_t nworkers)
{
    const GossipConfig &g = cfg_.gossip;
    const PortConfig *wire = cfg_.wire_port();
    const IpAddr src = *wire->address(g.group.family);

    KeyFile keys = load_gossip_keys(g);

    if (!g.unicast) {
        /* A NIC's MAC filter drops multicast frames to groups it was not
         * told of, before RSS or rte_flow sees them. Virtual devices filter
         * nothing (and do not implement the call). A device that refuses
         * (an untrusted VF, say) may still receive the group: said, not
         * fatal; gossip.unicast needs none of it. */
        if (int rc = rte_eth_allmulticast_enable(ports_.wire); rc != 0 && rc != -ENOTSUP)
            fmt::print(stderr,
                       "flowhome: warning: port '{}' refused all-multicast ({}): multicast gossip "
                       "may not arrive; if peers stay suspect, use gossip.unicast\n",
                       wire->name, rte_strerror(-rc));
    }
    shared_.gossip.enabled = true;
    shared_.gossip.unicast = g.unicast;
    shared_.gossip.udp_port = g.port;
    shared_.gossip.group = g.group;
    shared_.gossip.local4 = wire->ipv4;
    shared_.gossip.local6 = wire->ipv6;

    GossipTransport::Params tp;
    tp.port_id = ports_.wire;
    tp.tx_queue = nworkers;
    if (!own_tx_queue) {
        const std::string name = fmt::format("fh_gtx_{}", cfg_.node_id);
        gossip_tx_ = rte_ring_create(name.c_str(), kGossipTxRing, static_cast<int>(rte_socket_id()),
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (gossip_tx_ == nullptr)
            throw std::runtime_error(
                fmt::format("cannot create the gossip TX ring: {}", rte_strerror(rte_errno)));
        shared_.gossip_tx = gossip_tx_;
        tp.tx_ring = gossip_tx_;
    }
    tp.pool = pool_;
    tp.src_mac = wire->mac ? *wire->mac : port_mac(ports_.wire);
    tp.src = src;
    tp.group = g.group;
    tp.udp_port = g.port;
    tp.ttl = g.ttl;
    tp.report_interval_s = g.unicast ? 0 : g.group_report_interval_s;
    if (g.unicast) {
        for (const PeerConfig &peer : cfg_.peers) {
            if (peer.address.family != g.group.family)
                continue;
            const DomainConfig *d = cfg_.domain(peer.domain);
            const auto mac = peer.mac ? peer.mac : d->next_hop_mac;
            tp.unicast.push_back({peer.address, *mac});
        }
    }
    std::string why;
    if (try_steering && steer_gossip(ports_.wire, nworkers, shared_.gossip, why)) {
        steered_ = true;
        tp.rx_queue = nworkers;
        gossip_path_ = "rte_flow to the control queue";
    } else {
        const std::string name = fmt::format("fh_gsp_{}", cfg_.node_id);
        handoff_ = rte_ring_create(name.c_str(), kGossipHandoffRing,
                                   static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
        if (handoff_ == nullptr)
            throw std::runtime_error(
                fmt::format("cannot create the gossip ring: {}", rte_strerror(rte_errno)));
        shared_.gossip_handoff = handoff_;
        tp.handoff = handoff_;
        gossip_path_ = try_steering ? "worker hand-off (rte_flow: " + why + ")"
                                    : "worker hand-off (virtual device)";
    }
    gossip_path_ += own_tx_queue ? "; sent on a TX queue of its own" : "; sent by worker 0";
    transport_ = std::make_unique<GossipTransport>(tp);

    GossipParams gp;
    gp.self = cfg_.node_id;
    gp.cluster_id = g.cluster_id;
    gp.incarnation = new_incarnation();
    for (const PeerConfig &peer : cfg_.peers)
        gp.peers.push_back(peer.id);
    gp.max_frame = gossip_max_frame(wire->mtu, g.group.family == Family::ipv6);
    gp.batch_interval_us = g.batch_interval_us;
    gp.heartbeat_interval_ms = g.heartbeat_interval_ms;
    gp.suspect_after_ms = g.suspect_after_ms;
    gp.dead_after_ms = g.dead_after_ms;
    gp.reannounce_interval_ms = g.reannounce_interval_ms;
    gp.sync_timeout_ms = g.sync_timeout_ms;
    gp.draining = cfg_.drain;
    gp.life_out = shared_.node_life;
    store_ = std::make_unique<TableFlowStore>(*table_);
    engine_ = std::make_unique<GossipEngine>(
        gp, keys.ring, *store_,
        [t = transport_.get()](std::span<const uint8_t> frame) { t->send(frame); }, 0);
}

Node::~Node()
{
    release();
}

void Node::release() noexcept
{
    stop();
    if (steered_) {
        rte_flow_error err{};
        rte_flow_flush(ports_.wire, &err); /* the gossip rule, the port's only one */
    }
    if (ports_started_)
        rte_eth_dev_stop(ports_.wire);
    if (local_started_)
        rte_eth_dev_stop(ports_.local);
    workers_.clear();
    control_.reset();
    log_.reset(); /* writes what the control lcore logged last */
    engine_.reset();
    store_.reset();
    transport_.reset();
    table_.reset();
    table_heap_.reset();
    rte_ring_free(handoff_);
    rte_ring_free(gossip_tx_);
    rte_ring_free(to_control_);
    rte_free(qsbr_);
    /* Once a port has had queues from the pool, the pool stays: mbufs may
     * still sit in stopped devices' rings, which rte_eal_cleanup() may free
     * into it, and the EAL releases all memory then. */
    if (!pool_given_)
        rte_mempool_free(pool_);
}

void Node::start()
{
    if (phase_ == Phase::running)
        return;
    if (phase_ == Phase::stopped)
        throw std::logic_error("a node that has stopped is not started again");
    shared_.stop.store(false);
    control_stop_.store(false);
    const unsigned control_lcore = cfg_.lcores.control;
    if (int rc = rte_eal_remote_launch(control_main, control_.get(), control_lcore); rc != 0)
        throw std::runtime_error(fmt::format("cannot launch the control loop on lcore {}: {}",
                                             control_lcore, rte_strerror(-rc)));
    phase_ = Phase::running;
    for (size_t i = 0; i < workers_.size(); ++i) {
        const unsigned lcore = cfg_.lcores.workers[i];
        if (int rc = rte_eal_remote_launch(worker_main, workers_[i].get(), lcore); rc != 0) {
            stop();
            throw std::runtime_error(fmt::format("cannot launch worker {} on lcore {}: {}", i,
                                                 lcore, rte_strerror(-rc)));
        }
    }
}

void Node::stop() noexcept
{
    if (phase_ != Phase::running)
        return;
    /* The control lcore first: its last act, the gossip departure, may go
     * out through worker 0 (a device without a spare TX queue). */
    control_stop_.store(true);
    rte_eal_wait_lcore(cfg_.lcores.control);
    shared_.stop.store(true);
    rte_eal_mp_wait_lcore();
    phase_ = Phase::stopped;
}

} // namespace flowhome
