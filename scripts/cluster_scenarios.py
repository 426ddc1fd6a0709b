#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Scenarios on a flowhome cluster: real TCP through a Linux ECMP router
while the router's next-hop set changes, a node drains, a node dies.

Each scenario starts a client in the client namespace (long-lived echo
connections whose every byte is checked, plus a stream of new connections),
applies its events at fixed times, waits for the client, and returns a
report: per event, the connections open as it began and how many of them
survived or broke; new connections in the 5 s from its start; the nodes'
counters.
Used by scripts/demo and the cluster test suite.
"""
import collections
import json
import os
import re
import subprocess
import time

from flowhome_cluster import VIP4, VIP6

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = []  # every client process started (Run.start), for end_clients()


def end_clients():
    """Ends, by PID, the clients still running: a scenario that failed
    returns no Run to finish them, and the client outlives the namespaces."""
    for p in CLIENTS:
        if p.poll() is None:
            p.kill()
            p.wait()
    CLIENTS.clear()


def counter(report, name):
    m = re.search(rf"^  {re.escape(name)}\s+(\d+)", report, re.M)
    return int(m.group(1)) if m else 0


def redirects_by_owner(report):
    return {int(n): int(v) for n, v in re.findall(r"^  node (\d+)\s+\S+ \(\w+\)\s+(\d+)$",
                                                  report, re.M)}


# An event: the action began at t0 and was done at t1.
Event = collections.namedtuple("Event", "t0 t1 name")


class Run:
    """A client run with events; collects what happened."""

    def __init__(self, cluster, vip=VIP4, long_lived=200, duration=24.0, rate=10.0):
        self.c = cluster
        self.vip = vip
        self.n_long = long_lived
        self.duration = duration
        self.rate = rate
        self.events = []  # Event
        self.result = os.path.join(cluster.dir, f"client-{time.monotonic_ns()}.json")
        self.proc = None
        self.t0 = None

    def start(self):
        self.t0 = time.time()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.c.ns_client, "/usr/bin/python3",
             os.path.join(HERE, "cluster_echo.py"), "client", self.vip, str(self.duration),
             str(self.n_long), self.result, "--rate", str(self.rate)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        CLIENTS.append(self.proc)
        # Let every long-lived connection open (they are staggered by 10 ms).
        time.sleep(self.n_long * 0.01 + 1.5)

    def event(self, name, action):
        """Runs @p action as the event @p name. What it affects is counted
        from its start: a connection it breaks while it runs was open at
        the event, a SYN lost while it runs is one of the event's new
        connections."""
        t0 = time.time()
        action()
        self.events.append(Event(t0, time.time(), name))

    def finish(self):
        out, _ = self.proc.communicate(timeout=self.duration + 60)
        if self.proc.returncode != 0:
            raise RuntimeError(f"client failed: {out[-2000:]}")
        with open(self.result) as f:
            self.conns = json.load(f)
        return self

    # ---- analysis ----

    def long_lived(self):
        return [c for c in self.conns if c["kind"] == "long"]

    def at(self, t):
        """Long-lived connections established before t and still running at t."""
        return [c for c in self.long_lived()
                if c.get("connected") and c["connected"] < t and
                (c["end"] is None or c["end"] > t)]

    def new_after(self, t, within=None):
        s = [c for c in self.conns if c["kind"] == "short" and c["start"] >= t]
        if within is not None:
            s = [c for c in s if c["start"] < t + within]
        return s

    def broken_by(self, k):
        """The connections open as event @p k began that broke before the
        next one began (one that breaks later survived this event)."""
        nxt = self.events[k + 1].t0 if k + 1 < len(self.events) else float("inf")
        return [c for c in self.at(self.events[k].t0) if not c["ok"] and c["end"] < nxt]

    def summary(self):
        rows = []
        for k, ev in enumerate(self.events):
            open_ = self.at(ev.t0)
            broken = self.broken_by(k)
            new = self.new_after(ev.t0, within=5.0)
            rows.append({"event": ev.name, "t": round(ev.t0 - self.t0, 1),
                         "took": round(ev.t1 - ev.t0, 1), "open": len(open_),
                         "survived": len(open_) - len(broken), "broken": len(broken),
                         "errors": sorted({c["error"] for c in broken}),
                         "new": len(new), "new_ok": sum(1 for c in new if c["ok"])})
        lng = self.long_lived()
        total = {"long_lived": len(lng), "long_ok": sum(1 for c in lng if c["ok"]),
                 "bytes_checked": sum(c.get("bytes", 0) for c in lng),
                 "new": sum(1 for c in self.conns if c["kind"] == "short"),
                 "new_ok": sum(1 for c in self.conns if c["kind"] == "short" and c["ok"]),
                 # When and how each failed new connection ended, for the report.
                 "new_failed": [(round(c["start"] - self.t0, 2),
                                 f"{c['error']} {c.get('detail', '')}".strip())
                                for c in self.conns if c["kind"] == "short" and not c["ok"]]}
        return rows, total


def node_counters(cluster):
    out = {}
    for i in sorted(cluster.procs):
        rep = cluster.ctl(i, "report")
        out[i] = {"redirects": counter(rep, "redirects"), "claims": counter(rep, "claims"),
                  "local-hits": counter(rep, "local-hits"),
                  "decapsulated": counter(rep, "decapsulated"),
                  "failover": counter(rep, "failover"),
                  "drain-redirects": counter(rep, "drain_redirects") or
                  counter(rep, "drain-redirects"),
                  "claims-applied": counter(rep, "claims-applied"),
                  "frames-out": counter(rep, "frames-out"),
                  "drops": counter(rep, "total"),
                  "by_owner": redirects_by_owner(rep)}
    return out


def print_report(title, rows, total, counters, out=print):
    out(f"\n{title}")
    out(f"  {'event':<36} {'at':>6} {'took':>5} {'open':>6} {'survived':>9} {'broken':>7}  "
        f"{'new conns (5 s)':>16}")
    for r in rows:
        errors = f"  ({', '.join(r['errors'])})" if r["errors"] else ""
        out(f"  {r['event']:<36} {r['t']:>5}s {r['took']:>4}s {r['open']:>6} "
            f"{r['survived']:>9} {r['broken']:>7}  {r['new_ok']:>7} of {r['new']:<6}{errors}")
    out(f"  long-lived connections: {total['long_ok']} of {total['long_lived']} completed "
        f"with every byte echoed intact ({total['bytes_checked'] // 1024} KiB checked); "
        f"new connections: {total['new_ok']} of {total['new']} succeeded")
    for start, error in total.get("new_failed", [])[:10]:
        out(f"  failed new connection: started at {start}s, {error}")
    out(f"  {'node':<6} {'claims':>7} {'local':>8} {'redirected':>11} {'received':>9} "
        f"{'failover':>9} {'gossip frames':>14}  redirected to")
    for i, c in counters.items():
        owners = ", ".join(f"node {o}: {n}" for o, n in sorted(c["by_owner"].items()) if n)
        out(f"  {i:<6} {c['claims']:>7} {c['local-hits']:>8} {c['redirects']:>11} "
            f"{c['decapsulated']:>9} {c['failover']:>9} {c['frames-out']:>14}  {owners or '-'}")


# ---- scenarios ----

def ecmp_change(cluster, vip=VIP4, long_lived=200, duration=22.0):
    """Node 3 leaves the router's next-hop set, then comes back."""
    run = Run(cluster, vip=vip, long_lived=long_lived, duration=duration)
    run.start()
    time.sleep(3)
    run.event("node 3 removed from the ECMP set", lambda: cluster.remove_from_route(3))
    time.sleep(5)
    run.event("node 3 added back", lambda: cluster.add_to_route(3))
    run.finish()
    return run


def drain(cluster, long_lived=200, duration=20.0):
    """Node 2 drains: it leaves the ECMP set, keeps its connections, then stops."""
    run = Run(cluster, long_lived=long_lived, duration=duration)
    run.start()
    time.sleep(3)

    def start_drain():
        cluster.drain(2)
        # Counted from the moment the drain took effect: a SYN that was
        # already claimed before it is the node's own connection.
        time.sleep(0.2)
        run.before = node_counters(cluster)
        cluster.remove_from_route(2)

    run.event("node 2 drained, out of the ECMP set", start_drain)
    run.finish()
    # Its connections have ended: it can stop.
    now = time.time()
    run.events.append(Event(now, now, "node 2 stopped"))
    return run


def node_death(cluster, long_lived=200, duration=20.0):
    """Node 3 is killed (SIGKILL) and taken out of the ECMP set."""
    run = Run(cluster, long_lived=long_lived, duration=duration)
    run.start()
    time.sleep(3)
    run.before = node_counters(cluster)
    run.event("node 3 killed (SIGKILL)", lambda: (cluster.kill(3), cluster.remove_from_route(3)))
    run.finish()
    return run


def node_restart(cluster, long_lived=100, duration=16.0):
    """Node 3, killed earlier, restarts and rejoins the ECMP set."""
    run = Run(cluster, long_lived=long_lived, duration=duration)
    run.start()
    time.sleep(2)
    run.event("node 3 restarted, back in the ECMP set", lambda: (cluster.restart(3),
                                                                cluster.add_to_route(3)))
    run.finish()
    return run
