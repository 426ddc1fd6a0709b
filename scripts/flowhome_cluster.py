#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A flowhome cluster in network namespaces, for the demo and the tests.

    client ns ──veth── router ns ──veth── lan ns (bridge) ──veth── node ns 1..N
    198.51.100.2      198.51.100.1                                    192.0.2.i
                      192.0.2.254   ECMP route to the VIPs over the nodes

Each node namespace runs flowhome with net_af_packet on its wire veth and a
net_tap local port carrying the node's kernel addresses: its LAN address
192.0.2.i (and 2001:db8:1::i) and the VIPs, where a TCP echo server listens.
The tap has the wire veth's MAC, so the kernel's own traffic (ARP, replies)
passes through flowhome to the wire unchanged and the router's answers come
back the same way.

The router spreads the VIPs over the nodes with a multipath route (L4 hash,
fib_multipath_hash_policy=1): plain hash-threshold nexthops (survivors are
rehashed when the set changes) or a resilient nexthop group.

Documentation addresses only. Everything is created under names carrying a
tag no namespace or DPDK runtime folder on the host carries yet, and
`down()` removes what this cluster made -- processes by PID, namespaces,
DPDK runtime folders, the work directory -- also after a failure, and
nothing it did not make.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from netns_tools import free_tag, held_signals, offloads_off

VIP4, VIP6 = "203.0.113.10", "2001:db8:100::10"
CLIENT4, CLIENT6 = "198.51.100.2", "2001:db8:c::2"
ROUTER_CLIENT4, ROUTER_CLIENT6 = "198.51.100.1", "2001:db8:c::1"
ROUTER_LAN4, ROUTER_LAN6 = "192.0.2.254", "2001:db8:1::fe"
GOSSIP_GROUP = "239.1.1.1"
HERE = os.path.dirname(os.path.abspath(__file__))


def node_ip4(i):
    return f"192.0.2.{i}"


def node_ip6(i):
    return f"2001:db8:1::{i}"


def node_mac(i):
    return f"02:00:00:00:01:{i:02x}"


def proc_stat(pid):
    """Process @p pid's state and start time (/proc/PID/stat fields 3 and
    22), or (None, None) if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None, None
    # Field 2, the command name, is in parentheses and may hold anything.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def start_time(pid):
    """When process @p pid started (clock ticks since boot), None if there is
    no such process. With the PID it names one process: a PID given again
    to another has another start time."""
    return proc_stat(pid)[1]


class PidProc:
    """A process started by an earlier invocation, known by its PID and its
    start time: once it has ended and its PID went to another process, that
    one is neither signalled nor taken for it."""

    returncode = None  # not ours to wait for: its exit status is unknown

    def __init__(self, pid, start):
        self.pid = pid
        self.start = start

    def _pidfd(self):
        """A pidfd of the process if the PID still names it, else None. The
        pidfd keeps naming it, whatever the PID names later."""
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return None
        state, start = proc_stat(self.pid)
        if start != self.start or state == "Z":  # another process, or it has ended
            os.close(fd)
            return None
        return fd

    def poll(self):
        fd = self._pidfd()
        if fd is None:
            return 0
        os.close(fd)
        return None

    def send_signal(self, sig):
        fd = self._pidfd()
        if fd is None:
            return
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        deadline = time.time() + (timeout or 3600)
        while self.poll() is None:
            if time.time() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return 0


class Cluster:
    def __init__(self, flowhome, nodes=3, tag=None, resilient=False, workdir=None,
                 ownership=True, dead_after_ms=1000):
        self.flowhome = os.path.abspath(flowhome)
        if not 1 <= nodes <= 49:  # nexthop ids: 100 + node and 150 for the groups (set_route)
            raise ValueError(f"{nodes} nodes: 1 to 49")
        self.n = nodes
        self.tag = tag or free_tag("fc")
        self.resilient = resilient
        self.ownership = ownership
        self.dead_after_ms = dead_after_ms
        self.own_dir = workdir is None  # made here: down() removes it
        self.dir = workdir or tempfile.mkdtemp(prefix=f"flowhome-{self.tag}-")
        self.procs = {}      # node id -> Popen of flowhome
        self.servers = {}    # node id -> Popen of the echo server
        self.in_route = set()
        # What this cluster made, and only that, is what down() removes.
        self.made_ns = []    # namespaces created
        self.started = set()  # nodes started: their EAL runtime folder and socket
        self.ns_client = f"{self.tag}c"
        self.ns_router = f"{self.tag}r"
        self.ns_lan = f"{self.tag}l"

    # ---- helpers ----

    def ns_node(self, i):
        return f"{self.tag}n{i}"

    def sh(self, ns, *cmd, check=True):
        full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
        r = subprocess.run(full, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(full)}: {r.stderr.strip()}")
        return r.stdout

    def _veth(self, ns_a, name_a, ns_b, name_b):
        # Made in the namespaces: nothing is left in the host's if this run dies.
        self.sh(None, "ip", "link", "add", name_a, "netns", ns_a, "type", "veth", "peer",
                "name", name_b, "netns", ns_b)
        offloads_off(ns_a, name_a)
        offloads_off(ns_b, name_b)

    # ---- building ----

    def up(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "gossip.keys"), "w") as f:
            f.write("# cluster demo key\nkey 1 " + os.urandom(32).hex() + "\n")
        os.chmod(os.path.join(self.dir, "gossip.keys"), 0o600)
        for ns in [self.ns_client, self.ns_router, self.ns_lan] + \
                [self.ns_node(i) for i in range(1, self.n + 1)]:
            r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
            if r.returncode != 0:
                # Another cluster's ("File exists"): not ours to remove.
                raise RuntimeError(f"ip netns add {ns}: {r.stderr.strip()}")
            self.made_ns.append(ns)
            self.sh(ns, "ip", "link", "set", "lo", "up")
        c, r, lan = self.ns_client, self.ns_router, self.ns_lan
        self._veth(c, "eth0", r, "cl0")
        self.sh(c, "ip", "addr", "add", f"{CLIENT4}/24", "dev", "eth0")
        self.sh(c, "ip", "addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
        self.sh(c, "ip", "link", "set", "eth0", "up")
        self.sh(c, "ip", "route", "add", "default", "via", ROUTER_CLIENT4)
        self.sh(c, "ip", "-6", "route", "add", "default", "via", ROUTER_CLIENT6)
        self.sh(r, "ip", "addr", "add", f"{ROUTER_CLIENT4}/24", "dev", "cl0")
        self.sh(r, "ip", "addr", "add", f"{ROUTER_CLIENT6}/64", "dev", "cl0", "nodad")
        self.sh(r, "ip", "link", "set", "cl0", "up")
        self.sh(lan, "ip", "link", "add", "br0", "type", "bridge")
        self.sh(lan, "ip", "link", "set", "br0", "up")
        self._veth(r, "lan0", lan, "rt")
        self.sh(lan, "ip", "link", "set", "rt", "master", "br0")
        self.sh(lan, "ip", "link", "set", "rt", "up")
        self.sh(r, "ip", "addr", "add", f"{ROUTER_LAN4}/24", "dev", "lan0")
        self.sh(r, "ip", "addr", "add", f"{ROUTER_LAN6}/64", "dev", "lan0", "nodad")
        self.sh(r, "ip", "link", "set", "lan0", "up")
        for k, v in (("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                     ("net.ipv4.fib_multipath_hash_policy", 1),
                     ("net.ipv6.fib_multipath_hash_policy", 1)):
            self.sh(r, "sysctl", "-qw", f"{k}={v}")
        for i in range(1, self.n + 1):
            self._node_ns(i)
            self.sh(r, "ip", "neigh", "replace", node_ip4(i), "lladdr", node_mac(i), "dev",
                    "lan0", "nud", "permanent")
            self.sh(r, "ip", "neigh", "replace", node_ip6(i), "lladdr", node_mac(i), "dev",
                    "lan0", "nud", "permanent")
        for i in range(1, self.n + 1):
            self.start_node(i)
        for i in range(1, self.n + 1):
            self.start_server(i)
        self.set_route(list(range(1, self.n + 1)))
        self.save()

    def _node_ns(self, i):
        ns = self.ns_node(i)
        self._veth(ns, "wire", self.ns_lan, f"n{i}")
        self.sh(self.ns_lan, "ip", "link", "set", f"n{i}", "master", "br0")
        self.sh(self.ns_lan, "ip", "link", "set", f"n{i}", "up")
        self.sh(ns, "ip", "link", "set", "wire", "address", node_mac(i))
        self.sh(ns, "sysctl", "-qw", "net.ipv6.conf.wire.disable_ipv6=1")
        # On a real node the NIC belongs to DPDK and the kernel never sees it.
        # Here the wire is a veth the kernel also receives on: its stack must
        # not answer (with RSTs) for connections another node owns. The
        # netdev ingress hook runs after packet sockets (net_af_packet) have
        # their copy, so flowhome still sees everything.
        self.sh(ns, "nft", "add", "table", "netdev", "flowhome")
        self.sh(ns, "nft", "add", "chain", "netdev", "flowhome", "wire",
                "{ type filter hook ingress device wire priority 0; policy drop; }")
        self.sh(ns, "ip", "link", "set", "wire", "up")
        for key in ("all", "default"):
            self.sh(ns, "sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0")
        # The VIPs live on lo; the LAN addresses on the tap, once flowhome made it.
        self.sh(ns, "ip", "addr", "add", f"{VIP4}/32", "dev", "lo")
        self.sh(ns, "ip", "addr", "add", f"{VIP6}/128", "dev", "lo")

    def config(self, i):
        peers = "\n".join(
            f"  - {{id: {j}, address: {node_ip4(j)}, domain: lan, mac: \"{node_mac(j)}\"}}"
            for j in range(1, self.n + 1) if j != i)
        ownership = "" if self.ownership else "bypass_ownership: true\n"
        path = os.path.join(self.dir, f"node{i}.yaml")
        with open(path, "w") as f:
            f.write(f"""# node {i} of cluster {self.tag} (written by scripts/flowhome_cluster.py)
node: {{id: {i}, name: node{i}}}
eal:
  huge_pages: false
  memory_mb: 192
  extra: ["--log-level=lib.eal:warning", "--log-level=pmd.net.tap:error"]
ports:
  - name: wire
    role: wire
    device: net_af_packet{i},iface=wire,qpairs=1
    mac: "{node_mac(i)}"
    ipv4: {node_ip4(i)}
    ipv6: "{node_ip6(i)}"
  - name: kernel
    role: local
    device: net_tap{i},iface=fhtap,mac={node_mac(i)}
lcores: {{main: 0, control: 1, workers: [2], cpus: {{0: {i % 2}, 1: {i % 2}, 2: {(i + 1) % 2}}}}}
vips:
  - {{address: {VIP4}, protocol: tcp, ports: [80]}}
  - {{address: "{VIP6}", protocol: tcp, ports: [80]}}
domains:
  - {{name: lan, encap: geneve}}
peers:
{peers}
miss_policy: drop
{ownership}gossip:
  cluster_id: 7
  group: {GOSSIP_GROUP}
  group_report_interval_s: 0   # a Linux bridge without a querier floods the group
  key_file: gossip.keys
  heartbeat_interval_ms: 100
  suspect_after_ms: {self.dead_after_ms // 2}
  dead_after_ms: {self.dead_after_ms}
  reannounce_interval_ms: 1000
table: {{capacity_ipv4: 65536, capacity_ipv6: 16384}}
backoff: {{idle_polls: 100, pause_polls: 10, sleep_us: 50}}
""")
        return path

    def log_since(self, name, offset=0):
        """What log @p name of the work directory holds from byte @p offset on."""
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, name, offset=0, lines=30):
        """The last lines of log @p name from byte @p offset on, for an error:
        down() removes the work directory the log is in."""
        text = self.log_since(name, offset)
        return f"\n--- {name} (tail)\n" + "".join(text.splitlines(keepends=True)[-lines:])

    def log_size(self, name):
        try:
            return os.path.getsize(os.path.join(self.dir, name))
        except FileNotFoundError:
            return 0

    def start_node(self, i):
        """Starts node i's flowhome and returns once it forwards, with the
        kernel side of its tap set up."""
        name = f"node{i}.log"
        # The log is appended to across restarts: only what this start
        # writes says whether it runs.
        offset = self.log_size(name)
        try:
            self._start_node(i, name, offset)
        except RuntimeError as e:
            raise RuntimeError(f"{e}{self.log_tail(name, offset)}") from None

    def _start_node(self, i, name, offset):
        ns = self.ns_node(i)
        cfg = self.config(i)
        with open(os.path.join(self.dir, name), "ab") as log:
            p = subprocess.Popen(["ip", "netns", "exec", ns, self.flowhome, "-c", cfg, "--",
                                  f"--file-prefix={self.tag}n{i}"],
                                 stdout=log, stderr=subprocess.STDOUT)
        p.start = start_time(p.pid)  # `ip netns exec` execs flowhome: the same process
        self.procs[i] = p
        self.started.add(i)
        # "running with" comes once the ports and workers run (the tap
        # exists from the EAL's start on: too early to route to the node).
        deadline = time.time() + 20
        while "running with" not in self.log_since(name, offset):
            if p.poll() is not None:
                raise RuntimeError(f"node {i} exited with status {p.returncode}")
            if time.time() > deadline:
                raise RuntimeError(f"node {i} did not start within 20 s")
            time.sleep(0.1)
        # The kernel side: the node's LAN addresses on the tap.
        self.sh(ns, "sysctl", "-qw", "net.ipv4.conf.fhtap.rp_filter=0")
        self.sh(ns, "ip", "addr", "replace", f"{node_ip4(i)}/24", "dev", "fhtap")
        self.sh(ns, "ip", "addr", "replace", f"{node_ip6(i)}/64", "dev", "fhtap", "nodad")
        self.sh(ns, "ip", "link", "set", "fhtap", "up")
        self.sh(ns, "ip", "route", "replace", "default", "via", ROUTER_LAN4, "dev", "fhtap")
        self.sh(ns, "ip", "-6", "route", "replace", "default", "via", ROUTER_LAN6, "dev",
                "fhtap")
        for j in range(1, self.n + 1):
            if j != i:
                self.sh(ns, "ip", "neigh", "replace", node_ip4(j), "lladdr", node_mac(j),
                        "dev", "fhtap", "nud", "permanent")

    def start_server(self, i):
        ns = self.ns_node(i)
        name = f"server{i}.log"
        offset = self.log_size(name)
        with open(os.path.join(self.dir, name), "ab") as log:
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, "/usr/bin/python3",
                 os.path.join(HERE, "cluster_echo.py"), "serve", str(i)],
                stdout=log, stderr=subprocess.STDOUT)
        p.start = start_time(p.pid)
        self.servers[i] = p
        # Return once it listens: a node back in the ECMP set must not
        # answer the first SYNs with a RST.
        deadline = time.time() + 10
        while time.time() < deadline:
            if p.poll() is not None:
                break
            out = self.sh(ns, "ss", "-Hltn", "sport", "= :80", check=False)
            if out.count("LISTEN") >= 2:
                return
            time.sleep(0.05)
        raise RuntimeError(f"node {i}: the echo server did not start"
                           f"{'' if p.poll() is None else f' (exit status {p.returncode})'}"
                           f"{self.log_tail(name, offset)}")

    # ---- events ----

    def set_route(self, members):
        """Points the router's multipath routes to the VIPs at these nodes.

        Each change is one `replace` of the route: deleting it first would
        leave a moment without one, and a SYN in it gets "unreachable"."""
        r = self.ns_router
        members = sorted(members)
        for fam, vip, addr in ((4, VIP4, node_ip4), (6, VIP6, node_ip6)):
            flag = "-4" if fam == 4 else "-6"
            if self.resilient:
                # A new group for each member set, under the group id the
                # route does not use (two, in turn); the route then moves to
                # it, and the old group and the nexthops no longer in the set
                # go after.
                base = 100 if fam == 4 else 200
                in_use = self.sh(r, "ip", "nexthop", "show", "id", str(base), check=False) != ""
                old, new = (base, base + 50) if in_use else (base + 50, base)
                for i in members:
                    self.sh(r, "ip", "nexthop", "replace", "id", str(base + i), "via", addr(i),
                            "dev", "lan0")
                group = "/".join(str(base + i) for i in members)
                self.sh(r, "ip", "nexthop", "del", "id", str(new), check=False)  # a leftover
                self.sh(r, "ip", "nexthop", "add", "id", str(new), "group", group, "type",
                        "resilient", "buckets", "64")
                self.sh(r, "ip", flag, "route", "replace", vip, "nhid", str(new))
                self.sh(r, "ip", "nexthop", "del", "id", str(old), check=False)
                for i in range(1, self.n + 1):
                    if i not in members:
                        self.sh(r, "ip", "nexthop", "del", "id", str(base + i), check=False)
            else:
                hops = []
                for i in members:
                    hops += ["nexthop", "via", addr(i), "dev", "lan0"]
                self.sh(r, "ip", flag, "route", "replace", vip, *hops)
        self.in_route = set(members)
        self.save()

    def remove_from_route(self, i):
        self.set_route(sorted(self.in_route - {i}))

    def add_to_route(self, i):
        self.set_route(sorted(self.in_route | {i}))

    def kill(self, i, sig=signal.SIGKILL):
        """Ends node i's flowhome and its echo server (its kernel state dies with it).

        Returns flowhome's exit status: -9 if it had to be killed after 10 s,
        None if it was not running or was started by an earlier invocation."""
        status = None
        for table in (self.procs, self.servers):
            p = table.pop(i, None)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(sig)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if table is self.procs:
                status = p.returncode
        if i in self.started:
            self.remove_runtime(i)
        self.save()
        return status

    def remove_runtime(self, i):
        """What node i leaves behind when it is killed: its EAL runtime folder
        and its control socket."""
        shutil.rmtree(f"/var/run/dpdk/{self.tag}n{i}", ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket(i))

    def restart(self, i):
        """Starts node i again, once kill() has ended it. A node still running
        is refused: a second flowhome would fail on the first one's EAL lock,
        and the first one would no longer be tracked."""
        if not 1 <= i <= self.n:
            raise ValueError(f"no node {i}: nodes 1 to {self.n}")
        for what, table in (("flowhome", self.procs), ("echo server", self.servers)):
            p = table.get(i)
            if p is not None and p.poll() is None:
                raise RuntimeError(f"node {i} is running (its {what} is PID {p.pid}): "
                                   "kill it first")
        self.procs.pop(i, None)
        self.servers.pop(i, None)
        self.start_node(i)
        self.start_server(i)
        self.save()

    def socket(self, i):
        """Node i's control socket (named after its EAL file prefix)."""
        return f"/var/run/flowhome/{self.tag}n{i}.sock"

    def console(self, i, *command):
        """Runs one console command on node i through its control socket."""
        r = subprocess.run(["ip", "netns", "exec", self.ns_node(i), self.flowhome, "--attach",
                            self.socket(i)] + list(command), capture_output=True, text=True,
                           timeout=20)
        if r.returncode != 0:
            raise RuntimeError(f"node {i}: {' '.join(command)}: {r.stdout}{r.stderr}")
        return r.stdout

    def drain(self, i):
        """Node i stops taking new connections (it keeps serving its own)."""
        self.console(i, "set", "drain", "on")

    def ctl(self, i, *command):
        """Signals node i; 'report' returns its counters (SIGUSR1)."""
        p = self.procs.get(i)
        if p is None or p.poll() is not None:
            raise RuntimeError(f"node {i} is not running")
        logpath = os.path.join(self.dir, f"node{i}.log")
        if command == ("report",):
            before = open(logpath).read().count("\n--\n")
            p.send_signal(signal.SIGUSR1)
            deadline = time.time() + 5
            while time.time() < deadline:
                text = open(logpath).read()
                if text.count("\n--\n") > before:
                    return "node " + text.rsplit("\n--\n", 2)[-2].rsplit("\nnode ", 1)[-1]
                time.sleep(0.05)
            raise RuntimeError(f"node {i} did not report")
        raise ValueError(f"unknown command {command}")

    # ---- state and teardown ----

    def save(self):
        with open(os.path.join(self.dir, "cluster.json"), "w") as f:
            json.dump({"tag": self.tag, "nodes": self.n, "flowhome": self.flowhome,
                       "resilient": self.resilient, "ownership": self.ownership,
                       "dead_after_ms": self.dead_after_ms,
                       # [PID, start time]: a reused PID is not taken for ours
                       "pids": {str(i): [p.pid, p.start] for i, p in self.procs.items()},
                       "servers": {str(i): [p.pid, p.start] for i, p in self.servers.items()},
                       "in_route": sorted(self.in_route), "own_dir": self.own_dir,
                       "made_ns": self.made_ns, "started": sorted(self.started)}, f)

    @classmethod
    def load(cls, workdir):
        """The cluster an earlier invocation built in @p workdir."""
        with open(os.path.join(workdir, "cluster.json")) as f:
            st = json.load(f)
        c = cls(st["flowhome"], nodes=st["nodes"], tag=st["tag"], resilient=st["resilient"],
                workdir=workdir, ownership=st["ownership"], dead_after_ms=st["dead_after_ms"])
        c.procs = {int(i): PidProc(*p) for i, p in st["pids"].items()}
        c.servers = {int(i): PidProc(*p) for i, p in st["servers"].items()}
        c.in_route = set(st["in_route"])
        c.own_dir = st.get("own_dir", False)
        c.made_ns = st["made_ns"]
        c.started = set(st["started"])
        return c

    def down(self):
        """Removes what this cluster made. A second Ctrl-C, a SIGTERM or the
        test's deadline does not cut it short: held until it is done, then
        acted on."""
        with held_signals():
            # Every process told first: they stop side by side, each wait
            # below then mostly finds its process gone.
            for p in list(self.procs.values()) + list(self.servers.values()):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for i in list(self.procs) + list(self.servers):
                self.kill(i, signal.SIGTERM)
            for ns in self.made_ns:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            self.made_ns = []
            for i in sorted(self.started):
                self.remove_runtime(i)
            self.started = set()
            if self.own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
            elif os.path.isdir(self.dir):
                self.save()

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()
        return False
