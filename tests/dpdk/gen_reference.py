#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Reference frames for the dpdk-tier pipeline test, built with scapy.

Every expected output is built here from the RFCs (GENEVE RFC 8926, IP-in-IP
RFC 2003/4213, IPv6 flow label RFC 6438), independently of flowhome's own
template code, so the test compares flowhome against a second implementation.

Usage: gen_reference.py OUTPUT.hpp
"""
import ipaddress
import struct
import sys

from scapy.all import IP, TCP, UDP, Ether, IPv6, Raw, raw

WIRE_MAC = "00:00:00:00:00:00"     # net_ring ports have an all-zero MAC
ROUTER_MAC = "02:00:00:00:00:aa"
PEER2_MAC = "02:00:00:00:00:02"    # node 2, domain dc (GENEVE over IPv4)
REMOTE_NH = "02:00:00:00:00:fe"    # domain remote (IP-in-IP) next hop, node 3
PEER4_MAC = "02:00:00:00:00:04"    # node 4, domain dc6 (GENEVE over IPv6)
SELF4, SELF6 = "192.0.2.1", "2001:db8::1"
PEER2, PEER3, PEER4 = "192.0.2.2", "198.51.100.3", "2001:db8::4"
CLIENT4, CLIENT6 = "192.0.2.100", "2001:db8:200::100"
VIP4, VIP6 = "203.0.113.10", "2001:db8:100::10"
SELF_ID = 1

FLOW_HASH_SEED = 0x666C6F77

REPORT_MAC = "02:00:00:00:00:01"   # the group reports' sender (tests/dpdk/test_gossip_transport.cpp)
GROUP4, GROUP6 = "239.1.1.1", "ff15::db8:1"


def link_local(mac):
    """RFC 4291 2.5.1: fe80::/64 and the modified EUI-64 of the MAC."""
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))


def crc32c(data, crc):
    """CRC-32C (Castagnoli), reflected, no final inversion: what the SSE4.2
    crc32 instruction behind rte_hash_crc computes from an initial value."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc


def flow_key(client, cport, vip, vport, proto):
    if ":" in client:
        import socket
        return (socket.inet_pton(socket.AF_INET6, client) + socket.inet_pton(socket.AF_INET6, vip)
                + struct.pack("!HHB3x", cport, vport, proto))
    import socket
    return (socket.inet_aton(client) + socket.inet_aton(vip) + struct.pack("!HHB3x", cport, vport, proto))


def flow_hash(*key):
    return crc32c(flow_key(*key), FLOW_HASH_SEED)


def geneve(ingress, hops, inner_proto=0x6558):
    # RFC 8926 3.4: ver 0 | opt len (words) ; O C rsvd ; protocol ; VNI 0 ; rsvd
    opt = struct.pack("!HBB", 0xFFF0, 0x46, 2) + struct.pack("!HBBHH", ingress, hops, 0, 0, 0)
    return struct.pack("!BBH", len(opt) // 4, 0, inner_proto) + b"\x00\x00\x00\x00" + opt


def client_tcp4(sport, flags, payload=b"", dport=80, size=None, tos=0):
    pkt = Ether(dst=WIRE_MAC, src=ROUTER_MAC) / \
        IP(src=CLIENT4, dst=VIP4, ttl=60, flags="DF", tos=tos) / \
        TCP(sport=sport, dport=dport, flags=flags, seq=1000, ack=2000)
    if size is not None:
        payload = b"x" * (size - len(pkt[IP]))
    return pkt / Raw(payload) if payload else pkt


def client_tcp6(sport, flags, payload=b"", tc=0):
    pkt = Ether(dst=WIRE_MAC, src=ROUTER_MAC) / IPv6(src=CLIENT6, dst=VIP6, hlim=60, tc=tc) / \
        TCP(sport=sport, dport=443, flags=flags, seq=1000, ack=2000)
    return pkt / Raw(payload) if payload else pkt


def inner_tos(inner):
    return inner[IP].tos if IP in inner else inner[IPv6].tc


# The outer TOS / traffic class (RFC 6040 4.1 normal mode: the inner ECN
# field is copied): the domain's DSCP, or with dscp=None the inner one's.
def outer_tos(inner, dscp):
    tos = inner_tos(inner)
    return tos if dscp is None else dscp << 2 | (tos & 3)


# Domain dc: DSCP 0; dc6: DSCP 46 (EF); remote: the inner packet's.
def geneve4_to(peer_ip, peer_mac, inner, key, hops=1, ingress=SELF_ID):
    h = flow_hash(*key)
    inner_frame = Ether(dst=peer_mac, src=WIRE_MAC, type=0x0800 if IP in inner else 0x86DD) / \
        (inner[IP] if IP in inner else inner[IPv6])
    return Ether(dst=peer_mac, src=WIRE_MAC) / \
        IP(src=SELF4, dst=peer_ip, ttl=64, flags="DF", id=0, proto=17, tos=outer_tos(inner, 0)) / \
        UDP(sport=49152 + (h & 0x3FFF), dport=6081, chksum=0) / Raw(geneve(ingress, hops)) / inner_frame


def geneve6_to(peer_ip, peer_mac, inner, key, hops=1):
    h = flow_hash(*key)
    inner_frame = Ether(dst=peer_mac, src=WIRE_MAC, type=0x0800 if IP in inner else 0x86DD) / \
        (inner[IP] if IP in inner else inner[IPv6])
    return Ether(dst=peer_mac, src=WIRE_MAC) / \
        IPv6(src=SELF6, dst=peer_ip, hlim=64, fl=h & 0xFFFFF, nh=17, tc=outer_tos(inner, 46)) / \
        UDP(sport=49152 + (h & 0x3FFF), dport=6081) / Raw(geneve(SELF_ID, hops)) / inner_frame


def ipip4_to(peer_ip, nh_mac, inner):
    inner_ip = inner[IP] if IP in inner else inner[IPv6]
    return Ether(dst=nh_mac, src=WIRE_MAC) / \
        IP(src=SELF4, dst=peer_ip, ttl=64, flags="DF", id=0, proto=4 if IP in inner else 41,
           tos=outer_tos(inner, None)) / inner_ip


def main():
    cases = {}

    # Connection-opening packet, then its ACK: local, unchanged.
    cases["syn_in"] = client_tcp4(40001, "S")
    cases["ack_in"] = client_tcp4(40001, "A", b"hello")

    # Owned by node 2 (GENEVE / IPv4).
    cases["to2_in"] = client_tcp4(40002, "A", b"data for node 2")
    cases["to2_out"] = geneve4_to(PEER2, PEER2_MAC, cases["to2_in"], (CLIENT4, 40002, VIP4, 80, 6))

    # Owned by node 3 (IP-in-IP, domain next hop), IPv4 and IPv6 inner.
    cases["to3_in"] = client_tcp4(40003, "PA", b"data for node 3")
    cases["to3_out"] = ipip4_to(PEER3, REMOTE_NH, cases["to3_in"])
    cases["to3v6_in"] = client_tcp6(40003, "A", b"v6 data for node 3")
    cases["to3v6_out"] = ipip4_to(PEER3, REMOTE_NH, cases["to3v6_in"])

    # Owned by node 4 (GENEVE / IPv6: UDP checksum and flow label).
    cases["to4_in"] = client_tcp6(40004, "A", b"v6 data for node 4")
    cases["to4_out"] = geneve6_to(PEER4, PEER4_MAC, cases["to4_in"],
                                  (CLIENT6, 40004, VIP6, 443, 6))

    # A VLAN-tagged packet owned by node 2: the tag is not carried inside.
    from scapy.all import Dot1Q
    tagged = Ether(dst=WIRE_MAC, src=ROUTER_MAC) / Dot1Q(vlan=100) / \
        IP(src=CLIENT4, dst=VIP4, ttl=60, flags="DF") / \
        TCP(sport=40005, dport=80, flags="A", seq=1, ack=1) / Raw(b"tagged")
    cases["vlan_to2_in"] = tagged
    cases["vlan_to2_out"] = geneve4_to(PEER2, PEER2_MAC, tagged, (CLIENT4, 40005, VIP4, 80, 6))

    # Ethernet padding beyond the IP length is not carried inside.
    small = client_tcp4(40006, "A")
    cases["padded_to2_in"] = Ether(raw(small) + b"\x00" * (60 - len(small)))
    cases["padded_to2_out"] = geneve4_to(PEER2, PEER2_MAC, small, (CLIENT4, 40006, VIP4, 80, 6))

    # ECN-capable packets and DSCPs: the outer header takes the ECN field
    # (and, in domain remote, the DSCP too).
    cases["ecn_to2_in"] = client_tcp4(40015, "A", b"ect(1), EF", tos=0xB9)
    cases["ecn_to2_out"] = geneve4_to(PEER2, PEER2_MAC, cases["ecn_to2_in"],
                                      (CLIENT4, 40015, VIP4, 80, 6))
    cases["ecn_to3_in"] = client_tcp4(40016, "A", b"ect(1), EF", tos=0xB9)
    cases["ecn_to3_out"] = ipip4_to(PEER3, REMOTE_NH, cases["ecn_to3_in"])
    cases["ecn_to4_in"] = client_tcp6(40017, "A", b"ce, AF11", tc=0x2B)
    cases["ecn_to4_out"] = geneve6_to(PEER4, PEER4_MAC, cases["ecn_to4_in"],
                                      (CLIENT6, 40017, VIP6, 443, 6))

    # Mid-connection packet nobody owns (miss policy).
    cases["miss_in"] = client_tcp4(40007, "A", b"orphan")

    # Redirected to us by node 2 for a connection we own: decapsulated.
    inner = Ether(dst=WIRE_MAC, src=PEER2_MAC) / IP(src=CLIENT4, dst=VIP4, ttl=60, flags="DF") / \
        TCP(sport=40008, dport=80, flags="A", seq=5, ack=6) / Raw(b"redirected")
    cases["from2_in"] = Ether(dst=WIRE_MAC, src=PEER2_MAC) / \
        IP(src=PEER2, dst=SELF4, ttl=64, flags="DF", proto=17) / \
        UDP(sport=50000, dport=6081, chksum=0) / Raw(geneve(2, 1)) / inner
    cases["from2_out"] = inner

    # Marked CE on the way (RFC 6040 4.2): an ECT(0) packet inside takes
    # the mark; a Not-ECT one is dropped.
    # An outer ECT(0) over a Not-ECT packet (RFC 6040's "(!!!)": forwarded
    # unchanged, and counted).
    for name, sport, tos, out_tos, outer in (("ce_from2", 40018, 0x02, 0x03, 0x03),
                                             ("ce_not_ect_from2", 40019, 0x00, None, 0x03),
                                             ("ect_not_ect_from2", 40020, 0x00, 0x00, 0x02)):
        marked = Ether(dst=WIRE_MAC, src=PEER2_MAC) / \
            IP(src=CLIENT4, dst=VIP4, ttl=60, flags="DF", tos=tos) / \
            TCP(sport=sport, dport=80, flags="A", seq=5, ack=6) / Raw(b"marked")
        cases[f"{name}_in"] = Ether(dst=WIRE_MAC, src=PEER2_MAC) / \
            IP(src=PEER2, dst=SELF4, ttl=64, flags="DF", proto=17, tos=outer) / \
            UDP(sport=50000, dport=6081, chksum=0) / Raw(geneve(2, 1)) / marked
        if out_tos is not None:
            marked[IP].tos = out_tos
            del marked[IP].chksum
            cases[f"{name}_out"] = Ether(raw(marked))

    # The same from a stranger: refused.
    cases["stranger_in"] = Ether(dst=WIRE_MAC, src=ROUTER_MAC) / \
        IP(src="203.0.113.99", dst=SELF4, ttl=64, proto=17) / \
        UDP(sport=50000, dport=6081, chksum=0) / Raw(geneve(9, 1)) / inner

    # Redirected to us (hops 1) for a connection node 3 owns: hop limit.
    inner3 = Ether(dst=WIRE_MAC, src=PEER2_MAC) / IP(src=CLIENT4, dst=VIP4, ttl=60) / \
        TCP(sport=40009, dport=80, flags="A") / Raw(b"loop")
    cases["loop_in"] = Ether(dst=WIRE_MAC, src=PEER2_MAC) / \
        IP(src=PEER2, dst=SELF4, ttl=64, proto=17) / UDP(sport=50001, dport=6081, chksum=0) / \
        Raw(geneve(2, 1)) / inner3

    # IP-in-IP from node 3 (a kernel ipip device would send exactly this).
    inner_ipip = IP(src=CLIENT4, dst=VIP4, ttl=60) / TCP(sport=40010, dport=80, flags="A") / \
        Raw(b"via ipip")
    cases["ipip_from3_in"] = Ether(dst=WIRE_MAC, src=REMOTE_NH) / \
        IP(src=PEER3, dst=SELF4, ttl=64, proto=4) / inner_ipip
    cases["ipip_from3_out"] = Ether(dst=WIRE_MAC, src=REMOTE_NH, type=0x0800) / inner_ipip

    # Not VIP traffic: passes to the local port unchanged.
    cases["other_in"] = Ether(dst=WIRE_MAC, src=ROUTER_MAC) / IP(src=CLIENT4, dst=SELF4) / \
        TCP(sport=40011, dport=22, flags="S")
    from scapy.all import ARP
    cases["arp_in"] = Ether(dst="ff:ff:ff:ff:ff:ff", src=ROUTER_MAC) / \
        ARP(op=1, hwsrc=ROUTER_MAC, psrc="192.0.2.254", pdst=SELF4)

    # Malformed: an IPv4 header cut short.
    cases["truncated_in"] = Ether(raw(client_tcp4(40012, "A"))[:14 + 12])

    # A fragment to a VIP.
    cases["fragment_in"] = Ether(dst=WIRE_MAC, src=ROUTER_MAC) / \
        IP(src=CLIENT4, dst=VIP4, flags="MF", frag=0) / TCP(sport=40013, dport=80) / Raw(b"x" * 64)

    # Too big once encapsulated toward node 2: 1500 bytes, DF.
    cases["big_to2_in"] = client_tcp4(40014, "A", size=1500)

    # What the local port sends goes to the wire unchanged.
    cases["reply_in"] = Ether(dst=ROUTER_MAC, src=WIRE_MAC) / IP(src=VIP4, dst=CLIENT4) / \
        TCP(sport=80, dport=40001, flags="SA")

    # Membership reports of the gossip group (RFC 3376 4.2, RFC 3810 5.2):
    # join (CHANGE_TO_EXCLUDE {}), current state (MODE_IS_EXCLUDE {}) and
    # leave (CHANGE_TO_INCLUDE {}), from node 1's MAC and address.
    from scapy.all import IPOption_Router_Alert
    from scapy.contrib.igmpv3 import IGMPv3, IGMPv3gr, IGMPv3mr
    from scapy.layers.inet6 import (ICMPv6MLDMultAddrRec, ICMPv6MLReport2, IPv6ExtHdrHopByHop,
                                    RouterAlert)
    for kind, rtype in (("join", 4), ("current", 2), ("leave", 3)):
        cases[f"igmp_{kind}"] = Ether(src=REPORT_MAC, dst="01:00:5e:00:00:16") / \
            IP(src=SELF4, dst="224.0.0.22", ttl=1, tos=0xC0, flags="DF", id=0,
               options=[IPOption_Router_Alert()]) / \
            IGMPv3(type=0x22) / IGMPv3mr(records=[IGMPv3gr(rtype=rtype, maddr=GROUP4)])
        cases[f"mld_{kind}"] = Ether(src=REPORT_MAC, dst="33:33:00:00:00:16") / \
            IPv6(src=link_local(REPORT_MAC), dst="ff02::16", hlim=1) / \
            IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)]) / \
            ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=rtype, dst=GROUP6)])

    with open(sys.argv[1], "w") as out:
        out.write("/* Generated by tests/dpdk/gen_reference.py with scapy. Do not edit. */\n")
        out.write("#pragma once\n#include <cstdint>\n#include <vector>\n\nnamespace ref {\n")
        for name, pkt in cases.items():
            data = raw(pkt)
            body = ", ".join(str(b) for b in data)
            out.write(f"inline const std::vector<uint8_t> {name} = {{{body}}};\n")
        out.write("} // namespace ref\n")


if __name__ == "__main__":
    main()
