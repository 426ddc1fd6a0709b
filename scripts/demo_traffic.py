#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Traffic for the single-node demo, and the report on what came out.

  demo_traffic.py generate DIR   writes DIR/wire-in.pcap and DIR/local-in.pcap
  demo_traffic.py report DIR     reads DIR/wire-out.pcap and DIR/local-out.pcap

The node (config/demo-node.yaml) is node 1, wire address 192.0.2.1; node 2
(192.0.2.2) is a GENEVE peer, node 3 (198.51.100.3) an IP-in-IP peer behind
a router. Documentation addresses only.
"""
import sys
from collections import Counter

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Ether, IPerror, IPv6, Raw, TCPerror, rdpcap,
                       wrpcap)
from scapy.contrib.geneve import GENEVE

NODE_MAC, ROUTER_MAC = "00:00:5e:00:53:01", "00:00:5e:00:53:fe"
PEER2_MAC = "00:00:5e:00:53:02"
NODE4, PEER2, PEER3 = "192.0.2.1", "192.0.2.2", "198.51.100.3"
VIP4, VIP6 = "203.0.113.10", "2001:db8:100::10"

NEW_CONNECTIONS = 200
ORPHAN_FLOWS = 120


def client4(i):
    return f"198.51.100.{10 + i % 200}"


def client6(i):
    return f"2001:db8:200::{i + 1:x}"


def tcp_to_vip(i, sport, flags, payload=b"", v6=False, size=None):
    l3 = IPv6(src=client6(i), dst=VIP6, hlim=60) if v6 else \
        IP(src=client4(i), dst=VIP4, ttl=60, flags="DF")
    pkt = Ether(dst=NODE_MAC, src=ROUTER_MAC) / l3 / \
        TCP(sport=sport, dport=443 if v6 else 80, flags=flags, seq=1000, ack=1)
    if size:
        payload = b"z" * (size - len(pkt[1]))
    return pkt / Raw(payload) if payload else pkt


def generate(d):
    wire = []
    # New connections: SYN, then data (claimed and served locally).
    for i in range(NEW_CONNECTIONS):
        v6 = i % 4 == 3
        sport = 20000 + i
        wire.append(tcp_to_vip(i, sport, "S", v6=v6))
        for k in range(3):
            wire.append(tcp_to_vip(i, sport, "PA", f"request {i}.{k}".encode(), v6=v6))
    # Mid-connection packets this node never saw: the miss policy (hash)
    # sends each to the node rendezvous hashing names.
    for i in range(ORPHAN_FLOWS):
        sport = 30000 + i
        for k in range(2):
            wire.append(tcp_to_vip(i, sport, "A", f"orphan {i}.{k}".encode(), v6=i % 5 == 4))
    # Oversized orphans: too big once encapsulated -> ICMP "fragmentation needed".
    for i in range(12):
        wire.append(tcp_to_vip(i, 31000 + i, "A", size=1500))
    # Redirected to us by node 2 (GENEVE) and node 3 (IP-in-IP).
    for i in range(40):
        inner = Ether(dst=NODE_MAC, src=PEER2_MAC) / IP(src=client4(i), dst=VIP4, ttl=60) / \
            TCP(sport=40000 + i, dport=80, flags="S")
        wire.append(Ether(dst=NODE_MAC, src=PEER2_MAC) / IP(src=PEER2, dst=NODE4) /
                    UDP(sport=50000 + i, dport=6081) / GENEVE(vni=0, proto=0x6558) / inner)
    for i in range(20):
        wire.append(Ether(dst=NODE_MAC, src=ROUTER_MAC) / IP(src=PEER3, dst=NODE4, proto=4) /
                    IP(src=client4(i), dst=VIP4, ttl=60) / TCP(sport=41000 + i, dport=80, flags="S"))
    # GENEVE from a stranger.
    for i in range(10):
        wire.append(Ether(dst=NODE_MAC, src=ROUTER_MAC) / IP(src="203.0.113.99", dst=NODE4) /
                    UDP(sport=50000, dport=6081) / GENEVE(vni=0, proto=0x6558) /
                    Ether(dst=NODE_MAC, src=ROUTER_MAC) / IP(src=client4(i), dst=VIP4) /
                    TCP(sport=42000 + i, dport=80))
    # Not for a VIP: ARP and ssh to the node itself pass to the kernel.
    for i in range(10):
        wire.append(Ether(dst="ff:ff:ff:ff:ff:ff", src=ROUTER_MAC) /
                    ARP(op=1, psrc="192.0.2.254", pdst=NODE4, hwsrc=ROUTER_MAC))
        wire.append(Ether(dst=NODE_MAC, src=ROUTER_MAC) / IP(src=client4(i), dst=NODE4) /
                    TCP(sport=43000 + i, dport=22, flags="S"))
    # Malformed frames and fragments to a VIP.
    good = bytes(tcp_to_vip(1, 44000, "A", b"x" * 20))
    wire.append(Ether(good[:14 + 10]))                       # IPv4 header cut short
    bad_csum = bytearray(good)
    bad_csum[24] ^= 0xFF
    wire.append(Ether(bytes(bad_csum)))                      # IPv4 checksum wrong
    bad_ver = bytearray(good)
    bad_ver[14] = 0x55
    wire.append(Ether(bytes(bad_ver)))                       # IP version 5
    for i in range(5):
        wire.append(Ether(dst=NODE_MAC, src=ROUTER_MAC) /
                    IP(src=client4(i), dst=VIP4, flags="MF", frag=0) /
                    TCP(sport=45000 + i, dport=80) / Raw(b"f" * 64))
    wrpcap(f"{d}/wire-in.pcap", wire)

    # What the node's kernel sends back goes to the wire unchanged.
    local = [Ether(dst=ROUTER_MAC, src=NODE_MAC) / IP(src=VIP4, dst=client4(i)) /
             TCP(sport=80, dport=20000 + i, flags="SA") for i in range(50)]
    wrpcap(f"{d}/local-in.pcap", local)
    print(f"generated {len(wire)} frames toward the wire port, {len(local)} from the local port")


def l3(p):
    """A frame's bytes from its (outer) network header on; the whole frame
    when it has none (ARP)."""
    for layer in (IP, IPv6):
        if layer in p:
            return bytes(p[layer])
    return bytes(p)


def flow(p):
    """(client, client port) of a packet to a VIP, at its outermost IP header."""
    ip = p[IP] if IP in p else p[IPv6]
    return ip.src, ip[TCP].sport


def inner_l3(p):
    """The inner packet's bytes from its network header on."""
    if GENEVE in p:
        return l3(p[GENEVE].payload)
    return bytes(p[IP].payload)


class Take:
    """A multiset of expected packets (by their network-header bytes), each
    to be seen once."""

    def __init__(self, frames, key=l3):
        self.left = Counter(key(p) for p in frames)
        self.total = sum(self.left.values())

    def take(self, b):
        if self.left[b] > 0:
            self.left[b] -= 1
            return True
        return False

    def missing(self):
        return sum(self.left.values())


def report(d):
    wire_in, local_in = rdpcap(f"{d}/wire-in.pcap"), rdpcap(f"{d}/local-in.pcap")
    wire, local = rdpcap(f"{d}/wire-out.pcap"), rdpcap(f"{d}/local-out.pcap")

    def to_vip(p, lo, hi):
        outer = p[IP] if IP in p else p[IPv6] if IPv6 in p else None
        return outer is not None and outer.dst in (VIP4, VIP6) and TCP in outer and \
            not (IP in p and p[IP].flags.MF) and lo <= outer[TCP].sport < hi

    new = [p for p in wire_in if to_vip(p, 20000, 20000 + NEW_CONNECTIONS)]
    orphans = [p for p in wire_in if to_vip(p, 30000, 30000 + ORPHAN_FLOWS)]
    oversized = [p for p in wire_in if to_vip(p, 31000, 31012)]
    tunnelled = [p for p in wire_in if IP in p and p[IP].dst == NODE4 and
                 (p[IP].src == PEER2 and GENEVE in p or p[IP].src == PEER3 and p[IP].proto == 4)]
    not_vip = [p for p in wire_in if ARP in p or TCP in p and p[TCP].dport == 22]

    expect_local = {"connection opened or continued (claimed)": Take(new),
                    "decapsulated from peers 2 and 3": Take(tunnelled, key=inner_l3),
                    "not VIP traffic (ARP, ssh to the node)": Take(not_vip)}
    orphan_left, oversized_left = Take(orphans), Take(oversized)
    unchanged = Take(local_in, key=bytes)
    where = {}  # orphan flow -> where its packets went
    problems = []
    local_kinds, kinds = Counter(), Counter()

    def orphan_went(p, to):
        f = flow(p)
        if where.setdefault(f, to) != to:
            problems.append(f"flow {f} split between {where[f]} and {to}")

    for p in local:
        b = l3(p)
        kind = next((k for k, t in expect_local.items() if t.take(b)), None)
        if kind is None and orphan_left.take(b):
            kind = "mid-connection, hashed to this node"
            orphan_went(p, "local")
        elif kind is None and oversized_left.take(b):
            kind = "oversized, hashed to this node"
        local_kinds[kind or "UNEXPECTED"] += 1
        if kind is None:
            problems.append(f"unexpected on the local port: {p.summary()}")

    for p in wire:
        kind = None
        if unchanged.take(bytes(p)):
            kind = "from the local port, unchanged"
        elif IP in p and p[IP].src == NODE4:
            ip = p[IP]
            fixed = ip.copy()
            del fixed.chksum
            if IP(bytes(fixed)).chksum != ip.chksum:
                problems.append(f"outer IPv4 checksum wrong: {p.summary()}")
            if GENEVE in p and ip.dst == PEER2 and orphan_left.take(inner_l3(p)):
                kind = f"GENEVE to node 2 ({PEER2}), inner packet intact"
                orphan_went(p[GENEVE].payload, "node 2")
            elif ip.proto in (4, 41) and ip.dst == PEER3 and orphan_left.take(inner_l3(p)):
                kind = f"IP-in-IP to node 3 ({PEER3}), inner packet intact"
                orphan_went(ip.payload, "node 3")
            elif ICMP in p and p[ICMP].type == 3 and p[ICMP].code == 4 and IPerror in p and \
                    TCPerror in p and p[ICMP].nexthopmtu < 1500:
                quoted = next((o for o in oversized
                               if flow(o) == (p[IPerror].src, p[TCPerror].sport)), None)
                if quoted is not None and oversized_left.take(l3(quoted)):
                    kind = "ICMP fragmentation-needed to an oversized packet's client"
        kinds[kind or "UNEXPECTED"] += 1
        if kind is None:
            problems.append(f"unexpected on the wire port: {p.summary()}")

    for name, t in expect_local.items():
        if t.missing():
            problems.append(f"{t.missing()} of {t.total} packets '{name}' never reached the local port")
    if unchanged.missing():
        problems.append(f"{unchanged.missing()} of {unchanged.total} local-port frames never left the wire port")
    if orphan_left.missing():
        problems.append(f"{orphan_left.missing()} of {orphan_left.total} mid-connection packets lost")
    if oversized_left.missing():
        problems.append(f"{oversized_left.missing()} of {oversized_left.total} oversized packets "
                        "neither served nor answered")
    if len(set(where.values())) < 3:
        problems.append(f"mid-connection flows went only to {sorted(set(where.values()))}")

    print("what left the wire port")
    for k, n in sorted(kinds.items()):
        print(f"  {n:6d}  {k}")
    print("what left the local port (toward this host's kernel)")
    for k, n in sorted(local_kinds.items()):
        print(f"  {n:6d}  {k}")
    print(f"{len(where)} mid-connection flows, each packet seen once, each flow in one place: "
          + ", ".join(f"{n} {w}" for w, n in sorted(Counter(where.values()).items())))
    for m in problems[:20]:
        print(f"  PROBLEM: {m}")
    print("every packet where it belongs" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    mode, directory = sys.argv[1], sys.argv[2]
    sys.exit(generate(directory) if mode == "generate" else report(directory))
