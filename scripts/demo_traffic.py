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

from scapy.all import (ARP, IP, TCP, UDP, Ether, IPv6, Raw, rdpcap, wrpcap)
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
                    Ether() / IP(src=client4(i), dst=VIP4) / TCP(sport=42000 + i, dport=80))
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


def report(d):
    wire = rdpcap(f"{d}/wire-out.pcap")
    local = rdpcap(f"{d}/local-out.pcap")
    kinds = Counter()
    inner_ok = 0
    for p in wire:
        if UDP in p and p[UDP].dport == 6081:
            kinds[f"GENEVE to {p[IP].dst if IP in p else p[IPv6].dst}"] += 1
            g = p[GENEVE]
            if g.proto == 0x6558 and TCP in g.payload:
                inner_ok += 1
        elif IP in p and p[IP].proto in (4, 41) and p[IP].src == NODE4:
            kinds[f"IP-in-IP to {p[IP].dst}"] += 1
            inner_ok += 1
        elif IP in p and p[IP].proto == 1 and p[IP].src == NODE4:
            kinds["ICMP fragmentation-needed to clients"] += 1
        else:
            kinds["from the local port, unchanged"] += 1
    local_kinds = Counter()
    for p in local:
        if TCP in p and p[TCP].flags == "S" and (IP in p and p[IP].dst == VIP4 or IPv6 in p):
            local_kinds["connection opened (SYN, claimed)"] += 1
        elif TCP in p and (IP in p and p[IP].dst == VIP4 or IPv6 in p and p[IPv6].dst == VIP6):
            local_kinds["VIP traffic this node owns"] += 1
        else:
            local_kinds["not VIP traffic (ARP, ssh, ...)"] += 1
    print("what left the wire port")
    for k, n in sorted(kinds.items()):
        print(f"  {n:6d}  {k}")
    print("what left the local port (toward this host's kernel)")
    for k, n in sorted(local_kinds.items()):
        print(f"  {n:6d}  {k}")
    redirected = sum(n for k, n in kinds.items() if k.startswith(("GENEVE", "IP-in-IP")))
    print(f"  {inner_ok} of {redirected} redirected packets decode to an intact inner TCP packet")
    return 0 if inner_ok == redirected and redirected > 0 else 1


if __name__ == "__main__":
    mode, directory = sys.argv[1], sys.argv[2]
    sys.exit(generate(directory) if mode == "generate" else report(directory))
