/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's world without ports: DatapathShared assembled by hand over an
 * OwnershipTable of N flows, a VIP set, two peers (GENEVE and IP-in-IP) and
 * their templates; synthetic frames written into mbufs that are reused
 * between iterations (reset from a pristine copy, so encapsulation can be
 * repeated).
 *
 * Flow i: IPv4 client 198.51.100.(i % 256) port 1024 + i / 256 to
 * 203.0.113.10:80; IPv6 client 2001:db8:200::<i> port 1024 + i % 32768 to
 * [2001:db8:100::10]:443. Owner by i % 4: 0 and 1 this node, 2 the GENEVE
 * peer, 3 the IP-in-IP peer. All addresses are documentation ranges.
 */
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>

#include "flowhome/encap.hpp"
#include "flowhome/ownership.hpp"
#include "flowhome/table_heap.hpp"
#include "flowhome/template_set.hpp"
#include "flowhome/vip.hpp"
#include "flowhome/worker.hpp"

namespace flowhome::bench {

inline constexpr NodeId kSelf = 1;
inline constexpr NodeId kGenevePeer = 2;
inline constexpr NodeId kIpipPeer = 3;
inline constexpr uint16_t kWirePort = 0; /* never transmitted on: batches are emptied */
inline constexpr uint16_t kLocalPort = 1;

/** Which packets a run sends. */
enum class Traffic : uint8_t {
    plain, /**< TCP ACKs of table flows; share of foreign ones by the mix */
    decap, /**< GENEVE from the GENEVE peer, inner flow owned by this node */
    claim, /**< TCP SYNs of flows not in the table: claimed */
};

inline IpAddr ip(const char *s)
{
    return *IpAddr::parse(s);
}

/** Flows the IPv4 key space below holds: one /24 of clients, every port. */
inline constexpr uint64_t kMaxFlows4 = uint64_t{1} << 24;

/** A bijection of [0, 2^24) that scatters consecutive numbers: odd
 * multipliers and right xorshifts, each invertible modulo 2^24. CRC32-C is
 * linear, so keys that differ from each other only in a counter's bits hash
 * into a subspace of the buckets: a traffic class of every fourth flow then
 * sees a quarter of the table, and the figures flatter the lookup. */
inline uint32_t scatter24(uint64_t i)
{
    constexpr uint32_t kMask = (1u << 24) - 1;
    auto x = static_cast<uint32_t>(i) & kMask;
    x = (x * 0x9E3779B1u) & kMask;
    x ^= x >> 11;
    x = (x * 0x85EBCA6Bu) & kMask;
    x ^= x >> 13;
    x = (x * 0xC2B2AE35u) & kMask;
    return x ^ (x >> 12);
}

/** Client address (network order bytes written at @p out) and port of flow
 * i, distinct for every i below kMaxFlows4 (IPv4) or 2^32 (IPv6). */
inline void client_of(Family f, uint64_t i, uint8_t *out, uint16_t &port)
{
    const uint32_t x = scatter24(i);
    if (f == Family::ipv4) {
        const uint32_t a = htonl(0xC6336400u | (x >> 16));
        std::memcpy(out, &a, 4);
        port = static_cast<uint16_t>(x);
    } else {
        static const uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8, 0x02, 0x00};
        std::memcpy(out, base, 16);
        const uint32_t a = htonl(static_cast<uint32_t>(i >> 24) << 24 | x);
        std::memcpy(out + 12, &a, 4);
        port = static_cast<uint16_t>(x >> 5);
    }
}

inline FlowKey key_of(Family f, uint64_t i)
{
    uint8_t client[16];
    uint16_t port;
    client_of(f, i, client, port);
    /* Parsed once: key_of runs for every packet a pass resets. */
    static const IpAddr vip4 = ip("203.0.113.10");
    static const IpAddr vip6 = ip("2001:db8:100::10");
    if (f == Family::ipv4) {
        uint32_t c;
        std::memcpy(&c, client, 4);
        return FlowKey::make4(c, htons(port), vip4.v4_be(), htons(80), kProtoTcp);
    }
    return FlowKey::make6(client, htons(port), vip6.bytes.data(), htons(443), kProtoTcp);
}

inline NodeId owner_of(uint64_t i)
{
    switch (i % 4) {
    case 2:
        return kGenevePeer;
    case 3:
        return kIpipPeer;
    default:
        return kSelf;
    }
}

/** A frame to copy into an mbuf, and where its (inner) IP header starts. */
struct FrameTemplate {
    uint8_t bytes[192];
    uint16_t len = 0;
    uint16_t l3 = 0;
    Family family = Family::none;
};

/** Ethernet + IPv4/IPv6 + TCP (20 bytes, no payload), padded to 60 bytes. */
inline FrameTemplate plain_frame(Family f, uint8_t tcp_flags)
{
    FrameTemplate t{};
    t.family = f;
    t.l3 = 14;
    uint8_t *p = t.bytes;
    const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01}, src_mac[6] = {0x02, 0, 0, 0, 0, 0xfe};
    std::memcpy(p, dst_mac, 6);
    std::memcpy(p + 6, src_mac, 6);
    uint8_t *l3 = p + 14;
    uint8_t *tcp;
    if (f == Family::ipv4) {
        p[12] = 0x08;
        p[13] = 0x00;
        l3[0] = 0x45;
        l3[3] = 40;   /* total length */
        l3[6] = 0x40; /* DF */
        l3[8] = 64;   /* TTL */
        l3[9] = kProtoTcp;
        const uint32_t vip = ip("203.0.113.10").v4_be();
        std::memcpy(l3 + 16, &vip, 4);
        tcp = l3 + 20;
        tcp[3] = 80;
        t.len = 60;
    } else {
        p[12] = 0x86;
        p[13] = 0xDD;
        l3[0] = 0x60;
        l3[5] = 20; /* payload length */
        l3[6] = kProtoTcp;
        l3[7] = 64;
        std::memcpy(l3 + 24, ip("2001:db8:100::10").bytes.data(), 16);
        tcp = l3 + 40;
        tcp[2] = 0x01;
        tcp[3] = 0xBB; /* 443 */
        t.len = 74;
    }
    tcp[12] = 0x50;
    tcp[13] = tcp_flags;
    tcp[14] = 0xFF;
    return t;
}

/** Writes flow i into the frame at @p data (a copy of @p t). */
inline void set_flow(const FrameTemplate &t, uint8_t *data, uint64_t i)
{
    uint8_t *l3 = data + t.l3;
    uint16_t port;
    if (t.family == Family::ipv4) {
        client_of(t.family, i, l3 + 12, port);
        l3[10] = l3[11] = 0;
        const uint16_t csum = htons(ipv4_header_checksum(l3, 20));
        std::memcpy(l3 + 10, &csum, 2);
        port = htons(port);
        std::memcpy(l3 + 20, &port, 2);
    } else {
        client_of(t.family, i, l3 + 8, port);
        port = htons(port);
        std::memcpy(l3 + 40, &port, 2);
    }
}

/** Restores an mbuf to a fresh received frame carrying flow i. */
inline void reset_mbuf(rte_mbuf *m, const FrameTemplate &t, uint64_t flow)
{
    m->data_off = RTE_PKTMBUF_HEADROOM;
    m->data_len = t.len;
    m->pkt_len = t.len;
    m->nb_segs = 1;
    m->next = nullptr;
    m->ol_flags = 0; /* no NIC checksum verdict: the parser verifies IPv4 in software */
    m->packet_type = 0;
    uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
    std::memcpy(d, t.bytes, t.len);
    set_flow(t, d, flow);
}

inline EncapTemplate peer_template(NodeId self, NodeId peer, const char *src, const char *dst,
                                   EncapKind kind)
{
    TemplateParams p;
    p.self = self;
    p.peer = peer;
    p.src_mac = *MacAddr::parse("02:00:00:00:00:01");
    p.dst_mac = *MacAddr::parse("02:00:00:00:00:fe");
    p.src = ip(src);
    p.dst = ip(dst);
    p.domain.name = kind == EncapKind::geneve ? "dc" : "remote";
    p.domain.encap = kind;
    p.mtu = 1500;
    p.tx_port = kWirePort;
    return build_template(p);
}

/** The GENEVE frame the GENEVE peer sends us for a plain frame of family f. */
inline FrameTemplate decap_frame(Family f, rte_mempool *pool)
{
    const FrameTemplate inner = plain_frame(f, tcp_flag::ack);
    const EncapTemplate t =
        peer_template(kGenevePeer, kSelf, "192.0.2.2", "192.0.2.1", EncapKind::geneve);
    rte_mbuf *m = rte_pktmbuf_alloc(pool);
    reset_mbuf(m, inner, 0);
    const EncapMeta meta{.flow_hash = 1,
                         .l3_offset = inner.l3,
                         .l3_len = static_cast<uint16_t>(f == Family::ipv4 ? 40 : 60),
                         .inner_family = f,
                         .hops = 1,
                         .ingress_node = kGenevePeer};
    FrameTemplate out{};
    if (encap_packet(m, t, meta) == EncapStatus::ok) {
        out.family = f;
        out.len = static_cast<uint16_t>(m->data_len);
        std::memcpy(out.bytes, rte_pktmbuf_mtod(m, const uint8_t *), out.len);
        out.l3 = static_cast<uint16_t>(out.len - meta.l3_len);
    }
    rte_pktmbuf_free(m);
    return out;
}

/** Bytes allocated from the EAL's heap of this lcore's socket and, when the
 * table has a heap of its own, from that one too: rte_hash goes where the
 * table heap says, the defer queue always to the EAL heap. */
inline size_t table_memory_allocated(const TableHeap &heap)
{
    const size_t eal = TableHeap::allocated_on(static_cast<int>(rte_socket_id()));
    return heap.transparent() ? eal + heap.allocated_bytes() : eal;
}

/** An ownership table in the memory @p memory names, with its RCU variable
 * (one reader), as a node makes it. */
struct BenchTable {
    rte_rcu_qsbr *qsbr = nullptr;
    std::unique_ptr<TableHeap> heap;
    std::unique_ptr<OwnershipTable> table;
    size_t table_bytes = 0; /**< heap memory taken by creating the table */

    BenchTable(const char *name, uint32_t cap4, uint32_t cap6, TableMemory memory)
    {
        const size_t sz = rte_rcu_qsbr_get_memsize(1);
        qsbr = static_cast<rte_rcu_qsbr *>(
            rte_zmalloc(fmt::format("{}_qsbr", name).c_str(), sz, RTE_CACHE_LINE_SIZE));
        rte_rcu_qsbr_init(qsbr, 1);
        heap = std::make_unique<TableHeap>(memory, fmt::format("{}_heap", name),
                                           OwnershipTable::memory_bound(cap4, cap6));
        const size_t before = table_memory_allocated(*heap);
        table =
            std::make_unique<OwnershipTable>(OwnershipTable::Params{.name = name,
                                                                    .capacity_ipv4 = cap4,
                                                                    .capacity_ipv6 = cap6,
                                                                    .socket_id = heap->socket_id(),
                                                                    .qsbr = qsbr});
        table_bytes = table_memory_allocated(*heap) - before;
    }
    ~BenchTable()
    {
        table.reset();
        heap.reset();
        rte_free(qsbr);
    }
    BenchTable(const BenchTable &) = delete;
    BenchTable &operator=(const BenchTable &) = delete;
};

/** Maximum of bench_vips(): the decoys' documentation addresses run out. */
inline constexpr unsigned kMaxVips = 500;

/**
 * @p n VIPs per family: the one every flow is addressed to, in the middle of
 * the list, and n - 1 decoys on other addresses (IPv4 from 203.0.113.0/24
 * and 192.0.2.0/24, IPv6 from 2001:db8:100::/64), as a node serving many
 * services has them.
 */
inline std::vector<VipConfig> bench_vips(unsigned n)
{
    std::vector<IpAddr> v4;
    for (unsigned host = 1; host < 255; ++host)
        if (host != 10)
            v4.push_back(ip(fmt::format("203.0.113.{}", host).c_str()));
    for (unsigned host = 3; host < 255; ++host)
        v4.push_back(ip(fmt::format("192.0.2.{}", host).c_str()));
    if (n == 0 || n > kMaxVips || n - 1 > v4.size())
        throw std::invalid_argument(fmt::format("--vips {}: 1..{}", n, kMaxVips));

    std::vector<VipConfig> out;
    for (unsigned i = 0; i < n; ++i) {
        const unsigned decoy = i < n / 2 ? i : i - 1;
        out.push_back(VipConfig{i == n / 2 ? ip("203.0.113.10") : v4[decoy], VipProtocol::any, {}});
        out.push_back(VipConfig{i == n / 2 ? ip("2001:db8:100::10")
                                           : ip(fmt::format("2001:db8:100::1:{:x}", decoy).c_str()),
                                VipProtocol::any,
                                {}});
    }
    return out;
}

/** How a Fixture's node is set up, besides its table's size. */
struct FixtureSetup {
    TableMemory memory = TableMemory::automatic;
    unsigned nvips = 1;     /**< VIPs per family */
    bool flow_cache = true; /**< the workers' flow cache, as the node's `table.flow_cache` */
    /** A second worker on the same table and the same shared state, without the flow cache. */
    bool uncached_twin = false;
};

/** DatapathShared and everything it points to, for one table. */
struct Fixture : BenchTable {
    std::unique_ptr<VipSet> vips;
    PeerDirectory peers;
    TemplateSet templates;
    ClusterView view;
    SharedClock clock;
    DatapathShared sh;
    rte_ring *control = nullptr;
    std::unique_ptr<Worker> worker;
    std::unique_ptr<Worker> uncached; /**< with FixtureSetup::uncached_twin */

    Fixture(const char *name, uint32_t cap4, uint32_t cap6, const FixtureSetup &setup)
        : BenchTable(name, cap4, cap6, setup.memory)
    {
        vips = std::make_unique<VipSet>(bench_vips(setup.nvips));
        peers.add(ip("192.0.2.2"), kGenevePeer);
        peers.add(ip("198.51.100.3"), kIpipPeer);
        templates.add(
            peer_template(kSelf, kGenevePeer, "192.0.2.1", "192.0.2.2", EncapKind::geneve));
        templates.add(
            peer_template(kSelf, kIpipPeer, "192.0.2.1", "198.51.100.3", EncapKind::ipip));
        view.eligible = {kSelf, kGenevePeer, kIpipPeer};
        /* Named after the table: two fixtures may live side by side. */
        control = rte_ring_create_elem(fmt::format("{}_ctl", name).c_str(), sizeof(ControlMsg),
                                       1u << 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (control == nullptr)
            throw std::runtime_error(fmt::format("cannot create the ring {}_ctl", name));
        /* Touch the whole ring once: the claim run must not pay the first
         * fault of each of its pages. */
        ControlMsg zero{};
        while (rte_ring_enqueue_elem(control, &zero, sizeof(zero)) == 0) {
        }
        discard_outputs_ring();

        sh.self = kSelf;
        sh.max_hops = 1;
        sh.refresh_after_s = 30; /* records are stamped at epoch 0, the clock stays at 0 */
        sh.claim_grace_tsc = 0;  /* every SYN of the claim run is a new claim */
        sh.decap.local_v4 = ip("192.0.2.1");
        sh.decap.local_v6 = ip("2001:db8::1");
        sh.wire_port = kWirePort;
        sh.local_port = kLocalPort;
        sh.vips = vips.get();
        sh.table = table.get();
        sh.peers = &peers;
        sh.templates.store(&templates);
        sh.view.store(&view);
        sh.to_control = control;
        sh.qsbr = qsbr;
        sh.clock = &clock;
        sh.flow_cache = setup.flow_cache;
        worker = std::make_unique<Worker>(sh, 0, 0);
        if (setup.uncached_twin) {
            /* A worker reads the setting once, when it is built. */
            sh.flow_cache = false;
            uncached = std::make_unique<Worker>(sh, 1, 0);
            sh.flow_cache = setup.flow_cache;
        }
    }

    ~Fixture()
    {
        uncached.reset();
        worker.reset();
        rte_ring_free(control);
    }

    /** Inserts flows [0, n) of family f with their owners. */
    void populate(Family f, uint64_t n)
    {
        for (uint64_t i = 0; i < n; ++i)
            table->upsert(key_of(f, i), OwnerRecord{.owner = owner_of(i), .version = 1});
    }

    /** Empties @p w's output batches (the mbufs stay with the caller) and the control ring. */
    void discard_outputs(Worker &w)
    {
        w.wire_out().n = 0;
        w.local_out().n = 0;
        discard_outputs_ring();
    }

    void discard_outputs_ring()
    {
        ControlMsg msgs[64];
        while (rte_ring_dequeue_burst_elem(control, msgs, sizeof(ControlMsg), 64, nullptr) != 0) {
        }
    }
};

} // namespace flowhome::bench
