/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The real worker pipeline over net_ring ports: frames go in through the
 * wire port's RX ring, and what leaves each port is compared packet by
 * packet with reference frames built by scapy (gen_reference.py), together
 * with the counters that must move.
 */
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <atomic>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dpdk_main.hpp"
#include "encap_builder.hpp"
#include "flowhome/capture.hpp"
#include "flowhome/cli.hpp"
#include "flowhome/gossip_membership.hpp"
#include "flowhome/gossip_state.hpp"
#include "flowhome/node.hpp"
#include "flowhome/packet.hpp"
#include "flowhome/ports.hpp"
#include "reference_frames.hpp"
#include "ring_port.hpp"

using namespace flowhome;
namespace eb = flowhome::test::eb;
using Frame = std::vector<uint8_t>;

namespace {

/* Any fixed order will do to compare two sets of frames: length, then
 * bytes. (The vectors' own operator< would too, but GCC 12 at -O3 warns,
 * wrongly, on the unbounded memcmp it inlines.) */
void sort_frames(std::vector<Frame> &frames)
{
    std::sort(frames.begin(), frames.end(), [](const Frame &a, const Frame &b) {
        if (a.size() != b.size())
            return a.size() < b.size();
        return !a.empty() && std::memcmp(a.data(), b.data(), a.size()) < 0;
    });
}

MacAddr mac(const char *s)
{
    return *MacAddr::parse(s);
}

IpAddr addr(const char *s)
{
    return *IpAddr::parse(s);
}

NodeConfig test_config()
{
    NodeConfig c;
    c.source_file = "test";
    c.node_id = 1;
    c.name = "pipeline";
    PortConfig wire;
    wire.name = "wire";
    wire.device = "ring_wire";
    wire.role = PortRole::wire;
    wire.ipv4 = addr("192.0.2.1");
    wire.ipv6 = addr("2001:db8::1");
    wire.rx_descriptors = 512;
    wire.tx_descriptors = 512;
    PortConfig local = wire;
    local.name = "local";
    local.device = "ring_local";
    local.role = PortRole::local;
    local.ipv4.reset();
    local.ipv6.reset();
    c.ports = {wire, local};
    c.lcores.main = 0;
    c.lcores.control = 1;
    c.lcores.workers = {1};
    c.vips = {VipConfig{addr("203.0.113.10"), VipProtocol::any, {}},
              VipConfig{addr("2001:db8:100::10"), VipProtocol::tcp, {443}}};
    /* The outer DSCP: 0 (dc), the inner packet's (remote), EF (dc6). */
    c.domains = {DomainConfig{.name = "dc", .encap = EncapKind::geneve},
                 DomainConfig{.name = "remote",
                              .encap = EncapKind::ipip,
                              .next_hop_mac = mac("02:00:00:00:00:fe"),
                              .dscp_inherit = true},
                 DomainConfig{.name = "dc6", .encap = EncapKind::geneve, .dscp = 46}};
    c.peers = {PeerConfig{2, addr("192.0.2.2"), "dc", mac("02:00:00:00:00:02")},
               PeerConfig{3, addr("198.51.100.3"), "remote", std::nullopt},
               PeerConfig{4, addr("2001:db8::4"), "dc6", mac("02:00:00:00:00:04")}};
    c.table.capacity_ipv4 = 4096;
    c.table.capacity_ipv6 = 4096;
    c.miss_policy = MissPolicy::drop;
    return c;
}

/* A fresh mbuf of @p pool holding @p f, as a port would hand it over. */
rte_mbuf *mbuf_of(rte_mempool *pool, const Frame &f)
{
    rte_mbuf *m = rte_pktmbuf_alloc(pool);
    REQUIRE(m != nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
    return m;
}

/* One node over two ring ports; built once for the process (DPDK object
 * names are per process). */
struct Bench {
    rte_ring *wire_rx, *wire_tx, *local_rx, *local_tx;
    std::unique_ptr<Node> node;

    Bench()
    {
        wire_rx = rte_ring_create("w_rx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        wire_tx = rte_ring_create("w_tx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        local_rx = rte_ring_create("l_rx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        local_tx = rte_ring_create("l_tx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        const int wire = rte_eth_from_rings("ring_wire", &wire_rx, 1, &wire_tx, 1, 0);
        const int local = rte_eth_from_rings("ring_local", &local_rx, 1, &local_tx, 1, 0);
        REQUIRE(wire >= 0);
        REQUIRE(local >= 0);
        node = std::make_unique<Node>(test_config(), Node::PortIds{static_cast<uint16_t>(wire),
                                                                   static_cast<uint16_t>(local)});
    }

    Worker &worker() { return *node->workers().at(0); }
    const WorkerStats &stats() { return worker().stats(); }

    /* With what a NIC's receive path may have said of it. */
    void inject(rte_ring *r, const Frame &f, uint64_t ol_flags = 0, uint32_t packet_type = 0)
    {
        rte_mbuf *m = mbuf_of(node->mempool(), f);
        m->ol_flags = ol_flags;
        m->packet_type = packet_type;
        REQUIRE(rte_ring_enqueue(r, m) == 0);
    }

    static std::vector<Frame> drain(rte_ring *r)
    {
        std::vector<Frame> out;
        void *obj;
        while (rte_ring_dequeue(r, &obj) == 0) {
            auto *m = static_cast<rte_mbuf *>(obj);
            REQUIRE(m->nb_segs == 1);
            const auto *p = rte_pktmbuf_mtod(m, const uint8_t *);
            out.emplace_back(p, p + m->data_len);
            rte_pktmbuf_free(m);
        }
        return out;
    }

    struct Output {
        std::vector<Frame> wire;
        std::vector<Frame> local;
    };

    /* One frame in on the wire, one worker iteration, what came out. */
    Output wire_in(const Frame &f, uint64_t ol_flags = 0, uint32_t packet_type = 0)
    {
        inject(wire_rx, f, ol_flags, packet_type);
        REQUIRE(worker().poll_once() == 1);
        return {drain(wire_tx), drain(local_tx)};
    }

    void settle_control() { node->control().poll_once(rte_rdtsc()); }

    void own(const FlowKey &k, NodeId owner)
    {
        REQUIRE(node->table().upsert(k, {.owner = owner, .version = 1}) != UpsertResult::full);
    }
};

Bench &bench()
{
    static std::unique_ptr<Bench> b;
    if (!b) {
        b = std::make_unique<Bench>();
        flowhome::test::before_eal_cleanup([] { b.reset(); });
    }
    return *b;
}

/* Runs a body on the EAL's other lcore (the tests start two, each on a
 * CPU of its own) until it goes out of scope, however the test ends: then
 * stop() is called and the lcore waited for. */
class OnOtherLcore {
public:
    OnOtherLcore(std::function<void()> body, std::function<void()> stop)
        : body_(std::move(body)), stop_(std::move(stop)),
          lcore_(rte_get_next_lcore(rte_lcore_id(), 1, 1))
    {
        REQUIRE(lcore_ < RTE_MAX_LCORE);
        const auto run = [](void *self) {
            static_cast<OnOtherLcore *>(self)->body_();
            return 0;
        };
        REQUIRE(rte_eal_remote_launch(run, this, lcore_) == 0);
    }
    ~OnOtherLcore()
    {
        stop_();
        rte_eal_wait_lcore(lcore_);
    }
    OnOtherLcore(const OnOtherLcore &) = delete;
    OnOtherLcore &operator=(const OnOtherLcore &) = delete;

private:
    std::function<void()> body_;
    std::function<void()> stop_;
    unsigned lcore_;
};

/* The bench's configuration for another node, @p id, with the wire port only. */
NodeConfig wire_only_config(NodeId id)
{
    NodeConfig cfg = test_config();
    cfg.node_id = id;
    cfg.ports.pop_back();
    return cfg;
}

uint64_t drops(DropReason r)
{
    return bench().stats().drops[static_cast<size_t>(r)].get();
}

/* Sends @p in from the wire: it must be dropped under @p reason, and nothing sent anywhere. */
void require_dropped(const Frame &in, DropReason reason)
{
    const uint64_t before = drops(reason);
    const auto out = bench().wire_in(in);
    REQUIRE(out.wire.empty());
    REQUIRE(out.local.empty());
    REQUIRE(drops(reason) == before + 1);
}

FlowKey key4(uint16_t client_port, uint16_t vip_port = 80)
{
    return FlowKey::make4(addr("192.0.2.100").v4_be(), htons(client_port),
                          addr("203.0.113.10").v4_be(), htons(vip_port), kProtoTcp);
}

FlowKey key6(uint16_t client_port)
{
    return FlowKey::make6(addr("2001:db8:200::100").bytes.data(), htons(client_port),
                          addr("2001:db8:100::10").bytes.data(), htons(443), kProtoTcp);
}

std::string hex(const Frame &f)
{
    std::string s;
    char buf[4];
    for (size_t i = 0; i < f.size(); ++i) {
        std::snprintf(buf, sizeof(buf), "%02x", f[i]);
        s += buf;
        s += (i % 16 == 15) ? '\n' : ' ';
    }
    return s;
}

void require_single(const std::vector<Frame> &out, const Frame &expected)
{
    REQUIRE(out.size() == 1);
    INFO("got:\n" << hex(out[0]) << "\nexpected:\n" << hex(expected));
    REQUIRE(out[0] == expected);
}

/* Sends @p in from the wire: it must reach the local port as @p expected, and nothing else. */
void require_local(const Frame &in, const Frame &expected)
{
    const auto out = bench().wire_in(in);
    REQUIRE(out.wire.empty());
    require_single(out.local, expected);
}

} // namespace

TEST_CASE("without hugepages, packet pools hold their mbufs back to back", "[pipeline]")
{
    /* This tier's EAL runs without hugepages, IOVA as VA. */
    REQUIRE_FALSE(rte_eal_has_hugepages());
    REQUIRE(rte_eal_iova_mode() == RTE_IOVA_VA);
    constexpr unsigned kMbufs = 256;
    constexpr uint16_t kRoom = RTE_MBUF_DEFAULT_BUF_SIZE;
    rte_mempool *pool = create_packet_pool("pp_packed", kMbufs, 0, kRoom, SOCKET_ID_ANY);
    REQUIRE(pool != nullptr);
    const std::unique_ptr<rte_mempool, decltype(&rte_mempool_free)> owner(pool, rte_mempool_free);
    CHECK(rte_mempool_avail_count(pool) == kMbufs);
    CHECK(rte_pktmbuf_data_room_size(pool) == kRoom);

    std::vector<rte_mbuf *> m(kMbufs);
    REQUIRE(rte_pktmbuf_alloc_bulk(pool, m.data(), kMbufs) == 0);
    std::vector<uintptr_t> at;
    for (rte_mbuf *b : m) {
        CHECK(rte_pktmbuf_headroom(b) == RTE_PKTMBUF_HEADROOM);
        CHECK(rte_pktmbuf_tailroom(b) == kRoom - RTE_PKTMBUF_HEADROOM);
        CHECK(b->pool == pool);
        at.push_back(reinterpret_cast<uintptr_t>(b));
    }
    /* One page each would put 4096 bytes or more between neighbours, and
     * every header at the same offset in its page. */
    std::sort(at.begin(), at.end());
    uintptr_t widest = 0;
    std::vector<bool> offset_seen(4096 / RTE_CACHE_LINE_SIZE, false);
    for (size_t i = 0; i < at.size(); ++i) {
        if (i != 0)
            widest = std::max(widest, at[i] - at[i - 1]);
        offset_seen[(at[i] % 4096) / RTE_CACHE_LINE_SIZE] = true;
    }
    CHECK(widest < 4096);
    CHECK(std::count(offset_seen.begin(), offset_seen.end(), true) > 16);

    /* Each mbuf's buffer is its own: a frame written across a page boundary
     * reads back whole, and no neighbour changes. */
    for (size_t i = 0; i < m.size(); ++i)
        std::memset(rte_pktmbuf_mtod(m[i], uint8_t *), static_cast<int>(i & 0xFF),
                    rte_pktmbuf_tailroom(m[i]));
    for (size_t i = 0; i < m.size(); ++i) {
        const uint8_t *d = rte_pktmbuf_mtod(m[i], const uint8_t *);
        CHECK(std::all_of(d, d + rte_pktmbuf_tailroom(m[i]),
                          [&](uint8_t v) { return v == static_cast<uint8_t>(i & 0xFF); }));
    }
    rte_pktmbuf_free_bulk(m.data(), kMbufs);
    CHECK(rte_mempool_avail_count(pool) == kMbufs);
}

TEST_CASE("a packed pool that cannot be made says why, as DPDK's pool does", "[pipeline]")
{
    /* The node's start-up message reads rte_errno: ENOMEM asks for more
     * eal.memory_mb. This tier's EAL has 256 MB. */
    rte_errno = 0;
    CHECK(create_packet_pool("pp_huge", 1u << 20, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY) ==
          nullptr);
    CHECK(rte_errno == ENOMEM);
    CHECK(rte_mempool_lookup("pp_huge") == nullptr); /* nothing left behind */

    rte_mempool *first =
        create_packet_pool("pp_twice", 64, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    REQUIRE(first != nullptr);
    rte_errno = 0;
    CHECK(create_packet_pool("pp_twice", 64, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY) ==
          nullptr);
    CHECK(rte_errno == EEXIST);
    rte_errno = 0;
    CHECK(create_packet_pool("pp_cache", 64, RTE_MEMPOOL_CACHE_MAX_SIZE + 1,
                             RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY) == nullptr);
    CHECK(rte_errno == EINVAL);
    rte_mempool_free(first);
}

TEST_CASE("only ports whose drivers move packets by virtual address get a packed pool",
          "[pipeline]")
{
    using V = std::vector<std::string_view>;
    /* A packed pool has no IOVA: a device that DMAs cannot use it. */
    CHECK(packet_pool_may_pack(V{}));
    CHECK(packet_pool_may_pack(V{"net_af_packet", "net_tap"}));
    CHECK(packet_pool_may_pack(V{"net_memif", "net_null", "net_pcap", "net_ring"}));
    CHECK_FALSE(packet_pool_may_pack(V{"net_ixgbe"}));
    CHECK_FALSE(packet_pool_may_pack(V{"net_af_packet", "mlx5_pci"}));
    CHECK_FALSE(packet_pool_may_pack(V{"net_af_xdp"}));
    CHECK_FALSE(packet_pool_may_pack(V{"net_virtio"}));
    CHECK_FALSE(packet_pool_may_pack(V{""}));

    /* The node's ports here are net_ring devices: its pool is packed. */
    const test::RingPort ring("pp_ring", 64);
    REQUIRE(ring.port >= 0);
    using Pool = std::unique_ptr<rte_mempool, decltype(&rte_mempool_free)>;
    const uint16_t ports[] = {ring.id()};
    const Pool packed(
        create_packet_pool("pp_ring_pool", 64, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY, ports),
        rte_mempool_free);
    REQUIRE(packed != nullptr);
    CHECK((packed->flags & RTE_MEMPOOL_F_NO_IOVA_CONTIG) != 0);
    /* A port id that names no device is not known to copy: DPDK's pool. */
    const uint16_t unknown[] = {RTE_MAX_ETHPORTS - 1};
    const Pool dpdk(
        create_packet_pool("pp_dma_pool", 64, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY, unknown),
        rte_mempool_free);
    REQUIRE(dpdk != nullptr);
    CHECK((dpdk->flags & RTE_MEMPOOL_F_NO_IOVA_CONTIG) == 0);
}

TEST_CASE("a connection-opening packet is claimed and served locally", "[pipeline]")
{
    Bench &b = bench();
    const uint64_t claims = b.stats().claims.get();
    auto out = b.wire_in(ref::syn_in);
    REQUIRE(out.wire.empty());
    require_single(out.local, ref::syn_in);
    REQUIRE(b.stats().claims.get() == claims + 1);

    /* The ACK that follows is ours before the control core has inserted
     * the claim: the worker's pending-claims cache says so. */
    const uint64_t pending = b.stats().pending_hits.get();
    out = b.wire_in(ref::ack_in);
    require_single(out.local, ref::ack_in);
    REQUIRE(b.stats().pending_hits.get() == pending + 1);
    REQUIRE_FALSE(b.node->table().lookup(key4(40001)));

    /* Once the control core applied it, the table says we own it. */
    b.settle_control();
    const auto rec = b.node->table().lookup(key4(40001));
    REQUIRE(rec);
    REQUIRE(rec->owner == 1);
    const uint64_t hits = b.stats().local_hits.get();
    out = b.wire_in(ref::ack_in);
    require_single(out.local, ref::ack_in);
    REQUIRE(b.stats().local_hits.get() == hits + 1);
}

TEST_CASE("a claim the control ring refused is sent again with the flow's next packet",
          "[pipeline]")
{
    /* Otherwise the table never learns of the connection, and once the
     * pending entry expires its packets meet the miss policy. */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    const FlowKey k = key4(40001);
    b.node->table().remove(k);
    /* An earlier test's pending entry for the flow expires first. */
    const uint64_t expired = rte_rdtsc() + sh.claim_grace_tsc + 1;
    while (rte_rdtsc() < expired)
        rte_delay_us_sleep(1000);
    rte_ring *const ring = sh.to_control;
    const uint64_t full = b.stats().claim_ring_full.get();
    const uint64_t retries = b.stats().claim_retries.get();
    sh.to_control = nullptr; /* refuses every message, as a full ring does */
    auto out = b.wire_in(ref::syn_in);
    sh.to_control = ring;
    require_single(out.local, ref::syn_in);
    CHECK(b.stats().claim_ring_full.get() == full + 1);
    b.settle_control();
    REQUIRE_FALSE(b.node->table().lookup(k));

    out = b.wire_in(ref::ack_in);
    require_single(out.local, ref::ack_in);
    CHECK(b.stats().claim_retries.get() == retries + 1);
    b.settle_control();
    const auto rec = b.node->table().lookup(k);
    REQUIRE(rec);
    CHECK(rec->owner == 1);

    /* Sent again once: the next packets find the record. */
    out = b.wire_in(ref::ack_in);
    require_single(out.local, ref::ack_in);
    CHECK(b.stats().claim_retries.get() == retries + 1);
}

TEST_CASE("while draining, a connection's next packets follow its opening packet", "[pipeline]")
{
    /* The SYN goes to the node rendezvous hashing picks; that node's claim
     * reaches us a gossip batch later, after the client's ACK. The ACK
     * must go where the SYN went, not to the miss policy (drop here). */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    sh.draining.store(true);
    auto with_port = [](Frame f, uint16_t port) {
        f[14 + 20] = static_cast<uint8_t>(port >> 8); /* TCP source port */
        f[14 + 20 + 1] = static_cast<uint8_t>(port);
        return f;
    };
    /* A flow that the drain sends away (not one the pick gives back to us). */
    uint16_t port = 41000;
    Bench::Output syn;
    for (;; ++port) {
        REQUIRE(port < 41100);
        const uint64_t drained = b.stats().drain_redirects.get();
        syn = b.wire_in(with_port(ref::syn_in, port));
        if (b.stats().drain_redirects.get() == drained + 1)
            break;
        b.node->control().poll_once(rte_rdtsc()); /* claimed here: not this one */
    }
    REQUIRE(syn.wire.size() == 1);
    auto sent_to = [&] {
        std::vector<uint64_t> to;
        for (NodeId peer = 2; peer <= 4; ++peer)
            to.push_back(b.stats().redirects_to[peer].get());
        return to;
    };
    const std::vector<uint64_t> after_syn = sent_to();
    const uint64_t missed = drops(DropReason::miss_policy_drop);
    const uint64_t pending = b.stats().pending_hits.get();
    const auto ack = b.wire_in(with_port(ref::ack_in, port));
    sh.draining.store(false);
    REQUIRE(drops(DropReason::miss_policy_drop) == missed);
    REQUIRE(b.stats().pending_hits.get() == pending + 1);
    REQUIRE(ack.local.empty());
    REQUIRE(ack.wire.size() == 1);
    /* To the node the SYN went to: the count of exactly one peer moved. */
    const std::vector<uint64_t> after_ack = sent_to();
    size_t moved = 0;
    for (size_t i = 0; i < after_ack.size(); ++i)
        moved += after_ack[i] - after_syn[i];
    REQUIRE(moved == 1);
    REQUIRE(ack.wire[0].size() > syn.wire[0].size()); /* the ACK carries "hello" */
    REQUIRE(std::equal(ack.wire[0].begin(), ack.wire[0].begin() + 12, syn.wire[0].begin()));
}

TEST_CASE("packets of connections other nodes own are redirected with their template", "[pipeline]")
{
    Bench &b = bench();
    b.own(key4(40002), 2);
    b.own(key4(40003), 3);
    b.own(key6(40003), 3);
    b.own(key6(40004), 4);
    b.own(key4(40005), 2);
    b.own(key4(40006), 2);
    b.own(key4(40015), 2);
    b.own(key4(40016), 3);
    b.own(key6(40017), 4);

    struct Case {
        const char *description;
        const Frame &in;
        const Frame &expected;
        NodeId owner;
    };
    const Case cases[] = {
        {"GENEVE over IPv4 to node 2", ref::to2_in, ref::to2_out, 2},
        {"IP-in-IP (protocol 4) via the domain's next hop to node 3", ref::to3_in, ref::to3_out, 3},
        {"IPv6 inside IPv4 (protocol 41) to node 3", ref::to3v6_in, ref::to3v6_out, 3},
        {"GENEVE over IPv6 to node 4", ref::to4_in, ref::to4_out, 4},
        {"a VLAN tag is not carried inside", ref::vlan_to2_in, ref::vlan_to2_out, 2},
        {"Ethernet padding is not carried inside", ref::padded_to2_in, ref::padded_to2_out, 2},
        {"the ECN field is copied outside, the DSCP is the domain's 0", ref::ecn_to2_in,
         ref::ecn_to2_out, 2},
        {"the DSCP is copied outside too where the domain inherits it", ref::ecn_to3_in,
         ref::ecn_to3_out, 3},
        {"IPv6: CE copied outside, the DSCP is the domain's EF", ref::ecn_to4_in, ref::ecn_to4_out,
         4},
    };
    for (const Case &c : cases) {
        INFO(c.description);
        const uint64_t redirects = b.stats().redirects_to[c.owner].get();
        const auto out = b.wire_in(c.in);
        REQUIRE(out.local.empty());
        require_single(out.wire, c.expected);
        REQUIRE(b.stats().redirects_to[c.owner].get() == redirects + 1);
    }
}

TEST_CASE("a burst longer than the worker's, of both families, ends as each packet alone",
          "[pipeline]")
{
    Bench &b = bench();
    b.node->shared().miss_policy = MissPolicy::drop;
    b.own(key4(40002), 2);
    b.own(key4(40003), 3);
    b.own(key6(40003), 1); /* an IPv6 local hit */
    b.own(key6(40004), 4);
    b.own(key4(40005), 2);
    b.own(key4(40006), 2);
    b.own(key4(40015), 2);
    b.own(key4(40016), 3);
    b.own(key6(40017), 4);
    b.own(key4(40008), 1);

    /* Every outcome of the burst's two lookups and of the checks before
     * them: redirects of each kind and family, local hits, decapsulation,
     * pass-through, and drops before and after the lookup. */
    const Frame *const mix[] = {&ref::to2_in,   &ref::to4_in,        &ref::other_in,
                                &ref::from2_in, &ref::to3v6_in,      &ref::truncated_in,
                                &ref::to3_in,   &ref::miss_in,       &ref::vlan_to2_in,
                                &ref::arp_in,   &ref::padded_to2_in, &ref::fragment_in};
    constexpr size_t kMix = std::size(mix);

    /* What each frame does alone. */
    struct Outcome {
        Bench::Output out;
        uint64_t drops;
    };
    std::vector<Outcome> alone;
    for (const Frame *f : mix) {
        const uint64_t d = b.stats().total_drops();
        Bench::Output out = b.wire_in(*f);
        alone.push_back({std::move(out), b.stats().total_drops() - d});
    }

    /* Not a multiple of either, so bursts end in the middle of the mix; and
     * more redirects (5 in 12) than a TX batch holds (3 * kBurst). */
    const size_t n = 8 * kBurst + 7;
    std::vector<Frame> want_wire, want_local;
    uint64_t want_drops = 0;
    for (size_t i = 0; i < n; ++i) {
        const Outcome &o = alone[i % kMix];
        want_wire.insert(want_wire.end(), o.out.wire.begin(), o.out.wire.end());
        want_local.insert(want_local.end(), o.out.local.begin(), o.out.local.end());
        want_drops += o.drops;
    }

    const uint64_t drops_before = b.stats().total_drops();
    SECTION("received by the poll loop, a burst at a time")
    {
        for (size_t i = 0; i < n; ++i)
            b.inject(b.wire_rx, *mix[i % kMix]);
        size_t got = 0;
        for (unsigned polls = 0; got < n && polls < 2 * n; ++polls)
            got += b.worker().poll_once();
        REQUIRE(got == n);
    }
    SECTION("handed to process_wire_burst whole")
    {
        std::vector<rte_mbuf *> pkts(n);
        for (size_t i = 0; i < n; ++i) {
            const Frame &f = *mix[i % kMix];
            pkts[i] = mbuf_of(b.node->mempool(), f);
        }
        b.worker().process_wire_burst(pkts.data(), static_cast<uint16_t>(n));
        b.worker().flush();
    }
    std::vector<Frame> wire = Bench::drain(b.wire_tx);
    std::vector<Frame> local = Bench::drain(b.local_tx);
    /* Within a burst, pass-through leaves before what was looked up, and
     * IPv4 before IPv6: compare what left, not the order. */
    for (std::vector<Frame> *frames : {&wire, &local, &want_wire, &want_local})
        sort_frames(*frames);
    REQUIRE(wire.size() == want_wire.size());
    REQUIRE(wire == want_wire);
    REQUIRE(local.size() == want_local.size());
    REQUIRE(local == want_local);
    REQUIRE(b.stats().total_drops() - drops_before == want_drops);

    b.own(key6(40003), 3);
}

TEST_CASE("the flow cache keeps a flow's record until the table changes the flow",
          "[pipeline][flow_cache]")
{
    Bench &b = bench();
    b.node->shared().miss_policy = MissPolicy::drop;
    /* The worker is the tests' own: no earlier test leaves its cache resting. */
    REQUIRE(b.worker().flow_cache4().probing());
    const auto hits = [&] { return b.stats().flow_cache_hits.get(); };
    const auto misses = [&] { return b.stats().flow_cache_misses.get(); };

    struct Case {
        const char *family;
        FlowKey key;
        const Frame &in;
        const Frame &redirected;
        NodeId peer;
    };
    const Case cases[] = {
        {"IPv4", key4(40002), ref::to2_in, ref::to2_out, 2},
        {"IPv6", key6(40004), ref::to4_in, ref::to4_out, 4},
    };
    for (const Case &c : cases) {
        INFO(c.family);
        b.own(c.key, 1);
        require_local(c.in, c.in); /* looked up in the table, and kept */
        uint64_t h = hits();
        uint64_t m = misses();
        require_local(c.in, c.in);
        CHECK(hits() == h + 1);
        CHECK(misses() == m);

        /* Another owner: the next packet goes to it, looked up anew. */
        b.own(c.key, c.peer);
        m = misses();
        auto out = b.wire_in(c.in);
        REQUIRE(out.local.empty());
        require_single(out.wire, c.redirected);
        CHECK(misses() == m + 1);
        h = hits();
        out = b.wire_in(c.in);
        REQUIRE(out.local.empty());
        require_single(out.wire, c.redirected);
        CHECK(hits() == h + 1);

        /* Removed: the next packet has no owner. */
        REQUIRE(b.node->table().remove(c.key));
        require_dropped(c.in, DropReason::miss_policy_drop);
        b.own(c.key, c.peer);
    }
}

TEST_CASE("a record from the flow cache still takes the decisions: a dead owner's flow fails over",
          "[pipeline][flow_cache]")
{
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    REQUIRE(b.worker().flow_cache4().probing());
    b.own(key4(40003), 3);
    b.wire_in(ref::to3_in); /* kept */
    const NodeId nodes[] = {1, 2, 3, 4};
    const NodeId heir = failover_owner(flow_hash(key4(40003)), 3, nodes);
    const uint64_t hits = b.stats().flow_cache_hits.get();
    const uint64_t failover = b.stats().failover.get();
    const uint64_t to_heir = b.stats().redirects_to[heir].get();

    /* Membership, not the table, says node 3 is dead: no stamp moves. */
    sh.node_state[3].store(static_cast<uint8_t>(NodeState::dead));
    const auto out = b.wire_in(ref::to3_in);
    sh.node_state[3].store(static_cast<uint8_t>(NodeState::alive));
    CHECK(b.stats().flow_cache_hits.get() == hits + 1);
    CHECK(b.stats().failover.get() == failover + 1);
    if (heir == 1) {
        CHECK(out.wire.empty());
        CHECK(out.local.size() == 1);
    } else {
        CHECK(out.local.empty());
        CHECK(b.stats().redirects_to[heir].get() == to_heir + 1);
    }
}

TEST_CASE("table.flow_cache: false looks every packet up in the table", "[pipeline][flow_cache]")
{
    const test::RingPort ring("ring_nocache", 64);
    REQUIRE(ring.port >= 0);
    NodeConfig cfg = wire_only_config(7);
    cfg.table.flow_cache = false;
    Node node(cfg, Node::PortIds{ring.id(), kNoPort});
    Worker &w = *node.workers().at(0);
    REQUIRE_FALSE(w.flow_cache4().enabled());
    REQUIRE(node.table().upsert(key4(40002), {.owner = 2, .version = 1}) != UpsertResult::full);
    for (int i = 0; i < 3; ++i) {
        rte_mbuf *m = mbuf_of(node.mempool(), ref::to2_in);
        w.process_wire_burst(&m, 1);
        w.flush();
    }
    CHECK(w.stats().redirects_to[2].get() == 3);
    CHECK(w.stats().flow_cache_hits.get() == 0);
    CHECK(w.stats().flow_cache_misses.get() == 0);
    CHECK(w.stats().flow_cache_rested.get() == 0);
}

TEST_CASE("a burst of flows the cache holds and flows it does not: each gets its own record",
          "[pipeline][flow_cache]")
{
    Bench &b = bench();
    REQUIRE(b.worker().flow_cache4().probing());
    b.own(key4(40002), 2);
    b.own(key4(40003), 3);
    b.wire_in(ref::to2_in); /* kept */
    b.own(key4(40003), 3);  /* stamped again: not held */
    const uint64_t hits = b.stats().flow_cache_hits.get();
    const uint64_t misses = b.stats().flow_cache_misses.get();

    /* Held first, so that the one looked up is not the burst's first. */
    b.inject(b.wire_rx, ref::to2_in);
    b.inject(b.wire_rx, ref::to3_in);
    REQUIRE(b.worker().poll_once() == 2);
    std::vector<Frame> wire = Bench::drain(b.wire_tx);
    REQUIRE(Bench::drain(b.local_tx).empty());
    std::vector<Frame> want = {ref::to2_out, ref::to3_out};
    sort_frames(wire);
    sort_frames(want);
    CHECK(wire == want);
    CHECK(b.stats().flow_cache_hits.get() == hits + 1);
    CHECK(b.stats().flow_cache_misses.get() == misses + 1);
}

TEST_CASE("the flow cache rests while flows do not repeat, then probes again",
          "[pipeline][flow_cache]")
{
    Bench &b = bench();
    b.node->shared().miss_policy = MissPolicy::drop;
    REQUIRE(b.worker().flow_cache4().probing());
    using Cache = FlowCache<FlowKey4>;

    /* ref::ack_in is key4(40001)'s; these are other flows nobody owns,
     * each a miss of the table, dropped. */
    uint32_t next_port = 1;
    const auto burst_of_new_flows = [&] {
        rte_mbuf *pkts[kBurst];
        for (rte_mbuf *&m : pkts) {
            Frame f = ref::ack_in;
            const uint16_t port = htons(static_cast<uint16_t>(next_port++ % 40000 + 1));
            std::memcpy(f.data() + 34, &port, sizeof(port)); /* the TCP source port */
            m = mbuf_of(b.node->mempool(), f);
        }
        b.worker().process_wire_burst(pkts, kBurst);
        b.worker().flush();
    };
    const uint64_t dropped = drops(DropReason::miss_policy_drop);
    const uint64_t misses = b.stats().flow_cache_misses.get();
    const uint64_t rested = b.stats().flow_cache_rested.get();

    /* Earlier tests' packets began the window: it ends within kWindow. */
    uint32_t probed = 0;
    while (b.worker().flow_cache4().probing()) {
        REQUIRE(probed < Cache::kWindow);
        burst_of_new_flows();
        probed += kBurst;
    }
    CHECK(b.stats().flow_cache_misses.get() == misses + probed);

    for (uint32_t n = 0; n < Cache::kRestPackets; n += kBurst) {
        REQUIRE_FALSE(b.worker().flow_cache4().probing());
        burst_of_new_flows();
    }
    CHECK(b.stats().flow_cache_rested.get() == rested + Cache::kRestPackets);
    CHECK(drops(DropReason::miss_policy_drop) == dropped + probed + Cache::kRestPackets);

    /* Probing again: a flow's second packet comes from the cache. */
    REQUIRE(b.worker().flow_cache4().probing());
    b.own(key4(40002), 2);
    b.wire_in(ref::to2_in);
    const uint64_t hits = b.stats().flow_cache_hits.get();
    require_single(b.wire_in(ref::to2_in).wire, ref::to2_out);
    CHECK(b.stats().flow_cache_hits.get() == hits + 1);
}

TEST_CASE("a tombstone, a dead owner and a stale stamp in one burst with plain records",
          "[pipeline]")
{
    /* The worker sorts a burst's records into plain ones of ours, plain ones
     * of a peer, and the rest; each of the rest must still be treated as
     * what it is, whatever shares its burst. */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    sh.miss_policy = MissPolicy::drop;
    OwnershipTable &t = b.node->table();
    const uint16_t now = sh.clock->epoch.load();

    /* 40002: released by node 2, a tombstone: no owner. */
    REQUIRE(t.upsert(key4(40002),
                     {.owner = 2, .version = 2, .epoch = now, .flags = gossip_flag::released}) !=
            UpsertResult::full);
    /* 40003: node 3's, and node 3 is dead: its failover owner serves it. */
    b.own(key4(40003), 3);
    const NodeId nodes[] = {1, 2, 3, 4};
    const NodeId heir = failover_owner(flow_hash(key4(40003)), 3, nodes);
    /* 40001: ours, stamped long enough ago to be refreshed. */
    REQUIRE(t.upsert(key4(40001), {.owner = 1,
                                   .version = 1,
                                   .epoch = static_cast<uint16_t>(now - sh.refresh_after_s)}) !=
            UpsertResult::full);
    /* And plain records of both kinds: ours (40008) and node 4's (IPv6). */
    b.own(key4(40008), 1);
    b.own(key6(40004), 4);

    const uint64_t miss_drops = drops(DropReason::miss_policy_drop);
    const uint64_t failover = b.stats().failover.get();
    const uint64_t refreshes = b.stats().refreshes.get();
    const uint64_t local_hits = b.stats().local_hits.get();
    const uint64_t to2 = b.stats().redirects_to[2].get();
    const uint64_t to3 = b.stats().redirects_to[3].get();
    const uint64_t to4 = b.stats().redirects_to[4].get();
    const uint64_t to_heir = b.stats().redirects_to[heir].get();
    sh.node_state[3].store(static_cast<uint8_t>(NodeState::dead));

    for (const Frame *f : {&ref::to2_in, &ref::to3_in, &ref::ack_in, &ref::to4_in, &ref::from2_in})
        b.inject(b.wire_rx, *f);
    REQUIRE(b.worker().poll_once() == 5);
    sh.node_state[3].store(static_cast<uint8_t>(NodeState::alive));
    const std::vector<Frame> wire = Bench::drain(b.wire_tx);
    const std::vector<Frame> local = Bench::drain(b.local_tx);

    CHECK(drops(DropReason::miss_policy_drop) == miss_drops + 1);        /* the tombstone */
    CHECK(b.stats().redirects_to[2].get() == to2 + (heir == 2 ? 1 : 0)); /* not the tombstone */
    CHECK(b.stats().failover.get() == failover + 1);
    CHECK(b.stats().redirects_to[3].get() == to3);
    CHECK(b.stats().refreshes.get() == refreshes + 1);
    CHECK(b.stats().redirects_to[4].get() == to4 + 1);
    /* Local: the refreshed one, the decapsulated one, and the dead owner's
     * if it falls to us; on the wire: node 4's, and the dead owner's if not. */
    if (heir == 1) {
        CHECK(b.stats().local_hits.get() == local_hits + 3);
        CHECK(local.size() == 3);
        CHECK(wire.size() == 1);
    } else {
        CHECK(b.stats().redirects_to[heir].get() == to_heir + 1);
        CHECK(b.stats().local_hits.get() == local_hits + 2);
        CHECK(local.size() == 2);
        CHECK(wire.size() == 2);
    }
    CHECK(std::find(local.begin(), local.end(), ref::ack_in) != local.end());

    b.settle_control();
    b.own(key4(40002), 2);
    b.own(key4(40001), 1);
}

TEST_CASE("a flow's packets keep their order when its record changes during the lookup",
          "[pipeline]")
{
    /* Another thread restamps a flow of ours while a burst of 64 of its
     * packets is processed, at a random moment, as the control lcore does
     * once a refresh period. Where the restamp lands inside the bulk
     * lookup, which reads the record once per packet, the earlier packets
     * see it due for a refresh (decided one by one), the later ones fresh
     * (the fast list). They must still leave in the order they came. */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    const FlowKey k = key4(40050);
    const uint16_t now = sh.clock->epoch.load();
    const OwnerRecord fresh{.owner = 1, .version = 1, .epoch = now};
    const OwnerRecord due{
        .owner = 1, .version = 1, .epoch = static_cast<uint16_t>(now - sh.refresh_after_s)};
    OwnershipTable &table = b.node->table();

    /* The writer runs beside the worker, on the other lcore's CPU (a
     * thread of this one's would only ever run between bursts). The two
     * take turns at writing: the table has one writer at a time. */
    std::atomic<uint64_t> restamp_at{0}; /* TSC; 0: nothing to do */
    std::atomic<bool> stop{false};
    const OnOtherLcore writer(
        [&] {
            while (!stop.load(std::memory_order_relaxed)) {
                const uint64_t at = restamp_at.load(std::memory_order_acquire);
                if (at == 0 || rte_rdtsc() < at)
                    continue;
                table.upsert(k, fresh);
                restamp_at.store(0, std::memory_order_release);
            }
        },
        [&] { stop.store(true); });

    const eb::Ip4 client{192, 0, 2, 100};
    const eb::Ip4 vip{203, 0, 113, 10};
    const uint64_t window = rte_get_tsc_hz() / 50'000; /* 20 us: longer than a burst takes */
    uint64_t rng = 0x9E3779B97F4A7C15;
    uint32_t seq = 0;
    unsigned bursts = 0;
    unsigned reordered = 0;
    const uint64_t end = rte_rdtsc() + rte_get_tsc_hz() * 2;
    while (bursts < 20000 && rte_rdtsc() < end) {
        for (unsigned i = 0; i < kBurst; ++i, ++seq) {
            eb::Bytes data(4);
            std::memcpy(data.data(), &seq, sizeof(seq));
            b.inject(b.wire_rx, eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800,
                                          eb::ipv4_tcp(client, vip, 40050, 80, 0x10, data)));
        }
        REQUIRE(table.upsert(k, due) != UpsertResult::full); /* the writer waits */
        rng = rng * 6364136223846793005 + 1442695040888963407;
        restamp_at.store(rte_rdtsc() + (rng >> 33) % window, std::memory_order_release);
        REQUIRE(b.worker().poll_once() == kBurst);
        while (restamp_at.load(std::memory_order_acquire) != 0)
            rte_pause();
        const std::vector<Frame> local = Bench::drain(b.local_tx);
        REQUIRE(local.size() == kBurst);
        uint32_t last = 0;
        bool in_order = true;
        for (size_t i = 0; i < local.size(); ++i) {
            uint32_t s;
            std::memcpy(&s, local[i].data() + local[i].size() - sizeof(s), sizeof(s));
            in_order &= i == 0 || s > last;
            last = s;
        }
        reordered += in_order ? 0 : 1;
        ++bursts;
    }
    INFO(bursts << " bursts of " << kBurst);
    CHECK(reordered == 0);
    b.settle_control();
    b.own(k, 1);
}

TEST_CASE("an idle worker 0 sends the control lcore's frames within a millisecond or so",
          "[pipeline]")
{
    /* Where the wire port has no TX queue for the control lcore, worker 0
     * sends its gossip frames: however long the configured idle sleep,
     * worker 0 sleeps at most kGossipSenderMaxSleepUs, or a heartbeat
     * would wait a whole sleep. Here the sleep is a second; each frame,
     * put in the ring while the worker sleeps, must leave within 100 ms
     * (a one-second sleep would let each through in 100 ms one time in
     * ten). */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    rte_ring *gossip_tx = rte_ring_create("w0_gtx", 64, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    REQUIRE(gossip_tx != nullptr);
    /* The settings put back however the test ends, once the worker (below,
     * stopped first) has stopped. */
    struct Restore {
        DatapathShared &sh;
        BackoffConfig backoff;
        rte_ring *ring;
        ~Restore()
        {
            sh.stop.store(false);
            sh.gossip_tx = nullptr;
            sh.backoff = backoff;
            rte_ring_free(ring);
        }
    } restore{sh, sh.backoff, gossip_tx};
    sh.backoff = BackoffConfig{.idle_polls = 10, .pause_polls = 0, .sleep_us = 1'000'000};
    sh.gossip_tx = gossip_tx;
    sh.stop.store(false);
    const OnOtherLcore worker([&b] { b.worker().run(); }, [&sh] { sh.stop.store(true); });

    const uint64_t hz = rte_get_tsc_hz();
    const Frame frame = eb::ether(
        eb::kRouterMac, eb::kOurMac, 0x0800,
        eb::ipv4_udp(eb::Ip4{192, 0, 2, 1}, eb::Ip4{239, 1, 1, 1}, 7471, 7471, eb::payload(32)));
    std::vector<double> waits_ms;
    for (int i = 0; i < 3; ++i) {
        /* Asleep: its sleep count has moved since this frame's turn began. */
        const uint64_t sleeps = b.stats().idle_sleeps.get();
        const uint64_t give_up = rte_rdtsc() + 3 * hz;
        while (b.stats().idle_sleeps.get() == sleeps && rte_rdtsc() < give_up)
            rte_delay_us_sleep(100);
        rte_mbuf *m = mbuf_of(b.node->mempool(), frame);
        const uint64_t t0 = rte_rdtsc();
        REQUIRE(rte_ring_enqueue(gossip_tx, m) == 0);
        void *sent = nullptr;
        while (rte_ring_dequeue(b.wire_tx, &sent) != 0 && rte_rdtsc() - t0 < 2 * hz)
            rte_delay_us_sleep(50);
        waits_ms.push_back(double(rte_rdtsc() - t0) * 1e3 / double(hz));
        if (sent != nullptr)
            rte_pktmbuf_free(static_cast<rte_mbuf *>(sent));
    }
    Bench::drain(b.wire_tx); /* a frame that came too late */
    for (const double w : waits_ms) {
        INFO("waited " << w << " ms");
        CHECK(w < 100.0);
    }
}

TEST_CASE("a flow due for a refresh sends one a second, not one a packet", "[pipeline]")
{
    /* It stays due until the control lcore has restamped it; a refresh
     * per packet would fill the ring the claims share. */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    const uint16_t now = sh.clock->epoch.load();
    REQUIRE(
        b.node->table().upsert(
            key4(40008),
            {.owner = 1, .version = 1, .epoch = static_cast<uint16_t>(now - sh.refresh_after_s)}) !=
        UpsertResult::full);
    const uint64_t refreshes = b.stats().refreshes.get();
    const uint64_t hits = b.stats().local_hits.get();
    for (int i = 0; i < 5; ++i)
        REQUIRE(b.wire_in(ref::from2_in).local.size() == 1); /* decapsulated: flow 40008 */
    CHECK(b.stats().local_hits.get() == hits + 5);
    CHECK(b.stats().refreshes.get() == refreshes + 1);
    /* A second later, still due (nothing restamped it): one more. */
    sh.clock->epoch.store(static_cast<uint16_t>(now + 1));
    REQUIRE(b.wire_in(ref::from2_in).local.size() == 1);
    sh.clock->epoch.store(now);
    CHECK(b.stats().refreshes.get() == refreshes + 2);
    b.settle_control();
    b.own(key4(40008), 1);
}

TEST_CASE("a record made before its owner restarted goes to the failover owner", "[pipeline]")
{
    /* The owner died or restarted since: the gossip engine published its
     * new life tag; the control lcore has not rewritten these records yet.
     * Alive again or not, the owner does not get its earlier life's flows
     * back, and neither does this node. */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    const NodeId nodes[] = {1, 2, 3, 4};
    b.own(key4(40003), 3); /* life tag 0 */
    b.own(key4(40001), 1);
    const NodeId heir3 = failover_owner(flow_hash(key4(40003)), 3, nodes);
    const NodeId heir1 = failover_owner(flow_hash(key4(40001)), 1, nodes);
    REQUIRE(heir1 != 1);
    const uint64_t failover = b.stats().failover.get();
    const uint64_t to3 = b.stats().redirects_to[3].get();
    const uint64_t hits = b.stats().local_hits.get();

    sh.node_life[3].store(1);
    sh.node_life[1].store(1);
    const Bench::Output three = b.wire_in(ref::to3_in);
    const Bench::Output one = b.wire_in(ref::ack_in);
    CHECK(b.stats().failover.get() == failover + 2);
    CHECK(b.stats().redirects_to[3].get() == to3);
    CHECK(three.wire.size() + three.local.size() == 1);
    CHECK(three.local.size() == (heir3 == 1 ? 1 : 0));
    CHECK(one.wire.size() == 1); /* to node heir1, not to this node's kernel */
    CHECK(b.stats().local_hits.get() == hits + (heir3 == 1 ? 1 : 0));

    /* A record of the current life is the owner's as before. */
    REQUIRE(b.node->table().upsert(key4(40003), {.owner = 3, .version = 2, .reserved = 1}) !=
            UpsertResult::full);
    REQUIRE(b.wire_in(ref::to3_in).wire.size() == 1);
    CHECK(b.stats().redirects_to[3].get() == to3 + 1);
    CHECK(b.stats().failover.get() == failover + 2);

    sh.node_life[3].store(0);
    sh.node_life[1].store(0);
    b.own(key4(40003), 3);
    b.own(key4(40001), 1);
}

TEST_CASE("without a local port, what would go there is a named drop", "[pipeline]")
{
    Bench &b = bench();
    b.own(key4(40008), 1);
    TxBatch &local = b.worker().local_out();
    const uint16_t port = local.port;
    local.port = kNoPort;
    const uint64_t before = drops(DropReason::no_local_port);
    const uint64_t hits = b.stats().local_hits.get();
    /* A local hit (decapsulated, ours) and pass-through in one burst. */
    b.inject(b.wire_rx, ref::from2_in);
    b.inject(b.wire_rx, ref::other_in);
    REQUIRE(b.worker().poll_once() == 2);
    local.port = port;
    CHECK(drops(DropReason::no_local_port) == before + 2);
    CHECK(b.stats().local_hits.get() == hits + 1);
    CHECK(Bench::drain(b.local_tx).empty());
    CHECK(Bench::drain(b.wire_tx).empty());
}

TEST_CASE("a mid-connection packet nobody owns follows the miss policy", "[pipeline]")
{
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();

    SECTION("drop")
    {
        sh.miss_policy = MissPolicy::drop;
        require_dropped(ref::miss_in, DropReason::miss_policy_drop);
    }
    SECTION("local")
    {
        sh.miss_policy = MissPolicy::local;
        const uint64_t before = b.stats().miss_local.get();
        const auto out = b.wire_in(ref::miss_in);
        require_single(out.local, ref::miss_in);
        REQUIRE(b.stats().miss_local.get() == before + 1);
    }
    SECTION("hash: the node rendezvous hashing names")
    {
        sh.miss_policy = MissPolicy::hash;
        const NodeId nodes[] = {1, 2, 3, 4};
        const NodeId pick = rendezvous_pick(flow_hash(key4(40007)), nodes);
        const auto out = b.wire_in(ref::miss_in);
        if (pick == 1) {
            require_single(out.local, ref::miss_in);
        } else {
            REQUIRE(out.wire.size() == 1);
            REQUIRE(b.stats().miss_hash.get() >= 1);
        }
    }
    sh.miss_policy = MissPolicy::drop;
    /* A miss never creates a record: only claims and gossip do. */
    b.settle_control();
    REQUIRE_FALSE(b.node->table().lookup(key4(40007)));
}

TEST_CASE("packets redirected by a peer are decapsulated and served", "[pipeline]")
{
    Bench &b = bench();
    b.own(key4(40008), 1);
    b.own(key4(40010), 1);

    SECTION("GENEVE from node 2")
    {
        const uint64_t decap = b.stats().decapsulated.get();
        require_local(ref::from2_in, ref::from2_out);
        REQUIRE(b.stats().decapsulated.get() == decap + 1);
    }
    SECTION("IP-in-IP from node 3")
    {
        const auto out = b.wire_in(ref::ipip_from3_in);
        require_single(out.local, ref::ipip_from3_out);
    }
    SECTION("marked CE on the way: the mark reaches an ECN-capable packet inside (RFC 6040)")
    {
        b.own(key4(40018), 1);
        require_local(ref::ce_from2_in, ref::ce_from2_out);
    }
    SECTION("an ECN-capable outer header over a packet that is not: forwarded, counted")
    {
        b.own(key4(40020), 1);
        const uint64_t suspect = b.stats().ecn_suspect.get();
        require_local(ref::ect_not_ect_from2_in, ref::ect_not_ect_from2_out);
        CHECK(b.stats().ecn_suspect.get() == suspect + 1);
    }
    SECTION("marked CE over a packet that cannot carry the mark: dropped")
    {
        b.own(key4(40019), 1);
        require_dropped(ref::ce_not_ect_from2_in, DropReason::decap_ce_not_ect);
    }
    SECTION("from an address that is not a peer: dropped")
    {
        require_dropped(ref::stranger_in, DropReason::decap_unknown_peer);
    }
    SECTION("IP-in-IP carries no hop count: never redirected again, whatever max_hops")
    {
        /* Node 2 owns it here; node 3 sent it to us, so node 3 thinks we
         * do. With a count of 1 and two hops allowed we would send it on,
         * and two such nodes would pass it back and forth. */
        b.own(key4(40010), 2);
        DatapathShared &sh = b.node->shared();
        sh.max_hops = 2;
        const uint64_t before = drops(DropReason::hop_limit);
        const auto out = b.wire_in(ref::ipip_from3_in);
        sh.max_hops = 1;
        b.node->table().remove(key4(40010)); /* the section above takes it as unknown */
        REQUIRE(out.wire.empty());
        REQUIRE(out.local.empty());
        REQUIRE(drops(DropReason::hop_limit) == before + 1);
    }
    SECTION("too big for the next redirect: dropped, no ICMP error back into the tunnel")
    {
        /* Node 2 sent it (its domain allows larger packets); node 3 owns
         * it, and IP-in-IP adds 20 bytes to 1490 on a 1500-byte port. An
         * error built from it would be addressed to node 2's MAC. */
        b.own(key4(40031), 3);
        DatapathShared &sh = b.node->shared();
        sh.max_hops = 2;
        const eb::Bytes inner =
            eb::ether(eb::Mac{}, eb::kPeerMac, 0x0800,
                      eb::ipv4_tcp(eb::v4(192, 0, 2, 100), eb::v4(203, 0, 113, 10), 40031, 80, 0x10,
                                   eb::payload(1490 - 40)));
        const eb::Bytes in =
            eb::udp4_frame(eb::Mac{}, eb::kPeerMac, eb::v4(192, 0, 2, 2), eb::v4(192, 0, 2, 1),
                           50000, 6081, eb::geneve(eb::flowhome_option(2, 1, 0, 0), 0x6558, inner));
        const uint64_t too_big = drops(DropReason::encap_too_big);
        const uint64_t icmp = b.stats().icmp_too_big.get();
        const auto out = b.wire_in(in);
        sh.max_hops = 1;
        CHECK(b.stats().decapsulated.get() >= 1);
        CHECK(out.wire.empty());
        CHECK(out.local.empty());
        CHECK(drops(DropReason::encap_too_big) == too_big + 1);
        CHECK(b.stats().icmp_too_big.get() == icmp);
        b.node->table().remove(key4(40031));
    }
    SECTION("never redirected again past the hop limit")
    {
        b.own(key4(40009), 3);
        require_dropped(ref::loop_in, DropReason::hop_limit);
    }
}

TEST_CASE("a NIC's verdict on the IPv4 checksum is trusted only where it speaks for the outer "
          "header",
          "[pipeline]")
{
    /* A tunnel packet from node 2 whose outer IPv4 header is corrupt. A
     * NIC that parses tunnels reports the inner header's checksum in the
     * usual flags, the outer one only when bad (RTE_MBUF_F_RX_OUTER_IP_
     * CKSUM_BAD): its "good" does not cover the header that names the peer. */
    Bench &b = bench();
    b.own(key4(40032), 1);
    eb::Bytes in = eb::udp4_frame(
        eb::Mac{}, eb::kPeerMac, eb::v4(192, 0, 2, 2), eb::v4(192, 0, 2, 1), 50000, 6081,
        eb::geneve(eb::flowhome_option(2, 1, 0, 0), 0x6558,
                   eb::ether(eb::Mac{}, eb::kPeerMac, 0x0800,
                             eb::ipv4_tcp(eb::v4(192, 0, 2, 100), eb::v4(203, 0, 113, 10), 40032,
                                          80, 0x10, eb::payload(40)))));
    in[14 + 10] ^= 0x5A;
    struct Case {
        const char *what;
        uint64_t ol_flags;
        uint32_t packet_type;
        bool trusted;
    };
    const Case cases[] = {
        {"no verdict: checked here", 0, 0, false},
        {"good, no tunnel seen: the NIC checked this header", RTE_MBUF_F_RX_IP_CKSUM_GOOD,
         RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_UDP, true},
        {"good, for the inner header of a tunnel", RTE_MBUF_F_RX_IP_CKSUM_GOOD,
         RTE_PTYPE_L3_IPV4 | RTE_PTYPE_TUNNEL_GENEVE | RTE_PTYPE_INNER_L3_IPV4, false},
        {"good, with the outer header bad",
         RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_OUTER_IP_CKSUM_BAD, 0, false},
    };
    for (const Case &c : cases) {
        INFO(c.what);
        const uint64_t bad = drops(DropReason::ipv4_bad_checksum);
        const auto out = b.wire_in(in, c.ol_flags, c.packet_type);
        CHECK(out.wire.empty());
        CHECK(out.local.size() == (c.trusted ? 1u : 0u));
        CHECK(drops(DropReason::ipv4_bad_checksum) == bad + (c.trusted ? 0u : 1u));
    }
    REQUIRE(b.node->table().remove(key4(40032)));
}

TEST_CASE("traffic that is not for a VIP passes unchanged", "[pipeline]")
{
    Bench &b = bench();
    const uint64_t pass = b.stats().passthrough.get();
    auto out = b.wire_in(ref::other_in);
    require_single(out.local, ref::other_in);
    out = b.wire_in(ref::arp_in);
    require_single(out.local, ref::arp_in);
    REQUIRE(b.stats().passthrough.get() == pass + 2);

    /* ... and what the local port sends goes to the wire unchanged. */
    b.inject(b.local_rx, ref::reply_in);
    REQUIRE(b.worker().poll_once() == 1);
    require_single(Bench::drain(b.wire_tx), ref::reply_in);
    REQUIRE(Bench::drain(b.local_tx).empty());
}

/* For its lifetime, the bench's node takes gossip (unicast, UDP 6081 to
 * our own address, which ref::from2_in is); its worker hands it over
 * through a ring of 3 named @p ring_name, as a node without rte_flow
 * steering does, or without one (nullptr), as where a rule steers it.
 * Then none again, frames left in the ring freed. */
class GossipHandoff {
public:
    explicit GossipHandoff(const char *ring_name)
        : sh_(bench().node->shared()), saved_(sh_.gossip),
          ring_(ring_name == nullptr
                    ? nullptr
                    : rte_ring_create(ring_name, 4, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ))
    {
        REQUIRE((ring_name == nullptr || ring_ != nullptr));
        REQUIRE(sh_.gossip_handoff == nullptr);
        sh_.gossip.enabled = true;
        sh_.gossip.unicast = true;
        sh_.gossip.group.family = Family::ipv4;
        sh_.gossip.udp_port = 6081;
        sh_.gossip.local4 = addr("192.0.2.1");
        sh_.gossip_handoff = ring_;
    }
    ~GossipHandoff()
    {
        sh_.gossip_handoff = nullptr;
        sh_.gossip = saved_;
        if (ring_ == nullptr)
            return;
        rte_mbuf *m = nullptr;
        while (rte_ring_dequeue(ring_, reinterpret_cast<void **>(&m)) == 0)
            rte_pktmbuf_free(m);
        rte_ring_free(ring_);
    }
    GossipHandoff(const GossipHandoff &) = delete;
    GossipHandoff &operator=(const GossipHandoff &) = delete;

    rte_ring *ring() const noexcept { return ring_; }

private:
    DatapathShared &sh_;
    const GossipMatch saved_;
    rte_ring *ring_;
};

TEST_CASE("without a hand-off ring (rte_flow steers gossip) a worker takes no gossip", "[pipeline]")
{
    /* What the rule does not steer reaches a worker: here a GENEVE packet
     * to our address on a port gossip would match. It is processed as the
     * tunnel it is, not handed to a ring there is none of. */
    Bench &b = bench();
    Bench::Output out;
    {
        const GossipHandoff steered(nullptr);
        out = b.wire_in(ref::from2_in);
    }
    REQUIRE(out.wire.empty());
    require_single(out.local, ref::from2_out);
}

TEST_CASE("a burst's gossip frames are handed over at once; a full ring's refusals are drops",
          "[pipeline]")
{
    Bench &b = bench();
    const GossipHandoff handoff("test_gossip_in");
    const uint64_t handed = b.stats().gossip_handoff.get();
    const uint64_t full = drops(DropReason::gossip_ring_full);
    for (int i = 0; i < 5; ++i)
        b.inject(b.wire_rx, ref::from2_in);
    const uint16_t polled = b.worker().poll_once();
    CHECK(polled == 5);
    CHECK(b.stats().gossip_handoff.get() == handed + 3);
    CHECK(drops(DropReason::gossip_ring_full) == full + 2);
    CHECK(rte_ring_count(handoff.ring()) == 3);
    CHECK(Bench::drain(b.wire_tx).empty());
    CHECK(Bench::drain(b.local_tx).empty());
}

TEST_CASE("malformed packets and VIP fragments are counted drops", "[pipeline]")
{
    Bench &b = bench();
    uint64_t before = drops(DropReason::ipv4_truncated);
    auto out = b.wire_in(ref::truncated_in);
    REQUIRE(out.wire.empty());
    REQUIRE(out.local.empty());
    REQUIRE(drops(DropReason::ipv4_truncated) == before + 1);

    before = drops(DropReason::vip_fragment);
    out = b.wire_in(ref::fragment_in);
    REQUIRE(out.wire.empty());
    REQUIRE(out.local.empty());
    REQUIRE(drops(DropReason::vip_fragment) == before + 1);
}

TEST_CASE("a frame in several mbufs is dropped on arrival, on either port, its mbufs freed",
          "[pipeline]")
{
    /* The TX queues send one mbuf a packet: a chain forwarded would leave
     * cut short, and on a NIC's fast path its tail would never come back. */
    Bench &b = bench();
    rte_mempool *pool = b.node->mempool();
    const auto chained = [&](const Frame &f, size_t head_len = 20) {
        rte_mbuf *head = rte_pktmbuf_alloc(pool);
        rte_mbuf *tail = rte_pktmbuf_alloc(pool);
        REQUIRE(head != nullptr);
        REQUIRE(tail != nullptr);
        REQUIRE(f.size() >= head_len);
        std::memcpy(rte_pktmbuf_append(head, static_cast<uint16_t>(head_len)), f.data(), head_len);
        std::memcpy(rte_pktmbuf_append(tail, static_cast<uint16_t>(f.size() - head_len)),
                    f.data() + head_len, f.size() - head_len);
        REQUIRE(rte_pktmbuf_chain(head, tail) == 0);
        return head;
    };
    const unsigned available = rte_mempool_avail_count(pool);
    const uint64_t before = drops(DropReason::rx_chained);
    const uint64_t from_local = b.stats().from_local.get();

    REQUIRE(rte_ring_enqueue(b.wire_rx, chained(ref::miss_in)) == 0);
    REQUIRE(b.worker().poll_once() == 1);
    REQUIRE(rte_ring_enqueue(b.local_rx, chained(ref::reply_in)) == 0);
    REQUIRE(b.worker().poll_once() == 1);
    /* Whole in its first segment, an empty one after it: still a chain. */
    REQUIRE(rte_ring_enqueue(b.wire_rx, chained(ref::miss_in, ref::miss_in.size())) == 0);
    REQUIRE(b.worker().poll_once() == 1);

    CHECK(Bench::drain(b.wire_tx).empty());
    CHECK(Bench::drain(b.local_tx).empty());
    CHECK(drops(DropReason::rx_chained) == before + 3);
    CHECK(b.stats().from_local.get() == from_local);
    CHECK(rte_mempool_avail_count(pool) == available);

    SECTION("but a gossip frame in pieces goes to the control lcore, which reads it whole")
    {
        {
            const GossipHandoff handoff("test_chained_gossip");
            const uint64_t handed = b.stats().gossip_handoff.get();
            /* Its headers in the first segment, as a device's chain has them. */
            REQUIRE(rte_ring_enqueue(b.wire_rx, chained(ref::from2_in, 50)) == 0);
            CHECK(b.worker().poll_once() == 1);
            CHECK(b.stats().gossip_handoff.get() == handed + 1);
            CHECK(drops(DropReason::rx_chained) == before + 3);
            rte_mbuf *m = nullptr;
            REQUIRE(rte_ring_dequeue(handoff.ring(), reinterpret_cast<void **>(&m)) == 0);
            CHECK(m->nb_segs == 2);
            rte_pktmbuf_free(m);
        }
        CHECK(rte_mempool_avail_count(pool) == available);
    }
}

TEST_CASE("a VIP's packet in a broadcast or multicast frame is a named drop", "[pipeline]")
{
    /* Every node on the segment receives such a frame: none may claim the
     * flow or send its copy to the owner. */
    Bench &b = bench();
    b.own(key4(40002), 2);
    b.own(key4(40008), 1);
    const auto to_group = [](Frame f, std::array<uint8_t, 6> mac) {
        std::copy(mac.begin(), mac.end(), f.begin());
        return f;
    };
    const std::array<uint8_t, 6> broadcast{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    const std::array<uint8_t, 6> multicast{0x01, 0x00, 0x5E, 0x00, 0x00, 0x01};
    const uint64_t claims = b.stats().claims.get();
    const uint64_t redirects = b.stats().redirects.get();
    const uint64_t before = drops(DropReason::vip_link_group);
    for (const Frame &f : {to_group(ref::syn_in, broadcast), to_group(ref::syn_in, multicast),
                           to_group(ref::to2_in, broadcast), to_group(ref::from2_in, broadcast)}) {
        const Bench::Output out = b.wire_in(f);
        CHECK(out.wire.empty());
        CHECK(out.local.empty());
    }
    CHECK(drops(DropReason::vip_link_group) == before + 4);
    CHECK(b.stats().claims.get() == claims);
    CHECK(b.stats().redirects.get() == redirects);

    /* Unicast, the same packets are the flows' as before. */
    CHECK(b.wire_in(ref::to2_in).wire.size() == 1);
    CHECK(b.wire_in(ref::from2_in).local.size() == 1);
    CHECK(drops(DropReason::vip_link_group) == before + 4);
}

TEST_CASE("too-big errors are rate-limited per worker", "[pipeline]")
{
    /* RFC 4443 2.4(f): a burst of 200 too-big packets gets at most a burst
     * of errors (64) and what the rate (1000 a second) earns meanwhile. */
    Bench &b = bench();
    b.own(key4(40014), 2);
    const uint64_t too_big = drops(DropReason::encap_too_big);
    const uint64_t sent = b.stats().icmp_too_big.get();
    const uint64_t limited = b.stats().icmp_rate_limited.get();
    const uint64_t t0 = rte_rdtsc();
    for (int i = 0; i < 200; ++i)
        b.inject(b.wire_rx, ref::big_to2_in);
    while (b.worker().poll_once() != 0) {
    }
    const uint64_t earned = (rte_rdtsc() - t0) * 1000 / rte_get_tsc_hz() + 1;
    const std::vector<Frame> out = Bench::drain(b.wire_tx);
    const uint64_t errors = b.stats().icmp_too_big.get() - sent;
    CHECK(drops(DropReason::encap_too_big) == too_big + 200);
    CHECK(out.size() == errors);
    CHECK(errors <= 64 + earned);
    CHECK(errors + b.stats().icmp_rate_limited.get() - limited == 200);
    /* Refilled at the rate: after 10 ms, 10 more may go, and no more than
     * what the burst left and the time since has earned. */
    const uint64_t left = 64 + earned - errors;
    const uint64_t t1 = rte_rdtsc();
    rte_delay_us_block(10'000);
    const uint64_t before = b.stats().icmp_too_big.get();
    for (int i = 0; i < 20; ++i)
        REQUIRE(b.wire_in(ref::big_to2_in).local.empty());
    const uint64_t earned_since = (rte_rdtsc() - t1) * 1000 / rte_get_tsc_hz() + 1;
    const uint64_t refilled = b.stats().icmp_too_big.get() - before;
    INFO("left " << left << ", earned since " << earned_since);
    CHECK(refilled >= 10);
    CHECK(refilled <= left + earned_since);
    Bench::drain(b.wire_tx);

    /* Packets no error may answer (IPv4 without DF) wait for no token:
     * dropped as too big, not counted as errors held back, also after 100
     * that may have spent every token, in one burst with them. */
    std::vector<uint8_t> no_df = ref::big_to2_in;
    constexpr size_t ip = 14;
    no_df[ip + 6] = static_cast<uint8_t>(no_df[ip + 6] & ~0x40);
    wire::store16(no_df.data() + ip + 10, ipv4_header_checksum(no_df.data() + ip, 20));
    const uint64_t dropped_before = drops(DropReason::encap_too_big);
    const uint64_t sent_before = b.stats().icmp_too_big.get();
    const uint64_t limited_before = b.stats().icmp_rate_limited.get();
    for (int i = 0; i < 100; ++i)
        b.inject(b.wire_rx, ref::big_to2_in);
    for (int i = 0; i < 20; ++i)
        b.inject(b.wire_rx, no_df);
    while (b.worker().poll_once() != 0) {
    }
    const uint64_t held_back = b.stats().icmp_rate_limited.get() - limited_before;
    REQUIRE(held_back > 0); /* the bucket ran dry before the packets without DF */
    CHECK(drops(DropReason::encap_too_big) == dropped_before + 120);
    CHECK(b.stats().icmp_too_big.get() - sent_before + held_back == 100);
    Bench::drain(b.wire_tx);
    rte_delay_us_block(70'000); /* a full bucket again for the tests after */
}

TEST_CASE("an ICMP error about a peer's flow goes to the peer; about ours, to our kernel",
          "[pipeline][icmp]")
{
    /* A router on the way from the owner to the client asks for a smaller
     * MTU; ECMP brings the error to this node. */
    Bench &b = bench();
    b.own(key4(40020), 2);
    b.own(key4(40021), 1);
    auto frag_needed = [](uint16_t client_port) {
        const eb::Ip4 vip{203, 0, 113, 10};
        const eb::Ip4 client{192, 0, 2, 100};
        const eb::Bytes reply = eb::ipv4_tcp(vip, client, 80, client_port, 0x10, eb::payload(8));
        return eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800,
                         eb::ipv4(eb::v4(198, 51, 100, 1), vip, kProtoIcmp,
                                  eb::icmp4(3, 4, eb::slice(reply, 0, 28))));
    };
    const uint64_t to_owner = b.stats().icmp_to_owner.get();
    const uint64_t to2 = b.stats().redirects_to[2].get();
    auto out = b.wire_in(frag_needed(40020));
    CHECK(out.local.empty());
    REQUIRE(out.wire.size() == 1);
    CHECK(b.stats().icmp_to_owner.get() == to_owner + 1);
    CHECK(b.stats().redirects_to[2].get() == to2 + 1);
    out = b.wire_in(frag_needed(40021));
    CHECK(out.wire.empty());
    CHECK(out.local.size() == 1);
    CHECK(b.stats().icmp_to_owner.get() == to_owner + 1);
}

TEST_CASE("an ICMP error about a dead peer's flow goes where the flow's packets go",
          "[pipeline][icmp]")
{
    /* Node 3 is dead and the control lcore has not rewritten its records:
     * the flow's packets go to its failover owner, and so does a router's
     * error about it, not to this node's kernel. */
    Bench &b = bench();
    DatapathShared &sh = b.node->shared();
    const NodeId nodes[] = {1, 2, 3, 4};
    uint16_t port = 40040;
    while (failover_owner(flow_hash(key4(port)), 3, nodes) == 1)
        ++port; /* a flow whose heir is a peer */
    const NodeId heir = failover_owner(flow_hash(key4(port)), 3, nodes);
    b.own(key4(port), 3);
    const eb::Ip4 vip{203, 0, 113, 10};
    const eb::Bytes reply =
        eb::ipv4_tcp(vip, eb::Ip4{192, 0, 2, 100}, 80, port, 0x10, eb::payload(8));
    const Frame frag_needed = eb::ether(eb::kOurMac, eb::kRouterMac, 0x0800,
                                        eb::ipv4(eb::v4(198, 51, 100, 1), vip, kProtoIcmp,
                                                 eb::icmp4(3, 4, eb::slice(reply, 0, 28))));
    const uint64_t to_owner = b.stats().icmp_to_owner.get();
    const uint64_t to3 = b.stats().redirects_to[3].get();
    const uint64_t to_heir = b.stats().redirects_to[heir].get();
    const uint64_t failover = b.stats().failover.get();

    sh.node_state[3].store(static_cast<uint8_t>(NodeState::dead));
    const Bench::Output out = b.wire_in(frag_needed);
    sh.node_state[3].store(static_cast<uint8_t>(NodeState::alive));
    CHECK(out.local.empty());
    CHECK(out.wire.size() == 1);
    CHECK(b.stats().icmp_to_owner.get() == to_owner + 1);
    CHECK(b.stats().failover.get() == failover + 1);
    CHECK(b.stats().redirects_to[heir].get() == to_heir + 1);
    CHECK(b.stats().redirects_to[3].get() == to3);
}

TEST_CASE("an ICMPv6 error about a peer's flow of a tcp VIP goes to the peer", "[pipeline][icmp]")
{
    /* The IPv6 VIP serves tcp/443 only: the ICMPv6 packet does not match
     * it, the flow it quotes does. Addressed to anything but the VIP, the
     * same error is not the flow's: the local stack gets it. */
    Bench &b = bench();
    b.own(key6(40030), 4);
    const auto a6 = [](const char *s) {
        eb::Ip6 r{};
        const IpAddr a = addr(s);
        std::copy(a.bytes.begin(), a.bytes.end(), r.begin());
        return r;
    };
    const eb::Ip6 vip = a6("2001:db8:100::10");
    const eb::Ip6 router = a6("2001:db8:300::1");
    const eb::Bytes reply =
        eb::ipv6_tcp(vip, a6("2001:db8:200::100"), 443, 40030, 0x10, eb::payload(8));
    auto too_big = [&](const eb::Ip6 &to) {
        return eb::ether(eb::kOurMac, eb::kRouterMac, 0x86DD,
                         eb::ipv6(router, to, kProtoIcmpv6,
                                  eb::icmp6(router, to, 2, 0, eb::slice(reply, 0, 48))));
    };
    const uint64_t to_owner = b.stats().icmp_to_owner.get();
    const uint64_t to4 = b.stats().redirects_to[4].get();
    const uint64_t pass = b.stats().passthrough.get();
    auto out = b.wire_in(too_big(vip));
    CHECK(out.local.empty());
    CHECK(out.wire.size() == 1);
    CHECK(b.stats().icmp_to_owner.get() == to_owner + 1);
    CHECK(b.stats().redirects_to[4].get() == to4 + 1);
    CHECK(b.stats().passthrough.get() == pass);

    out = b.wire_in(too_big(a6("2001:db8:100::99")));
    CHECK(out.wire.empty());
    CHECK(out.local.size() == 1);
    CHECK(b.stats().icmp_to_owner.get() == to_owner + 1);

    /* In fragments, the error is the local stack's whole: its first
     * fragment (which quotes the flow) does not go to the owner while the
     * rest go to our kernel. Nor does a copy in a broadcast frame. */
    const eb::Bytes error = eb::icmp6(router, vip, 2, 0, eb::slice(reply, 0, 48));
    eb::Bytes first{kProtoIcmpv6, 0, 0x00, 0x01, 0, 0, 0, 7}; /* offset 0, more fragments */
    first.insert(first.end(), error.begin(), error.end());
    out = b.wire_in(eb::ether(eb::kOurMac, eb::kRouterMac, 0x86DD,
                              eb::ipv6(router, vip, 44 /* fragment header */, first)));
    CHECK(out.wire.empty());
    CHECK(out.local.size() == 1);
    Frame flooded = too_big(vip);
    std::fill_n(flooded.begin(), 6, 0xFF);
    out = b.wire_in(flooded);
    CHECK(out.wire.empty());
    CHECK(out.local.size() == 1);
    CHECK(b.stats().icmp_to_owner.get() == to_owner + 1);
}

TEST_CASE("console numbers and endpoints are taken in one form only", "[console]")
{
    /* Nothing polls the control loop here: a command that parses reaches
     * it and waits its 1 ms in vain; one that does not is refused first. */
    Bench &b = bench();
    Console con(*b.node, {.control_timeout = std::chrono::milliseconds(1)});
    const std::string unanswered =
        "the control lcore did not answer within 1 ms; nothing was changed\n";
    const std::pair<const char *, std::string> lines[] = {
        {"show flow tcp 198.51.100.7:080 203.0.113.10:80",
         "malformed client address '198.51.100.7:080': port '080' has a leading zero "
         "(1..65535)\n"},
        {"show flow tcp [198.51.100.7]:1 203.0.113.10:80",
         "malformed client address '[198.51.100.7]:1': an IPv4 endpoint is written "
         "ADDRESS:PORT, without brackets\n"},
        {"show flows limit 010", "limit '010' has a leading zero (1..10000)\n"},
        /* A lone 0 is a number (out of range, not a leading zero); brackets
         * are IPv6's form. */
        {"show flows owner 0", "owner '0' is out of range (1..4095)\n"},
        {"show flows owner 10 limit 1", unanswered},
        {"show flow tcp [2001:db8:200::100]:40000 [2001:db8:100::10]:443", unanswered},
    };
    for (const auto &[line, message] : lines) {
        INFO(line);
        const CommandResult r = con.execute(line);
        CHECK_FALSE(r.ok);
        CHECK(r.text == message);
    }
    /* The abandoned requests go at the loop's next polls. */
    for (unsigned i = 0; i < 4; ++i)
        b.settle_control();
}

TEST_CASE("help, '?' and Tab know show flows' filters in any order", "[console]")
{
    Console con(*bench().node);
    using Words = std::vector<std::string>;
    CHECK(con.hint({"show", "flows"}) == "[vip <vip-ip>] or [owner <node-id>] or [limit <n>]");
    CHECK(con.hint({"show", "flows", "owner"}) == "<node-id>");
    CHECK(con.hint({"show", "flows", "owner", "3"}) == "[vip <vip-ip>] or [limit <n>]");
    CHECK(con.hint({"show", "flow"}) == "<proto>");
    CHECK(con.complete({"show", "flows", "limit", "5"}) == Words{"vip", "owner"});
    CHECK(con.complete({"show", "flows", "vip"}).empty());

    const CommandResult h = con.execute("help show flows vip");
    CHECK(h.ok);
    CHECK(h.text.starts_with("  show flows [vip <vip-ip>]"));
    CHECK(con.execute("help show").text.find("  show flows [vip") != std::string::npos);
    /* A whole command line, its arguments too; Tab and '?' follow it. */
    const Words first = con.complete({"help"});
    CHECK(std::find(first.begin(), first.end(), "show") != first.end());
    CHECK(con.complete({"help", "show", "flows", "limit", "5"}) == Words{"vip", "owner"});
    CHECK(con.hint({"help"}) == "[command]");
    CHECK(con.hint({"help", "show", "flows", "owner"}) == "<node-id>");
    const CommandResult flow = con.execute("help show flow tcp 198.51.100.7:1 203.0.113.10:80");
    CHECK(flow.ok);
    CHECK(flow.text.starts_with("  show flow <proto>"));
    CHECK(con.execute("help show nodes").text ==
          "unknown command 'show nodes'; did you mean 'show node'? (type 'help' for the list)\n");
}

TEST_CASE("set log-level raises every log type's level, not only the global one", "[console]")
{
    Bench &b = bench();
    Console con(*b.node);
    const uint32_t eal = static_cast<uint32_t>(rte_log_get_level(RTE_LOGTYPE_EAL));
    REQUIRE(con.execute("set log-level debug").ok);
    CHECK(rte_log_can_log(RTE_LOGTYPE_EAL, RTE_LOG_DEBUG));
    REQUIRE(con.execute("set log-level error").ok);
    CHECK_FALSE(rte_log_can_log(RTE_LOGTYPE_EAL, RTE_LOG_WARNING));
    rte_log_set_level(RTE_LOGTYPE_EAL, eal);
}

TEST_CASE("a node that fails half-way through start-up releases what it built", "[node]")
{
    /* Its wire port started, its rings made, then the gossip key file is
     * missing: the constructor throws, and no destructor runs. */
    const test::RingPort ring("ring_halfway", 64);
    REQUIRE(ring.port >= 0);
    NodeConfig cfg = wire_only_config(9);
    cfg.peers.clear();
    cfg.domains.clear();
    cfg.gossip.enabled = true;
    cfg.gossip.group = addr("239.1.1.1");
    cfg.gossip.key_file = "/nonexistent/flowhome-test.keys";
    CHECK_THROWS_WITH(Node(cfg, Node::PortIds{ring.id(), kNoPort}),
                      Catch::Contains("gossip.key_file"));
    CHECK(rte_ring_lookup("fh_ctl_9") == nullptr);
    /* Stopped: a started port refuses to be configured again (-EBUSY). */
    rte_eth_conf conf{};
    CHECK(rte_eth_dev_configure(ring.id(), 1, 1, &conf) == 0);
}

TEST_CASE("show flows walks the table in slices, one control-lcore request each", "[console]")
{
    /* A filter that matches little walks the whole table: in one request,
     * a table of millions would keep the control lcore from its heartbeats
     * for a second. */
    Bench &b = bench();
    OwnershipTable &t = b.node->table();
    constexpr uint32_t kFlows = 3000;
    for (uint32_t i = 0; i < kFlows; ++i)
        REQUIRE(t.upsert(key4(60000 + i), {.owner = static_cast<NodeId>(i % 100 == 7 ? 9 : 7),
                                           .version = 1}) == UpsertResult::inserted);
    std::atomic<bool> done{false};
    std::thread control([&] {
        while (!done.load())
            b.node->control().poll_once(rte_rdtsc());
    });
    Console con(*b.node, {.flows_per_request = 256});
    const uint64_t requests = b.node->control().stats().operator_requests.get();
    const CommandResult r = con.execute("show flows owner 9 limit 1000");
    const uint64_t used = b.node->control().stats().operator_requests.get() - requests;
    const CommandResult limited = con.execute("show flows owner 9 limit 10");
    /* Out of time: what it found so far, and that the walk did not end. */
    Console hurried(*b.node, {.flows_per_request = 256, .flows_walk_limit = {}});
    const CommandResult cut = hurried.execute("show flows owner 9");
    done = true;
    control.join();
    for (uint32_t i = 0; i < kFlows; ++i)
        t.remove(key4(60000 + i));

    REQUIRE(r.ok);
    CHECK(r.text.find("30 flows shown\n") != std::string::npos);
    CHECK(used > kFlows / 256); /* the walk covered at least these flows */
    CHECK(limited.text.find("10 flows shown (limit 10 reached; more exist)") != std::string::npos);
    REQUIRE(cut.ok);
    CHECK(cut.text.find("0 flows shown (the walk stopped after 0 ms, 0 entries in, before the end "
                        "of the IPv4 table: narrow it with vip or owner)") != std::string::npos);
}

TEST_CASE("a full request queue is told apart from a control lcore that did not answer",
          "[console]")
{
    /* Nothing polls the control loop here: each request waits its 1 ms
     * and is abandoned in the queue, until the queue holds no more. */
    Bench &b = bench();
    Console con(*b.node, {.control_timeout = std::chrono::milliseconds(1)});
    unsigned timed_out = 0;
    std::string refused;
    for (unsigned i = 0; i < 100 && refused.empty(); ++i) {
        const CommandResult r = con.execute("show flow tcp 198.51.100.7:40001 203.0.113.10:80");
        REQUIRE_FALSE(r.ok);
        if (r.text == "the control lcore did not answer within 1 ms; nothing was changed\n")
            ++timed_out;
        else
            refused = r.text;
    }
    CHECK(timed_out >= 32);
    CHECK(refused == "the control lcore's request queue is full (it has not taken up the requests "
                     "before this one); nothing was changed\n");
    /* The loop drops what was abandoned (4 requests a poll) and answers again. */
    for (unsigned i = 0; i < 64; ++i)
        b.settle_control();
    std::atomic<bool> done{false};
    std::thread control([&] {
        while (!done.load())
            b.settle_control();
    });
    Console patient(*b.node); /* 2 s: a loaded machine's scheduler is no part of it */
    const CommandResult r = patient.execute("show flow tcp 198.51.100.7:40001 203.0.113.10:80");
    done = true;
    control.join();
    CHECK(r.text.find("did not answer") == std::string::npos);
    CHECK(r.text.find("queue is full") == std::string::npos);
}

/* Runs @p send with a capture of @p reason on; whether it caught one copy
 * holding bytes [from, 64) of @p frame, or to its end (in a pcapng block). */
template <typename Fn>
bool drop_captured(DropReason reason, const Frame &frame, size_t from, Fn &&send)
{
    Bench &b = bench();
    CaptureTap tap;
    tap.kind = CaptureTap::Kind::drop;
    tap.reason = reason;
    tap.ring = rte_ring_create("cap_test", 64, 0, 0);
    tap.pool = b.node->mempool();
    REQUIRE(tap.ring != nullptr);
    DatapathShared &sh = b.node->shared();
    sh.capture.store(&tap);
    send();
    sh.capture.store(nullptr);
    bool found = false;
    void *obj = nullptr;
    const uint64_t captured = tap.captured.load();
    while (rte_ring_dequeue(tap.ring, &obj) == 0) {
        auto *copy = static_cast<rte_mbuf *>(obj);
        const auto *data = rte_pktmbuf_mtod(copy, const uint8_t *);
        found = found ||
                std::search(
                    data, data + copy->data_len, frame.begin() + static_cast<ptrdiff_t>(from),
                    frame.begin() + static_cast<ptrdiff_t>(std::min<size_t>(frame.size(), 64))) !=
                    data + copy->data_len;
        rte_pktmbuf_free(copy);
    }
    rte_ring_free(tap.ring);
    return captured == 1 && found;
}

TEST_CASE("a drop capture sees a too-big packet as it arrived", "[pipeline][capture]")
{
    /* It is turned into the ICMP error in place: the capture must copy it first. */
    Bench &b = bench();
    b.own(key4(40014), 2);
    /* From its Ethernet header on: the error has the addresses swapped. */
    CHECK(drop_captured(DropReason::encap_too_big, ref::big_to2_in, 0,
                        [&] { b.wire_in(ref::big_to2_in); }));
}

TEST_CASE("a drop capture sees what a full TX queue refused, named by its port",
          "[pipeline][capture]")
{
    /* The port's ring full of placeholders: the packet is refused. */
    Bench &b = bench();
    const auto fill = [&](rte_ring *tx) {
        while (rte_ring_free_count(tx) != 0) {
            rte_mbuf *m = rte_pktmbuf_alloc(b.node->mempool());
            REQUIRE(m != nullptr);
            REQUIRE(rte_ring_enqueue(tx, m) == 0);
        }
    };
    const auto empty = [](rte_ring *tx) {
        void *obj = nullptr;
        while (rte_ring_dequeue(tx, &obj) == 0)
            rte_pktmbuf_free(static_cast<rte_mbuf *>(obj));
    };

    const struct {
        const char *what;
        FlowKey key;
        NodeId owner;
        const Frame &frame;
        size_t from; /* a redirect's IP packet is behind its outer header */
        rte_ring *tx;
        DropReason reason;
        DropReason other;
    } cases[] = {
        {"a redirect, on the wire port", key4(40002), 2, ref::to2_in, 14, b.wire_tx,
         DropReason::tx_full_wire, DropReason::tx_full_local},
        {"a local hit, on the local port", key4(40001), 1, ref::ack_in, 0, b.local_tx,
         DropReason::tx_full_local, DropReason::tx_full_wire},
    };
    for (const auto &c : cases) {
        INFO(c.what);
        b.own(c.key, c.owner);
        fill(c.tx);
        const uint64_t full = drops(c.reason);
        const uint64_t other = drops(c.other);
        CHECK(drop_captured(c.reason, c.frame, c.from, [&] {
            b.inject(b.wire_rx, c.frame);
            REQUIRE(b.worker().poll_once() == 1);
        }));
        CHECK(drops(c.reason) == full + 1);
        CHECK(drops(c.other) == other);
        empty(c.tx);
    }
}

TEST_CASE("a drop capture's file: packets stamped with the time, none that names no port",
          "[pipeline][capture]")
{
    /* Through the real writer (rte_pcapng_write_packets), which looks each
     * copy's interface up by its port id, unchecked: drops used to be filed
     * under m->port, which net_ring and the control lcore's frames left
     * unset (65535), and crashed it. */
    Bench &b = bench();
    char path[] = "/tmp/fhcapXXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    const auto started = std::chrono::system_clock::now();
    {
        CaptureManager cm(*b.node);
        cm.start("tx_full_wire", path, 10);
        CaptureTap *tap = b.node->shared().capture.load();
        REQUIRE(tap != nullptr);
        rte_mbuf *m = mbuf_of(b.node->mempool(), ref::to2_in);
        m->port = RTE_MBUF_PORT_INVALID; /* net_ring sets none, nor did the control lcore */
        tap->offer_drop(DropReason::tx_full_wire, m, m->port);
        tap->offer_drop(DropReason::tx_full_wire, m, b.node->ports().wire);
        rte_pktmbuf_free(m);
        const std::string out = cm.stop("");
        INFO(out);
        CHECK(out.find("1 packets written") != std::string::npos);
        CHECK(out.find("1 lost") != std::string::npos);
    }
    const auto stopped = std::chrono::system_clock::now();
    /* The one Enhanced Packet Block (type 6): its timestamp, in ns since the
     * epoch, upper and lower halves at bytes 12 and 16. */
    std::vector<uint8_t> file;
    {
        FILE *f = std::fopen(path, "rb");
        REQUIRE(f != nullptr);
        uint8_t buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) != 0;)
            file.insert(file.end(), buf, buf + n);
        std::fclose(f);
    }
    std::remove(path);
    int blocks = 0;
    for (size_t at = 0; at + 20 <= file.size();) {
        uint32_t type, len, hi, lo;
        std::memcpy(&type, &file[at], 4);
        std::memcpy(&len, &file[at + 4], 4);
        REQUIRE(len >= 12);
        if (type == 6) {
            ++blocks;
            std::memcpy(&hi, &file[at + 12], 4);
            std::memcpy(&lo, &file[at + 16], 4);
            const auto ns = std::chrono::nanoseconds(uint64_t{hi} << 32 | lo);
            const auto since_epoch = [](auto t) {
                return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
            };
            CHECK(ns >= since_epoch(started) - std::chrono::seconds(1));
            CHECK(ns <= since_epoch(stopped) + std::chrono::seconds(1));
        }
        at += len;
    }
    CHECK(blocks == 1);
}

TEST_CASE("a packet too big once encapsulated is dropped with an ICMP error", "[pipeline]")
{
    Bench &b = bench();
    b.own(key4(40014), 2);
    const uint64_t before = drops(DropReason::encap_too_big);
    const uint64_t icmp = b.stats().icmp_too_big.get();
    const auto out = b.wire_in(ref::big_to2_in);
    REQUIRE(out.local.empty());
    REQUIRE(out.wire.size() == 1);
    REQUIRE(drops(DropReason::encap_too_big) == before + 1);
    REQUIRE(b.stats().icmp_too_big.get() == icmp + 1);

    /* ICMP "fragmentation needed" to the client, from our wire address,
     * with the MTU that fits once GENEVE (62 bytes with the inner Ethernet
     * header) is added to a 1500-byte port. */
    const Frame &f = out.wire[0];
    ParsedPacket p;
    REQUIRE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()),
                         p) == ParseStatus::ok);
    REQUIRE(p.l4_proto == kProtoIcmp);
    REQUIRE(std::equal(f.begin(), f.begin() + 6, ref::big_to2_in.begin() + 6)); /* back to sender */
    const uint8_t *iph = f.data() + p.l3_offset;
    uint32_t src, dst;
    std::memcpy(&src, iph + 12, 4);
    std::memcpy(&dst, iph + 16, 4);
    REQUIRE(IpAddr::v4(src) == addr("192.0.2.1"));
    REQUIRE(IpAddr::v4(dst) == addr("192.0.2.100"));
    const uint8_t *icmph = f.data() + p.l4_offset;
    REQUIRE(icmph[0] == 3);
    REQUIRE(icmph[1] == 4);
    REQUIRE((icmph[6] << 8 | icmph[7]) == 1500 - 62);
    REQUIRE(p.l3_len <= 576);
}

TEST_CASE("the control core inserts claims; a full table is a counted refusal", "[pipeline]")
{
    Bench &b = bench();
    b.settle_control();
    const ControlStats &cs = b.node->control().stats();
    const uint64_t inserted = cs.claims_inserted.get();

    ControlMsg msg{};
    msg.type = ControlMsgType::claim;
    msg.key = key4(50000);
    b.node->control().apply(msg, b.node->control().now_us(rte_rdtsc()));
    REQUIRE(cs.claims_inserted.get() == inserted + 1);
    REQUIRE(b.node->table().lookup(key4(50000))->owner == 1);

    /* Claiming an owned key again changes nothing. */
    const uint64_t existing = cs.claims_existing.get();
    b.node->control().apply(msg, b.node->control().now_us(rte_rdtsc()));
    REQUIRE(cs.claims_existing.get() == existing + 1);

    /* Fill the IPv4 table, then one more. */
    OwnershipTable &t = b.node->table();
    for (uint16_t p = 1; t.count(Family::ipv4) < t.capacity(Family::ipv4); ++p)
        REQUIRE(t.upsert(FlowKey::make4(addr("192.0.2.200").v4_be(), htons(p),
                                        addr("203.0.113.10").v4_be(), htons(80), kProtoUdp),
                         {.owner = 2}) == UpsertResult::inserted);
    const uint64_t full = cs.table_full.get();
    msg.key = key4(50001);
    b.node->control().apply(msg, b.node->control().now_us(rte_rdtsc()));
    REQUIRE(cs.table_full.get() == full + 1);
    REQUIRE_FALSE(t.lookup(key4(50001)));

    /* From now on the worker makes no claim of that family. A SYN meets the
     * miss policy (drop here), where served it would be cut off at its
     * first data packet; a UDP datagram is served, unrecorded. */
    REQUIRE(t.refusing(Family::ipv4));
    REQUIRE_FALSE(t.refusing(Family::ipv6));
    Frame syn = ref::syn_in;
    syn[14 + 20] = 45000 >> 8; /* TCP source port: a flow of its own */
    syn[14 + 20 + 1] = 45000 & 0xFF;
    const Frame datagram = eb::ether(
        eb::kOurMac, eb::kRouterMac, 0x0800,
        eb::ipv4_udp(eb::v4(192, 0, 2, 100), eb::v4(203, 0, 113, 10), 45001, 53, eb::payload(32)));
    const uint64_t claims = b.stats().claims.get();
    const uint64_t refused = b.stats().opening_table_full.get();
    const uint64_t missed = drops(DropReason::miss_policy_drop);
    auto out = b.wire_in(syn);
    CHECK(out.local.empty());
    CHECK(out.wire.empty());
    CHECK(drops(DropReason::miss_policy_drop) == missed + 1);
    out = b.wire_in(datagram);
    CHECK(out.local.size() == 1);
    CHECK(b.stats().opening_table_full.get() == refused + 2);
    CHECK(b.stats().claims.get() == claims);

    /* It takes new flows again once 1 in 1024 of its entries (here 4) are gone. */
    REQUIRE(t.count(Family::ipv4) == 4096);
    for (uint16_t p = 1; p <= 4; ++p) {
        REQUIRE(t.refusing(Family::ipv4));
        REQUIRE(t.remove(FlowKey::make4(addr("192.0.2.200").v4_be(), htons(p),
                                        addr("203.0.113.10").v4_be(), htons(80), kProtoUdp)));
    }
    REQUIRE_FALSE(t.refusing(Family::ipv4));
    out = b.wire_in(syn);
    CHECK(out.local.size() == 1);
    CHECK(b.stats().claims.get() == claims + 1);
    b.settle_control();
    CHECK(t.lookup(FlowKey::make4(addr("192.0.2.100").v4_be(), htons(45000),
                                  addr("203.0.113.10").v4_be(), htons(80), kProtoTcp)));
}

TEST_CASE("show flow on a node without a local port names the drop its packets meet", "[console]")
{
    const test::RingPort ring("ring_nolocal", 64);
    REQUIRE(ring.port >= 0);
    Node node(wire_only_config(8), Node::PortIds{ring.id(), kNoPort});
    REQUIRE(node.table().upsert(key4(40001), {.owner = 8, .version = 1}) != UpsertResult::full);
    REQUIRE(node.table().upsert(key4(40002), {.owner = 2, .version = 1}) != UpsertResult::full);

    std::atomic<bool> done{false};
    std::thread control([&] {
        while (!done.load())
            node.control().poll_once(rte_rdtsc());
    });
    Console con(node);
    const CommandResult ours = con.execute("show flow tcp 192.0.2.100:40001 203.0.113.10:80");
    const CommandResult peers = con.execute("show flow tcp 192.0.2.100:40002 203.0.113.10:80");
    done = true;
    control.join();
    INFO(ours.text << peers.text);
    REQUIRE(ours.ok);
    CHECK(ours.text.find("this node has no local port (dropped as no_local_port)") !=
          std::string::npos);
    CHECK(ours.text.find("delivered locally") == std::string::npos);
    REQUIRE(peers.ok);
    CHECK(peers.text.find("node 2: geneve to 192.0.2.2 (domain dc)") != std::string::npos);
}
