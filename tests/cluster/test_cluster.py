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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from flowhome_cluster import VIP6, Cluster  # noqa: E402
from netns_tools import end_on_sigterm  # noqa: E402
import cluster_scenarios as sc  # noqa: E402

LONG_LIVED = 200


def main():
    end_on_sigterm()
    flowhome, scenario = sys.argv[1], sys.argv[2]
    check = sc.Checks()
    resilient = scenario == "ecmp-resilient"
    ownership = scenario != "no-ownership"
    cluster = Cluster(flowhome, nodes=3, resilient=resilient, ownership=ownership)
    try:
        cluster.up()
        sc.wait_gossip(cluster)
        if scenario in ("ecmp", "ecmp-resilient", "no-ownership", "ecmp-ipv6"):
            run = sc.ecmp_change(cluster, vip=VIP6 if scenario == "ecmp-ipv6" else
                                 sc.VIP4, long_lived=LONG_LIVED)
            counters = sc.node_counters(cluster)
            rows, total = run.summary()
            sc.print_report("ECMP change", rows, total, counters)
            sc.check_ecmp(run, counters, check, LONG_LIVED // 2, expect_survival=ownership)
        elif scenario == "drain":
            run = sc.drain(cluster, long_lived=LONG_LIVED)
            after = sc.node_counters(cluster)
            rows, total = run.summary()
            sc.print_report("drain", rows, total, after)
            sc.check_drain(run, 0, 2, run.drained, after, check, LONG_LIVED // 2)
            check(total["long_ok"] == total["long_lived"],
                  f"{total['long_ok']} of {total['long_lived']} long-lived connections "
                  "completed intact")
            # Draining breaks nothing (docs/operations.md): no new connection either.
            check(total["new_ok"] == total["new"],
                  f"{total['new_ok']} of {total['new']} new connections succeeded")
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
            sc.check_death(run, 0, 3, before, check, LONG_LIVED // 2)
            sc.check_failover(cluster, before, after, 3, check)
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
