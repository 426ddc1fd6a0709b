#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The benchmarks at toy sizes: each mode runs, prints every row it
should, and its figures agree with one another (a ratio with the cycles it
divides, a growth with its two sums, the flow cache's shares with the
cache's rule); what a mode cannot run is refused before any table is
filled. Never how fast: the figures of a noisy machine are not tested
(docs/performance.md).

    smoke_test.py DATAPATH_BENCH CONTROL_BENCH VIP_BENCH MEMORY_BENCH
"""
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

BENCH = {}
PREFIX = f"fh_smoke_{os.getpid()}"
EAL = ["--no-huge", "-m", "1024", "--no-pci", "--no-shconf", "--file-prefix", PREFIX,
       "-l", "0", "--log-level=error", "--"]
MIXES = ["local 0%", "geneve 50%", "ipip 50%", "geneve 100%", "ipip 100%", "decap",
         "claim (miss)", "local+5% new", "local 64 hot"]
PATHS = ["local_hit", "redirect_geneve", "redirect_ipip", "decap", "claim_miss",
         "passthrough", "lookup", "cached_hit"]


def run(name, *args, eal=True, ok=True):
    """The benchmark's stdout; its exit status as @p ok says, else the test fails."""
    cmd = [BENCH[name]] + (EAL if eal else []) + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(f"/var/run/dpdk/{PREFIX}", ignore_errors=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    if not ok and (p.returncode == 0 or "flows:" in p.stdout):
        raise AssertionError(f"{' '.join(cmd)}: accepted, or refused late\n{p.stdout}")
    for word in ("inf", "nan"):
        if re.search(rf"\b{word}\b", p.stdout, re.IGNORECASE):
            raise AssertionError(f"{' '.join(cmd)}: printed {word}\n{p.stdout}")
    return p.stdout if ok else p.stderr


def close(a, b, rel):
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.011)


def family_rows(test, out, pattern, names):
    """The rows @p pattern finds in @p out, (family, name, figures...): for
    IPv4 then IPv6, one named each of @p names in order, or the test fails."""
    rows = re.findall(pattern, out, re.M)
    test.assertEqual([r[:2] for r in rows], [(f, n) for f in ("IPv4", "IPv6") for n in names])
    return [(f, n, *map(float, figures)) for f, n, *figures in rows]


class Datapath(unittest.TestCase):
    ROW = re.compile(r"^(IPv[46])\s+(\d+)\s+(.+?)\s{2,}([\d.]+)\s+([\d.]+)\s+([\d.]+) \|"
                     r"\s+([\d.]+)\s+([\d.]+) \|\s+([\d.]+)$", re.M)

    def matrix(self, *extra):
        out = run("datapath", "--runs", 1, "--passes", 2, "--flows", 10000, *extra)
        ghz = float(re.search(r"TSC ([\d.]+) GHz", out).group(1))
        return out, ghz, self.ROW.findall(out)

    def test_matrix_rows_agree(self):
        out, ghz, rows = self.matrix("--families", "4,6")
        self.assertEqual([(r[0], r[2]) for r in rows],
                         [(f, m) for f in ("IPv4", "IPv6") for m in MIXES])
        for fam, flows, mix, cyc, ns, mpps, pass_c, look_c, ratio in rows:
            cyc, ns, mpps, pass_c, look_c, ratio = map(
                float, (cyc, ns, mpps, pass_c, look_c, ratio))
            what = f"{fam} {mix}"
            self.assertEqual(flows, "10000", what)
            self.assertTrue(min(cyc, pass_c, look_c) > 0, what)
            # One run: the ratio is that run's, of the figures beside it.
            self.assertTrue(close(ratio, cyc / (pass_c + look_c), 0.02), what)
            self.assertTrue(close(ns, cyc / ghz, 0.02), what)
            self.assertTrue(close(mpps, 1e3 / ns, 0.02), what)
        per_flow = [float(x) for x in re.findall(r"= ([\d.]+) B/flow", out)]
        self.assertEqual(len(per_flow), 2)
        # The IPv6 key is three times the IPv4 one.
        self.assertTrue(0 < per_flow[0] < per_flow[1], per_flow)

    def test_matrix_without_flow_cache(self):
        _, _, rows = self.matrix("--families", "4", "--flow-cache", "off")
        self.assertEqual([r[2] for r in rows], MIXES)

    def test_growth_is_its_sums_quotient(self):
        out = run("datapath", "--runs", 1, "--passes", 2, "--families", "4,6",
                  "--growth", "10000,20000")
        rows = family_rows(self, out, r"^(IPv[46])\s+(.+?)\s{2,}([\d.]+)\s+([\d.]+) \|\s+"
                           r"([\d.]+)\s+([\d.]+)-([\d.]+)$", ("local 0%", "geneve 50%"))
        for fam, mix, small, large, growth, lo, hi in rows:
            self.assertTrue(close(growth, large / small, 0.02), f"{fam} {mix}")
            self.assertEqual((lo, hi), (growth, growth), f"{fam} {mix}: one run")

    def test_cache_sweep_follows_the_rest_rule(self):
        out = run("datapath", "--runs", 3, "--passes", 16, "--families", "4,6", "--flows", 10000,
                  "--cache-sweep", "64,2048")
        rows = family_rows(self, out, r"^(IPv[46])\s+(\d+) \|\s+([\d.]+)%\s+([\d.]+)% \|\s+"
                           r"([\d.]+)\s+([\d.]+) \|\s+([\d.]+)", ("64", "2048"))
        for fam, hot, held, probed, on, off, quotient in rows:
            what = f"{fam} {hot} hot flows"
            if hot == "64":
                # 64 flows in 1024 slots: nearly all held, so always probed.
                self.assertGreater(held, 90, what)
                self.assertEqual(probed, 100, what)
            else:
                # Below two hits in three the cache rests, probing one
                # window of 4096 packets in 16 + 1.
                self.assertLess(held, 200 / 3, what)
                self.assertLess(probed, 20, what)
            self.assertTrue(min(on, off, quotient) > 0, what)

    def test_callgrind_mode_runs_every_path(self):
        for fam in ("4", "6"):
            out = run("datapath", "--callgrind", "--families", fam)
            self.assertEqual(re.findall(r"^path (IPv[46]) cg_(\w+) (\d+) packets$", out, re.M),
                             [(f"IPv{fam}", p, "1024") for p in PATHS])

    def test_refusals(self):
        """Refused before any table is filled: a size a mode cannot run,
        options that do not go together."""
        for args, said in ((("--flows", 100), "--flows 100: at least 128"),
                           (("--flows", 10000, "--cache-sweep", 4096), "--cache-sweep 4096"),
                           (("--cache-sweep", 64, "--growth", "10000,20000"), "one at a time"),
                           (("--flows", 10000, "--cache-sweep", 64, "--flow-cache", "on"),
                            "--flow-cache does not apply")):
            self.assertIn(said, run("datapath", "--runs", 1, "--passes", 1, *args, ok=False))


class Control(unittest.TestCase):
    def test_every_section_prints(self):
        out = run("control", "--runs", 1, "--claims", 2000, "--age-capacity", 4096,
                  "--reannounce-entries", 10000)
        self.assertEqual(len(re.findall(r"^authentication .* us a frame", out, re.M)), 4)
        for fam in ("IPv4", "IPv6"):
            rates = re.findall(rf"^gossip receive  {fam} .*: ([\d.]+) M claims/s applied", out, re.M)
            self.assertEqual(len(rates), 4, fam)
            self.assertTrue(all(float(r) > 0 for r in rates), fam)
            local = re.findall(rf"^local claims    {fam} .*: ([\d.]+) M claims/s", out, re.M)
            self.assertEqual(len(local), 2, fam)
            # A table of 4096 entries is one whole slice: its rate is finite
            # and the slice's time its 4096 entries at that rate.
            age = re.search(rf"^ageing          {fam}: .* full \(4096 entries\): ([\d.]+) us a "
                            r"4096-entry slice \(([\d.]+) M entries/s\)", out, re.M)
            self.assertIsNotNone(age, fam)
            us, rate = float(age.group(1)), float(age.group(2))
            self.assertTrue(us > 0 and close(4096 / us, rate, 0.05), f"{fam}: {age.group(0)}")
            self.assertRegex(out, rf"re-announce     {fam}: a pass over 10000 entries")


class Vip(unittest.TestCase):
    def test_rows(self):
        out = run("vip", "--vips", "1,16", "--runs", 1, "--passes", 2, eal=False)
        rows = family_rows(self, out, r"^(IPv[46])\s+(\d+)\s+([\d.]+)$", ("1", "16"))
        self.assertTrue(all(cycles > 0 for _, _, cycles in rows), rows)


class Memory(unittest.TestCase):
    def test_rows(self):
        out = run("memory", "--mb", 8, "--runs", 1, "--loads", 10000, eal=False)
        self.assertRegex(out, r"latency \(dependent loads\): [\d.]+ cycles/load")
        rows = re.findall(r"^([\d.]+)((?:\s+[\d.]+){4})$", out, re.M)
        self.assertEqual(len(rows), 3, out)


if __name__ == "__main__":
    # meson's timeout sends SIGTERM, then SIGKILL. Stopped at the first, as
    # by Ctrl-C (unittest records a SystemExit as one test's error and runs
    # the next), run()'s cleanup removes the benchmark's DPDK folder.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    for key, path in zip(("datapath", "control", "vip", "memory"), sys.argv[1:5]):
        BENCH[key] = path
    if len(BENCH) != 4:
        sys.exit(__doc__)
    unittest.main(argv=sys.argv[:1] + sys.argv[5:], verbosity=2)
