#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""TCP load for the cluster: an echo server for the nodes, a client that
keeps long-lived connections busy and opens a stream of new ones.

  cluster_echo.py serve NODE_ID
      on port 80 (IPv4 and IPv6), in the node's namespace: sends one line,
      "node NODE_ID", then echoes every byte it receives.

  cluster_echo.py client VIP DURATION_S LONG_LIVED RESULT.json [--rate N]
      opens LONG_LIVED connections to VIP:80 that each send a chunk of
      pseudo-random bytes every 100 ms for DURATION_S and check that every
      byte comes back unchanged (SHA-256 over both directions), plus N new
      short connections per second. Writes per-connection outcomes with
      timestamps and the node that served each (its kernel: the owner) to
      RESULT.json.

Every connection has an overall deadline; the client ends by itself.
"""
import asyncio
import hashlib
import json
import os
import random
import socket
import sys
import time

PORT = 80
CHUNK = 256
INTERVAL = 0.1
IO_TIMEOUT = 3.0
# A long-lived connection's echo: a dead node's connections end with the
# RST of their failover owner at the first retransmission after the death
# is declared (dead_after_ms 1 s), at 1.4 s or, when the rewrite misses
# that one, 3.0 s after the kill (RTO 0.2 s, doubling); 5 s lets the second
# arrive as a reset rather than end in a timeout.
ECHO_TIMEOUT = 5.0


async def serve(node):
    async def echo(reader, writer):
        try:
            writer.write(f"node {node}\n".encode())
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    s4 = await asyncio.start_server(echo, "0.0.0.0", PORT, reuse_address=True)
    s6 = await asyncio.start_server(echo, "::", PORT, family=socket.AF_INET6,
                                    reuse_address=True)
    print(f"node {node}: echo server on port {PORT}", flush=True)
    async with s4, s6:
        await asyncio.gather(s4.serve_forever(), s6.serve_forever())


async def guarded(rec, body):
    """Runs one connection's body, recording how it ended."""
    try:
        await body()
    except asyncio.TimeoutError:
        rec["error"] = "timeout"
    except ValueError as e:  # not the server's first line
        rec["error"] = "bad greeting"
        rec["detail"] = str(e)
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
        rec["error"] = type(e).__name__
        rec["detail"] = str(e)  # the errno's text: which OSError
    rec["end"] = time.time()


async def greeting(reader, rec):
    """Reads the server's first line: which node serves the connection."""
    line = await asyncio.wait_for(reader.readline(), IO_TIMEOUT)
    if not line.endswith(b"\n"):  # the connection ended first
        raise asyncio.IncompleteReadError(line, None)
    if not line.startswith(b"node "):
        raise ValueError(f"greeting {line!r}")
    rec["node"] = int(line[5:])


async def long_lived(vip, idx, duration, out):
    rec = {"id": idx, "kind": "long", "start": time.time(), "end": None, "ok": False,
           "bytes": 0, "error": None}
    out.append(rec)
    rnd = random.Random(idx)
    sent, got = hashlib.sha256(), hashlib.sha256()

    async def body():
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, PORT), IO_TIMEOUT)
        rec["connected"] = time.time()
        rec["port"] = writer.get_extra_info("sockname")[1]
        await greeting(reader, rec)
        end = time.time() + duration
        while time.time() < end:
            chunk = rnd.randbytes(CHUNK)
            sent.update(chunk)
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
            back = await asyncio.wait_for(reader.readexactly(CHUNK), ECHO_TIMEOUT)
            got.update(back)
            rec["bytes"] += CHUNK
            rec["last_ok"] = time.time()
            await asyncio.sleep(INTERVAL * (0.5 + rnd.random()))
        writer.close()
        rec["ok"] = sent.digest() == got.digest()
        if not rec["ok"]:
            rec["error"] = "data differs"

    await guarded(rec, body)


async def short(vip, idx, out):
    rec = {"id": idx, "kind": "short", "start": time.time(), "end": None, "ok": False,
           "error": None}
    out.append(rec)

    async def body():
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, PORT), IO_TIMEOUT)
        rec["port"] = writer.get_extra_info("sockname")[1]
        await greeting(reader, rec)
        payload = os.urandom(64)
        writer.write(payload)
        await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
        back = await asyncio.wait_for(reader.readexactly(len(payload)), IO_TIMEOUT)
        writer.close()
        rec["ok"] = back == payload
        if not rec["ok"]:
            rec["error"] = "data differs"

    await guarded(rec, body)


async def client(vip, duration, n_long, result, rate):
    out = []
    tasks = []
    for i in range(n_long):
        tasks.append(asyncio.create_task(long_lived(vip, i, duration, out)))
        await asyncio.sleep(0.01)  # stagger the handshakes
    n = 0
    end = time.time() + duration
    while rate > 0 and time.time() < end:
        tasks.append(asyncio.create_task(short(vip, 100000 + n, out)))
        n += 1
        await asyncio.sleep(1.0 / rate)
    await asyncio.wait_for(asyncio.gather(*tasks), duration + 3 * IO_TIMEOUT + ECHO_TIMEOUT + 10)
    with open(result, "w") as f:
        json.dump(out, f)


def main():
    if sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2]))
    else:
        rate = float(sys.argv[sys.argv.index("--rate") + 1]) if "--rate" in sys.argv else 0
        asyncio.run(client(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], rate))


if __name__ == "__main__":
    main()
