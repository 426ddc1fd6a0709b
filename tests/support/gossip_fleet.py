# SPDX-License-Identifier: BSD-3-Clause
"""Three (or N) flowhome nodes gossiping over a bridge in a test namespace:
the setup the multi-process gossip tests share.

Each node runs flowhome with net_af_packet on a veth hanging off the
bridge and a net_tap local port; extra veths (a client's) can be added.
Documentation addresses only; callers remove the namespace in a finally.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from netns_tools import end_on_sigterm, free_tag, held_signals, offloads_off  # noqa: E402,F401 (for the tests)

# net_af_packet's message when the kernel refuses its fanout group (FleetNode.start).
FANOUT_REFUSED = re.compile(r"could not set PACKET_FANOUT on AF_PACKET socket for \S+:Invalid argument")
FANOUT_ATTEMPTS = 3


def ns_run(ns, cmd, check=True, **kwargs):
    """Runs @p cmd in namespace @p ns; returns its stdout."""
    r = subprocess.run(["ip", "netns", "exec", ns] + cmd, capture_output=True, text=True,
                       **kwargs)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


def tally(checks, expected):
    """Prints how many of the (ok, text) @p checks passed and failed, each of
    the @p expected checks that did not run counting as failed; returns the
    exit status."""
    passed = sum(1 for ok, _ in checks if ok)
    failed = len(checks) - passed + max(0, expected - len(checks))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def show_logs(checks, paths, lines=40):
    """If a check of @p checks failed, prints the end of each log of @p paths there is."""
    if all(ok for ok, _ in checks):
        return
    for path in paths:
        if os.path.exists(path):
            print(f"--- {os.path.basename(path)} (tail)")
            print("".join(open(path).readlines()[-lines:]))


def remove_fleet(ns, nodes, tmp):
    """Stops @p nodes, removes namespace @p ns and folder @p tmp (also after
    a failure, and past the test's deadline: held_signals())."""
    with held_signals():
        for n in nodes:  # every node told first: they stop side by side
            if n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in nodes:
            n.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def mac(i):
    return f"02:00:00:00:00:0{i}"


def bridge_topology(ns, nodes, extra_ports=()):
    """Namespace @p ns with bridge br0, a veth nI a/b per node (nIa for
    flowhome, with mac(I)) and one per extra port name."""
    subprocess.run(["ip", "netns", "add", ns], check=True)
    ns_run(ns, ["ip", "link", "set", "lo", "up"])
    ns_run(ns, ["ip", "link", "add", "br0", "type", "bridge"])
    ns_run(ns, ["ip", "link", "set", "br0", "up"])
    for name in [f"n{i}" for i in nodes] + list(extra_ports):
        ns_run(ns, ["ip", "link", "add", f"{name}a", "type", "veth", "peer", "name", f"{name}b"])
        ns_run(ns, ["ip", "link", "set", f"{name}b", "master", "br0"])
        for end in "ab":
            ns_run(ns, ["sysctl", "-qw", f"net.ipv6.conf.{name}{end}.disable_ipv6=1"])
            offloads_off(ns, f"{name}{end}")
            ns_run(ns, ["ip", "link", "set", f"{name}{end}", "up"])
    for i in nodes:
        ns_run(ns, ["ip", "link", "set", f"n{i}a", "address", mac(i)])


def node_yaml(i, nodes, vip, key_file, ipv6_unicast=False, console_socket=None,
              heartbeat_ms=100, dead_after_ms=1500, telemetry=False):
    """The node file of node @p i: peers addressed over IPv4 (multicast
    gossip to 239.1.1.1) or over IPv6 (unicast gossip)."""
    def address(j):
        return f"\"2001:db8::{j}\"" if ipv6_unicast else f"192.0.2.{j}"

    peers = "\n".join(f"  - {{id: {j}, address: {address(j)}, domain: dc, mac: \"{mac(j)}\"}}"
                      for j in nodes if j != i)
    # The bridge has no querier and floods the group: no IGMP reports here.
    transport = ("  unicast: true" if ipv6_unicast
                 else "  group: 239.1.1.1\n  group_report_interval_s: 0")
    console = f"console:\n  socket: {console_socket}\n" if console_socket else ""
    no_telemetry = "" if telemetry else ", \"--no-telemetry\""
    return f"""node: {{id: {i}, name: n{i}}}
eal:
  huge_pages: false
  memory_mb: 192
  extra: ["--log-level=lib.eal:warning"{no_telemetry}]
ports:
  - name: wire
    device: net_af_packet{i},iface=n{i}a,qpairs=1
    role: wire
    ipv4: 192.0.2.{i}
    ipv6: "2001:db8::{i}"
  - name: host
    device: net_tap{i},iface=fhl{i},mac=fixed
    role: local
lcores: {{main: 0, control: 1, workers: [2], cpus: {{0: 0, 1: {i % 2}, 2: {(i + 1) % 2}}}}}
vips:
  - {{address: {vip}, protocol: tcp, ports: [80]}}
domains:
  - {{name: dc, encap: geneve}}
peers:
{peers}
miss_policy: drop
gossip:
  cluster_id: 42
{transport}
  key_file: {key_file}
  heartbeat_interval_ms: {heartbeat_ms}
  suspect_after_ms: 600
  dead_after_ms: {dead_after_ms}
  reannounce_interval_ms: 1000
table: {{capacity_ipv4: 4096, capacity_ipv6: 1024}}
{console}"""


class FleetNode:
    """One flowhome process of the fleet, started in namespace @p ns."""

    def __init__(self, flowhome, ns, tmp, i, prefix, yaml_text, sock=None):
        self.i = i
        self.ns = ns
        self.flowhome = flowhome
        self.cfg = os.path.join(tmp, f"node{i}.yaml")
        with open(self.cfg, "w") as f:
            f.write(yaml_text)
        self.log = os.path.join(tmp, f"node{i}.log")
        self.prefix = prefix
        self.sock = sock
        self.proc = None

    def start(self, timeout=20, before_run=None):
        """Starts the node and waits until it runs (and its control socket is there).

        DPDK 22.11's net_af_packet names the PACKET_FANOUT group of a port
        (pid ^ ifindex) & 0xffff, and the kernel keeps fanout groups per
        network namespace. The fleet shares one namespace, so a node whose
        group id equals that of a node already running on another veth is
        refused (EINVAL) and exits. With nothing else forking, the pid gaps
        between the starts never make ids collide here; when other processes
        fork in between (a build, another test run) they can: in 12 runs of
        25 on two busy cores with a few forks a second. A new process has a
        new pid, hence a new id: that case, and only that one, is started
        again, a bounded number of times.

        @p before_run, if given, is called with the pid of each attempt
        before flowhome runs (see _start_once): a test can prepare for that
        pid, as tests/cli/test_fanout_retry.py does to draw the refusal."""
        for attempt in range(1, FANOUT_ATTEMPTS + 1):
            if self._start_once(timeout, before_run):
                return
            log = open(self.log).read()
            refused = FANOUT_REFUSED.search(log)
            if refused is None or attempt == FANOUT_ATTEMPTS:
                raise RuntimeError(f"node {self.i} exited:\n{log}")
            os.replace(self.log, f"{self.log}.{attempt}")
            print(f"node {self.i}: pid {self.proc.pid} drew the af_packet fanout group id of "
                  f"another node in namespace {self.ns} ({refused.group(0)}); starting it "
                  f"again, its log kept as {self.log}.{attempt}", flush=True)

    def _start_once(self, timeout, before_run=None):
        """True once the node runs; False if it exited; raises if it did not start in time.

        With @p before_run, a shell stops itself before it execs flowhome
        (so flowhome keeps the shell's pid, the Popen pid: ip netns exec
        execs too); once it is stopped, before_run(pid) is called and the
        shell continued."""
        out = open(self.log, "w")
        command = [self.flowhome, "-c", self.cfg, "--", f"--file-prefix={self.prefix}"]
        if before_run is not None:
            command = ["sh", "-c", 'kill -STOP $$; exec "$0" "$@"'] + command
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + command,
                                     stdout=out, stderr=subprocess.STDOUT)
        out.close()
        if before_run is not None:
            self._wait_stopped(timeout)
            try:
                before_run(self.proc.pid)
            finally:
                os.kill(self.proc.pid, signal.SIGCONT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if "running with" in open(self.log).read() and \
                    (self.sock is None or os.path.exists(self.sock)):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        raise RuntimeError(f"node {self.i} did not start:\n{open(self.log).read()}")

    def _wait_stopped(self, timeout):
        """Waits until the process (the shell of _start_once) is stopped."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.i} exited before it stopped itself:\n"
                                   f"{open(self.log).read()}")
            try:
                with open(f"/proc/{self.proc.pid}/stat") as f:
                    # The state follows the command name, which is in parentheses.
                    if f.read().rsplit(")", 1)[1].split()[0] == "T":
                        return
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"node {self.i} did not stop itself in {timeout} s")

    def report(self):
        """Asks for a report (SIGUSR1) and returns it as text."""
        before = open(self.log).read().count("\n--\n")
        # ip netns exec execs the program: the Popen pid is flowhome's.
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.time() + 5
        while time.time() < deadline:
            text = open(self.log).read()
            if text.count("\n--\n") > before:
                return text.rsplit("\n--\n", 2)[-2]
            time.sleep(0.05)
        raise RuntimeError(f"node {self.i} did not report")

    def run(self, *command):
        """One console command through the control socket: (status, stdout, stderr)."""
        try:
            r = subprocess.run([self.flowhome, "--attach", self.sock] + list(command),
                               capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return (-1, "", "flowhome --attach timed out")
        return (r.returncode, r.stdout, r.stderr)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)
