#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The cluster demo: three flowhome nodes behind a Linux ECMP router, real TCP
from a client, and the events that break connections without flowhome.

Timeline (one client run: 200 long-lived echo connections whose every byte
is checked, plus 10 new connections a second):
  1. node 3 leaves the router's next-hop set (the router rehashes);
  2. node 3 comes back;
  3. node 1 is killed (SIGKILL) and leaves the set: the router rehashes the
     survivors' connections too, between nodes 2 and 3, and each of node 1's
     flows fails over to one of them, which both compute alike;
  4. node 2 drains, and leaves the set 3 s later: it keeps its connections
     and takes no new one, sending those the router still brings it on.
Then a report -- per event, connections open / survived / broken and new
connections; per node, claims, packets served, redirected and received --
and the checks of what the cluster promises, made with the cluster test
suite's code (cluster_scenarios.py): the ECMP changes and the drain break
no connection; the kill breaks exactly node 1's connections, each with a
RST, and none of the survivors' that the router moved; both survivors fail
node 1's flows over and each claims its share; the drained node
takes no new one (while still in the set, it sends them to node 3), but
for a client reusing the 5-tuple of a connection the kill reset; new
connections succeed; gossip converges (every live node sees the others
alive and node 1 dead). The
echo server names its node on each connection, so whose connections broke
is seen, not inferred. Everything is torn down at the end; the exit status
is 1 if any check failed.

Usage: cluster_demo.py FLOWHOME
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_scenarios as sc  # noqa: E402
from flowhome_cluster import Cluster  # noqa: E402
from netns_tools import end_on_sigterm  # noqa: E402

LONG_LIVED = 200
MIN_OPEN = LONG_LIVED // 2  # an event must find at least these open to prove anything


def timeline(c, check):
    run = sc.Run(c, long_lived=LONG_LIVED, duration=30.0, rate=10.0)
    print(f"== client: {LONG_LIVED} long-lived connections + 10 new connections/s to "
          "203.0.113.10:80")
    run.start()
    time.sleep(2)
    print("== event: node 3 leaves the ECMP set")
    run.event("node 3 removed from the ECMP set", lambda: c.remove_from_route(3))
    time.sleep(5)
    print("== event: node 3 comes back")
    run.event("node 3 added back", lambda: c.add_to_route(3))
    time.sleep(5)
    print("== event: node 1 is killed (SIGKILL) and leaves the ECMP set")
    before_kill = sc.node_counters(c)
    run.event("node 1 killed", lambda: (c.kill(1), c.remove_from_route(1)))
    # Node 1's connections are reset when a retransmission reaches the
    # failover owner, 1 s (dead_after_ms) and up to two TCP backoffs after
    # the kill, 3 s at most: a reset after the drain began would count
    # against the drain.
    time.sleep(7)
    print("== event: node 2 drains, then leaves the ECMP set 3 s later")
    drained = sc.DrainWindow()
    run.event("node 2 drained, out of the ECMP set",
              lambda: sc.drain_and_withdraw(c, 2, drained))
    print("== waiting for the client to finish")
    run.finish()
    after = sc.node_counters(c)
    rows, total = run.summary()
    sc.print_report("report", rows, total, after)

    print("\n== checks")
    for k in (0, 1):  # node 3 out of the set and back
        sc.check_survived(run, k, check, MIN_OPEN)
        sc.check_new_after(run, k, check)
    sc.check_death(run, 2, 1, before_kill, check, MIN_OPEN)
    sc.check_failover(c, before_kill, after, 1, check)
    sc.check_drain(run, 3, 2, drained, after, check, MIN_OPEN)
    lost = run.broken_by(2)
    check(total["long_ok"] == total["long_lived"] - len(lost),
          f"every other long-lived connection completed with every byte echoed intact "
          f"({total['long_ok']} of {total['long_lived'] - len(lost)})")
    # New connections opened around the kill may have been node 1's, or
    # sent to it while it was dead and still in the set; any other must
    # succeed.
    death = run.events[2]
    short = [x for x in run.conns if x["kind"] == "short"]
    near = [x for x in short if death.t0 - 1.0 <= x["start"] < death.t1 + 1.0]
    rest = [x for x in short if not death.t0 - 1.0 <= x["start"] < death.t1 + 1.0]
    check(rest and all(x["ok"] for x in rest),
          f"{sum(x['ok'] for x in rest)} of {len(rest)} new connections opened more than 1 s "
          "from the kill succeeded")
    print(f"     (within 1 s of the kill: {sum(x['ok'] for x in near)} of {len(near)} "
          "succeeded)")
    redirected = sum(x["redirects"] for x in after.values())
    check(redirected > 0, f"{redirected} packets were redirected to their owners")
    sc.check_gossip(after, {1}, check)


def main():
    end_on_sigterm()
    flowhome = sys.argv[1]
    started = time.time()
    check = sc.Checks()
    print("== building a 3-node cluster: client -- router (ECMP) -- nodes 1..3")
    try:
        with Cluster(flowhome, nodes=3) as c:
            print(f"   namespaces {c.tag}*, work directory {c.dir}")
            sc.wait_gossip(c)
            try:
                timeline(c, check)
            except Exception:
                for i in range(1, c.n + 1):  # down() removes the logs
                    print(c.log_tail(f"node{i}.log"))
                raise
            finally:
                sc.end_clients()  # before the namespaces go: it would outlive them
            print(f"\n== done in {time.time() - started:.0f} s; tearing down")
    except Exception as e:  # noqa: BLE001 -- any failure fails the demo
        check(False, f"{type(e).__name__}: {e}")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
