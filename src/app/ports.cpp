/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/ports.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

namespace flowhome {
namespace {

template <typename Error = std::runtime_error>
[[noreturn]] void fail(const PortConfig &port, const char *what, int rc)
{
    throw Error(fmt::format("port '{}' ({}): {}: {}", port.name, port.device, what,
                            rte_strerror(rc < 0 ? -rc : rc)));
}

} // namespace

uint16_t find_port(const PortConfig &port)
{
    uint16_t id = 0;
    const std::string name = port.device_name();
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) == 0)
        return id;
    /* EAL probed the vdev at start-up and went on when its driver refused
     * it; the driver's own reason is in the log above, not here. */
    if (port.is_vdev())
        throw std::runtime_error(
            fmt::format("port '{}': virtual device '{}' did not start: its driver's error is "
                        "in the EAL log above",
                        port.name, name));
    throw std::runtime_error(
        fmt::format("port '{}': no DPDK port at '{}' (is the device bound to a DPDK driver? "
                    "if it is, its driver's error is in the EAL log above)",
                    port.name, name));
}

MacAddr port_mac(uint16_t port_id)
{
    rte_ether_addr a{};
    if (int rc = rte_eth_macaddr_get(port_id, &a); rc != 0)
        throw std::runtime_error(
            fmt::format("port {}: cannot read MAC address: {}", port_id, rte_strerror(-rc)));
    MacAddr m;
    std::copy(std::begin(a.addr_bytes), std::end(a.addr_bytes), m.bytes.begin());
    return m;
}

void read_port_stats(uint16_t port_id, rte_eth_stats &out)
{
    static std::mutex mu;
    out = rte_eth_stats{};
    std::lock_guard lock(mu);
    if (rte_eth_stats_get(port_id, &out) != 0)
        out = rte_eth_stats{};
}

void configure_port(uint16_t port_id, const PortConfig &port, uint16_t rx_queues,
                    uint16_t tx_queues, uint16_t rss_queues, rte_mempool *pool)
{
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0)
        fail(port, "cannot get device info", rc);
    if (rx_queues > info.max_rx_queues || tx_queues > info.max_tx_queues)
        throw PortQueuesRefused(
            fmt::format("port '{}': needs {} RX / {} TX queues, the device has {} / {}", port.name,
                        rx_queues, tx_queues, info.max_rx_queues, info.max_tx_queues));

    rte_eth_conf conf{};
    if (rss_queues > 1 && info.flow_type_rss_offloads != 0) {
        /* Spread connections over the workers; every packet of a
         * connection lands on the same worker (and its pending claims). */
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    /* The NIC's verdict on IPv4 header checksums spares the parser its sum
     * (RTE_MBUF_F_RX_IP_CKSUM_GOOD); a bad or unknown one is checked again. */
    if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM)
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;

    /* Link changes through the device's interrupt where it has one: the
     * link state read then (the gossip transport's, every 100 ms; `show
     * ports`) is the value the interrupt left, not a question to the device
     * (on some NICs a firmware command or an ioctl), and the transport
     * hears of a flap too short for its reads. */
    if (info.dev_flags != nullptr && (*info.dev_flags & RTE_ETH_DEV_INTR_LSC) != 0)
        conf.intr_conf.lsc = 1;

    if (int rc = rte_eth_dev_configure(port_id, rx_queues, tx_queues, &conf); rc != 0)
        fail<PortQueuesRefused>(port, "cannot configure", rc);

    uint16_t rxd = port.rx_descriptors;
    uint16_t txd = port.tx_descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd); rc != 0)
        fail(port, "cannot adjust descriptor counts", rc);

    const int socket = rte_eth_dev_socket_id(port_id);
    for (uint16_t q = 0; q < rx_queues; ++q)
        if (int rc = rte_eth_rx_queue_setup(port_id, q, rxd, socket, nullptr, pool); rc != 0)
            fail<PortQueuesRefused>(port, "cannot set up an RX queue", rc);
    for (uint16_t q = 0; q < tx_queues; ++q) {
        rte_eth_txconf txconf = info.default_txconf;
        txconf.offloads = conf.txmode.offloads;
        if (int rc = rte_eth_tx_queue_setup(port_id, q, txd, socket, &txconf); rc != 0)
            fail<PortQueuesRefused>(port, "cannot set up a TX queue", rc);
    }

    /* A device that refuses the MTU stops the node. One without an MTU to
     * set (most virtual devices: they pass frames of any size) runs on, and
     * flowhome keeps to the configured MTU itself (templates, gossip frames,
     * too-big errors); where such a device reports another MTU, say so. */
    if (int rc = rte_eth_dev_set_mtu(port_id, port.mtu); rc == -ENOTSUP) {
        uint16_t actual = 0;
        if (rte_eth_dev_get_mtu(port_id, &actual) == 0 && actual != port.mtu)
            fmt::print(stderr,
                       "flowhome: port '{}' cannot set its MTU (it reports {}); flowhome keeps to "
                       "{} as configured\n",
                       port.name, actual, port.mtu);
    } else if (rc != 0) {
        uint16_t actual = 0;
        if (rte_eth_dev_get_mtu(port_id, &actual) != 0 || actual != port.mtu)
            fail(port, fmt::format("cannot set MTU {}", port.mtu).c_str(), rc);
    }
    if (port.mac) {
        rte_ether_addr a{};
        std::copy(port.mac->bytes.begin(), port.mac->bytes.end(), a.addr_bytes);
        const int rc = rte_eth_dev_default_mac_addr_set(port_id, &a);
        if (rc == -ENOTSUP)
            /* Some virtual devices (net_pcap, net_ring) have no MAC of their
             * own to change; the configured one is still what flowhome
             * sends from (templates, ICMP errors). Said once at start-up. */
            fmt::print(stderr,
                       "flowhome: port '{}' cannot change its MAC address; sending from {} "
                       "as configured\n",
                       port.name, port.mac->to_string());
        else if (rc != 0)
            fail(port, "cannot set MAC address", rc);
    }
    if (int rc = rte_eth_dev_start(port_id); rc != 0)
        fail(port, "cannot start", rc);
    /* The TX queues are set up without RTE_ETH_TX_OFFLOAD_MULTI_SEGS, so
     * that NICs keep their fast single-segment paths; those send only the
     * first segment of a chain and leak the rest. mbuf_data_room() sizes
     * mbufs for one frame each; a device that scatters anyway is refused
     * here rather than found out by truncated redirects. A device that
     * does not report it (most virtual ones) chains only a frame longer
     * than the data room, longer than any port's MTU: the workers drop it
     * on arrival (rx_chained). */
    for (uint16_t q = 0; q < rx_queues; ++q) {
        rte_eth_rxq_info qinfo{};
        if (rte_eth_rx_queue_info_get(port_id, q, &qinfo) == 0 && qinfo.scattered_rx != 0) {
            rte_eth_dev_stop(port_id);
            throw std::runtime_error(fmt::format(
                "port '{}' ({}): the device would receive frames of MTU {} in several mbufs "
                "of {} bytes (scattered receive), which flowhome does not send; lower the MTU",
                port.name, port.device, port.mtu, rte_pktmbuf_data_room_size(pool)));
        }
    }
    if (conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS && rss_queues < rx_queues) {
        /* Keep the queues reserved for rte_flow out of the RSS spread. */
        std::vector<rte_eth_rss_reta_entry64> reta((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                                   RTE_ETH_RETA_GROUP_SIZE);
        for (uint16_t i = 0; i < info.reta_size; ++i) {
            auto &group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
            group.mask |= uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
            group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = static_cast<uint16_t>(i % rss_queues);
        }
        if (int rc = rte_eth_dev_rss_reta_update(port_id, reta.data(), info.reta_size); rc != 0) {
            rte_eth_dev_stop(port_id);
            fail<PortQueuesRefused>(port, "cannot restrict RSS to the worker queues", rc);
        }
    }
    if (port.promiscuous) {
        if (int rc = rte_eth_promiscuous_enable(port_id); rc != 0 && rc != -ENOTSUP) {
            rte_eth_dev_stop(port_id);
            fail(port, "cannot enable promiscuous mode", rc);
        }
    }
}

bool packet_pool_may_pack(std::span<const std::string_view> drivers) noexcept
{
    static constexpr std::string_view kByVirtualAddress[] = {
        "net_af_packet", "net_memif", "net_null", "net_pcap", "net_ring", "net_tap",
    };
    return std::all_of(drivers.begin(), drivers.end(), [](std::string_view d) {
        return std::find(std::begin(kByVirtualAddress), std::end(kByVirtualAddress), d) !=
               std::end(kByVirtualAddress);
    });
}

rte_mempool *create_packet_pool(const char *name, unsigned n, unsigned cache, uint16_t data_room,
                                int socket, std::span<const uint16_t> ports) noexcept
{
    std::array<std::string_view, RTE_MAX_ETHPORTS> drivers{};
    const size_t n_ports = std::min(ports.size(), drivers.size());
    for (size_t i = 0; i < n_ports; ++i) {
        rte_eth_dev_info info{};
        /* A port it cannot name stays "": not one of the list. */
        if (rte_eth_dev_info_get(ports[i], &info) == 0 && info.driver_name != nullptr)
            drivers[i] = info.driver_name;
    }
    if (rte_eal_has_hugepages() || ports.size() > drivers.size() ||
        !packet_pool_may_pack(std::span(drivers.data(), n_ports)))
        return rte_pktmbuf_pool_create(name, n, cache, 0, data_room, socket);
    /* rte_pktmbuf_pool_create()'s steps, with objects free to cross pages. */
    rte_mempool *mp = rte_mempool_create_empty(name, n, sizeof(rte_mbuf) + data_room, cache,
                                               sizeof(rte_pktmbuf_pool_private), socket,
                                               RTE_MEMPOOL_F_NO_IOVA_CONTIG);
    if (mp == nullptr)
        return nullptr;
    int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), nullptr);
    if (rc == 0) {
        rte_pktmbuf_pool_private priv{};
        priv.mbuf_data_room_size = data_room;
        rte_pktmbuf_pool_init(mp, &priv);
        rc = rte_mempool_populate_default(mp);
    }
    if (rc < 0) {
        rte_mempool_free(mp);
        rte_errno = -rc;
        return nullptr;
    }
    rte_mempool_obj_iter(mp, rte_pktmbuf_init, nullptr);
    return mp;
}

} // namespace flowhome
