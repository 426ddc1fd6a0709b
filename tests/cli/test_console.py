#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The operator console, end to end.

One flowhome node runs in a test namespace (net_af_packet on two veth
pairs: wire w0 <-> w1, local l0 <-> l1) with `-i` on a pseudo-terminal.
Traffic (TCP SYNs to the VIP) is sent into w1 before and after the
commands. Checks:

1. every command works on the console (pty), with Tab completion;
2. every error (unknown command, malformed address, unknown flow, value
   out of range) gives its message, on the console and through the control
   socket (`flowhome --attach`, exit status 1), and the node keeps
   forwarding: the claims after the errors are delivered too;
3. the counters read through the console, the control socket, DPDK
   telemetry and the Prometheus endpoint agree;
4. a capture of the local port, started through the socket with a packet
   limit and stopped at the terminal, opens in tshark and shows the packets
   that passed up to the limit;
5. a wire port that does not come up (a vdev its driver refuses, a PCI
   device EAL did not bring up) stops the node with a message that names
   the port and, for the vdev, points at the driver's reason;
6. a node whose stdout reader has gone runs on, a signal while the EAL
   starts stops it, and the EAL's folder goes on every stop.

Documentation addresses only; the namespace, the process and the DPDK
folder are removed at the end, also on failure.
Usage: test_console.py FLOWHOME
"""
import json
import os
import pty
import resource
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from netns_tools import end_on_sigterm, free_tag, held_signals, offloads_off  # noqa: E402

TAG = free_tag("fhc")
NS = TAG
VIP = "203.0.113.10"
CLIENT = "198.51.100.7"
METRICS_PORT = 19000 + os.getpid() % 1000
FLOWHOME = os.path.abspath(sys.argv[1])


def ns(cmd, check=True, **kw):
    r = subprocess.run(["ip", "netns", "exec", NS] + cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


def topology():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    ns(["ip", "link", "set", "lo", "up"])
    for a, b in (("w0", "w1"), ("l0", "l1")):
        ns(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        for end in (a, b):
            ns(["sysctl", "-qw", f"net.ipv6.conf.{end}.disable_ipv6=1"])
            offloads_off(NS, end)
            ns(["ip", "link", "set", end, "up"])
    ns(["ip", "link", "set", "w0", "address", "02:00:00:00:01:01"])


def write_config(tmp):
    path = os.path.join(tmp, "node.yaml")
    with open(path, "w") as f:
        f.write(f"""node: {{id: 1, name: console-test}}
eal:
  huge_pages: false
  memory_mb: 256
  file_prefix: {TAG}
  extra: ["--log-level=lib.eal:warning"]
ports:
  - {{name: uplink, role: wire, device: "net_af_packet0,iface=w0", ipv4: 192.0.2.1,
     mac: "02:00:00:00:01:01"}}
  - {{name: host, role: local, device: "net_af_packet1,iface=l0"}}
lcores: {{main: 0, control: 1, workers: [2], cpus: {{0: 0, 1: 0, 2: 1}}}}
vips:
  - {{address: {VIP}, protocol: tcp, ports: [80]}}
domains:
  - {{name: dc, encap: geneve}}
peers:
  - {{id: 2, address: 192.0.2.2, domain: dc, mac: "02:00:00:00:01:02"}}
console:
  socket: {tmp}/ctl.sock
  metrics_listen: 127.0.0.1:{METRICS_PORT}
""")
    return path


def refused_ports(tmp, config):
    """A wire port that does not come up stops the node with a message that
    names the port: a vdev its driver refuses (an interface that does not
    exist) points at the driver's reason, printed above it; a PCI device EAL
    did not bring up (no PCI bus here: --no-pci) asks whether it is bound."""
    with open(config) as f:
        text = f.read().replace(f"file_prefix: {TAG}", f"file_prefix: {TAG}r")
    cases = (("iface=w0", "iface=fhnosuch0", "net_af_packet0: ioctl failed (SIOCGIFINDEX)",
              "port 'uplink': virtual device 'net_af_packet0' did not start"),
             ('device: "net_af_packet0,iface=w0"', 'device: "0000:00:1f.6"',
              "", "port 'uplink': no DPDK port at '0000:00:1f.6' (is the device bound"))
    path = os.path.join(tmp, "refused.yaml")
    for old, new, reason, message in cases:
        with open(path, "w") as f:
            f.write(text.replace(old, new).replace('extra: ["', 'extra: ["--no-pci", "'))
        r = ns([FLOWHOME, "-c", path], check=False, timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode != 0, f"the node started without its wire port:\n{out}"
        ours = out.find(message)
        assert 0 <= out.find(reason) <= ours, f"{message!r}, after {reason!r}:\n{out}"


def tap_with_gossip(tmp):
    """net_tap wants as many TX queues as RX queues, so it refuses the
    control lcore's own TX queue: the node configures it again without,
    says so, and sends its gossip through worker 0."""
    keys = os.path.join(tmp, "tap.keys")
    with open(keys, "w") as f:
        f.write("key 1 " + "5a" * 32 + "\n")
    os.chmod(keys, 0o600)
    path = os.path.join(tmp, "tap.yaml")
    with open(path, "w") as f:
        f.write(f"""node: {{id: 1}}
eal: {{huge_pages: false, memory_mb: 256, file_prefix: {TAG}t, extra: ["--no-pci"]}}
ports:
  - {{name: uplink, role: wire, device: "net_tap0,iface=fhtw0,mac=02:00:00:00:01:0a",
     ipv4: 192.0.2.1}}
lcores: {{main: 0, control: 1, workers: [2], cpus: {{0: 0, 1: 0, 2: 1}}}}
vips:
  - {{address: {VIP}}}
domains:
  - {{name: dc, encap: geneve}}
peers:
  - {{id: 2, address: 192.0.2.2, domain: dc, mac: "02:00:00:00:01:02"}}
gossip: {{cluster_id: 7, group: 239.1.1.1, group_report_interval_s: 0, key_file: {keys}}}
console: {{socket: off}}
""")
    # --check reads the key file too, before any DPDK: a missing one is
    # refused, with the configuration's exit status; so does a real start.
    check = [FLOWHOME, "-c", path, "--check"]
    r = subprocess.run(check, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == f"{path}: ok\n", f"--check: {r.returncode} {r}"
    os.rename(keys, keys + ".away")
    try:
        r = subprocess.run(check, capture_output=True, text=True, timeout=30)
        # In the test's namespace, should it get as far as making the tap.
        start = ns([FLOWHOME, "-c", path], check=False, timeout=30)
    finally:
        os.rename(keys + ".away", keys)
        shutil.rmtree(f"/var/run/dpdk/{TAG}t", ignore_errors=True)
    for what, res in (("--check", r), ("a start", start)):
        assert res.returncode == 2 and "gossip.key_file" in res.stderr and \
            "cannot open the gossip key file" in res.stderr, f"{what}, no key file: {res}"
    cmds = os.path.join(tmp, "tap.cmd")
    with open(cmds, "w") as f:
        f.write("show node\n")
    try:
        r = ns([FLOWHOME, "-c", path, "--cmd-file", cmds], check=False, timeout=60)
    finally:
        shutil.rmtree(f"/var/run/dpdk/{TAG}t", ignore_errors=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"a net_tap wire port with gossip: rc {r.returncode}:\n{out}"
    assert "refused 1 RX / 2 TX queues" in out, f"no word of the refused queue:\n{out}"
    assert re.search(r"path\s+worker hand-off \(virtual device\); sent by worker 0", out), \
        f"gossip not through the workers:\n{out}"


def second_config(tmp, socket_line, eal='{huge_pages: false, memory_mb: 256, extra: ["--no-pci"]}'):
    """A second node, on null ports (no namespace needed)."""
    path = os.path.join(tmp, "second.yaml")
    with open(path, "w") as f:
        f.write(f"""node: {{id: 3}}
eal: {eal}
ports:
  - {{name: uplink, role: wire, device: net_null0, ipv4: 192.0.2.3, mac: "02:00:00:00:01:03"}}
lcores: {{main: 0, control: 1, workers: [2], cpus: {{0: 0, 1: 0, 2: 1}}}}
vips:
  - {{address: {VIP}}}
{socket_line}
""")
    return path


def end_node(p, prefix):
    """Kills the node @p p (None: never started) if it still runs, and
    removes its EAL folder."""
    if p is not None and p.poll() is None:
        p.kill()
        p.wait()
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def signal_in_command_file(tmp):
    """SIGINT stops a node between the lines of its command file."""
    cmds = os.path.join(tmp, "long.cmd")
    with open(cmds, "w") as f:
        f.write("show node\n" * 20000)
    prefix = f"{TAG}l"
    p = subprocess.Popen([FLOWHOME, "-c", second_config(tmp, "console: {socket: off}"),
                          "--cmd-file", cmds, "--", f"--file-prefix={prefix}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The signal goes as soon as the first command has run. Unread, the
        # pipe then holds the output of about a hundred commands (some 560
        # bytes each) before the node blocks on it: one that stops between
        # lines runs few more (one or two in practice); one that ignores the
        # signal runs all 20000.
        seen = []
        while not seen or "flowhome> show node" not in seen[-1]:
            line = p.stdout.readline()
            assert line, f"no command ran:\n{''.join(seen)[-500:]}"
            seen.append(line)
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        assert time.time() - t0 < 5, f"SIGINT took {time.time() - t0:.1f} s"
        assert "stopped by signal 2" in out, f"no stop message:\n{out[-500:]}"
        ran = ("".join(seen) + out).count("flowhome> show node")
        assert ran < 2000, f"{ran} of the 20000 commands ran: SIGINT did not stop the file"
        assert not os.path.exists(f"/var/run/dpdk/{prefix}"), "the EAL's folder was left"
    finally:
        end_node(p, prefix)


def lifecycle_edges(tmp):
    """A node whose stdout reader has gone keeps running (SIGPIPE is
    ignored: a report it prints is lost, not the node); a signal that
    arrives while the EAL starts stops the node once it has, and the EAL's
    folder goes in both cases."""
    prefix = f"{TAG}p"
    config = second_config(tmp, "console: {socket: off}")
    p = None
    try:
        p = subprocess.Popen([FLOWHOME, "-c", config, "--", f"--file-prefix={prefix}"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while b"running" not in p.stdout.readline():
            assert time.time() < deadline and p.poll() is None, "the node did not start"
        p.stdout.close()
        for _ in range(4):  # each report is written to a pipe with no reader (EPIPE)
            p.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
        assert p.poll() is None, f"a closed stdout stopped the node: {p.poll()}"
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
        assert not os.path.exists(f"/var/run/dpdk/{prefix}"), "EAL folder left (closed stdout)"

        # The EAL takes a few hundred milliseconds to start on null ports;
        # whenever the signal lands, nothing may be left.
        for delay in (0.05, 0.15):
            p = subprocess.Popen([FLOWHOME, "-c", config, "--", f"--file-prefix={prefix}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(delay)
            p.send_signal(signal.SIGINT)
            out, _ = p.communicate(timeout=30)
            assert not os.path.exists(f"/var/run/dpdk/{prefix}"), \
                f"EAL folder left by SIGINT after {delay} s:\n{out}"
    finally:
        end_node(p, prefix)


def hangup_and_gone_reader(tmp):
    """SIGHUP (a terminal closed) stops a node in order, unless it was
    ignored when the node started (nohup), and is not taken for a second
    signal after SIGTERM (as systemd sends them); a command file whose
    output reader has gone runs to its end, every command succeeding."""
    prefix = f"{TAG}h"
    config = second_config(tmp, "console: {socket: off}")
    p = None
    try:
        for ignored in (False, True):
            def hup(ignored=ignored):
                signal.signal(signal.SIGHUP, signal.SIG_IGN if ignored else signal.SIG_DFL)
            p = subprocess.Popen([FLOWHOME, "-c", config, "--", f"--file-prefix={prefix}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 preexec_fn=hup)
            deadline = time.time() + 30
            while "running" not in p.stdout.readline():
                assert time.time() < deadline and p.poll() is None, "the node did not start"
            p.send_signal(signal.SIGHUP)
            if ignored:
                time.sleep(0.5)
                assert p.poll() is None, f"SIGHUP stopped a node started under nohup: {p.poll()}"
                p.send_signal(signal.SIGINT)
            out, _ = p.communicate(timeout=30)
            assert p.returncode == 0, f"exit status {p.returncode}:\n{out[-500:]}"
            stop = "stopped by signal 2" if ignored else "stopped by signal 1"
            assert stop in out, f"no '{stop}':\n{out[-500:]}"
            assert not os.path.exists(f"/var/run/dpdk/{prefix}"), "EAL folder left (SIGHUP)"

        p = subprocess.Popen([FLOWHOME, "-c", config, "--", f"--file-prefix={prefix}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30
        while "running" not in p.stdout.readline():
            assert time.time() < deadline and p.poll() is None, "the node did not start"
        p.send_signal(signal.SIGTERM)
        time.sleep(0.02)  # while it stops
        if p.poll() is None:
            p.send_signal(signal.SIGHUP)
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0 and "stopped by signal 15" in out, \
            f"SIGTERM then SIGHUP: exit status {p.returncode}:\n{out[-500:]}"

        # 300 commands, each echoed after the prompt with the 5000 blanks
        # that end it (longer than stdout's buffer), then answered: some
        # 1.7 MB, far more than a pipe holds. The writes after its reader
        # closed it fail (EPIPE), each one lost.
        cmds = os.path.join(tmp, "gone.cmd")
        with open(cmds, "w") as f:
            f.write(("show node" + " " * 5000 + "\n") * 300)
        p = subprocess.Popen([FLOWHOME, "-c", config, "--cmd-file", cmds, "--",
                              f"--file-prefix={prefix}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.readline()
        p.stdout.close()
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, \
            f"a command file's output to a closed pipe: exit status {p.returncode}\n{err[-500:]}"
        assert not os.path.exists(f"/var/run/dpdk/{prefix}"), "EAL folder left (closed output)"
    finally:
        end_node(p, prefix)


def prefix_taken(tmp, eal=None, eal_args=()):
    """A second process given a running node's EAL file prefix is refused
    (without shared configuration the EAL itself locks nothing), and leaves
    the first node and its folder alone."""
    prefix = f"{TAG}d"
    config = second_config(tmp, "console: {socket: off}", *([eal] if eal else []))
    command = [FLOWHOME, "-c", config, "--", f"--file-prefix={prefix}", *eal_args]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 30
        while "running" not in first.stdout.readline():
            assert time.time() < deadline and first.poll() is None, "the node did not start"
        r = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "another flowhome process runs" in r.stderr, \
            f"second process: rc {r.returncode}:\n{r.stdout}{r.stderr}"
        assert "running with" not in r.stdout, f"the second process ran:\n{r.stdout}"
        assert first.poll() is None, "the first node stopped"
        assert os.path.isdir(f"/var/run/dpdk/{prefix}"), "the first node's folder was removed"
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 0
        assert not os.path.exists(f"/var/run/dpdk/{prefix}"), "the EAL's folder was left"
    finally:
        end_node(first, prefix)


def attach_malformed(tmp):
    """flowhome --attach takes a reply header only in the form a node writes
    ("ok N", N in decimal without sign or leading zero): a socket that
    answers otherwise is reported as malformed, exit status 2."""
    path = os.path.join(tmp, "fake.sock")
    headers = (b"ok 5x", b"ok -1", b"ok 05", b"ok +5", b"ok  5", b"fine 5", b"ok " + b"9" * 5000)
    for header in headers:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        client = subprocess.Popen([FLOWHOME, "--attach", path, "show", "node"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            listener.settimeout(10)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                conn.recv(4096)
                conn.sendall(header + b"\nhello")
                out, err = client.communicate(timeout=10)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
            listener.close()
            os.unlink(path)
        assert client.returncode == 2 and "malformed reply" in err and "hello" not in out, \
            f"--attach given {header[:20]!r}: rc {client.returncode}, {out!r} {err!r}"


def socket_taken(tmp, sock):
    """A second node whose control socket path is taken refuses to start and
    leaves the path alone, whether a running node answers there or it is no
    socket at all; and its default path follows the EAL file prefix however
    the command line gives it (here "--file-prefix X", not "=X")."""
    plain = os.path.join(tmp, "not-a-socket")
    with open(plain, "w") as f:
        f.write("keep me\n")
    prefix = f"{TAG}s"

    def second(socket_line):
        path = second_config(tmp, socket_line)
        cmds = os.path.join(tmp, "second.cmd")
        with open(cmds, "w") as f:
            f.write("show node\n")
        try:
            r = subprocess.run([FLOWHOME, "-c", path, "--cmd-file", cmds, "--", "--file-prefix",
                                prefix], capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        return r.returncode, r.stdout + r.stderr

    for target, message in ((sock, "is in use: a running node answers on it"),
                            (plain, "the path exists and is not a socket")):
        rc, out = second(f"console: {{socket: {target}}}")
        assert rc != 0 and message in out, f"socket {target}: rc {rc}:\n{out}"
    with open(plain) as f:
        assert f.read() == "keep me\n", "the node removed a file that is not a socket"
    assert attach(sock, "show", "node").returncode == 0, "the running node lost its socket"
    rc, out = second("")
    default = f"/var/run/flowhome/{prefix}.sock"
    assert rc == 0 and f"control socket {default}" in out, f"default socket: rc {rc}:\n{out}"
    assert not os.path.exists(default), f"{default} left behind"


def whole_session(sock, data, end_input=False):
    """Everything a control session replies to data until it hangs up."""
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(sock)
    raw.sendall(data)
    if end_input:
        raw.shutdown(socket.SHUT_WR)
    raw.settimeout(5)
    reply = b""
    while chunk := raw.recv(4096):
        reply += chunk
    raw.close()
    return reply


def read_reply(s):
    """One reply of the control protocol: 'ok N' or 'error N', then N bytes."""
    data = b""
    while b"\n" not in data:
        chunk = s.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    header, rest = data.split(b"\n", 1)
    while len(rest) < int(header.split()[1]):
        chunk = s.recv(4096)
        assert chunk, f"connection closed in a reply: {header!r}"
        rest += chunk
    return header + b"\n" + rest


def replies_in(data):
    """How many whole replies of the control protocol data holds."""
    count = 0
    while b"\n" in data:
        header, rest = data.split(b"\n", 1)
        size = int(header.split()[1])
        if len(rest) < size:
            break
        data = rest[size:]
        count += 1
    return count


def sessions(sock):
    """Sessions are multiplexed: one that is attached and silent holds up
    neither another client nor a Prometheus scrape; a last command without
    its newline still runs; an over-long line gets an error, not a hang-up;
    one that does not read its replies is hung up on after 2 s; a scrape
    that trickles its request in, a byte at a time, holds up nobody and is
    hung up on 2 s after it connected; one whose request line passes 4096
    bytes is hung up on unanswered."""
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(sock)
    try:
        t0 = time.time()
        r = attach(sock, "show", "node")
        assert r.returncode == 0 and time.time() - t0 < 5, \
            f"a second client waited {time.time() - t0:.1f} s behind an idle one: {r.stderr!r}"
        scrape = ns(["/usr/bin/python3", "-c",
                     "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                     f"'http://127.0.0.1:{METRICS_PORT}/metrics', timeout=5).read().decode())"])
        assert "flowhome_drops_total" in scrape.stdout, "no scrape beside an idle session"
        # A byte every 80 ms, never a whole request line, for at most 8 s;
        # prints when the node hung up.
        slow = subprocess.Popen(
            ["ip", "netns", "exec", NS, "/usr/bin/python3", "-c",
             "import socket, time\n"
             f"s = socket.create_connection(('127.0.0.1', {METRICS_PORT}))\n"
             "t0 = time.time()\n"
             "try:\n"
             "    while time.time() - t0 < 8:\n"
             "        s.send(b'G'); time.sleep(0.08)\n"
             "    print('never hung up')\n"
             "except OSError:\n"
             "    print(f'hung up after {time.time() - t0:.1f} s')\n"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.3)
            t0 = time.time()
            r = attach(sock, "show", "node")
            waited = time.time() - t0
            assert r.returncode == 0 and waited < 1.5, \
                f"a control client waited {waited:.1f} s behind a trickling scrape: {r.stderr!r}"
            t0 = time.time()
            scrape = ns(["/usr/bin/python3", "-c",
                         "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                         f"'http://127.0.0.1:{METRICS_PORT}/metrics', timeout=5).read().decode())"])
            assert "flowhome_drops_total" in scrape.stdout and time.time() - t0 < 1.5, \
                f"a scrape beside a trickling one took {time.time() - t0:.1f} s"
            out, _ = slow.communicate(timeout=15)
            m = re.search(r"hung up after ([\d.]+) s", out)
            assert m and 1.5 <= float(m.group(1)) <= 3.5, f"trickling scrape: {out.strip()!r}"
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait()
        # A request line past the limit (4096 bytes) is not answered: the
        # node hangs up, however the line would have ended.
        over = ns(["/usr/bin/python3", "-c",
                   "import socket\n"
                   f"s = socket.create_connection(('127.0.0.1', {METRICS_PORT}), timeout=5)\n"
                   "s.sendall(b'GET /metrics?' + b'a' * 5000 + b' HTTP/1.0\\r\\n\\r\\n')\n"
                   "got = b''\n"
                   "try:\n"
                   "    while (b := s.recv(4096)):\n"
                   "        got += b\n"
                   "except ConnectionResetError:\n"
                   "    pass\n"
                   "print(repr(got[:40]))\n"], check=False)
        assert over.returncode == 0 and over.stdout.strip() == "b''", \
            f"an over-long request line: {over.stdout.strip()!r} {over.stderr.strip()!r}"
        reply = whole_session(sock, b"show node", end_input=True)  # no newline
        assert reply.startswith(b"ok ") and b"console-test" in reply, f"last line: {reply[:80]!r}"
        # A NUL byte would cut a file name short where the system reads it.
        reply = whole_session(sock, b"capture start wire /tmp/x\0y 10\n", end_input=True)
        assert reply.startswith(b"error ") and b"NUL byte" in reply, f"NUL: {reply!r}"
        # One session's lines run one a pass: another session's command
        # waits for one of them at a time, not for all that came in one
        # read (4096 bytes: 93 of these, each a request to the control
        # lcore, which the metrics count as they run; 4 to 10 ran while
        # this test sent the other command, in trials).
        requests = "flowhome_control_operator_requests_total{}"
        line = f"show flow tcp {CLIENT}:1 {VIP}:80\n".encode()
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        many = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            other.connect(sock)
            other.settimeout(10)
            other.sendall(b"show metrics\n")
            before = prom_value(read_reply(other).decode(), requests)
            many.connect(sock)
            many.sendall(line * (4096 // len(line)))
            many.settimeout(10)
            got = many.recv(1 << 20)  # taken in: its first line has run
            other.sendall(b"show metrics\n")
            ran_first = prom_value(read_reply(other).decode(), requests) - before
            assert ran_first < 60, f"another session's command waited for {ran_first} lines of one"
            while replies_in(got) < 4096 // len(line) and (chunk := many.recv(1 << 20)):
                got += chunk
            assert replies_in(got) == 4096 // len(line), f"pipelined: {replies_in(got)} answered"
        finally:
            many.close()
            other.close()
        # Too long with or without its newline: the session ends, the
        # line and what follows it unrun.
        for long_line in (b"x" * 6000, b"show node " + b"x" * 5000 + b"\nshow node\n"):
            reply = whole_session(sock, long_line)
            assert reply.startswith(b"error ") and b"line too long" in reply, f"long: {reply!r}"
            header, body = reply.split(b"\n", 1)
            assert len(body) == int(header.split()[1]), f"only the refusal: {reply!r}"
        # Sixteen sessions at most: the seventeenth is told so, not left waiting.
        idle.sendall(b"show node\n")  # the first session's last word, from now
        idle.settimeout(5)
        assert read_reply(idle).startswith(b"ok "), "the first session's reply"
        idle.sendall(b"show")  # half a line: still nothing to run
        idle_since = time.time()
        more = []
        try:
            for _ in range(15):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock)
                more.append(s)
            extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            extra.connect(sock)
            extra.settimeout(5)
            reply = extra.recv(4096)
            extra.close()
            assert reply.startswith(b"closed ") and b"16 sessions are attached already" in reply, \
                f"seventeenth session: {reply!r}"
            r = attach(sock, "show", "node")  # not run: the node could not be reached
            assert r.returncode == 2 and "16 sessions are attached already" in r.stderr, \
                f"--attach refused: {r.returncode} {r.stderr!r}"
            # Once one of them has idled 10 s, a newcomer takes its place: the
            # idlest (the first) is told and closed, the others are left alone.
            time.sleep(max(0.0, idle_since + 10.5 - time.time()))
            newcomer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            newcomer.connect(sock)
            newcomer.settimeout(5)
            newcomer.sendall(b"show node\n")
            reply = newcomer.recv(4096)
            newcomer.close()
            assert reply.startswith(b"ok ") and b"console-test" in reply, f"newcomer: {reply!r}"
            told = idle.recv(4096)
            assert told.startswith(b"closed ") and b"this one had been idle longest" in told, \
                f"the idlest session: {told!r}"
            for s in more:
                s.setblocking(False)
                try:
                    got = s.recv(4096)
                except BlockingIOError:
                    got = None
                assert got is None, f"another session was told: {got!r}"
        finally:
            for s in more:
                s.close()
        # Clients that ask and never read fill their socket buffers; their
        # replies wait in their sessions, which are hung up on after 2 s,
        # and hold up nobody meanwhile, however many they are.
        greedy = []
        try:
            for _ in range(6):
                g = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                g.connect(sock)
                g.sendall(b"show metrics\n" * 300)
                greedy.append(g)
            time.sleep(0.5)
            t0 = time.time()
            r = attach(sock, "show", "node")
            assert r.returncode == 0 and time.time() - t0 < 1.5, \
                f"six clients that do not read held the socket {time.time() - t0:.1f} s"
            time.sleep(2.5)
            g = greedy[0]
            g.settimeout(5)
            got = 0
            while chunk := g.recv(65536):
                got += len(chunk)
            assert got > 0, "a client that did not read was not sent its first replies"
        finally:
            for g in greedy:
                g.close()
    finally:
        idle.close()


def send_syns(first_port, count):
    code = f"""
import socket, struct
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton('{CLIENT}'), socket.inet_aton('{VIP}')
sk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); sk.bind(('w1', 0))
for port in range({first_port}, {first_port + count}):
    tcp = struct.pack('!HHIIBBHHH', port, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    tcp = tcp[:16] + struct.pack('!H', csum(src + dst + struct.pack('!BBH', 0, 6, 20) + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, 0, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    sk.send(bytes.fromhex('020000000101') + bytes.fromhex('0200000000aa') + b'\\x08\\x00' + ip + tcp)
"""
    ns(["/usr/bin/python3", "-c", code])


class Console:
    """flowhome -i on a pseudo-terminal."""

    def __init__(self, config):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            # The child has the parent's SIGTERM handler and stack: it must
            # exec or exit, never unwind into the parent's finally blocks.
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.execvp("ip", ["ip", "netns", "exec", NS, FLOWHOME, "-c", config, "-i"])
            finally:
                os._exit(127)
        self.out = ""
        try:
            self.expect("flowhome> ", 60)
        except BaseException:
            self.close()  # the caller never gets the object to close
            raise

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            self.out += os.read(self.fd, 65536).decode(errors="replace")
        except OSError:
            return False
        return True

    def expect(self, text, timeout=15):
        deadline = time.time() + timeout
        while text not in self.out:
            if time.time() > deadline or not self.read(deadline - time.time()):
                raise AssertionError(f"console: no {text!r} in:\n{self.out[-3000:]}")
        at = self.out.index(text) + len(text)
        got, self.out = self.out[:at], self.out[at:]
        return got

    def run(self, line, keys=None):
        os.write(self.fd, (keys if keys is not None else line + "\n").encode())
        return self.expect("flowhome> ")

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def attach(sock, *command, stdin=None):
    return ns([FLOWHOME, "--attach", sock] + list(command), check=False, input=stdin)


def telemetry(cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(f"/var/run/dpdk/{TAG}/dpdk_telemetry.v2")
    s.recv(1024)
    s.send(cmd.encode())
    data = json.loads(s.recv(65536))
    s.close()
    return data[cmd]


def prom_value(text, series):
    m = re.search(r"^" + re.escape(series) + r" (\d+)$", text, re.M)
    assert m, f"no {series} in the metrics"
    return int(m.group(1))


def table_value(text, row, column=1):
    m = re.search(r"^" + re.escape(row) + r"\s+(.*)$", text, re.M)
    assert m, f"no row {row} in:\n{text}"
    return int(m.group(1).split()[column - 1])


def wait_show_node(con, text, timeout=10):
    """`show node` on the terminal once it says @p text (a capture's state
    changes on its writer thread); the test fails after @p timeout s."""
    deadline = time.time() + timeout
    while text not in (out := con.run("show node")):
        assert time.time() < deadline, f"no {text!r} in show node:\n{out}"
        time.sleep(0.2)
    return out


def wait_counter(sock, series, want, timeout=10):
    deadline = time.time() + timeout
    while True:
        v = prom_value(attach(sock, "show", "metrics").stdout, series)
        if v >= want or time.time() > deadline:
            return v
        time.sleep(0.2)


def main():
    end_on_sigterm()  # meson's timeout must still run the finally that removes the namespace
    tmp = tempfile.mkdtemp(prefix=TAG)
    con = None
    try:
        topology()
        config = write_config(tmp)
        refused_ports(tmp, config)
        sock = os.path.join(tmp, "ctl.sock")
        con = Console(config)
        socket_taken(tmp, sock)
        mode = stat.S_IMODE(os.stat(sock).st_mode)
        assert mode == 0o600, f"the control socket's mode is {mode:o}, not 600"
        sessions(sock)
        signal_in_command_file(tmp)
        lifecycle_edges(tmp)
        hangup_and_gone_reader(tmp)
        r = subprocess.run([FLOWHOME, "-c", second_config(tmp, "console: {socket: off}"), "--",
                            "--file-prefix=.."], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "a file prefix of dots alone" in r.stderr, \
            f"--file-prefix=..: rc {r.returncode} {r.stderr!r}"
        prefix_taken(tmp)
        # Shared configuration turned off by an abbreviation (huge_pages
        # left true, hugepages turned off on the command line).
        prefix_taken(tmp, '{memory_mb: 256, extra: ["--no-pci"]}', ["--no-huge", "--no-shc"])
        attach_malformed(tmp)
        tap_with_gossip(tmp)
        claims = 'flowhome_worker_packets_total{worker="0",counter="claims"}'
        tx_local = 'flowhome_port_tx_packets_total{port="host"}'

        # Traffic before the commands.
        send_syns(40000, 5)
        assert wait_counter(sock, claims, 5) == 5, "the first SYNs were not claimed"
        # Their polls were busy: what a packet costs the worker is measured.
        metrics = attach(sock, "show", "metrics").stdout
        busy = 'flowhome_worker_busy_cycles_total{worker="0"}'
        assert prom_value(metrics, busy) > 0, \
            "worker 0 counted no busy cycles for the packets it received"
        # Each busy poll received a packet (gossip is off): idle polls, by
        # the thousand, are not counted. (One packet may arrive between the
        # two counters' reads.)
        polls = prom_value(metrics, 'flowhome_worker_busy_polls_total{worker="0"}')
        received = sum(prom_value(metrics, 'flowhome_worker_packets_total{worker="0",'
                                  f'counter="{c}"}}') for c in ("rx_wire", "rx_local"))
        assert 1 <= polls <= received + 1, f"worker 0: {polls} busy polls, {received} packets"
        # Its packets over its busy polls: at least one a poll, at most all
        # it received (its rx column).
        header, row = (line.split() for line in attach(sock, "show", "workers").stdout.splitlines()[:2])
        assert header[3] == "rx" and header[-2] == "pkt/poll" and row[0] == "0", \
            f"show workers: {header} {row}"
        assert 1 <= float(row[-2]) <= int(row[3]), f"show workers: worker 0's packets a poll: {row}"

        # 1. Every command on the console.
        checks = {
            "help": "flow claim <proto>",
            "help show flow": "one flow: owner",
            "show node": "node 1 (console-test)",
            "show peers": "192.0.2.2",
            "show ports": "net_af_packet0",
            "show workers": "running",
            "show stats": "rx_wire",
            "show stats port": "uplink",
            "show stats worker": "claims",
            "show stats gossip": "gossip is off",
            "show stats drops": "total",
            "show metrics": "# TYPE flowhome_drops_total counter",
            "show flows": "5 flows shown",
            f"show flows vip {VIP} owner 1 limit 2": "limit 2 reached",
            f"show flow tcp {CLIENT}:40001 {VIP}:80": "delivered locally on port host",
            f"flow claim tcp {CLIENT}:50000 {VIP}:80": "claimed by node 1 at version 1 (pinned)",
            f"show flow tcp {CLIENT}:50000 {VIP}:80": "pinned",
            f"flow release tcp {CLIENT}:50000 {VIP}:80": "released by node 1",
            "set drain on": "draining",
            "set drain off": "not draining",
            "set miss-policy local": "miss-policy local",
            "set miss-policy drop": "miss-policy drop",
            "set log-level notice": "log-level notice",
            "clear stats": "statistics cleared",
        }
        for line, want in checks.items():
            out = con.run(line)
            assert want in out, f"{line!r}: no {want!r} in:\n{out}"
        # The table's memory: the policy, and what it resolved to.
        out = con.run("show node")
        assert re.search(r"table memory +auto: (transparent huge pages, \d+ of \d+ MB taken|EAL heap)",
                         out), f"no table memory line in:\n{out}"
        assert re.search(r"flow cache +on\r?\n", out), f"no flow cache line in:\n{out}"
        out = con.run("show stats worker")
        assert table_value(out, "claims") == 0, f"clear stats: claims not from zero:\n{out}"
        # Tab completes keywords.
        out = con.run(None, keys="sh\tnod\t\n")
        assert "node 1 (console-test)" in out, f"completion: {out}"

        # 2. Errors, with their messages; the node keeps forwarding.
        fifo = os.path.join(tmp, "capture.fifo")
        os.mkfifo(fifo)
        errors = {
            "shwo node": "unknown command 'shwo'; did you mean 'show'?",
            "show nodes": "unknown command 'show nodes'; did you mean 'show node'?",
            f"show flow tcp 198.51.100.300:1 {VIP}:80": "malformed client address",
            f"show flow tcp {CLIENT}:70000 {VIP}:80": "port '70000' is out of range (1..65535)",
            f"show flow sctp {CLIENT}:1 {VIP}:80": "unknown protocol 'sctp'",
            f"show flow tcp {CLIENT}:1 {VIP}:80": "unknown flow",
            f"flow release tcp {CLIENT}:2 {VIP}:80": "unknown flow",
            f"flow claim tcp {CLIENT}:1 192.0.2.99:22": "no VIP serves tcp 192.0.2.99:22",
            f"flow claim tcp {CLIENT}:1 {VIP}:81": f"no VIP serves tcp {VIP}:81",
            f"flow claim udp {CLIENT}:1 {VIP}:80": f"no VIP serves udp {VIP}:80",
            "show flows limit 0": "limit '0' is out of range (1..10000)",
            "show flows owner 9999": "out of range",
            "show flows owner 0": "owner '0' is out of range (1..4095)",
            f"show flow tcp {CLIENT}:http {VIP}:80": "port 'http' is not a number (1..65535)",
            f"show flow tcp {CLIENT}:080 {VIP}:80": "port '080' has a leading zero (1..65535)",
            f"show flow tcp [{CLIENT}]:1 {VIP}:80":
                "an IPv4 endpoint is written ADDRESS:PORT, without brackets",
            "show flows limit 010": "limit '010' has a leading zero (1..10000)",
            "show flows limit many": "limit 'many' is not a number (1..10000)",
            "show flows owner 1 limit 5 owner 2": "'owner' is given twice",
            "set miss-policy sometimes": "invalid miss policy 'sometimes'",
            "set drain maybe": "expected on or off",
            "set log-level loud": "invalid log level 'loud'",
            "show stats everything": "unknown statistics 'everything'",
            "gossip key reload": "gossip is off",
            "capture start nowhere /tmp/x": "unknown capture target 'nowhere'",
            "capture stop": "no capture is running",
            "capture start host /tmp/x 0": "packet limit '0' is out of range",
            # A FIFO without a reader must not hold the console until one comes.
            f"capture start host {fifo}": "not a regular file",
            f"capture start host {tmp}": "not a regular file",
            "show node extra": "unexpected 'extra'",
        }
        for line, want in errors.items():
            out = con.run(line)
            assert want in out, f"{line!r}: no {want!r} in:\n{out}"
            r = attach(sock, *line.split())
            assert r.returncode == 1 and want in r.stderr, \
                f"socket {line!r}: rc {r.returncode}, stderr {r.stderr!r}"
        r = attach(sock, stdin="show node\nshwo\nshow ports\n")
        assert r.returncode == 1 and "node 1" in r.stdout and "net_af_packet0" in r.stdout
        assert attach(sock, "show", "node").returncode == 0

        # Traffic after the errors, captured on the local port: started
        # through the socket with a limit of 5 packets, stopped from the
        # terminal. The capture ends at its limit; forwarding does not.
        pcap = os.path.join(tmp, "host.pcapng")
        captured_from = time.time()
        out = attach(sock, "capture", "start", "host", pcap, "5").stdout
        assert "capturing port host" in out and "at most 5 packets" in out, out
        before = prom_value(attach(sock, "show", "metrics").stdout, tx_local)
        send_syns(41000, 7)
        assert wait_counter(sock, claims, 12) == 12, "the node stopped claiming"
        assert wait_counter(sock, tx_local, before + 7) == before + 7, "not delivered"
        wait_show_node(con, "5 packets written, its limit")
        out = con.run("capture stop")
        assert "5 packets written" in out and "its limit of 5 packets reached" in out, out

        # 4. The capture in tshark.
        t = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "tcp.srcport",
                            "-e", "frame.time_epoch",
                            "-Y", f"ip.dst == {VIP} && tcp.flags.syn == 1"],
                           capture_output=True, text=True, check=True)
        rows = [line.split() for line in t.stdout.splitlines()]
        ports = sorted(int(r[0]) for r in rows)
        assert ports == list(range(41000, 41005)), f"tshark: {t.stdout} {t.stderr}"
        # Stamped with the time they passed, between the start and the stop.
        stamps = [float(r[1]) for r in rows]
        assert all(captured_from - 1 <= s <= time.time() + 1 for s in stamps), \
            f"capture timestamps {stamps} outside [{captured_from}, {time.time()}]"

        # A capture that meets a file size limit (a full disk alike): the
        # node runs on, the file ends at the last packet written whole.
        pcap = os.path.join(tmp, "cut.pcapng")
        assert "capturing port host" in con.run(f"capture start host {pcap}")
        limits = resource.prlimit(con.pid, resource.RLIMIT_FSIZE)
        # Room for a packet or two of the seven (about 130 bytes each): a
        # batch written in part is cut back off the file, and counted.
        resource.prlimit(con.pid, resource.RLIMIT_FSIZE,
                         (os.path.getsize(pcap) + 300, limits[1]))
        try:
            before = prom_value(attach(sock, "show", "metrics").stdout, tx_local)
            send_syns(41100, 7)
            assert wait_counter(sock, tx_local, before + 7) == before + 7, "not delivered"
            wait_show_node(con, "then a write failed")
            out = con.run("capture stop")
        finally:
            resource.prlimit(con.pid, resource.RLIMIT_FSIZE, limits)
        # The workers stop copying at the failure: the rest is not counted.
        m = re.search(r"(\d+) packets written .*, (\d+) failed to write \(a write failed: the "
                      r"file ends at the last packet written whole", out)
        assert m and int(m[2]) >= 1 and int(m[1]) + int(m[2]) <= 7, out
        t = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "tcp.srcport"],
                           capture_output=True, text=True)
        assert t.returncode == 0 and len(t.stdout.split()) == int(m[1]), \
            f"tshark on the cut file: {t.returncode} {t.stdout} {t.stderr}"

        # 3. One reading through every way in agrees (traffic has stopped).
        metrics = attach(sock, "show", "metrics").stdout
        http = ns(["/usr/bin/python3", "-c",
                   "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                   f"'http://127.0.0.1:{METRICS_PORT}/metrics', timeout=5).read().decode())"]).stdout
        tel_stats = telemetry("/flowhome/stats")
        tel_ports = telemetry("/flowhome/ports")
        # ... and through DPDK's own client, as an operator would read it.
        script = subprocess.run(["/usr/bin/python3", "/usr/bin/dpdk-telemetry.py", "-f", TAG],
                                input="/flowhome/stats\n", capture_output=True, text=True,
                                timeout=20)
        script_stats = json.loads(script.stdout[script.stdout.index("{"):])["/flowhome/stats"]
        con.run("clear stats")  # the console's view restarts; compare absolute values
        rx = prom_value(metrics, 'flowhome_port_rx_packets_total{port="uplink"}')
        claimed = prom_value(metrics, claims)
        assert prom_value(http, 'flowhome_port_rx_packets_total{port="uplink"}') == rx
        assert prom_value(http, claims) == claimed == 19
        assert tel_ports["port_rx_packets_total/uplink"] == rx
        # Every port family Prometheus has, telemetry has too.
        families = set(re.findall(r"^flowhome_(port_\w+)\{port=\"uplink\"\}", metrics, re.M))
        assert len(families) >= 8 and {f"{f}/uplink" for f in families} <= set(tel_ports), \
            f"port families {sorted(families)} against telemetry's {sorted(tel_ports)}"
        assert tel_stats["claims"] == claimed
        assert script_stats["claims"] == claimed, f"dpdk-telemetry.py: {script.stdout}"
        assert script_stats["rx_wire"] == tel_stats["rx_wire"]
        assert tel_stats["rx_wire"] == prom_value(
            metrics, 'flowhome_worker_packets_total{worker="0",counter="rx_wire"}')
        sock_out = attach(sock, "show", "stats", "worker").stdout  # the socket never cleared
        assert table_value(sock_out, "claims") == claimed
        assert table_value(sock_out, "rx_wire") == tel_stats["rx_wire"]
        send_syns(42000, 2)
        wait_counter(sock, claims, 21)
        out = con.run("show stats worker")
        assert table_value(out, "claims") == 2, f"console deltas after clear:\n{out}"

        os.write(con.fd, b"quit\n")
        con.expect("ipv6-flows", 30)
        print("console test: ok")
        return 0
    finally:
        with held_signals():
            if con is not None:
                con.close()
            subprocess.run(["ip", "netns", "del", NS], check=False)
            shutil.rmtree(f"/var/run/dpdk/{TAG}", ignore_errors=True)
            shutil.rmtree(f"/var/run/dpdk/{TAG}r", ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
