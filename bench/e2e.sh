#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# End to end: generator -> net_memif -> X -> net_memif -> receiver, where X is
# flowhome (wire port in, local port out) and then dpdk-testpmd in io
# forwarding, in one run; prints both receive rates and their ratio.
#
#   bench/e2e.sh [BUILD_DIR] [SECONDS]      (defaults: build-bench, 12)
#
# Generator: dpdk-testpmd txonly, 64-byte UDP 192.0.2.100 -> VIP
# 203.0.113.10:80 with --txonly-multi-flow (many source addresses/ports):
# flowhome claims each new flow once, then serves it as a local hit.
# Receiver: dpdk-testpmd rxonly; its Rx-pps, median of the per-second
# samples after the first 3 s. CPUs: generator and receiver on CPU 0, the
# forwarder's worker (testpmd's forwarding lcore, flowhome's worker) on CPU 1,
# flowhome's main and control lcores on CPU 0. Nothing leaves the host: memif
# links are UNIX sockets under a private directory.
set -euo pipefail

build=${1:-build-bench}
secs=${2:-12}
flowhome="$build/src/flowhome"
testpmd=${TESTPMD:-/usr/bin/dpdk-testpmd}
[ -x "$flowhome" ] || { echo "e2e.sh: $flowhome not built" >&2; exit 1; }
[ -x "$testpmd" ] || { echo "e2e.sh: $testpmd missing (Debian package dpdk-dev)" >&2; exit 1; }

dir=$(mktemp -d /tmp/fh_e2e.XXXXXX)
tag=fhe2e$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "logs in $dir" >&2; else rm -rf "$dir"; fi
    rm -rf /var/run/dpdk/${tag}_*
}
trap cleanup EXIT INT TERM

eal() { # prefix lcores
    echo "--no-huge -m 512 --no-pci --no-shconf --file-prefix ${tag}_$1 --lcores $2 --log-level=warning"
}

# $1: name; starts generator (server on a.sock) and receiver (server on b.sock)
start_ends() {
    # shellcheck disable=SC2046
    "$testpmd" $(eal gen_$1 '0@0,1@0') --vdev "net_memif0,role=server,socket=$dir/a_$1.sock" \
        -- --forward-mode=txonly --txonly-multi-flow --tx-ip=192.0.2.100,203.0.113.10 \
        --tx-udp=1024,80 --eth-peer=0,02:00:00:00:00:01 --stats-period 1 --nb-cores=1 --total-num-mbufs=16384 \
        >"$dir/gen_$1.log" 2>&1 &
    pids+=($!)
    # shellcheck disable=SC2046
    "$testpmd" $(eal recv_$1 '0@0,1@0') --vdev "net_memif1,role=server,socket=$dir/b_$1.sock" \
        -- --forward-mode=rxonly --stats-period 1 --nb-cores=1 --total-num-mbufs=16384 >"$dir/recv_$1.log" 2>&1 &
    pids+=($!)
    sleep 2
}

stop_all() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

# Median Rx-pps of the receiver after the warm-up.
rx_pps() {
    grep -a 'Rx-pps:' "$dir/recv_$1.log" | awk '{print $2}' | tail -n +4 | sort -n |
        awk '{v[NR]=$1} END {if (NR == 0) print 0; else print v[int((NR + 1) / 2)]}'
}

# ---- flowhome in the middle ----
cat >"$dir/node.yaml" <<YAML
node: {id: 1, name: e2e}
eal: {memory_mb: 1024, huge_pages: false, file_prefix: ${tag}_fh, extra: ["--no-pci", "--no-shconf", "--log-level=warning"]}
ports:
  - {name: wire, device: "net_memif2,role=client,socket=$dir/a_fh.sock", role: wire, mac: "02:00:00:00:00:01", ipv4: 192.0.2.1}
  - {name: local, device: "net_memif3,role=client,socket=$dir/b_fh.sock", role: local}
lcores: {main: 0, control: 1, workers: [2], cpus: {0: 0, 1: 0, 2: 1}}
vips:
  - {address: 203.0.113.10, protocol: udp}
domains:
  - {name: dc, encap: geneve, next_hop_mac: "02:00:00:00:00:fe"}
peers:
  - {id: 2, address: 192.0.2.2, domain: dc}
table: {capacity_ipv4: 1048576}
YAML
start_ends fh
"$flowhome" -c "$dir/node.yaml" >"$dir/fh.log" 2>&1 &
pids+=($!)
sleep "$secs"
stop_all
fh=$(rx_pps fh)

# ---- testpmd io forwarding in the middle ----
start_ends io
# shellcheck disable=SC2046
"$testpmd" $(eal io '0@0,1@1') --vdev "net_memif2,role=client,socket=$dir/a_io.sock" \
    --vdev "net_memif3,role=client,socket=$dir/b_io.sock" \
    -- --forward-mode=io --nb-cores=1 --stats-period 5 --total-num-mbufs=16384 >"$dir/io.log" 2>&1 &
pids+=($!)
sleep "$secs"
stop_all
io=$(rx_pps io)

if [ "${E2E_VERBOSE:-0}" = 1 ]; then tail -40 "$dir/fh.log"; fi
grep -aE 'local_hits|claims |tx_local|rx_wire|drops' "$dir/fh.log" | head -8 || true
echo "flowhome:    $fh pps"
echo "testpmd io:  $io pps"
awk -v a="$fh" -v b="$io" 'BEGIN { if (b > 0) printf "ratio flowhome / testpmd io: %.2f\n", a / b }'
