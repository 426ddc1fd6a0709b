#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The operator console with gossip on.

Three flowhome nodes in a test namespace (net_af_packet on a veth each,
hanging off a bridge; a net_tap local port), gossiping over UDP multicast to
239.1.1.1 with a shared key file (the setup of tests/dpdk/test_gossip_cluster.py).
Every command goes through the control socket (`flowhome --attach`), and the
checks are on its output and exit status:

1. `show peers` on node 1 lists nodes 2 and 3 alive, with an incarnation;
2. `show stats gossip` shows frames in and out growing, and the report
   (SIGUSR1) names the same events; the repair timing, untimed without
   loss, reads the same in `show stats gossip` and `show metrics`;
3. `flow claim` on node 1 is gossiped: `show flow` on node 2 names owner 1;
4. `flow release` on node 1: node 2 holds the gossiped tombstone (flags
   `released`, packets treated as unknown), as docs/console.md documents;
5. `set drain on` on node 2 shows as draining in node 1's `show peers`;
   `set drain off` clears it;
6. `gossip key reload` on every node after the key file gains key 2
   (`send 2`): the nodes keep exchanging frames, no bad_tag refusals;
7. errors: `flow claim` of a malformed address and `show flow` of an
   unknown flow give a clear message and exit status 1.

Documentation addresses only; the namespace, the processes and the DPDK
folders are removed at the end, also on failure. Bounded waits.
Usage: test_console_gossip.py FLOWHOME
"""
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from gossip_fleet import (FleetNode, bridge_topology, end_on_sigterm, free_tag,  # noqa: E402
                          node_yaml, remove_fleet, show_logs, tally)

TAG = free_tag("fhcg")
NS = TAG
VIP = "203.0.113.10"
CLIENT = "198.51.100.7"
FLOWHOME = os.path.abspath(sys.argv[1])
NODES = (1, 2, 3)
KEY1 = "5a" * 32
KEY2 = "a5" * 32


def write_keys(tmp, text, mode=0o600):
    path = os.path.join(tmp, "gossip.keys")
    with open(path + ".new", "w") as f:
        f.write(text)
    os.chmod(path + ".new", mode)
    os.replace(path + ".new", path)


class Node(FleetNode):
    def __init__(self, tmp, i):
        sock = os.path.join(tmp, f"node{i}.sock")
        super().__init__(FLOWHOME, NS, tmp, i, f"{TAG}n{i}",
                         node_yaml(i, NODES, VIP, f"{tmp}/gossip.keys", console_socket=sock),
                         sock=sock)


def peer_row(text, node):
    """show peers: the row of @p node as a dict, or None."""
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == str(node) and len(f) >= 9:
            return {"address": f[1], "state": f[4], "draining": f[5], "incarnation": f[6]}
    return None


def gossip_stat(text, name):
    """show stats gossip: frames of 'in'/'out', or an event/refusal count."""
    if name in ("in", "out"):
        m = re.search(rf"^{name}\s+(\d+) frames", text, re.M)
    else:
        m = re.search(rf"^{re.escape(name)}\s+(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else 0


def wait_for(what, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out ({timeout}s) waiting for {what}")


def main():
    end_on_sigterm()
    tmp = tempfile.mkdtemp(prefix="fhcligossip")
    write_keys(tmp, f"# test key\nkey 1 {KEY1}\n")
    nodes = {i: Node(tmp, i) for i in NODES}
    n1, n2 = nodes[1], nodes[2]
    checks = []
    expected = 21

    def check(ok, text):
        checks.append((ok, text))
        print(("ok   " if ok else "FAIL ") + text, flush=True)

    flow = ["tcp", f"{CLIENT}:40000", f"{VIP}:80"]
    flow_text = f"tcp {CLIENT}:40000 -> {VIP}:80"
    try:
        bridge_topology(NS, NODES)
        for n in nodes.values():
            n.start()

        # 1. Membership.
        def all_alive():
            rc, out, _ = n1.run("show", "peers")
            rows = [peer_row(out, j) for j in (2, 3)]
            return (rc, out) if rc == 0 and all(r and r["state"] == "alive" for r in rows) \
                else None
        try:
            rc, out = wait_for("node 1 sees nodes 2 and 3 alive", all_alive, 15)
            rows = [peer_row(out, j) for j in (2, 3)]
            check(all(r["address"] == f"192.0.2.{j}" and r["draining"] == "no" and
                      r["incarnation"].isdigit() and int(r["incarnation"]) > 0
                      for j, r in zip((2, 3), rows)),
                  f"show peers on node 1: nodes 2 and 3 alive, not draining, with an "
                  f"incarnation ({[(r['state'], r['incarnation']) for r in rows]})")
        except AssertionError as e:
            check(False, f"{e}: {n1.run('show', 'peers')}")

        # 2. Gossip counters grow.
        rc, a, err = n1.run("show", "stats", "gossip")
        time.sleep(1.0)
        rc2, b, _ = n1.run("show", "stats", "gossip")
        check(rc == 0 and rc2 == 0 and gossip_stat(b, "in") > gossip_stat(a, "in") > 0 and
              gossip_stat(b, "out") > gossip_stat(a, "out") > 0 and
              gossip_stat(b, "datagrams_out") > gossip_stat(a, "datagrams_out") > 0 and
              gossip_stat(b, "datagrams_in") > gossip_stat(a, "datagrams_in") > 0 and
              0 < gossip_stat(b, "receive_bursts") <= gossip_stat(b, "datagrams_in"),
              f"show stats gossip on node 1: frames in {gossip_stat(a, 'in')} -> "
              f"{gossip_stat(b, 'in')}, out {gossip_stat(a, 'out')} -> {gossip_stat(b, 'out')}, "
              f"datagrams out {gossip_stat(a, 'datagrams_out')} -> "
              f"{gossip_stat(b, 'datagrams_out')}, in {gossip_stat(a, 'datagrams_in')} -> "
              f"{gossip_stat(b, 'datagrams_in')} in {gossip_stat(b, 'receive_bursts')} bursts"
              f"{' ' + err.strip() if rc else ''}")
        # The report (SIGUSR1) names the same events, with dashes.
        events = [m.group(1) for m in re.finditer(r"^([a-z_]+)\s+\d+\s*$", b, re.M)]
        gossip_part = n1.report().split("\ngossip\n", 1)[-1]
        missing = [e for e in events
                   if not re.search(rf"^  {e.replace('_', '-')}\s+\d+$", gossip_part, re.M)]
        check(len(events) >= 30 and "datagrams_out" in events and not missing,
              f"the report's gossip section lists the {len(events)} events of show stats "
              f"gossip (missing: {missing})")

        # The repair timing: no frame lost on the bridge, so none timed (no
        # round-trip sample); the first retry waits half a heartbeat of
        # 100 ms, in both views.
        rc, metrics, _ = n1.run("show", "metrics")
        rtt = re.search(r"^flowhome_gossip_repair_round_trip_seconds\{\} (\S+)$", metrics,
                        re.M)
        retry = re.search(r"^flowhome_gossip_repair_retry_seconds\{\} (\S+)$", metrics,
                          re.M)
        line = re.search(r"^repair: .*$", b, re.M)
        check(rc == 0 and rtt is None and retry is not None and line is not None and
              retry.group(1) == "0.05" and
              line.group(0) == "repair: no round trip timed yet, first retry after 50.0 ms",
              f"repair timing: metrics round trip {rtt and rtt.group(1)} s, retry "
              f"{retry and retry.group(1)} s; show stats gossip {line and line.group(0)!r}")

        # 3. An operator claim is gossiped.
        rc, out, err = n1.run("flow", "claim", *flow)
        check(rc == 0 and f"flow {flow_text} claimed by node 1 at version" in out and
              "(pinned)" in out and "announced to the cluster" in out,
              f"flow claim on node 1: rc {rc}, {(out + err).strip()!r}")

        def owner1_on_2():
            rc, out, _ = n2.run("show", "flow", *flow)
            return out if rc == 0 and re.search(r"^\s+owner\s+node 1 \(peer, alive\)$", out,
                                                re.M) else None
        try:
            out = wait_for("node 2 learns the claim", owner1_on_2, 5)
            # The pin stays on the claiming node (docs/console.md).
            good = re.search(r"^\s+flags\s+-$", out, re.M) is not None and \
                "packets go     node 1: geneve to 192.0.2.1 (domain dc)" in out
            check(good, "show flow on node 2 names owner node 1 (peer, alive), not pinned, "
                        "packets go to node 1" + ("" if good else f":\n{out}"))
        except AssertionError as e:
            check(False, f"{e}: {n2.run('show', 'flow', *flow)}")
        rc, out, _ = n1.run("show", "flow", *flow)
        check(rc == 0 and re.search(r"^\s+owner\s+node 1 \(this node\)$", out, re.M) and
              re.search(r"^\s+flags\s+pinned$", out, re.M) and
              "delivered locally on port host" in out,
              f"show flow on node 1: owned by this node, pinned, delivered locally (rc {rc})"
              + ("" if rc == 0 and "pinned" in out else f":\n{out}"))
        rc, out, err = n2.run("flow", "release", *flow)
        check(rc == 1 and "is owned by node 1, not this node; release it there" in err,
              f"flow release on node 2 (not the owner) refused, rc {rc}: {err.strip()!r}")

        # 4. Release: node 2 holds the gossiped tombstone.
        rc, out, err = n1.run("flow", "release", *flow)
        check(rc == 0 and f"flow {flow_text} released by node 1, announced to the cluster"
              in out, f"flow release on node 1: rc {rc}, {(out + err).strip()!r}")

        def released_on_2():
            rc, out, _ = n2.run("show", "flow", *flow)
            return out if rc == 0 and re.search(r"^\s+flags\s+released$", out, re.M) else None
        try:
            out = wait_for("node 2 learns the release", released_on_2, 5)
            check("released: treated as unknown" in out,
                  "show flow on node 2 after the release: flags released, packets treated as "
                  "unknown")
        except AssertionError as e:
            check(False, f"{e}: {n2.run('show', 'flow', *flow)}")
        rc, out, err = n1.run("flow", "release", *flow)
        check(rc == 1 and "is released already (node 1, version" in err,
              f"a second flow release on node 1 fails, rc {rc}: {err.strip()!r}")

        # 5. Draining.
        rc, out, err = n2.run("set", "drain", "on")
        check(rc == 0 and out.startswith("draining:"), f"set drain on, node 2: rc {rc} {out!r}")

        def draining_seen(flag):
            def f():
                rc, out, _ = n1.run("show", "peers")
                r = peer_row(out, 2)
                return rc == 0 and r is not None and r["draining"] == flag and \
                    r["state"] == "alive"
            return f
        try:
            wait_for("node 1 sees node 2 draining", draining_seen("yes"), 5)
            rc, out, _ = n2.run("show", "node")
            check(re.search(r"^\s+state\s+draining$", out, re.M) is not None,
                  "node 1's show peers shows node 2 draining (alive); node 2's show node says "
                  "draining")
        except AssertionError as e:
            check(False, f"{e}: {n1.run('show', 'peers')}")
        rc, out, _ = n2.run("set", "drain", "off")
        try:
            wait_for("node 1 sees node 2 no longer draining", draining_seen("no"), 5)
            check(rc == 0, f"set drain off on node 2 clears it on node 1 (rc {rc})")
        except AssertionError as e:
            check(False, f"{e}: {n1.run('show', 'peers')}")

        # 6. Key reload on every node: key 1 and key 2, send 2. First from a
        # file that others may read, on node 1 alone: reloaded, with a warning.
        write_keys(tmp, f"# unchanged\nkey 1 {KEY1}\n", mode=0o640)
        rc, out, err = n1.run("gossip", "key", "reload")
        check(rc == 0 and "open to its group or others (mode 640)" in out,
              f"a key file others may read is reloaded with a warning: rc {rc} {out + err!r}")
        write_keys(tmp, f"# rotated\nkey 1 {KEY1}\nkey 2 {KEY2}\nsend 2\n")
        results = [nodes[i].run("gossip", "key", "reload") for i in NODES]
        check(all(rc == 0 and "sending with key id 2" in out and "warning" not in out
                  for rc, out, _ in results),
              "gossip key reload on every node: " +
              "; ".join(f"rc {rc} {(out + err).strip()!r}" for rc, out, err in results))
        time.sleep(0.5)  # frames already in flight with key 1 are still accepted (key 1 kept)
        before = {i: nodes[i].run("show", "stats", "gossip")[1] for i in NODES}
        time.sleep(1.5)
        after = {i: nodes[i].run("show", "stats", "gossip")[1] for i in NODES}
        grew = {i: gossip_stat(after[i], "in") - gossip_stat(before[i], "in") for i in NODES}
        refused = {i: {k: gossip_stat(after[i], f"refused {k}") -
                       gossip_stat(before[i], f"refused {k}")
                       for k in ("bad_tag", "unknown_key", "replayed")} for i in NODES}
        bad_tag = {i: gossip_stat(after[i], "refused bad_tag") for i in NODES}
        check(all(g > 5 for g in grew.values()) and
              all(sum(r.values()) == 0 for r in refused.values()) and
              not any(bad_tag.values()),
              f"after the reload the nodes still exchange frames (frames in over 1.5 s {grew}, "
              f"refusals {refused}, bad_tag since start {bad_tag})")
        try:
            wait_for("node 1 sees nodes 2 and 3 alive after the reload", all_alive, 5)
            check(True, "node 1 still sees nodes 2 and 3 alive after the key reload")
        except AssertionError as e:
            check(False, f"{e}: {n1.run('show', 'peers')}")

        # 7. Errors.
        rc, out, err = n1.run("flow", "claim", "tcp", "198.51.100.300:40000", f"{VIP}:80")
        check(rc == 1 and out == "" and
              "malformed client address '198.51.100.300:40000': '198.51.100.300' is not an "
              "IPv4 or IPv6 address" in err,
              f"flow claim of a malformed address: rc {rc}, {err.strip()!r}")
        rc, out, err = n2.run("show", "flow", "tcp", f"{CLIENT}:1", f"{VIP}:80")
        check(rc == 1 and out == "" and
              f"unknown flow tcp {CLIENT}:1 -> {VIP}:80: not in the ownership table" in err,
              f"show flow of an unknown flow: rc {rc}, {err.strip()!r}")
        alive = [n.i for n in nodes.values() if n.proc.poll() is None]
        check(alive == list(NODES), f"every node still runs after the commands ({alive})")
    except Exception as e:  # noqa: BLE001 -- any failure fails the test
        check(False, f"{type(e).__name__}: {e}")
    finally:
        show_logs(checks, [n.log for n in nodes.values()])
        remove_fleet(NS, nodes.values(), tmp)
    return tally(checks, expected)


if __name__ == "__main__":
    sys.exit(main())
