#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The cluster demo: three flowhome nodes behind a Linux ECMP router, real TCP
from a client, and the events that break connections without flowhome.

Timeline (one client run: 200 long-lived echo connections whose every byte
is checked, plus 10 new connections a second):
  1. node 3 leaves the router's next-hop set (the router rehashes);
  2. node 3 comes back;
  3. node 2 drains and leaves the set: it keeps its connections, takes none;
  4. node 1 is killed (SIGKILL) and leaves the set.
Then a report: per event, connections open / survived / broken and new
connections; per node, claims, packets served, redirected and received;
gossip convergence. Everything is torn down at the end.

Usage: cluster_demo.py FLOWHOME
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_scenarios as sc  # noqa: E402
from flowhome_cluster import Cluster  # noqa: E402
from netns_tools import end_on_sigterm  # noqa: E402


def main():
    end_on_sigterm()
    flowhome = sys.argv[1]
    started = time.time()
    print("== building a 3-node cluster: client -- router (ECMP) -- nodes 1..3")
    with Cluster(flowhome, nodes=3) as c:
        print(f"   namespaces {c.tag}*, work directory {c.dir}")
        time.sleep(1.0)
        run = sc.Run(c, long_lived=200, duration=30.0, rate=10.0)
        print("== client: 200 long-lived connections + 10 new connections/s to "
              "203.0.113.10:80")
        run.start()
        time.sleep(2)
        print("== event: node 3 leaves the ECMP set")
        run.event("node 3 removed from the ECMP set", lambda: c.remove_from_route(3))
        time.sleep(5)
        print("== event: node 3 comes back")
        run.event("node 3 added back", lambda: c.add_to_route(3))
        time.sleep(5)
        print("== event: node 2 drains and leaves the ECMP set")
        run.event("node 2 drained, out of the ECMP set",
                  lambda: (c.drain(2), c.remove_from_route(2)))
        time.sleep(5)
        print("== event: node 1 is killed (SIGKILL) and leaves the ECMP set")
        before = sc.node_counters(c)
        run.event("node 1 killed", lambda: (c.kill(1), c.remove_from_route(1)))
        print("== waiting for the client to finish")
        run.finish()
        after = sc.node_counters(c)
        rows, total = run.summary()
        sc.print_report("report", rows, total, after)

        # What the kill cost: only node 1's own connections, each ended by a RST.
        broken = run.broken_by(len(run.events) - 1)
        resets = sum(1 for x in broken if x["error"] == "ConnectionResetError")
        print(f"\n  node 1 had claimed {before[1]['claims']} connections when it died; "
              f"{len(broken)} open ones broke, {resets} of them with a RST from the new "
              "owner (no client left hanging)")
        # Gossip convergence: every live node applied the others' claims.
        live = sorted(after)
        for i in live:
            print(f"  gossip: node {i} applied {after[i]['claims-applied']} claims from its "
                  f"peers, sent {after[i]['frames-out']} frames")
        print(f"\n== done in {time.time() - started:.0f} s; tearing down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
