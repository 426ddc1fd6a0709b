# SPDX-License-Identifier: BSD-3-Clause
"""What the scripts and the tests that build network namespaces share.

The tests import it from scripts/ (tests/support/gossip_fleet.py passes
end_on_sigterm on to its users).
"""
import contextlib
import os
import secrets
import signal
import subprocess
import sys


def end_on_sigterm():
    """Makes SIGTERM and SIGHUP (the terminal closed, an ssh session
    dropped) raise SystemExit, so the caller's finally blocks still remove
    what it built: Python's default action for either ends the process on
    the spot.

    A test harness's own timeout gives no such chance: meson sends SIGTERM
    to the test's process group and SIGKILL half a second later. So a test
    run by meson also gets a deadline of its own, FLOWHOME_TEST_DEADLINE_S
    (set in meson.build well below the test's timeout): past it, SIGALRM
    ends the test the same way, with time left to clean up."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda sig, frame: sys.exit(128 + sig))
    deadline = os.environ.get("FLOWHOME_TEST_DEADLINE_S")
    if deadline:
        def expired(sig, frame):
            print(f"FAIL the test's own deadline ({deadline} s) passed: cleaning up", flush=True)
            sys.exit(124)
        signal.signal(signal.SIGALRM, expired)
        signal.alarm(int(deadline))


@contextlib.contextmanager
def held_signals():
    """Holds the signals that end a test while it cleans up: SIGINT,
    SIGTERM, SIGHUP and the deadline's SIGALRM (end_on_sigterm()). Each
    exits at once, and cut short, a cleanup leaves namespaces, processes
    and DPDK folders behind. They are acted on when the block ends."""
    held = signal.pthread_sigmask(
        signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def free_tag(prefix):
    """A tag starting with @p prefix that no network namespace and no DPDK
    runtime folder on this host starts with, for the namespaces and EAL
    file prefixes a run makes: a PID-derived one could be another run's
    (PIDs that agree modulo some power of ten), whose namespace this run's
    cleanup would then delete."""
    def names(folder):
        try:
            return os.listdir(folder)
        except FileNotFoundError:
            return []
    while True:
        tag = prefix + secrets.token_hex(3)
        if not any(n.startswith(tag) for n in names("/run/netns") + names("/var/run/dpdk")):
            return tag


def offloads_off(ns, dev):
    """Switches off checksum offload and segmentation on veth @p dev in
    namespace @p ns: a packet socket (net_af_packet) would otherwise see
    TCP checksums not filled in and segments larger than the MTU. Best
    effort: a kernel whose veth lacks a feature leaves it as it is."""
    r = subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off",
                        "tso", "off", "gso", "off", "gro", "off"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"warning: ethtool -K {dev} in {ns}: {(r.stderr or r.stdout).strip()}",
              file=sys.stderr)
