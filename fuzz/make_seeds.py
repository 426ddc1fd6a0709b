#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes the seeds of fuzz_too_big, fuzz_encap and fuzz_vip: the parser's
seed frames (fuzz/corpus/parse, less their control byte) behind each
harness's control bytes, a few settings per frame; and fuzz_engine's three
scripts. Run from the repository root after the parser's seeds change:
python3 fuzz/make_seeds.py"""
import hashlib
import os
import pathlib

top = pathlib.Path(__file__).resolve().parent
frames = {p.name: p.read_bytes()[1:] for p in sorted((top / "corpus" / "parse").iterdir())}


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


# Frames longer than the ICMP errors' size limits (the parser's seeds are
# short, and libFuzzer grows inputs slowly): IPv4 TCP with DF, IPv6 UDP.
eth = bytes.fromhex("020000000001020000000002")
tcp = bytes.fromhex("d431005000000001000000005002200000000000")
ip4 = bytearray(bytes.fromhex("450005dc0000400040060000c6336407cb007101"))
ip4[10:12] = csum(bytes(ip4)).to_bytes(2, "big")
frames["ipv4_tcp_df_1500"] = eth + b"\x08\x00" + bytes(ip4) + tcp + bytes(i & 0xFF for i in range(1460))
udp_len = 1400
ip6 = bytes.fromhex("60000000") + udp_len.to_bytes(2, "big") + bytes([17, 64]) + \
    bytes.fromhex("20010db8000000000000000000000007") + bytes.fromhex("20010db8000000000000000000000101")
frames["ipv6_udp_1454"] = eth + b"\x86\xdd" + ip6 + bytes.fromhex("d431005a") + \
    udp_len.to_bytes(2, "big") + b"\0\0" + bytes(udp_len - 8)


def write(name, blobs):
    d = top / "corpus" / name
    d.mkdir(exist_ok=True)
    for old in d.iterdir():
        old.unlink()
    for label, blob in blobs:
        (d / f"{label}-{hashlib.sha1(blob).hexdigest()[:8]}").write_bytes(blob)


def be16(v):
    return bytes([v >> 8 & 0xFF, v & 0xFF])


too_big, encap, vip = [], [], []
for label, f in frames.items():
    # headroom, MTU, flags (bit 3: two segments), split
    too_big.append((label, bytes([128]) + be16(1400) + bytes([0]) + be16(0) + f))
    too_big.append((label + "_split", bytes([48]) + be16(1280) + bytes([8]) + be16(40) + f))
    # kind / family / zero checksum / two segments, headroom, MTU, split, hash, hops, ingress, affinity, version
    for c0 in (0x00, 0x01, 0x02, 0x03, 0x06, 0x0A):
        encap.append((f"{label}_{c0:02x}", bytes([c0, 128]) + be16(9000) + be16(50) +
                      bytes([0x12, 0x34, 0x56, 0x78, 1, 3]) + be16(7) + be16(9) + f))
    # GENEVE over IPv6 with hop count 0, which decapsulation reads as 1
    encap.append((f"{label}_02_hops0", bytes([0x02, 128]) + be16(9000) + be16(50) +
                  bytes([0x12, 0x34, 0x56, 0x78, 0, 3]) + be16(7) + be16(9) + f))
    # two VIPs: the frame's destination (tcp/udp/any), and one beside it with a port
    vip.append((label, bytes([2, 0x08 | 0x04, 0, 0, 0, 0, 0, 0, 0,
                              0x08 | 0x01 | 0x10 | 0x40, 5, 0, 80, 0, 0, 0, 0]) + f))
    vip.append((label + "_tcp", bytes([1, 0x08 | 0x10 | 0x40, 0, 0, 0, 0, 0, 0, 0]) + f))
    # near misses of the destination, in either half of an IPv6 address
    vip.append((label + "_near", bytes([2, 0x80 | 0x04, 0x31, 0, 0, 0, 0, 0, 0,
                                        0x80 | 0x05, 0xB2, 0, 0, 0, 0, 0, 0]) + f))
write("too_big", too_big)
write("encap", encap)
write("vip", vip)


# fuzz_engine: scripts of steps (op byte, fields, a time byte; see the
# harness). Peers 2-4 announce themselves, claim flows, answer node 1's
# sync (claims naming node 1 among the entries), and node 3 falls
# silent until it is dead, then restarts.
def frame(sender, records, how=0):
    return bytes([(sender - 2) | (len(records) - 1) << 2, how]) + b"".join(records)


def heartbeat(views=0):
    return bytes([3, 0x01 | views << 4]) + bytes([0x00, 0, 0, 1]) * views


def claim(key, version=1):
    return bytes([0, key, 0x00, version])


def step(body, ms):
    return body + bytes([ms])


hello = b"".join(step(frame(s, [heartbeat(1)]), 10) for _ in range(4) for s in (2, 3, 4))
claims = b"".join(step(frame(s, [claim(i * 3 + s), claim(0x40 | i * 3 + s), claim(i * 3 + s, 2)]), 2)
                  for i in range(4) for s in (2, 3, 4))
sync = step(frame(2, [bytes([5, 0x04, 0x00]) + bytes([0x02, 0x30, 0x00, 2]) + bytes([0x00, 6, 0x82, 1]) +
                      bytes([0x01, 7, 0x83, 1]) + bytes([0x02, 0x45, 0x00, 3])]), 1)
# node 1 asks node 2 to repair (two digests of node 2's that disagree), and
# node 2's answer names node 1 the owner of two flows nobody claimed
repair = step(frame(2, [bytes([2, 0x00, 7]) + bytes(8)]), 1) * 2 + \
    step(frame(2, [bytes([5, 0x02, 0x00]) + bytes([0x02, 0x31, 0x00, 2]) + bytes([0x02, 0x71, 0x00, 2])]), 1)
# a sync request to node 1 after node 3's death: its answer holds its guesses
ask = step(frame(4, [bytes([4, 0x00, 0x00, 0, 0, 0, 9, 0])]), 1)
silent3 = b"".join(step(frame(s, [heartbeat()]), 50) for _ in range(10) for s in (2, 4))
restart3 = step(frame(3, [heartbeat(1), claim(9)], how=0x03), 5)
local = b"".join(step(bytes([op, key]), 20) for op, key in ((0x0C, 1), (0x1C, 2), (0x2C, 1), (0x3C, 3),
                                                              (0x4C, 2), (0xDC, 0)))
write("engine", [("peers", hello + claims + sync),
                 ("death", hello + claims + silent3 + repair + ask + restart3),
                 ("local", hello + local + claims + silent3)])
