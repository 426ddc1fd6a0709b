#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""FleetNode.start starts a node again when net_af_packet's fanout group is refused.

DPDK 22.11's net_af_packet joins the PACKET_FANOUT group (pid ^ ifindex) &
0xffff of its interface, in mode PACKET_FANOUT_HASH with flags; the kernel
keeps the groups per network namespace and refuses (EINVAL) a socket that
joins an existing group with another mode or other flags. Which pid a node
draws is left to chance in the gossip tests, so this one makes the
collision certain: FleetNode.start's before_run hook gets the pid of each
attempt before flowhome runs, and for the first attempt a helper process in
the namespace opens an AF_PACKET socket on the node's veth that creates the
group of that pid in mode PACKET_FANOUT_CPU. The helper keeps it open until
the node runs. The checks:

1. the first attempt is refused: its log, kept as node1.log.1, has
   net_af_packet's message (FANOUT_REFUSED), and start() says it starts the
   node again;
2. the second attempt, with another pid (another group id), runs: the
   control socket answers `show node`;
3. SIGTERM stops it cleanly (exit status 0, "stopped by signal").

With FANOUT_ATTEMPTS = 1 (no retry) start() raises and the test fails.

A single node on a bridge in a test namespace, the gossip setup of the other
cli tests; documentation addresses only; the namespace, the processes and
the DPDK folders are removed at the end, also on failure. Bounded waits.
Usage: test_fanout_retry.py FLOWHOME
"""
import contextlib
import io
import os
import re
import select
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from gossip_fleet import (FANOUT_REFUSED, FleetNode, bridge_topology, end_on_sigterm,  # noqa: E402
                          free_tag, node_yaml, ns_run, remove_fleet, show_logs, tally)

TAG = free_tag("fhfr")
NS = TAG
VIP = "203.0.113.10"
FLOWHOME = os.path.abspath(sys.argv[1])
NODE = 1
VETH = f"n{NODE}a"
PACKET_FANOUT_CPU = 2

# Run in the namespace: an AF_PACKET socket on interface argv[1] that creates
# fanout group argv[2] in mode argv[3] (no flags), kept until stdin closes.
# The socket must be bound (and so receiving) before it may join a group.
HOLDER = """
import socket, struct, sys
SOL_PACKET, PACKET_FANOUT, ETH_P_ALL = 263, 18, 3
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind((sys.argv[1], ETH_P_ALL))
s.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", int(sys.argv[2]) | int(sys.argv[3]) << 16))
print("ready", flush=True)
sys.stdin.read()
"""


class FanoutHolder:
    """The helper process that holds fanout group @p group on @p iface in @p ns."""

    def __init__(self, ns, iface, group, mode, timeout=10):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", HOLDER, iface, str(group),
             str(mode)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"the fanout holder did not get group {group} on {iface}: "
                               f"{line!r} {self.proc.stderr.read().strip()!r}")

    def close(self):
        """Closes the socket (the helper ends when its stdin closes)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    end_on_sigterm()
    tmp = tempfile.mkdtemp(prefix="fhclifanout")
    keys = os.path.join(tmp, "gossip.keys")
    with open(keys, "w") as f:
        f.write(f"# test key\nkey 1 {'5a' * 32}\n")
    os.chmod(keys, 0o600)
    sock = os.path.join(tmp, f"node{NODE}.sock")
    # A peer that never comes up: the node gossips to no one, which is enough here.
    node = FleetNode(FLOWHOME, NS, tmp, NODE, f"{TAG}n{NODE}",
                     node_yaml(NODE, (NODE, NODE + 1), VIP, keys, console_socket=sock),
                     sock=sock)
    pids = []
    holder = None
    checks = []
    expected = 5

    def check(ok, text):
        checks.append((ok, text))
        print(("ok   " if ok else "FAIL ") + text, flush=True)

    def before_run(pid):
        """Before the first attempt runs, the group its net_af_packet port will join
        is created in another mode."""
        nonlocal holder
        pids.append(pid)
        if len(pids) == 1:
            ifindex = int(ns_run(NS, ["cat", f"/sys/class/net/{VETH}/ifindex"]))
            group = (pid ^ ifindex) & 0xffff
            holder = FanoutHolder(NS, VETH, group, PACKET_FANOUT_CPU)
            print(f"pid {pid}: fanout group {group} of {VETH} (ifindex {ifindex}) taken in "
                  f"mode PACKET_FANOUT_CPU", flush=True)

    try:
        bridge_topology(NS, (NODE,))
        said = io.StringIO()
        try:
            with contextlib.redirect_stdout(said):
                node.start(before_run=before_run)
        finally:
            print(said.getvalue(), end="", flush=True)

        # 1. The first attempt was refused, and started again.
        first_log = f"{node.log}.1"
        refused = os.path.exists(first_log) and FANOUT_REFUSED.search(open(first_log).read())
        check(bool(refused), f"the first attempt (pid {pids[0]}) was refused: {first_log} has "
                             f"net_af_packet's message ({refused.group(0) if refused else '-'})")
        check(re.search(rf"^node {NODE}: pid {pids[0]} drew the af_packet fanout group id .*"
                        rf"starting it again, its log kept as {re.escape(first_log)}$",
                        said.getvalue(), re.M) is not None,
              "start() said it starts the node again")

        # 2. The second attempt runs.
        rc, out, err = node.run("show", "node")
        check(len(pids) == 2 and pids[1] == node.proc.pid and rc == 0 and
              "running with" in open(node.log).read(),
              f"the second attempt (pid {node.proc.pid}) runs, the control socket answers "
              f"show node (attempts {pids}, rc {rc}{', ' + err.strip() if rc else ''})")
        holder.close()

        # 3. It stops cleanly.
        node.stop()
        log = open(node.log).read()
        check(node.proc.returncode == 0,
              f"SIGTERM stops the node, exit status {node.proc.returncode}")
        check("flowhome: stopped by signal" in log, "its log says it was stopped by a signal")
    except Exception as e:  # noqa: BLE001 -- any failure fails the test
        check(False, f"{type(e).__name__}: {e}")
    finally:
        show_logs(checks, [f"{node.log}.1", node.log])
        if holder is not None:
            holder.close()
        remove_fleet(NS, [node], tmp)
    return tally(checks, expected)


if __name__ == "__main__":
    sys.exit(main())
