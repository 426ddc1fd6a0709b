# SPDX-License-Identifier: BSD-3-Clause
"""What the scripts and the tests that build network namespaces share.

The tests import it from scripts/ (tests/support/gossip_fleet.py passes
end_on_sigterm on to its users).
"""
import signal
import subprocess
import sys


def end_on_sigterm():
    """Makes SIGTERM (a test harness's timeout) and SIGHUP (the terminal
    closed, an ssh session dropped) raise SystemExit, so the caller's
    finally blocks still remove what it built: Python's default action for
    either ends the process on the spot."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda sig, frame: sys.exit(128 + sig))


def offloads_off(ns, dev):
    """Switches off checksum offload and segmentation on veth @p dev in
    namespace @p ns: a packet socket (net_af_packet) would otherwise see
    TCP checksums not filled in and segments larger than the MTU. Best
    effort: a kernel whose veth lacks a feature leaves it as it is."""
    subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off",
                    "tso", "off", "gso", "off", "gro", "off"], capture_output=True)
