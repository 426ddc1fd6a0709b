#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Interop with the Linux kernel's own tunnel implementations.

Two network namespaces joined by a veth pair: "node" runs a flowhome node
(interop_node: the real datapath, net_af_packet on the veth), "peer" is a
plain Linux host that terminates tunnels toward the node.

1. flowhome -> kernel: packets of connections that the peer owns enter the
   node; flowhome encapsulates them; the peer's kernel decapsulates them and a
   UDP socket bound on the VIP must receive every payload intact.
2. kernel -> flowhome: the peer's kernel encapsulates packets toward VIPs;
   flowhome must decapsulate them and deliver the inner packet intact on its
   local port.

Kernel tunnels used: geneve (IPv4 and IPv6 outer), ipip, sit, and IP-in-IPv6
through SRv6 (End.DX4 / End.DT6 decapsulate protocol 4 / 41 inside IPv6;
encap.red with one segment sends plain IP-in-IPv6, RFC 2473). A kernel built
without a device type (no geneve, ipip or sit) or without SRv6's lightweight
tunnels (CONFIG_IPV6_SEG6_LWTUNNEL) cannot play that leg: it is
then checked against independent implementations instead -- Wireshark's
dissectors (tshark) decode what flowhome sent, scapy's layers build what
flowhome must decapsulate -- and reported as such, never silently.

Documentation addresses only; everything is removed at the end, also on
failure. Usage: test_kernel_tunnels.py INTEROP_NODE
"""
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from scapy.all import IP, UDP, Ether, IPv6, Raw
from scapy.contrib.geneve import GENEVE

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from netns_tools import end_on_sigterm, free_tag, held_signals, offloads_off  # noqa: E402

TAG = free_tag("fhi")
NODE_NS, PEER_NS = f"{TAG}n", f"{TAG}p"
VIP4, VIP6 = "203.0.113.10", "2001:db8:100::10"
CLIENT4, CLIENT6 = "198.51.100.7", "2001:db8:200::7"

# Peers (all addresses of the peer namespace) and the kernel device behind each.
PEERS = [
    # id, address, domain, kernel mechanism
    (2, "192.0.2.2", "g", "geneve"),
    (3, "192.0.2.3", "i", "ipip"),   # and sit, for IPv6 inside
    (4, "2001:db8::2", "g", "geneve"),
    (5, "2001:db8::3", "i", "srv6"),  # End.DX4: IPv4 inside IPv6
    (6, "2001:db8::5", "i", "srv6"),  # End.DT6: IPv6 inside IPv6
]

# flowhome -> kernel: (client port, inner family, owner, needs, description)
TO_KERNEL = [
    (5001, 4, 2, "geneve", "GENEVE/IPv4, IPv4 inside"),
    (5002, 4, 3, "ipip", "IPv4 in IPv4 (ipip)"),
    (5003, 4, 4, "geneve", "GENEVE/IPv6, IPv4 inside"),
    (5004, 4, 5, "srv6", "IPv4 in IPv6 (End.DX4)"),
    (5011, 6, 2, "geneve", "GENEVE/IPv4, IPv6 inside"),
    (5012, 6, 3, "sit", "IPv6 in IPv4 (sit)"),
    (5013, 6, 4, "geneve", "GENEVE/IPv6, IPv6 inside"),
    (5014, 6, 6, "srv6", "IPv6 in IPv6 (End.DT6)"),
]

# kernel -> flowhome: (VIP, needs, description, source inside)
FROM_KERNEL = [
    ("203.0.113.21", "geneve", "GENEVE/IPv4 (gnv4)", "198.51.100.50"),
    ("203.0.113.22", "ipip", "IPv4 in IPv4 (ipip4)", "198.51.100.51"),
    ("203.0.113.23", "geneve", "GENEVE/IPv6 (gnv6)", "198.51.100.52"),
    ("203.0.113.24", "srv6", "IPv4 in IPv6 (seg6 encap.red)", "192.0.2.2"),
    ("2001:db8:100::21", "geneve", "GENEVE/IPv4, IPv6 inside (gnv4)", "2001:db8:300::50"),
    ("2001:db8:100::22", "sit", "IPv6 in IPv4 (sit4)", "2001:db8:300::51"),
    ("2001:db8:100::24", "srv6", "IPv6 in IPv6 (seg6 encap.red)", "2001:db8::2"),
]
# The peer's SRv6 encapsulation source (`ip sr tunsrc`): peer 5's address.
SRV6_SOURCE = "2001:db8::3"
DEVICE_OF = {"203.0.113.21": "gnv4", "203.0.113.22": "ipip4", "203.0.113.23": "gnv6",
             "2001:db8:100::21": "gnv4", "2001:db8:100::22": "sit4"}


def sh(cmd, ns=None, check=True):
    full = (["ip", "netns", "exec", ns] if ns else []) + cmd
    r = subprocess.run(full, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {r.stderr.strip()}")
    return r


def mac_of(ns, dev):
    out = sh(["ip", "-o", "link", "show", dev], ns).stdout
    return out.split("link/ether ")[1].split()[0]


def try_device(ns, args):
    """Creates a kernel device; False when the kernel lacks the type."""
    r = sh(["ip", "link", "add"] + args, ns, check=False)
    if r.returncode == 0:
        return True
    if "Unknown device type" in r.stderr or "not supported" in r.stderr.lower():
        return False
    raise RuntimeError(f"ip link add {' '.join(args)}: {r.stderr.strip()}")


def try_route(ns, args):
    """Adds an IPv6 route with a lightweight tunnel; False when the kernel lacks it."""
    r = sh(["ip", "-6", "route", "add"] + args, ns, check=False)
    if r.returncode == 0:
        return True
    if "not supported" in r.stderr.lower():
        return False
    raise RuntimeError(f"ip -6 route add {' '.join(args)}: {r.stderr.strip()}")


def topology():
    """Builds both namespaces; returns the MACs and which mechanisms the kernel has."""
    sh(["ip", "netns", "add", NODE_NS])
    sh(["ip", "netns", "add", PEER_NS])
    # Made in the namespaces: nothing is left in the host's if this run dies.
    sh(["ip", "link", "add", "fh0", "netns", NODE_NS, "type", "veth", "peer", "name", "pe0",
        "netns", PEER_NS])
    for ns, dev in ((NODE_NS, "fh0"), (PEER_NS, "pe0")):
        # The node's side carries no kernel address: flowhome owns it.
        sh(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6={1 if ns == NODE_NS else 0}"], ns)
        offloads_off(ns, dev)
        sh(["ip", "link", "set", "lo", "up"], ns)
        sh(["ip", "link", "set", dev, "up"], ns)
    p = PEER_NS
    for key in ("all", "default", "pe0", "lo"):
        sh(["sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0"], p)
    for key in ("all", "pe0"):
        sh(["sysctl", "-qw", f"net.ipv6.conf.{key}.seg6_enabled=1"], p)
    sh(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"], p)
    sh(["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"], p)
    fh_mac, pe_mac = mac_of(NODE_NS, "fh0"), mac_of(p, "pe0")
    for a in ("192.0.2.2/24", "192.0.2.3/24"):
        sh(["ip", "addr", "add", a, "dev", "pe0"], p)
    sh(["ip", "addr", "add", "2001:db8::2/64", "dev", "pe0", "nodad"], p)
    sh(["ip", "neigh", "add", "192.0.2.1", "lladdr", fh_mac, "dev", "pe0", "nud", "permanent"], p)
    sh(["ip", "neigh", "add", "2001:db8::1", "lladdr", fh_mac, "dev", "pe0", "nud", "permanent"],
       p)
    sh(["ip", "addr", "add", f"{VIP4}/32", "dev", "lo"], p)
    sh(["ip", "addr", "add", f"{VIP6}/128", "dev", "lo"], p)

    have = {}
    have["geneve"] = (try_device(p, ["gnv4", "type", "geneve", "id", "0", "remote", "192.0.2.1"])
                      and try_device(p, ["gnv6", "type", "geneve", "id", "0", "remote",
                                         "2001:db8::1"]))
    have["ipip"] = try_device(p, ["ipip4", "type", "ipip", "local", "192.0.2.3", "remote",
                                  "192.0.2.1"])
    have["sit"] = try_device(p, ["sit4", "type", "sit", "local", "192.0.2.3", "remote",
                                 "192.0.2.1"])
    for dev, kind in (("gnv4", "geneve"), ("gnv6", "geneve"), ("ipip4", "ipip"),
                      ("sit4", "sit")):
        if not have[kind]:
            continue
        if kind == "geneve":
            # flowhome rewrites the inner Ethernet destination to the peer's MAC.
            sh(["ip", "link", "set", dev, "address", pe_mac], p)
        sh(["sysctl", "-qw", f"net.ipv4.conf.{dev}.rp_filter=0"], p)
        sh(["ip", "link", "set", dev, "up"], p)

    # SRv6: decapsulation at the peer's SIDs, encapsulation toward the node
    # (a kernel without CONFIG_IPV6_SEG6_LWTUNNEL has neither).
    have["srv6"] = try_route(p, ["2001:db8::3/128", "encap", "seg6local", "action", "End.DX4",
                                 "nh4", "0.0.0.0", "dev", "pe0"])
    if have["srv6"]:
        # End.DX6 with an unspecified next hop does not deliver locally here;
        # End.DT6 looking the inner packet up in the local table does.
        sh(["ip", "-6", "route", "add", "2001:db8::5/128", "encap", "seg6local", "action",
            "End.DT6", "table", "255", "dev", "pe0"], p)
        sh(["ip", "sr", "tunsrc", "set", SRV6_SOURCE], p)

    for vip, needs, _, src in FROM_KERNEL:
        v6 = ":" in vip
        plen = "/128" if v6 else "/32"
        if needs == "srv6" and have[needs]:
            sh(["ip", "route", "add", vip + plen, "encap", "seg6", "mode", "encap.red", "segs",
                "2001:db8::1", "dev", "pe0", "src", src], p)
        elif have[needs]:
            dev = DEVICE_OF[vip]
            sh(["ip", "addr", "add", src + plen, "dev", dev] + (["nodad"] if v6 else []), p)
            sh(["ip", "route", "add", vip + plen, "dev", dev, "src", src], p)
            if dev.startswith("gnv"):
                sh(["ip", "neigh", "add", vip, "lladdr", fh_mac, "dev", dev, "nud", "permanent"],
                   p)
    return fh_mac, pe_mac, have


def node_config(path, pe_mac):
    vips = "\n".join(f"  - address: \"{a}\"" for a in [VIP4, VIP6] + [v for v, *_ in FROM_KERNEL])
    peers = "\n".join(f"  - {{id: {i}, address: \"{a}\", domain: {d}, mac: \"{pe_mac}\"}}"
                      for i, a, d, _ in PEERS)
    with open(path, "w") as f:
        f.write(f"""node: {{id: 1, name: interop}}
eal:
  huge_pages: false
  memory_mb: 256
  file_prefix: {TAG}
  extra: ["--log-level=lib.eal:warning"]
ports:
  - name: wire
    device: net_af_packet0,iface=fh0,qpairs=1
    role: wire
    ipv4: 192.0.2.1
    ipv6: "2001:db8::1"
lcores: {{main: 0, control: 1, workers: [2], cpus: {{0: 0, 1: 0, 2: 1}}}}
vips:
{vips}
domains:
  - {{name: g, encap: geneve}}
  - {{name: i, encap: ipip}}
peers:
{peers}
miss_policy: drop
""")


RECEIVER = r"""
import socket, select, sys, time
socks = []
for fam, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, 7000))
    socks.append(s)
print("listening", flush=True)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    r, _, _ = select.select(socks, [], [], 0.2)
    for s in r:
        data, src = s.recvfrom(4096)
        print(src[0], src[1], data.hex(), flush=True)
"""

SENDP = ("import sys, pickle\nfrom scapy.all import sendp\n"
         "sendp(pickle.load(open(sys.argv[1], 'rb')), iface='pe0', verbose=False)\n")


def send_frames(tmp, frames):
    path = os.path.join(tmp, f"frames{time.monotonic_ns()}.pickle")
    with open(path, "wb") as f:
        pickle.dump(frames, f)
    sh(["/usr/bin/python3", "-c", SENDP, path], PEER_NS)


def tshark_check(pcap, port, payload, needs, fam):
    """Decodes what flowhome sent for client port `port` (inner IP version `fam`)
    with Wireshark's dissectors."""
    r = subprocess.run(["tshark", "-r", pcap, "-o", "ip.check_checksum:TRUE",
                        "-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=a",
                        "-E", "aggregator=,", "-e", "udp.srcport", "-e", "data.data",
                        "-e", "geneve.proto_type", "-e", "geneve.option.class",
                        "-e", "ip.proto", "-e", "ipv6.nxt", "-e", "ip.checksum.status",
                        "-e", "udp.checksum.status", "-e", "_ws.malformed"],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        cols = line.split("\t")
        ports = cols[0].split(",")
        if not ports or ports[-1] != str(port):
            continue
        if cols[1].replace(":", "") != payload.hex():
            return "payload differs"
        if cols[8]:
            return "Wireshark reports a malformed packet"
        if "0" in cols[6].split(",") or "0" in cols[7].split(","):
            return "a checksum does not verify"
        if needs == "geneve" and (cols[2] != "0x6558" or "0xfff0" not in cols[3]):
            return f"GENEVE fields: protocol {cols[2]} option class {cols[3]}"
        # IP in IP: the outer IPv4 protocol (ipip, sit) or IPv6 next header
        # (SRv6's IP-in-IPv6) names the inner version: 4, or 41 for IPv6.
        outer = {"ipip": 4, "sit": 4, "srv6": 5}.get(needs)
        if outer is not None and cols[outer].split(",")[0] != ("4" if fam == 4 else "41"):
            return f"outer protocol / next header {cols[outer]}"
        return None
    frames = len(r.stdout.splitlines())
    detail = f"; tshark exit {r.returncode}: {r.stderr.strip()[:200]}" if r.returncode else ""
    return f"not seen on the wire ({frames} frames captured{detail})"


def scapy_encapsulated(vip, needs, src, payload, fh_mac, pe_mac):
    """What a kernel tunnel device would send, built by scapy's own layers."""
    l3 = IPv6(src=src, dst=vip) if ":" in vip else IP(src=src, dst=vip)
    inner = l3 / UDP(sport=6000, dport=7000) / Raw(payload)
    if needs == "geneve":
        outer = IPv6(src="2001:db8::2", dst="2001:db8::1") if DEVICE_OF[vip] == "gnv6" \
            else IP(src="192.0.2.2", dst="192.0.2.1")
        return Ether(dst=fh_mac, src=pe_mac) / outer / UDP(sport=40000, dport=6081) / \
            GENEVE(vni=0, proto=0x6558) / Ether(dst=fh_mac, src=pe_mac) / inner
    if needs == "srv6":
        # SRv6 encap.red with the node as the only segment: no routing
        # header, plain IP-in-IPv6 (RFC 2473) from the peer's tunnel source.
        return Ether(dst=fh_mac, src=pe_mac) / IPv6(src=SRV6_SOURCE, dst="2001:db8::1") / inner
    return Ether(dst=fh_mac, src=pe_mac) / IP(src="192.0.2.3", dst="192.0.2.1") / inner


def main():
    end_on_sigterm()  # meson's timeout must still run the finally that removes the namespace
    interop_node = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="fhinterop")
    node = receiver = capture = None
    results = []  # (ok, text)
    try:
        fh_mac, pe_mac, have = topology()
        missing = sorted(k for k, v in have.items() if not v)
        if missing:
            print(f"note: this kernel has no {', '.join(missing)} support; those legs "
                  "are checked against Wireshark's dissectors and scapy instead")
        cfg = os.path.join(tmp, "node.yaml")
        node_config(cfg, pe_mac)
        local_hex = os.path.join(tmp, "local.hex")
        pcap = os.path.join(tmp, "wire.pcap")
        owns = []
        for port, fam, owner, _, _ in TO_KERNEL:
            client, vip = (CLIENT4, VIP4) if fam == 4 else (f"[{CLIENT6}]", f"[{VIP6}]")
            owns += ["--own", f"udp {client}:{port} {vip}:7000 {owner}"]
        node = subprocess.Popen(["ip", "netns", "exec", NODE_NS, interop_node, "-c", cfg,
                                 "-o", local_hex, "-s", "60"] + owns,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = ""
        while "ready" not in seen:
            line = node.stdout.readline()
            if not line:
                raise RuntimeError(f"interop_node did not start: {seen}")
            seen += line
        receiver = subprocess.Popen(["ip", "netns", "exec", PEER_NS, "/usr/bin/python3", "-c",
                                     RECEIVER, VIP4, VIP6, "30"],
                                    stdout=subprocess.PIPE, text=True)
        if "listening" not in receiver.stdout.readline():
            raise RuntimeError("receiver did not start")
        # --immediate-mode: without it libpcap hands packets over a ring block
        # at a time, on a 1 s timer, and tcpdump stopped within that second
        # wrote none of them.
        capture = subprocess.Popen(["ip", "netns", "exec", PEER_NS, "tcpdump", "-n", "-U",
                                    "--immediate-mode", "-i", "pe0", "-Q", "in", "-w", pcap,
                                    "-c", "500"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on pe0" once its capture is open; frames sent
        # before that are not in the file (a fixed wait lost them on a busy machine).
        started = capture.stderr.readline()
        if "listening on" not in started:
            raise RuntimeError(f"tcpdump did not start: {started.strip()}")

        # 1. flowhome -> kernel
        payloads = {}
        frames = []
        for port, fam, owner, needs, what in TO_KERNEL:
            payload = f"to-kernel {what} via node {owner}".encode() + bytes(range(64))
            payloads[port] = (payload, needs, what, fam)
            l3 = IP(src=CLIENT4, dst=VIP4) if fam == 4 else IPv6(src=CLIENT6, dst=VIP6)
            frames.append(Ether(dst=fh_mac, src=pe_mac) / l3 / UDP(sport=port, dport=7000) /
                          Raw(payload))
        send_frames(tmp, frames)

        received = {}
        deadline = time.time() + 8
        expected = sum(1 for p in payloads.values() if have[p[1]])
        while time.time() < deadline and len(received) < expected:
            line = receiver.stdout.readline()
            if not line:
                break
            src, sport, data = line.split()
            received[int(sport)] = (src, bytes.fromhex(data))
        time.sleep(0.5)
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=10)
        for port, (payload, needs, what, fam) in payloads.items():
            if have[needs]:
                got = received.get(port)
                ok = got is not None and got[1] == payload
                results.append((ok, f"flowhome -> kernel {what}: " +
                                ("payload intact at the VIP socket" if ok else
                                 "nothing reached the socket" if got is None else
                                 "payload differs")))
            else:
                err = tshark_check(pcap, port, payload, needs, fam)
                results.append((err is None, f"flowhome -> {what}: " +
                                ("decoded intact by Wireshark's dissectors" if err is None
                                 else err)))

        # 2. kernel -> flowhome
        sent = {}
        scapy_frames = []
        for vip, needs, what, src in FROM_KERNEL:
            payload = f"from-kernel {what} to {vip}".encode() + bytes(range(32))
            sent[vip] = (payload, needs, what, src)
            if have[needs]:
                fam = "AF_INET6" if ":" in vip else "AF_INET"
                sh(["/usr/bin/python3", "-c",
                    f"import socket; s = socket.socket(socket.{fam}, socket.SOCK_DGRAM); "
                    f"s.sendto(bytes.fromhex('{payload.hex()}'), ('{vip}', 7000))"], PEER_NS)
            else:
                scapy_frames.append(scapy_encapsulated(vip, needs, src, payload, fh_mac, pe_mac))
        if scapy_frames:
            send_frames(tmp, scapy_frames)

        delivered = []
        deadline = time.time() + 8
        while time.time() < deadline:
            with open(local_hex) as f:
                # Whole lines only: the node's stdio may have written half of one.
                delivered = [Ether(bytes.fromhex(x.strip())) for x in f
                             if x.endswith("\n") and x.strip()]
            if sum(1 for d in delivered if UDP in d and d[UDP].dport == 7000) >= len(FROM_KERNEL):
                break
            time.sleep(0.2)
        for vip, (payload, needs, what, src) in sent.items():
            origin = "kernel" if have[needs] else "scapy"
            label = f"{origin} -> flowhome {what}"
            match = [d for d in delivered if UDP in d and bytes(d[UDP].payload) == payload]
            if not match:
                results.append((False, f"{label}: not delivered on the local port"))
                continue
            d = match[0]
            l3 = d[IP] if IP in d else d[IPv6]
            chk = d[UDP].chksum
            d[UDP].chksum = None
            again = Ether(bytes(d))
            if l3.dst != vip or l3.src != src:
                results.append((False, f"{label}: addresses {l3.src} -> {l3.dst}"))
            elif d.dst.lower() != fh_mac.lower():
                results.append((False, f"{label}: Ethernet destination {d.dst}"))
            elif chk not in (0, again[UDP].chksum):
                results.append((False, f"{label}: UDP checksum does not verify"))
            else:
                results.append((True, f"{label}: inner packet delivered intact"))
    except Exception as e:  # noqa: BLE001 -- any setup failure fails the test
        results.append((False, f"setup: {e}"))
    finally:
        with held_signals():
            for p in (capture, receiver, node):
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        out, _ = p.communicate(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        out, _ = p.communicate()
                    if p is node and not all(ok for ok, _ in results):
                        print(out)
            for ns in (NODE_NS, PEER_NS):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            if os.environ.get("FLOWHOME_KEEP"):
                print(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(f"/var/run/dpdk/{TAG}", ignore_errors=True)

    for ok, text in results:
        print(("ok   " if ok else "FAIL ") + text)
    failed = sum(1 for ok, _ in results if not ok)
    expected = len(TO_KERNEL) + len(FROM_KERNEL)
    if len(results) < expected:
        failed += expected - len(results)
    print(f"{expected - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
