/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/worker.hpp"

#include "flowhome/capture.hpp"
#include "flowhome/gossip_membership.hpp"
#include "flowhome/gossip_state.hpp"

#include <algorithm>
#include <cstring>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>

namespace flowhome {

uint64_t WorkerStats::total_drops() const noexcept
{
    uint64_t sum = 0;
    for (const Counter &c : drops)
        sum += c.get();
    return sum;
}

Worker::Worker(DatapathShared &shared, unsigned index, uint16_t queue) noexcept
    : sh_(shared), index_(index), queue_(queue), cache4_(shared.flow_cache),
      cache6_(shared.flow_cache)
{
    wire_out_.port = shared.wire_port;
    local_out_.port = shared.local_port;
}

void Worker::count_drop(const rte_mbuf *m, DropReason r, uint16_t port) noexcept
{
    stats_.drops[static_cast<size_t>(r)].add();
    if (unlikely(tap_ != nullptr))
        tap_->offer_drop(r, m, port);
}

void Worker::drop(rte_mbuf *m, DropReason r) noexcept
{
    /* What the pipeline drops came in on the wire port: the local port's
     * traffic only goes out, where a full queue names its own port (and a
     * chain from it is dropped on arrival, naming it too). */
    count_drop(m, r, sh_.wire_port);
    rte_pktmbuf_free(m);
}

void Worker::to_local(rte_mbuf *m) noexcept
{
    if (unlikely(local_out_.port == kNoPort)) {
        drop(m, DropReason::no_local_port);
        return;
    }
    local_out_.pkts[local_out_.n++] = m;
}

void Worker::to_wire(rte_mbuf *m) noexcept
{
    wire_out_.pkts[wire_out_.n++] = m;
}

Worker::PendingClaim *Worker::pending_find(const FlowKey &k, uint32_t hash,
                                           uint64_t now_tsc) noexcept
{
    PendingClaim &p = pending_[hash & (kPendingSlots - 1)];
    return p.hash == hash && p.expires_tsc > now_tsc && p.key == k ? &p : nullptr;
}

void Worker::pending_insert(const FlowKey &k, uint32_t hash, uint64_t now_tsc,
                            NodeId owner) noexcept
{
    /* Direct-mapped: a colliding newer claim evicts an older one. The cache
     * only has to bridge the microseconds until the control core has
     * inserted the claim, so a small one suffices. */
    PendingClaim &p = pending_[hash & (kPendingSlots - 1)];
    p.hash = hash;
    p.owner = owner;
    p.refused = false;
    p.key = k;
    p.expires_tsc = now_tsc + sh_.claim_grace_tsc;
}

bool Worker::icmp_token_ready() noexcept
{
    /* Only packets too big to redirect come here: reading the TSC is fine. */
    const uint64_t now = rte_rdtsc();
    const uint64_t per_token = rte_get_tsc_hz() / kIcmpPerSecond;
    if (now - icmp_refill_tsc_ >= per_token) {
        const uint64_t earned = (now - icmp_refill_tsc_) / per_token;
        icmp_tokens_ = std::min(kIcmpBurst, icmp_tokens_ + earned);
        icmp_refill_tsc_ = earned >= kIcmpBurst ? now : icmp_refill_tsc_ + earned * per_token;
    }
    return icmp_tokens_ != 0;
}

bool Worker::refresh_sent(uint32_t hash, uint16_t epoch) noexcept
{
    RefreshSent &r = refreshed_[hash & (kRefreshSlots - 1)];
    if (r.hash == hash && r.epoch == epoch)
        return true;
    r.hash = hash;
    r.epoch = epoch;
    return false;
}

void Worker::send_control(ControlMsgType type, const FlowKey &k) noexcept
{
    if (unlikely(control_n_ == kBurst))
        flush_control();
    ControlMsg &msg = control_out_[control_n_++];
    msg.type = type;
    msg.key = k;
}

void Worker::flush_control() noexcept
{
    if (control_n_ == 0)
        return;
    const unsigned sent =
        sh_.to_control == nullptr
            ? 0
            : rte_ring_enqueue_burst_elem(sh_.to_control, control_out_, sizeof(ControlMsg),
                                          control_n_, nullptr);
    /* A refused claim still served its packet locally; it is counted so an
     * operator sees a control core that cannot keep up. */
    for (unsigned i = sent; i < control_n_; ++i) {
        if (control_out_[i].type == ControlMsgType::claim) {
            stats_.claim_ring_full.add();
            /* Marked, so that the flow's next packet sends it again: a
             * claim never made leaves the connection to the miss policy
             * once the pending entry expires. (Time 0: expired or not, the
             * entry is the claim's; pending_insert() clears the mark.) */
            const FlowKey &k = control_out_[i].key;
            if (PendingClaim *p = pending_find(k, flow_hash(k), 0); p != nullptr)
                p->refused = true;
        } else {
            stats_.refresh_ring_full.add();
        }
    }
    control_n_ = 0;
}

void Worker::take_chained(rte_mbuf *m) noexcept
{
    /* The transmit queues send one mbuf a packet (ports.cpp): only the
     * control lcore, which reads a gossip frame in pieces, may take it. */
    ParsedPacket p;
    const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);
    if (sh_.gossip_handoff != nullptr &&
        parse_packet(data, m->data_len, m->pkt_len, p) == ParseStatus::ok &&
        gossip_match(data, p, sh_.gossip)) {
        gossip_in_[gossip_n_++] = m;
        return;
    }
    drop(m, DropReason::rx_chained);
}

void Worker::flush_gossip() noexcept
{
    if (gossip_n_ == 0)
        return;
    /* One enqueue a burst: the ring is shared by every worker, and each
     * enqueue is an atomic on its head, which any sender of UDP to the
     * gossip port could otherwise make every worker take per packet. The
     * control lcore verifies and applies the frames; the ring is their only
     * way in, so a full ring is a counted drop. */
    const unsigned sent = rte_ring_enqueue_burst(
        sh_.gossip_handoff, reinterpret_cast<void *const *>(gossip_in_), gossip_n_, nullptr);
    stats_.gossip_handoff.add(sent);
    for (unsigned i = sent; i < gossip_n_; ++i)
        drop(gossip_in_[i], DropReason::gossip_ring_full);
    gossip_n_ = 0;
}

namespace {

/* What decide() and decide_burst() both ask of a record. */
inline bool released(OwnerRecord r) noexcept
{
    return (r.flags & gossip_flag::released) != 0; /* a tombstone: no owner */
}

inline bool refresh_due(const DatapathShared &sh, OwnerRecord r, uint16_t epoch) noexcept
{
    return static_cast<uint16_t>(epoch - r.epoch) >= sh.refresh_after_s;
}

inline bool node_dead(const DatapathShared &sh, NodeId n) noexcept
{
    return sh.node_state[n & kMaxNodeId].load(std::memory_order_relaxed) ==
           static_cast<uint8_t>(NodeState::dead);
}

/* A record from an earlier life of its owner, who died or restarted since:
 * the connection died with that life, and the flow is its failover owner's
 * (the control lcore's rewrite makes that permanent, a slice at a time). */
inline bool earlier_life(const DatapathShared &sh, OwnerRecord r) noexcept
{
    return r.reserved != sh.node_life[r.owner & kMaxNodeId].load(std::memory_order_relaxed);
}

/* An ICMP error about a VIP's reply is addressed to the VIP: the quoted
 * packet's source. */
inline bool addressed_to_vip(const uint8_t *frame, const ParsedPacket &p, const FlowKey &k) noexcept
{
    if (p.family == Family::ipv4)
        return std::memcmp(frame + p.l3_offset + 16, &k.v4.vip_addr, 4) == 0;
    return std::memcmp(frame + p.l3_offset + 24, k.v6.vip_addr, 16) == 0;
}

/* The owner's flow is somebody else's now: it is dead, or this is an
 * earlier life's record. */
inline bool owner_gone(const DatapathShared &sh, OwnerRecord r) noexcept
{
    return (r.owner != sh.self && node_dead(sh, r.owner)) || earlier_life(sh, r);
}

} // namespace

bool Worker::icmp_to_owner(Slot &s, const uint8_t *frame) noexcept
{
    if (sh_.bypass_ownership)
        return false;
    const uint32_t len =
        std::min<uint32_t>(rte_pktmbuf_data_len(s.m), uint32_t{s.p.l3_offset} + s.p.l3_len);
    if (!icmp_error_flow(frame, len, s.p, s.key) || !addressed_to_vip(frame, s.p, s.key) ||
        !sh_.vips->serves(s.key))
        return false;
    const std::optional<OwnerRecord> rec = sh_.table->lookup(s.key);
    if (!rec || released(*rec))
        return false;
    s.hash = flow_hash(s.key);
    /* Where the flow's own packets go: a dead owner's errors too. */
    const NodeId owner = current_owner(*rec, s.hash);
    if (owner == sh_.self || owner == kInvalidNode)
        return false;
    stats_.icmp_to_owner.add();
    redirect(s, owner);
    return true;
}

NodeId Worker::current_owner(OwnerRecord rec, uint32_t hash) noexcept
{
    if (!owner_gone(sh_, rec))
        return rec.owner;
    /* The owner is dead, or restarted since the record was made: its flows
     * belong to their failover owner, which every node computes alike,
     * before the control lcore has rewritten a single entry. */
    stats_.failover.add();
    const ClusterView *view = sh_.view.load(std::memory_order_acquire);
    return view == nullptr ? kInvalidNode : failover_owner(hash, rec.owner, view->eligible);
}

NodeId Worker::eligible_pick(uint32_t hash) const noexcept
{
    const ClusterView *view = sh_.view.load(std::memory_order_acquire);
    return view == nullptr ? kInvalidNode : rendezvous_pick(hash, view->eligible);
}

void Worker::redirect(Slot &s, NodeId owner) noexcept
{
    if (s.hops >= sh_.max_hops) {
        drop(s.m, DropReason::hop_limit);
        return;
    }
    const TemplateSet *templates = sh_.templates.load(std::memory_order_acquire);
    const EncapTemplate *t = templates == nullptr ? nullptr : templates->find(owner);
    if (unlikely(t == nullptr)) {
        drop(s.m, DropReason::owner_unreachable);
        return;
    }
    const EncapMeta meta{
        .flow_hash = s.hash,
        .l3_offset = s.p.l3_offset,
        .l3_len = s.p.l3_len,
        .inner_family = s.p.family,
        .hops = static_cast<uint8_t>(s.hops + 1),
        .ingress_node = s.ingress,
    };
    switch (encap_packet(s.m, *t, meta)) {
    case EncapStatus::ok:
        stats_.redirects.add();
        stats_.redirects_to[owner & kMaxNodeId].add();
        to_wire(s.m);
        return;
    case EncapStatus::too_big: {
        /* RFC 1191 / RFC 8201: tell the sender the MTU that fits once the
         * outer header is added, where its packet allows it. */
        const uint32_t overhead = encapsulated_ip_length(*t, meta) - meta.l3_len;
        const uint16_t fits = static_cast<uint16_t>(t->mtu > overhead ? t->mtu - overhead : 0);
        /* As it came: it becomes the error. */
        count_drop(s.m, DropReason::encap_too_big, sh_.wire_port);
        if (s.hops != 0) {
            /* It came from a peer (max_hops > 1): its Ethernet header is the
             * tunnel's, and an error built from it would go back to that
             * peer, which would hand it to its own kernel. This node has no
             * way to the client but the router, whose address it does not
             * know here: the packet is dropped without an error. */
            rte_pktmbuf_free(s.m);
        } else if (!packet_too_big_due(s.m, s.p, sh_.decap)) {
            rte_pktmbuf_free(s.m); /* no error about this one: none is counted */
        } else if (!icmp_token_ready()) {
            stats_.icmp_rate_limited.add();
            rte_pktmbuf_free(s.m);
        } else {
            make_packet_too_big(s.m, s.p, fits, sh_.decap);
            --icmp_tokens_;
            stats_.icmp_too_big.add();
            to_wire(s.m);
        }
        return;
    }
    case EncapStatus::no_headroom:
        drop(s.m, DropReason::no_headroom);
        return;
    }
}

void Worker::decide(Slot &s, bool hit, OwnerRecord rec, uint64_t now_tsc, uint16_t epoch) noexcept
{
    /* A release leaves a tombstone so that an older claim cannot revive
     * the flow; for the datapath it is no record. */
    if (hit && released(rec))
        hit = false;
    if (hit) {
        const NodeId owner = current_owner(rec, s.hash);
        if (owner == kInvalidNode) {
            drop(s.m, DropReason::owner_unreachable);
            return;
        }
        if (owner == sh_.self) {
            stats_.local_hits.add();
            if (refresh_due(sh_, rec, epoch) && !refresh_sent(s.hash, epoch)) {
                stats_.refreshes.add();
                send_control(ControlMsgType::refresh, s.key);
            }
            to_local(s.m);
        } else {
            redirect(s, owner);
        }
        return;
    }

    /* A claim may still be on its way to the table, ours or, when we
     * sent the opening packet on while draining, the picked node's (it
     * reaches us a gossip batch later): the ACK after a SYN arrives within
     * microseconds. It goes where the SYN went. */
    if (PendingClaim *pending = pending_find(s.key, s.hash, now_tsc); pending != nullptr) {
        stats_.pending_hits.add();
        if (pending->owner != sh_.self) {
            redirect(s, pending->owner);
            return;
        }
        if (unlikely(pending->refused)) {
            pending->refused = false;
            stats_.claim_retries.add();
            send_control(ControlMsgType::claim, s.key);
        }
        to_local(s.m);
        return;
    }

    if (is_connection_opening(s.p)) {
        if (sh_.draining.load(std::memory_order_relaxed) && s.hops < sh_.max_hops) {
            /* Draining: new connections go to the others. */
            const NodeId pick = eligible_pick(s.hash);
            if (pick != kInvalidNode && pick != sh_.self) {
                stats_.drain_redirects.add();
                pending_insert(s.key, s.hash, now_tsc, pick);
                redirect(s, pick);
                return;
            }
        }
        if (likely(!sh_.table->refusing(s.key.family))) {
            stats_.claims.add();
            pending_insert(s.key, s.hash, now_tsc, sh_.self);
            send_control(ControlMsgType::claim, s.key);
            to_local(s.m);
            return;
        }
        /*
         * The table has no room for the claim: served here, a TCP
         * connection's next packets would find no record and meet the miss
         * policy, which under `drop` cuts it off after its handshake. Its
         * opening packet meets the policy instead. A UDP datagram opens its
         * flow every time: served here, unrecorded, until there is room.
         */
        stats_.opening_table_full.add();
        if (s.p.l4_proto != kProtoTcp) {
            to_local(s.m);
            return;
        }
    }

    switch (sh_.miss_policy.load(std::memory_order_relaxed)) {
    case MissPolicy::drop:
        drop(s.m, DropReason::miss_policy_drop);
        return;
    case MissPolicy::local:
        stats_.miss_local.add();
        to_local(s.m);
        return;
    case MissPolicy::hash: {
        /* A packet already redirected here was sent by a node that chose us;
         * it is not sent on again. */
        const NodeId pick = s.hops >= sh_.max_hops ? sh_.self : eligible_pick(s.hash);
        if (pick == sh_.self || pick == kInvalidNode) {
            stats_.miss_local.add();
            to_local(s.m);
        } else {
            stats_.miss_hash.add();
            redirect(s, pick);
        }
        return;
    }
    }
}

namespace {

/* Calls fn(i) for each bit i set in mask, lowest first. */
template <typename Fn> inline void for_each_bit(uint64_t mask, Fn &&fn)
{
    for (uint64_t b = mask; b != 0; b &= b - 1)
        fn(static_cast<unsigned>(__builtin_ctzll(b)));
}

/* Bits 0 to n - 1 (n at most 64). */
inline uint64_t first_bits(unsigned n) noexcept
{
    return n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
}

} // namespace

/* Redirects ahead of the one being written whose lines are fetched. */
constexpr unsigned kWriteFetchAhead = 4;

/* One bulk lookup per family per burst, its hits in one 64-bit mask. */
static_assert(kBurst <= kLookupBulkMax && kBurst <= 64);

void Worker::process_wire_burst(rte_mbuf **pkts, uint16_t n) noexcept
{
    while (n > kBurst) {
        process_wire_burst(pkts, kBurst);
        /* The batches hold one burst's outputs. */
        flush();
        pkts += kBurst;
        n -= kBurst;
    }
    stats_.rx_wire.add(n);

    Slot *const slots = slots_;
    const FlowKey4 *keys4[kBurst];
    const FlowKey6 *keys6[kBurst];
    uint32_t hashes4[kBurst];
    uint32_t hashes6[kBurst];
    uint8_t slot4[kBurst];
    uint8_t slot6[kBurst];
    unsigned n4 = 0;
    unsigned n6 = 0;
    unsigned ns = 0;

    for (uint16_t i = 0; i < n; ++i) {
        /* The packet's first two cache lines: the parser reads into the
         * second for an IPv6 TCP header (its flags at byte 67, later
         * behind VLAN tags) and for most of a tunnel's inner headers (the
         * inner IP header at byte 76 behind GENEVE over IPv4). */
        if (i + 3 < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void *));
            rte_prefetch0(rte_pktmbuf_mtod_offset(pkts[i + 3], char *, RTE_CACHE_LINE_SIZE));
        }
        rte_mbuf *m = pkts[i];
        /* A chain goes no further than the gossip hand-off. Its lengths
         * differ, unless its later segments hold no byte: its segment
         * count says so then. One length for both lets the parser drop
         * its own comparisons of them. */
        const uint16_t len = m->data_len;
        if (unlikely((m->pkt_len != len) | (m->nb_segs != 1))) {
            take_chained(m);
            continue;
        }
        Slot &s = slots[ns];
        s.m = m;
        s.hops = 0;
        s.ingress = sh_.self;

        const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);
        /* The NIC's verdict, where it is the outer header's: a NIC that
         * parses tunnels gives the inner header's in these flags (and the
         * outer one's only when bad). */
        const bool csum_good =
            (m->ol_flags & (RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_OUTER_IP_CKSUM_BAD)) ==
                RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
            (m->packet_type & RTE_PTYPE_TUNNEL_MASK) == 0;
        ParseStatus st = parse_packet(data, len, len, s.p, csum_good);
        if (unlikely(st == ParseStatus::drop)) {
            drop(m, s.p.drop);
            continue;
        }
        if (st == ParseStatus::not_ip) {
            stats_.passthrough.add();
            to_local(m);
            continue;
        }

        /* A VIP is never one of this node's addresses nor a multicast
         * group (the configuration refuses both), so a packet to a VIP is
         * neither gossip nor a tunnel to us: nearly every packet skips both
         * checks. */
        if (!sh_.vips->match(data, s.p)) {
            /* A VIP that serves only TCP or UDP, or some ports, does not
             * match the ICMP errors about its flows; they go to the flow's
             * owner all the same, when whole and sent to our MAC alone (a
             * fragment, or a copy in a group frame, goes to the local
             * stack with the rest of what is not for a VIP). */
            if ((s.p.l4_proto == kProtoIcmp || s.p.l4_proto == kProtoIcmpv6) && !s.p.fragment &&
                !link_group(data) && icmp_to_owner(s, data))
                continue;
            /* Gossip reaches a worker only where the workers hand it over:
             * where rte_flow steers it to the control queue there is no
             * ring, and what the rule does not steer (our unicast address
             * on the gossip port, say) is no gossip to take. */
            if (sh_.gossip_handoff != nullptr && gossip_match(data, s.p, sh_.gossip)) {
                gossip_in_[gossip_n_++] = m; /* handed over with the burst's others */
                continue;
            }
            const DecapResult d = decap_packet(m, s.p, *sh_.peers, sh_.decap);
            if (d.status == DecapStatus::drop) {
                drop(m, d.drop);
                continue;
            }
            if (d.status == DecapStatus::not_encapsulated) {
                stats_.passthrough.add();
                to_local(m);
                continue;
            }
            stats_.decapsulated.add();
            data = rte_pktmbuf_mtod(m, const uint8_t *);
            st = parse_packet(data, m->data_len, m->pkt_len, s.p, false);
            if (unlikely(st != ParseStatus::ok)) {
                drop(m, DropReason::inner_malformed);
                continue;
            }
            /* RFC 6040 4.2: a congestion mark the tunnel's path set reaches
             * the inner packet (an outer Not-ECT changes nothing). */
            if (unlikely(d.outer_ecn != kEcnNotEct)) {
                const EcnEgress e = ecn_decapsulate(
                    rte_pktmbuf_mtod_offset(m, uint8_t *, s.p.l3_offset), s.p.family, d.outer_ecn);
                if (e == EcnEgress::drop) {
                    drop(m, DropReason::decap_ce_not_ect);
                    continue;
                }
                if (e == EcnEgress::suspect)
                    stats_.ecn_suspect.add();
            }
            s.hops = d.hops;
            s.ingress = d.ingress_node;
            if (!sh_.vips->match(data, s.p)) {
                stats_.passthrough.add();
                to_local(m);
                continue;
            }
        }
        if (unlikely(s.p.fragment)) {
            drop(m, DropReason::vip_fragment);
            continue;
        }
        /* Unicast from the router, addressed to our MAC (a decapsulated
         * frame has the outer frame's addresses). A VIP's packet in a
         * broadcast or multicast frame reached every node on the segment:
         * each would claim it, or send its copy to the owner (RFC 1122
         * 3.3.6: such a datagram is not to be taken). */
        if (unlikely(link_group(data))) {
            drop(m, DropReason::vip_link_group);
            continue;
        }
        if (s.p.l4_proto != kProtoTcp && s.p.l4_proto != kProtoUdp) {
            /* ICMP to a VIP. An error about a flow's replies (a router's
             * "fragmentation needed" for path MTU discovery) goes to the
             * flow's owner, wherever ECMP brought it; the rest (echo, and
             * errors about flows of ours or unknown) the local stack
             * answers. */
            if (icmp_to_owner(s, data))
                continue;
            stats_.passthrough.add();
            to_local(m);
            continue;
        }

        if (unlikely(sh_.bypass_ownership)) {
            /* Ownership switched off: every node serves what it receives. */
            stats_.passthrough.add();
            to_local(m);
            continue;
        }

        s.hash = make_flow_key(s.key, data, s.p);
        if (s.key.family == Family::ipv4) {
            keys4[n4] = &s.key.v4;
            hashes4[n4] = s.hash;
            slot4[n4++] = static_cast<uint8_t>(ns);
        } else {
            keys6[n6] = &s.key.v6;
            hashes6[n6] = s.hash;
            slot6[n6++] = static_cast<uint8_t>(ns);
        }
        ++ns;
    }

    /* Per family, the flows the worker's cache holds, then one bulk lookup
     * of the rest: rte_hash pipelines the bucket and key prefetches across
     * the keys. */
    OwnerRecord *const rec4 = rec4_;
    OwnerRecord *const rec6 = rec6_;
    const uint64_t hits4 = look_up(cache4_, keys4, hashes4, n4, rec4);
    const uint64_t hits6 = look_up(cache6_, keys6, hashes6, n6, rec6);

    const uint64_t now = rte_rdtsc();
    const uint16_t epoch = sh_.clock->epoch.load(std::memory_order_relaxed);
    decide_burst(slot4, n4, hits4, rec4, now, epoch);
    decide_burst(slot6, n6, hits6, rec6, now, epoch);

    flush_gossip();
    flush_control();
}

template <typename Key>
uint64_t Worker::look_up(FlowCache<Key> &cache, const Key *const *keys, const uint32_t *hashes,
                         unsigned n, OwnerRecord *rec) noexcept
{
    const OwnershipTable &table = *sh_.table;
    if (n == 0)
        return 0;
    if (!cache.probing()) {
        if (cache.enabled()) {
            cache.rested(n);
            stats_.flow_cache_rested.add(n);
        }
        return table.lookup_bulk(keys, hashes, n, rec);
    }

    /* Each key's stamp before the table is read: what the lookup finds is
     * cached under it, and a change stamped since makes it miss. */
    uint32_t stamps[kBurst];
    uint64_t cached = 0;
    for (unsigned i = 0; i < n; ++i) {
        stamps[i] = table.stamp(hashes[i]);
        cached |= uint64_t{cache.find(*keys[i], hashes[i], stamps[i], rec[i])} << i;
    }
    const auto n_cached = static_cast<unsigned>(__builtin_popcountll(cached));
    stats_.flow_cache_hits.add(n_cached);
    stats_.flow_cache_misses.add(n - n_cached);
    cache.probed(n_cached, n);

    uint64_t found = 0;
    if (cached == 0) {
        found = table.lookup_bulk(keys, hashes, n, rec);
    } else if (n_cached != n) {
        /* The rest in one bulk call, their records put back in place. */
        const Key *miss_keys[kBurst];
        uint32_t miss_hashes[kBurst];
        uint8_t miss_at[kBurst];
        OwnerRecord *const miss_rec = miss_rec_;
        unsigned nm = 0;
        for_each_bit(first_bits(n) & ~cached, [&](unsigned i) {
            miss_keys[nm] = keys[i];
            miss_hashes[nm] = hashes[i];
            miss_at[nm++] = static_cast<uint8_t>(i);
        });
        for_each_bit(table.lookup_bulk(miss_keys, miss_hashes, nm, miss_rec), [&](unsigned j) {
            rec[miss_at[j]] = miss_rec[j];
            found |= uint64_t{1} << miss_at[j];
        });
    }
    for_each_bit(found, [&](unsigned i) { cache.insert(*keys[i], hashes[i], stamps[i], rec[i]); });
    return cached | found;
}

void Worker::decide_burst(const uint8_t *slot_of, unsigned n, uint64_t hits, const OwnerRecord *rec,
                          uint64_t now_tsc, uint16_t epoch) noexcept
{
    /*
     * Sorted first, without a branch, into the two outcomes nearly every
     * packet has: a live record of ours that needs no refresh, and a live
     * record of a peer that is not dead. Each list then runs a loop whose
     * branches always go the same way; with traffic that mixes the two at
     * random, deciding packet by packet mispredicts every other one.
     * Everything else (a miss, a tombstone, a refresh due, a dead owner, a
     * record of an earlier life of its owner) takes decide(), which also covers the two common
     * cases, so the lists change when a packet is handled, never how. The
     * lists are bit masks, walked lowest bit first.
     */
    const NodeId self = sh_.self;
    uint64_t mine = 0;
    uint64_t theirs = 0;
    for_each_bit(hits, [&](unsigned i) {
        const OwnerRecord r = rec[i];
        /* Named first: & on the calls themselves reads as a mistaken &&.
         * A record of ours is of this life when it has our own life's tag;
         * whether we are dead is not asked (decide() does not ask it). */
        const bool live = !released(r);
        const bool ours = r.owner == self;
        const bool this_life = !earlier_life(sh_, r);
        const bool fresh = !refresh_due(sh_, r, epoch);
        const bool dead = node_dead(sh_, r.owner);
        mine |= static_cast<uint64_t>(live & ours & this_life & fresh) << i;
        theirs |= static_cast<uint64_t>(live & !ours & this_life & !dead) << i;
    });
    uint64_t other = first_bits(n) & ~(mine | theirs);
    if (unlikely(local_out_.port == kNoPort)) {
        /* decide() counts them and drops them, named. */
        other |= mine;
        mine = 0;
    }

    /* The rest first. A flow's packets share a record, hence a list,
     * unless the control lcore changed the record while the burst was
     * looked up: the later packets then read the newer one. The changes
     * made to flows with traffic move them from the rest to a fast list
     * (a restamp, a claim inserted, a failover rewrite), so a flow's
     * earlier packets, in the rest, leave before its later ones. Two
     * changes go the other way: an owner's death seen halfway through
     * the burst (its earlier packets go to the dead node, the later ones
     * to the failover owner), and a release or expiry (under the local or
     * hash miss policy, a later packet can leave before an earlier one
     * where the policy sends it the same way). */
    for_each_bit(other, [&](unsigned i) {
        /* A miss's record is whatever the lookup left there: not read. */
        const bool hit = (hits >> i) & 1;
        decide(slots_[slot_of[i]], hit, hit ? rec[i] : OwnerRecord{}, now_tsc, epoch);
    });

    /* Straight into the batch, its count kept in a register: through
     * to_local() each packet would wait for the last one's store of it. */
    const auto n_mine = static_cast<uint16_t>(__builtin_popcountll(mine));
    stats_.local_hits.add(n_mine);
    rte_mbuf **out = local_out_.pkts + local_out_.n;
    for_each_bit(mine, [&](unsigned i) { *out++ = slots_[slot_of[i]].m; });
    local_out_.n = static_cast<uint16_t>(local_out_.n + n_mine);

    /* A redirect writes two lines that nothing has read since the mbuf's
     * last use: its outer header goes into the headroom (for a packet as
     * received, data_off RTE_PKTMBUF_HEADROOM, into the cache line before
     * the packet's first: all of it but 18 bytes of GENEVE over IPv6), and
     * its offload lengths into the mbuf's second line. Both are fetched a
     * few redirects ahead: x86 commits stores in order, so one that waits
     * for its line holds up every store after it. */
    const auto fetch_written = [&](uint64_t list) {
        const rte_mbuf *m = slots_[slot_of[__builtin_ctzll(list)]].m;
        rte_prefetch0(rte_pktmbuf_mtod_offset(m, const uint8_t *, -RTE_CACHE_LINE_SIZE));
        rte_prefetch0(&m->tx_offload);
    };
    uint64_t ahead = theirs;
    for (unsigned k = 0; k < kWriteFetchAhead && ahead != 0; ++k, ahead &= ahead - 1)
        fetch_written(ahead);
    for_each_bit(theirs, [&](unsigned i) {
        if (ahead != 0) {
            fetch_written(ahead);
            ahead &= ahead - 1;
        }
        redirect(slots_[slot_of[i]], rec[i].owner);
    });
}

void Worker::process_local_burst(rte_mbuf **pkts, uint16_t n) noexcept
{
    stats_.rx_local.add(n);
    uint16_t passed = n;
    for (uint16_t i = 0; i < n; ++i) {
        if (unlikely(pkts[i]->nb_segs != 1)) {
            count_drop(pkts[i], DropReason::rx_chained, sh_.local_port);
            rte_pktmbuf_free(pkts[i]);
            --passed;
            continue;
        }
        if (unlikely(wire_out_.n == RTE_DIM(wire_out_.pkts)))
            flush();
        to_wire(pkts[i]);
    }
    stats_.from_local.add(passed);
}

void Worker::send_batch(TxBatch &b, Counter &tx, DropReason full) noexcept
{
    if (b.n == 0)
        return;
    const uint16_t sent = rte_eth_tx_burst(b.port, queue_, b.pkts, b.n);
    tx.add(sent);
    if (unlikely(sent < b.n)) {
        for (uint16_t i = sent; i < b.n; ++i)
            count_drop(b.pkts[i], full, b.port);
        rte_pktmbuf_free_bulk(b.pkts + sent, b.n - sent);
    }
    b.n = 0;
}

void Worker::flush() noexcept
{
    if (unlikely(tap_ != nullptr)) {
        tap_->offer_tx(wire_out_.port, queue_, wire_out_.pkts, wire_out_.n);
        tap_->offer_tx(local_out_.port, queue_, local_out_.pkts, local_out_.n);
    }
    send_batch(wire_out_, stats_.tx_wire, DropReason::tx_full_wire);
    send_batch(local_out_, stats_.tx_local, DropReason::tx_full_local);
}

uint16_t Worker::poll_once() noexcept
{
    rte_mbuf *pkts[kBurst];
    /* The one load a poll pays for capture while none runs. */
    tap_ = sh_.capture.load(std::memory_order_acquire);
    /* Frames to send count as work: an idle worker 0 must not sleep on
     * the control lcore's heartbeats. */
    const uint16_t gossip = take_gossip_tx();
    uint16_t got = rte_eth_rx_burst(sh_.wire_port, queue_, pkts, kBurst);
    if (unlikely(tap_ != nullptr) && got != 0)
        tap_->offer_rx(sh_.wire_port, queue_, pkts, got);
    if (got != 0)
        process_wire_burst(pkts, got);
    if (sh_.local_port != kNoPort) {
        const uint16_t n = rte_eth_rx_burst(sh_.local_port, queue_, pkts, kBurst);
        if (unlikely(tap_ != nullptr) && n != 0)
            tap_->offer_rx(sh_.local_port, queue_, pkts, n);
        if (n != 0)
            process_local_burst(pkts, n);
        got = static_cast<uint16_t>(got + n);
    }
    flush();
    return static_cast<uint16_t>(got + gossip);
}

uint16_t Worker::take_gossip_tx() noexcept
{
    if (index_ != 0 || sh_.gossip_tx == nullptr)
        return 0;
    /* What the batch has room for beside a wire burst's redirects and a
     * local burst: a burst's worth, as every poll ends with a flush. */
    const unsigned reserved = wire_out_.n + 2 * kBurst;
    const unsigned room =
        reserved < RTE_DIM(wire_out_.pkts) ? RTE_DIM(wire_out_.pkts) - reserved : 0;
    const unsigned n = rte_ring_dequeue_burst(
        sh_.gossip_tx, reinterpret_cast<void **>(wire_out_.pkts + wire_out_.n), room, nullptr);
    wire_out_.n = static_cast<uint16_t>(wire_out_.n + n);
    return static_cast<uint16_t>(n);
}

int Worker::run() noexcept
{
    rte_rcu_qsbr_thread_register(sh_.qsbr, index_);
    rte_rcu_qsbr_thread_online(sh_.qsbr, index_);

    const BackoffConfig &bo = sh_.backoff;
    const uint32_t sleep_after = bo.idle_polls;
    /* Worker 0 sends the control lcore's gossip where the port has no TX
     * queue to spare: a frame waits at most one sleep for it. */
    const uint32_t sleep_us = index_ == 0 && sh_.gossip_tx != nullptr
                                  ? std::min(bo.sleep_us, kGossipSenderMaxSleepUs)
                                  : bo.sleep_us;
    uint32_t idle = 0;
    /* Busy cycles over packets is what a packet costs this worker whether
     * its CPU is saturated or not (testpmd's --record-core-cycles counts its
     * forwarding calls alike). One TSC read an iteration: a poll that found
     * work lasts until the next iteration starts, which follows it at once
     * (its RCU report and the stop check included). */
    uint64_t poll_start = 0;
    bool busy = false;

    /* Acquire: the control lcore's last frames, put in the gossip ring
     * before it stopped and before Node::stop() set this, are seen. */
    while (!sh_.stop.load(std::memory_order_acquire)) {
        const uint64_t now = rte_rdtsc();
        if (busy)
            stats_.busy_cycles.add(now - poll_start);
        poll_start = now;
        const uint16_t got = poll_once();
        rte_rcu_qsbr_quiescent(sh_.qsbr, index_);

        busy = got != 0;
        if (busy) {
            stats_.busy_polls.add();
            idle = 0;
            continue;
        }
        /* Back off when idle so that several processes can share a few
         * cores: pause first, then sleep. While asleep the worker holds no
         * table reference, so it goes offline and never delays an RCU grace
         * period. */
        ++idle;
        if (sleep_us != 0 && idle >= sleep_after) {
            rte_rcu_qsbr_thread_offline(sh_.qsbr, index_);
            rte_delay_us_sleep(sleep_us);
            rte_rcu_qsbr_thread_online(sh_.qsbr, index_);
            stats_.idle_sleeps.add();
        } else if (idle >= bo.pause_polls) {
            rte_pause();
        }
    }

    if (busy)
        stats_.busy_cycles.add(rte_rdtsc() - poll_start);

    /* The control lcore stopped first (Node::stop): its last frames, the
     * departure among them (a copy per peer with unicast gossip), leave
     * now, all of them: the ring holds at most kGossipTxRing. A capture
     * stopped since the last poll may be gone: reread. */
    tap_ = sh_.capture.load(std::memory_order_acquire);
    for (unsigned round = 0; round < 64 && take_gossip_tx() != 0; ++round)
        flush();
    rte_rcu_qsbr_thread_offline(sh_.qsbr, index_);
    rte_rcu_qsbr_thread_unregister(sh_.qsbr, index_);
    return 0;
}

} // namespace flowhome
