#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Cluster tier: real TCP through a Linux ECMP router to three flowhome nodes.

  test_cluster.py FLOWHOME SCENARIO

SCENARIO is one of:
  ecmp           a node leaves and rejoins the plain multipath set: every
                 established connection survives, byte-identical, and the
                 redirect counters show the redirects
  ecmp-resilient the same with a resilient nexthop group
  ecmp-ipv6      the same toward the IPv6 VIP
  no-ownership   the same with ownership switched off: connections break
                 (the proof that the test can fail)
  drain          a node drains and leaves the set: its connections finish
                 through redirects, new ones go elsewhere, it stops with none
                 broken
  death-restart  a node is killed: its connections fail fast with a RST,
                 others are unaffected, new connections succeed within 1 s;
                 then it restarts, resyncs and takes new connections

The cluster (namespaces, processes, DPDK folders) is removed at the end,
also on failure.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from flowhome_cluster import VIP6, Cluster  # noqa: E402
from netns_tools import end_on_sigterm  # noqa: E402
import cluster_scenarios as sc  # noqa: E402

LONG_LIVED = 200


class Checks:
    def __init__(self):
        self.results = []

    def __call__(self, ok, text):
        self.results.append((bool(ok), text))
        print(("ok   " if ok else "FAIL ") + text, flush=True)

    def summary(self):
        failed = sum(1 for ok, _ in self.results if not ok)
        print(f"{len(self.results) - failed} passed, {failed} failed")
        return 1 if failed or not self.results else 0


def check_ecmp(run, counters, check, expect_survival=True):
    rows, total = run.summary()
    sc.print_report("ECMP change", rows, total, counters)
    for k, r in enumerate(rows):
        # Without ownership the first event already broke connections:
        # only the first has to find the full load open.
        if expect_survival or k == 0:
            check(r["open"] >= LONG_LIVED // 2, f"{r['event']}: {r['open']} connections open")
        if expect_survival:
            check(r["broken"] == 0, f"{r['event']}: {r['survived']} of {r['open']} survived")
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


def main():
    end_on_sigterm()
    flowhome, scenario = sys.argv[1], sys.argv[2]
    check = Checks()
    resilient = scenario == "ecmp-resilient"
    ownership = scenario != "no-ownership"
    cluster = Cluster(flowhome, nodes=3, resilient=resilient, ownership=ownership)
    try:
        cluster.up()
        time.sleep(1.0)
        if scenario in ("ecmp", "ecmp-resilient", "no-ownership", "ecmp-ipv6"):
            run = sc.ecmp_change(cluster, vip=VIP6 if scenario == "ecmp-ipv6" else
                                 sc.VIP4, long_lived=LONG_LIVED)
            check_ecmp(run, sc.node_counters(cluster), check, expect_survival=ownership)
        elif scenario == "drain":
            run = sc.drain(cluster, long_lived=LONG_LIVED)
            before = run.before
            after = sc.node_counters(cluster)
            rows, total = run.summary()
            sc.print_report("drain", rows, total, after)
            r = rows[0]
            check(r["open"] >= LONG_LIVED // 2, f"{r['open']} connections open at the drain")
            check(r["broken"] == 0, f"drain: {r['survived']} of {r['open']} survived")
            check(total["long_ok"] == total["long_lived"],
                  f"{total['long_ok']} of {total['long_lived']} long-lived connections "
                  "completed intact")
            new_claims = after[2]["claims"] - before[2]["claims"]
            check(new_claims == 0, f"the draining node claimed {new_claims} new connections")
            check(r["new"] > 0 and r["new_ok"] == r["new"],
                  f"{r['new_ok']} of {r['new']} new connections after the drain succeeded "
                  "on the other nodes")
            # Draining breaks nothing (docs/operations.md): no new connection either.
            check(total["new_ok"] == total["new"],
                  f"{total['new_ok']} of {total['new']} new connections succeeded")
            served = after[2]["decapsulated"] - before[2]["decapsulated"]
            check(served > 0, f"the draining node kept serving its connections: {served} "
                              "packets redirected to it")
            status = cluster.kill(2, sig=15)
            with open(os.path.join(cluster.dir, "node2.log")) as f:
                stopped = "flowhome: stopped by signal 15\n" in f.read()
            check(status == 0 and stopped,
                  f"the drained node stopped cleanly on SIGTERM (exit status {status}, "
                  f"{'a' if stopped else 'no'} stop report)")
        elif scenario == "death-restart":
            run = sc.node_death(cluster, long_lived=LONG_LIVED)
            before = run.before
            after = sc.node_counters(cluster)
            rows, total = run.summary()
            sc.print_report("node death", rows, total, after)
            r = rows[0]
            death = run.events[0].t0
            owned_by_3 = before[3]["claims"]
            broken = run.broken_by(0)
            check(r["open"] >= LONG_LIVED // 2, f"{r['open']} connections open at the death")
            check(0 < len(broken) <= owned_by_3,
                  f"{len(broken)} connections broke, at most the {owned_by_3} node 3 had "
                  "claimed: connections of the other nodes were unaffected")
            resets = [c for c in broken if c["error"] == "ConnectionResetError"]
            slowest = max((c["end"] - death for c in broken), default=0)
            check(len(resets) == len(broken),
                  f"the lost connections failed fast with a RST ({len(resets)} of "
                  f"{len(broken)}; the last {slowest:.1f} s after the death)")
            late = run.new_after(run.events[0].t1 + 1.0)
            check(late and all(c["ok"] for c in late),
                  f"{sum(c['ok'] for c in late)} of {len(late)} new connections opened from "
                  "1 s after the death succeeded")
            run2 = sc.node_restart(cluster, long_lived=LONG_LIVED // 2)
            after2 = sc.node_counters(cluster)
            rows2, total2 = run2.summary()
            sc.print_report("node restart", rows2, total2, after2)
            rep = cluster.ctl(3, "report")
            check(sc.counter(rep, "syncs-completed") >= 1,
                  "the restarted node resynced the ownership table")
            check(rows2[0]["broken"] == 0,
                  f"restart: {rows2[0]['survived']} of {rows2[0]['open']} connections survived")
            check(after2[3]["claims"] > 0,
                  f"the restarted node took {after2[3]['claims']} new connections")
            check(total2["new_ok"] == total2["new"],
                  f"{total2['new_ok']} of {total2['new']} new connections succeeded")
        else:
            check(False, f"unknown scenario {scenario}")
    except Exception as e:  # noqa: BLE001 -- any failure fails the test
        check(False, f"{type(e).__name__}: {e}")
        for i in range(1, cluster.n + 1):
            log = os.path.join(cluster.dir, f"node{i}.log")
            if os.path.exists(log):
                print(f"--- node {i} log (tail)")
                print("".join(open(log).readlines()[-30:]))
    finally:
        sc.end_clients()
        cluster.down()
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
