#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Scenarios on a flowhome cluster: real TCP through a Linux ECMP router
while the router's next-hop set changes, a node drains, a node dies.

Each scenario starts a client in the client namespace (long-lived echo
connections whose every byte is checked, plus a stream of new connections),
applies its events at fixed times, waits for the client, and returns a
report: per event, the connections open as it began and how many of them
survived or broke; new connections in the 5 s from its start; the nodes'
counters. The echo server names its node on each connection, so the
client knows which node served (owned) it. The checks below are what the
cluster test suite and scripts/demo assert.
"""
import collections
import json
import os
import re
import subprocess
import time

from flowhome_cluster import VIP4

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


def peer_states(report):
    """Each peer's state as the reporting node sees it (gossip: peers)."""
    return {int(n): s for n, s in re.findall(r"^    node (\d+)\s+(\S+)\s*$", report, re.M)}


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
                         "broken_on": sorted({c.get("node") or 0 for c in broken}),
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
                  # The gossip engine's: records rewritten to their failover
                  # owner, and those of them this node claimed.
                  "failovers": counter(rep, "failovers"),
                  "reclaimed": counter(rep, "reclaimed"),
                  "drain-redirects": counter(rep, "drain_redirects") or
                  counter(rep, "drain-redirects"),
                  "claims-applied": counter(rep, "claims-applied"),
                  "frames-out": counter(rep, "frames-out"),
                  "drops": counter(rep, "total"),
                  "by_owner": redirects_by_owner(rep),
                  "peers": peer_states(rep)}
    return out


def print_report(title, rows, total, counters, out=print):
    out(f"\n{title}")
    out(f"  {'event':<40} {'at':>6} {'took':>5} {'open':>6} {'survived':>9} {'broken':>7}  "
        f"{'new conns (5 s)':>16}")
    for r in rows:
        on = ", ".join(f"node {n}" if n else "node unknown" for n in r["broken_on"])
        errors = f"  ({', '.join(r['errors'])}; served by {on})" if r["errors"] else ""
        out(f"  {r['event']:<40} {r['t']:>5}s {r['took']:>4}s {r['open']:>6} "
            f"{r['survived']:>9} {r['broken']:>7}  {r['new_ok']:>7} of {r['new']:<6}{errors}")
    out(f"  long-lived connections: {total['long_ok']} of {total['long_lived']} completed "
        f"with every byte echoed intact ({total['bytes_checked'] // 1024} KiB checked); "
        f"new connections: {total['new_ok']} of {total['new']} succeeded")
    for start, error in total.get("new_failed", [])[:10]:
        out(f"  failed new connection: started at {start}s, {error}")
    out(f"  {'node':<6} {'claims':>7} {'local':>8} {'redirected':>11} {'received':>9} "
        f"{'failed over':>12} {'gossip frames':>14}  redirected to")
    for i, c in counters.items():
        owners = ", ".join(f"node {o}: {n}" for o, n in sorted(c["by_owner"].items()) if n)
        out(f"  {i:<6} {c['claims']:>7} {c['local-hits']:>8} {c['redirects']:>11} "
            f"{c['decapsulated']:>9} {c['failovers']:>12} {c['frames-out']:>14}  "
            f"{owners or '-'}")


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


class DrainWindow:
    """What drain_and_withdraw() saw: the nodes' counters as the drain took
    effect (before) and as the node left the ECMP set (withdrawn), and the
    time between (t0, t1), in which the router still sent it new
    connections for the drain to send on."""

    def __init__(self):
        self.before = self.withdrawn = None
        self.t0 = self.t1 = 0.0


def drain_and_withdraw(cluster, node, window, hold=3.0):
    """Drains @p node, keeps it in the ECMP set for @p hold seconds, then
    takes it out; fills @p window."""
    cluster.drain(node)
    # Counted from the moment the drain took effect: a SYN that was
    # already claimed before it is the node's own connection.
    time.sleep(0.2)
    window.before = node_counters(cluster)
    window.t0 = time.time()
    time.sleep(hold)
    window.withdrawn = node_counters(cluster)
    window.t1 = time.time()
    cluster.remove_from_route(node)


def drain(cluster, long_lived=200, duration=20.0):
    """Node 2 drains: it leaves the ECMP set, keeps its connections, then stops."""
    run = Run(cluster, long_lived=long_lived, duration=duration)
    run.start()
    time.sleep(3)

    run.drained = DrainWindow()
    run.event("node 2 drained, out of the ECMP set",
              lambda: drain_and_withdraw(cluster, 2, run.drained))
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


# ---- checks ----

class Checks:
    """Collects checks: each is printed as it is made, "ok" or "FAIL"."""

    def __init__(self):
        self.results = []

    def __call__(self, ok, text):
        self.results.append((bool(ok), text))
        print(("ok   " if ok else "FAIL ") + text, flush=True)
        return bool(ok)

    def failed(self):
        return sum(1 for ok, _ in self.results if not ok)

    def summary(self):
        """Prints the tally; 1 if any check failed or none was made, else 0."""
        failed = self.failed()
        print(f"{len(self.results) - failed} passed, {failed} failed", flush=True)
        return 1 if failed or not self.results else 0


def row_of(run, k):
    return run.summary()[0][k]


def check_survived(run, k, check, min_open):
    """Event @p k broke none of the connections open as it began, and there
    were enough of them for that to mean something."""
    r = row_of(run, k)
    check(r["open"] >= min_open, f"{r['event']}: {r['open']} connections open")
    check(r["broken"] == 0, f"{r['event']}: {r['survived']} of {r['open']} survived "
                            f"(the event took {r['took']} s)")


def check_new_after(run, k, check):
    """Every new connection in the 5 s from event @p k's start succeeded."""
    r = row_of(run, k)
    check(r["new"] > 0 and r["new_ok"] == r["new"],
          f"{r['event']}: {r['new_ok']} of {r['new']} new connections opened in the 5 s "
          "from its start succeeded")


def check_ecmp(run, counters, check, min_open, expect_survival=True):
    """ECMP changes: with ownership every connection survives every change,
    byte-identical, and packets were redirected; without, connections break."""
    rows, total = run.summary()
    for k, r in enumerate(rows):
        if expect_survival:
            check_survived(run, k, check, min_open)
        elif k == 0:
            # Without ownership the first event already broke connections:
            # only the first has to find the full load open.
            check(r["open"] >= min_open, f"{r['event']}: {r['open']} connections open")
    if expect_survival:
        check(total["long_ok"] == total["long_lived"],
              f"{total['long_ok']} of {total['long_lived']} long-lived connections completed, "
              f"every byte echoed intact")
        check(total["new_ok"] == total["new"],
              f"{total['new_ok']} of {total['new']} new connections succeeded")
        redirected = sum(c["redirects"] for c in counters.values())
        check(redirected > 0, f"{redirected} packets were redirected to their owners")
    else:
        broken = total["long_lived"] - total["long_ok"]
        check(broken > 0, f"without ownership, {broken} of {total['long_lived']} connections "
                          "broke when the ECMP set changed")


def check_drain(run, k, node, window, after, check, min_open):
    """Event @p k drained @p node (@p window: drain_and_withdraw()'s): none
    of the open connections broke, the node's own among them; while the
    router still sent it new connections, it sent them to the others, and
    every one succeeded there; it claimed none, from the drain on; the new
    connections after it left went to the others; the others redirected its
    connections' packets to it."""
    ev = run.events[k]
    before = window.before
    check_survived(run, k, check, min_open)
    own = [c for c in run.at(ev.t0) if c.get("node") == node]
    check(own and all(c["ok"] for c in own),
          f"{ev.name}: {sum(c['ok'] for c in own)} of the {len(own)} connections node {node} "
          "served completed intact")
    sent_on = window.withdrawn[node]["drain-redirects"] - before[node]["drain-redirects"]
    held = run.new_after(window.t0, within=window.t1 - window.t0)
    on_node = [c for c in held if c.get("node") == node]
    # A client that reuses the 5-tuple of a connection that was reset (no
    # TIME_WAIT: one a kill broke, whose record failed over to this node)
    # opens it on the record's owner, as a retransmitted SYN must be:
    # draining or not.
    reused = [c for c in on_node + run.new_after(ev.t1) if c.get("node") == node and
              any(x is not c and x.get("port") == c.get("port") and
                  x["error"] == "ConnectionResetError" and x["end"] <= c["start"]
                  for x in run.conns)]
    if reused:
        print(f"     ({len(reused)} new connections reused the 5-tuple of a connection that "
              f"was reset, whose record may name node {node}: served by it, not counted below)")
    on_node = [c for c in on_node if c not in reused]
    check(sent_on > 0 and held and not on_node and all(c["ok"] for c in held),
          f"in the ECMP set for {window.t1 - window.t0:.1f} s, draining: node {node} sent "
          f"{sent_on} new connections on; {len(on_node)} of the {len(held)} opened then were "
          f"served by it, {sum(c['ok'] for c in held)} succeeded")
    claims = after[node]["claims"] - before[node]["claims"]
    check(claims == 0, f"the draining node {node} claimed {claims} new connections")
    check_new_after(run, k, check)
    later = run.new_after(ev.t1)
    on_node = [c for c in later if c.get("node") == node and c not in reused]
    check(later and not on_node,
          f"{len(on_node)} of the {len(later)} new connections opened after the drain were "
          f"served by node {node}")
    served = after[node]["decapsulated"] - before[node]["decapsulated"]
    check(served > 0, f"the draining node kept serving its connections: {served} packets "
                      "redirected to it")


def check_death(run, k, node, before, check, min_open):
    """Event @p k killed @p node and took it out of the ECMP set (@p before:
    the counters just before): exactly the connections it served broke,
    each with a RST, and the new connections from 1 s after succeeded."""
    ev = run.events[k]
    open_ = run.at(ev.t0)
    check(len(open_) >= min_open, f"{ev.name}: {len(open_)} connections open")
    broken = run.broken_by(k)
    own = [c for c in open_ if c.get("node") == node]
    others = [c for c in broken if c.get("node") != node]
    check(own and not others and len(broken) == len(own),
          f"{len(broken)} connections broke: {len(broken) - len(others)} of the {len(own)} "
          f"node {node} served ({before[node]['claims']} claimed), {len(others)} of the "
          f"{len(open_) - len(own)} the other nodes served")
    resets = [c for c in broken if c["error"] == "ConnectionResetError"]
    slowest = max((c["end"] - ev.t0 for c in broken), default=0)
    check(len(resets) == len(broken),
          f"the lost connections failed fast with a RST ({len(resets)} of {len(broken)}; the "
          f"last {slowest:.1f} s after the kill)")
    late = run.new_after(ev.t1 + 1.0)
    check(late and all(c["ok"] for c in late),
          f"{sum(c['ok'] for c in late)} of {len(late)} new connections opened from 1 s after "
          f"node {node} left the ECMP set succeeded")


def flow_table(cluster, i):
    """Node i's ownership table (`show flows`): (proto, client, vip) ->
    (owner, version, released)."""
    out = cluster.console(i, "show", "flows", "limit", "10000")
    if "reached; more exist" in out:
        raise RuntimeError(f"node {i} holds more than 10000 flows: show flows cannot list them")
    flows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) == 7 and f[3].isdigit() and f[4].isdigit():
            flows[(f[0], f[1], f[2])] = (int(f[3]), int(f[4]), "released" in f[6].split(","))
    return flows


def check_failover(cluster, before, after, dead, check, timeout=5.0):
    """The survivors in @p after failed the @p dead node's flows over
    (@p before: the counters before it died): each rewrote records of them
    to their failover owner and claimed some that fell to it; and their
    tables agree: within @p timeout seconds (a claim may be on its way),
    no live record names the dead node, and every flow all of them hold
    has the same owner and version everywhere."""
    survivors = [i for i in after if i != dead]
    moved = {i: after[i]["failovers"] - before[i]["failovers"] for i in survivors}
    took = {i: after[i]["reclaimed"] - before[i]["reclaimed"] for i in survivors}
    check(survivors and all(moved.values()) and all(took.values()),
          f"node {dead}'s flows failed over: "
          + "; ".join(f"node {i} rewrote {moved[i]} and claimed {took[i]}" for i in survivors)
          + f" ({sum(took.values())} claimed in all)")
    deadline = time.time() + timeout
    while True:
        tables = {i: flow_table(cluster, i) for i in survivors}
        held = set.intersection(*(set(t) for t in tables.values())) if tables else set()
        differ = [k for k in held if len({tables[i][k][:2] for i in survivors}) > 1]
        stale = [(i, k) for i in survivors for k, (owner, _, released) in tables[i].items()
                 if owner == dead and not released]
        if not differ and not stale or time.time() > deadline:
            break
        time.sleep(0.5)
    named = {tables[i][k][0] for i in survivors for k in held} if held else set()
    check(held and not differ and not stale,
          f"nodes {' and '.join(map(str, survivors))} agree on the owner and version of all "
          f"{len(held)} flows they all hold (owners {sorted(named)}), and none of their "
          f"{sum(len(t) for t in tables.values())} records names node {dead} live"
          + (f"; they differ on {len(differ)}, e.g. {differ[0]}: "
             f"{[tables[i][differ[0]] for i in survivors]}" if differ else "")
          + (f"; {len(stale)} still name node {dead}, e.g. {stale[0]}" if stale else ""))


def wait_gossip(cluster, timeout=15.0):
    """Until every node sees every other one alive (their heartbeats, and
    with them the start-up syncs, have gone round), at most @p timeout
    seconds; returns the node counters then."""
    deadline = time.time() + timeout
    while True:
        counters = node_counters(cluster)
        if all(c["peers"] and set(c["peers"].values()) == {"alive"} for c in counters.values()):
            return counters
        if time.time() > deadline:
            raise RuntimeError("gossip did not converge within "
                               f"{timeout:.0f} s: {[c['peers'] for c in counters.values()]}")
        time.sleep(0.2)


def check_gossip(counters, dead, check):
    """Gossip converged: each live node sees every other live node alive and
    the @p dead ones dead, and applied claims its peers sent."""
    for i, c in counters.items():
        want = {j: "dead" if j in dead else "alive" for j in c["peers"]}
        seen = ", ".join(f"node {j} {s}" for j, s in sorted(c["peers"].items()))
        check(c["peers"] and c["peers"] == want, f"gossip: node {i} sees {seen}")
        check(c["claims-applied"] > 0,
              f"gossip: node {i} applied {c['claims-applied']} claims from its peers")
