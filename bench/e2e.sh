#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# End to end: generator -> net_memif -> X -> net_null, where X is flowhome
# (wire port in, local port out) or dpdk-testpmd in io forwarding; X gets a
# CPU of its own. Runs the two chains alternately, ROUNDS times each, and
# prints each round's rates, the median of the per-round ratios and the
# ratio of the two chains' median rates, and each forwarder's busy cycles
# per packet: over all rounds, and over the rounds in which both chains ran
# at two thirds or more of the run's highest rate (the VM's fast state,
# where the run saw it). Each round also gives flowhome's packets a busy
# poll, how full its bursts were.
#
#   bench/e2e.sh [BUILD_DIR] [SECONDS] [ROUNDS]   (defaults: build-bench, 8, 5)
#
# Generator: dpdk-testpmd txonly, 64-byte UDP 192.0.2.100 -> VIP
# 203.0.113.10:80 with --txonly-multi-flow (many source addresses/ports):
# flowhome claims each new flow once, then serves it as a local hit.
#
# What is measured: the rate at which X takes packets off the memif ring,
# read as the generator's Tx-pps (testpmd counts a packet as sent only when
# the ring had room; a refused one is a TX drop). The median of the
# generator's rate samples (one per second or two) from X's fourth second
# on (X starts 2 s after the generator). X sends to net_null, which never
# refuses, so X's intake is its throughput, provided X forwards what it takes: a flowhome round in
# which it did not start, dropped a packet or sent on fewer than 99 % of
# those it received fails the run.
#
# The rates are X's only if X, not the generator, is the slower: X's busy
# cycles per packet (cycles of its polls that received packets, over the
# packets it forwarded) hold either way, and their ratio is printed too.
#
# Why no receiving process: on two CPUs, a receiver would share a CPU with
# the generator, and the pair's time slicing, not X, would set the rate
# (seen: the same chain measured anywhere from 0.13 to 1.8 Mpps).
# CPUs: the generator and X's other lcores (flowhome's main and control,
# testpmd's main) on CPU 0; X's forwarding lcore on CPU 1. Nothing leaves
# the host: the memif link is a UNIX socket under a private directory.
# flowhome's lcores sleep only after E2E_IDLE_POLLS (default 100000) empty
# polls: its worker has a CPU of its own and polls through the gaps in the
# traffic as testpmd's forwarding lcore does, and its control lcore, which
# shares CPU 0 with the generator, has no work and sleeps. With the
# default node setting (sleep after 100 empty polls) the worker slept
# through a sixth of the run and took about half as many packets.
# E2E_FLOW_CACHE=false runs flowhome without its workers' flow cache (the
# traffic's 16 flows are what the cache holds: every packet after a flow's
# first is a hit).
set -euo pipefail

build=${1:-build-bench}
secs=${2:-8}
[ "$secs" -ge 6 ] || { echo "e2e.sh: SECONDS must be 6 or more (3 of start-up)" >&2; exit 1; }
rounds=${3:-5}
flowhome="$build/src/flowhome"
testpmd=${TESTPMD:-/usr/bin/dpdk-testpmd}
[ -x "$flowhome" ] || { echo "e2e.sh: $flowhome not built" >&2; exit 1; }
[ -x "$testpmd" ] || { echo "e2e.sh: $testpmd missing (Debian package dpdk-dev)" >&2; exit 1; }

dir=$(mktemp -d /tmp/fh_e2e.XXXXXX)
tag=fhe2e$$
pids=()
cleanup() {
    trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "logs in $dir" >&2; else rm -rf "$dir"; fi
    rm -rf /var/run/dpdk/${tag}_*
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

eal() { # prefix lcores
    echo "--no-huge -m 512 --no-pci --no-shconf --file-prefix ${tag}_$1 --lcores $2 --log-level=warning"
}

# $1: run name; the generator is the memif server on $dir/$1.sock.
start_generator() {
    # shellcheck disable=SC2046
    "$testpmd" $(eal "gen_$1" '0@0,1@0') --vdev "net_memif0,role=server,socket=$dir/$1.sock" \
        -- --forward-mode=txonly --txonly-multi-flow --tx-ip=192.0.2.100,203.0.113.10 \
        --tx-udp=1024,80 --eth-peer=0,02:00:00:00:00:01 --stats-period 1 --nb-cores=1 \
        --total-num-mbufs=16384 >"$dir/gen_$1.log" 2>&1 &
    pids+=($!)
    sleep 2
}

# SIGINT, then SIGKILL if it has not ended 10 s later: its exit status in
# $stopped_rc, and whether it had to be killed in $stopped_hung. (testpmd
# ends a SIGINT by dying of it, status 130.)
stop_one() {
    stopped_rc=0
    stopped_hung=1
    kill -INT "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do
        if ! kill -0 "$1" 2>/dev/null; then
            stopped_hung=0
            break
        fi
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || stopped_rc=$?
}

# The generator is frozen first, X stopped, then the generator killed, its
# samples all in its log by then. Stopped while it sends, the generator
# faults in the PMD at times: DPDK 22.11's net_memif unmaps a connection's
# regions when its peer goes (memif_disconnect(), on the control thread)
# while the forwarding lcore may still be sending from them. With X
# stopped first that was 3 of 4 io rounds; the other way round the fault
# would move into X, whose report the round needs. Frozen, the generator
# neither sends nor sees the disconnect.
stop_all() { # $1: run name
    local rc=0
    if ! kill -STOP "${pids[0]}" 2>/dev/null; then
        wait "${pids[0]}" 2>/dev/null || rc=$?
        echo "e2e.sh: $1: the generator ended before the round did (status $rc):" \
            "its rate is of fewer samples" >&2
    fi
    stop_one "${pids[1]}"
    if [ "$stopped_hung" = 1 ]; then
        echo "e2e.sh: $1: X did not stop within 10 s and was killed" >&2
    elif [ "$stopped_rc" -gt 128 ] && [ "$stopped_rc" != 130 ]; then
        echo "e2e.sh: $1: X ended by signal $((stopped_rc - 128))" >&2
    fi
    kill -KILL "${pids[0]}" 2>/dev/null || true
    wait "${pids[0]}" 2>/dev/null || true
    pids=()
}

# Lets X run SECONDS, and notes how many rate samples the generator had
# printed by X's fourth second: those are X's start-up. (testpmd means to
# print every stats period, but its loop sleeps a period and prints only
# when the TSC says a whole period has passed: where the TSC frequency is
# estimated high, every second period.)
run_x() { # $1: run name
    sleep 3
    grep -ac 'Tx-pps:' "$dir/gen_$1.log" >"$dir/$1.skip" || true
    sleep $((secs - 3))
}

# Median Tx-pps of the generator's samples from X's fourth second on.
intake_pps() {
    # awk, not grep, picks the lines: a log without a sample gives 0, where
    # grep's failure would end the script under pipefail.
    awk '/Tx-pps:/ {print $2}' "$dir/gen_$1.log" |
        tail -n +$(($(cat "$dir/$1.skip") + 1)) | sort -n |
        awk '{v[NR]=$1} END {if (NR == 0) print 0; else print v[int((NR + 1) / 2)]}'
}

# rx-wire, tx-local, the total of drops, busy-cycles and busy-polls from
# flowhome's stop report.
flowhome_counters() { # $1: run name
    awk '$1 == "rx-wire" { rx = $2 } $1 == "tx-local" { tx = $2 } $1 == "busy-cycles" { c = $2 }
        $1 == "busy-polls" { p = $2 }
        /^drops/ { in_drops = 1 } in_drops && $1 == "total" { drops = $2; in_drops = 0 }
        END { printf "%.0f %.0f %.0f %.0f %.0f\n", rx, tx, drops, c, p }' "$dir/$1.log"
}

# A flowhome round counts only if the node ran, dropped nothing and sent on
# what it received (its report at the stop).
check_flowhome() { # $1: run name
    local log="$dir/$1.log" rx tx drops
    grep -q 'running with' "$log" || { echo "e2e.sh: flowhome did not start ($1):" >&2; tail -20 "$log" >&2; exit 1; }
    read -r rx tx drops _ < <(flowhome_counters "$1")
    if [ "$rx" -eq 0 ] || [ "$drops" -gt 0 ] || [ $((100 * tx)) -lt $((99 * rx)) ]; then
        echo "e2e.sh: flowhome round $1: rx-wire $rx, tx-local $tx, drops $drops" >&2
        exit 1
    fi
}

# Busy cycles per packet: flowhome's worker counters at its stop, testpmd's
# --record-core-cycles line.
# Field $2 of flowhome_counters over field $3, to a tenth (0 over none).
flowhome_quotient() { # $1: run name
    flowhome_counters "$1" | awk -v n="$2" -v d="$3" '{ printf "%.1f", ($d > 0 ? $n / $d : 0) }'
}
busy_cycles_flowhome() { flowhome_quotient "$1" 4 1; }
# The packets of a busy poll: how full flowhome's bursts were (it takes up
# to 64 a poll; testpmd io up to 32, and the generator sends 32 at a time).
burst_flowhome() { flowhome_quotient "$1" 1 5; }
# testpmd's own cycles/packet divides by the packets received since its
# start, which net_memif's counters, reset when the link comes up, can
# make negative; io sends on every packet it takes, and net_null's count
# of them is sound.
busy_cycles_io() {
    # "total cycles=" in DPDK 22.11, "busy cycles=" in later releases.
    awk '/(total|busy) cycles=/ { sub(/.*(total|busy) cycles=/, ""); c = $1 + 0 }
        /Accumulated forward statistics/ { acc = 1 }
        acc && $1 == "TX-packets:" { tx = $2; acc = 0 }
        END { printf "%.1f", (tx > 0 ? c / tx : 0) }' "$dir/$1.log"
}

run_flowhome() { # $1: run name
    cat >"$dir/$1.yaml" <<YAML
node: {id: 1, name: e2e}
eal: {memory_mb: 1024, huge_pages: false, file_prefix: ${tag}_$1, extra: ["--no-pci", "--no-shconf", "--log-level=warning"]}
ports:
  - {name: wire, device: "net_memif2,role=client,socket=$dir/$1.sock", role: wire, mac: "02:00:00:00:00:01", ipv4: 192.0.2.1}
  - {name: local, device: "net_null0,no-rx=1", role: local}
lcores: {main: 0, control: 1, workers: [2], cpus: {0: 0, 1: 0, 2: 1}}
vips:
  - {address: 203.0.113.10, protocol: udp}
domains:
  - {name: dc, encap: geneve, next_hop_mac: "02:00:00:00:00:fe"}
peers:
  - {id: 2, address: 192.0.2.2, domain: dc}
table: {capacity_ipv4: 1048576, flow_cache: ${E2E_FLOW_CACHE:-true}}
backoff: {idle_polls: ${E2E_IDLE_POLLS:-100000}, pause_polls: 0, sleep_us: 50}
YAML
    start_generator "$1"
    "$flowhome" -c "$dir/$1.yaml" >"$dir/$1.log" 2>&1 &
    pids+=($!)
    run_x "$1"
    stop_all "$1"
}

run_io() { # $1: run name
    start_generator "$1"
    # shellcheck disable=SC2046
    "$testpmd" $(eal "$1" '0@0,1@1') --vdev "net_memif2,role=client,socket=$dir/$1.sock" \
        --vdev "net_null0,no-rx=1" -- --forward-mode=io --record-core-cycles --nb-cores=1 \
        --stats-period 5 --total-num-mbufs=16384 >"$dir/$1.log" 2>&1 &
    pids+=($!)
    run_x "$1"
    stop_all "$1"
}

ratios=()
fh_rates=()
io_rates=()
fh_cycles=()
io_cycles=()
for r in $(seq 1 "$rounds"); do
    run_flowhome "fh$r"
    check_flowhome "fh$r"
    run_io "io$r"
    fh=$(intake_pps "fh$r")
    io=$(intake_pps "io$r")
    ratio=$(awk -v a="$fh" -v b="$io" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }')
    ratios+=("$ratio")
    fh_rates+=("$fh")
    io_rates+=("$io")
    fhc=$(busy_cycles_flowhome "fh$r")
    ioc=$(busy_cycles_io "io$r")
    fh_cycles+=("$fhc")
    io_cycles+=("$ioc")
    echo "round $r: flowhome $fh pps, testpmd io $io pps, ratio $ratio;" \
        "busy cycles/packet flowhome $fhc, testpmd io $ioc;" \
        "flowhome $(burst_flowhome "fh$r") packets a busy poll"
done
if [ "${E2E_VERBOSE:-0}" = 1 ]; then tail -40 "$dir/fh1.log"; fi
grep -aE 'local-hits|claims |tx-local|rx-wire|busy-cycles|busy-polls|drops' "$dir/fh1.log" | head -9 || true
# Of an even count, the mean of the middle two.
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
awk -v m="$(printf '%s\n' "${ratios[@]}" | median)" -v n="$rounds" \
    'BEGIN {printf "median ratio flowhome / testpmd io over %d rounds: %.2f\n", n, m}'
# On a VM whose rate jumps between rounds (a neighbour's load), one chain's
# slow round pairs with the other's fast one and swings that round's ratio;
# the ratio of each chain's median rate is the steadier figure.
fh_med=$(printf '%s\n' "${fh_rates[@]}" | median)
io_med=$(printf '%s\n' "${io_rates[@]}" | median)
awk -v a="$fh_med" -v b="$io_med" -v n="$rounds" 'BEGIN {
    printf "median rates over %d rounds: flowhome %.2f Mpps, testpmd io %.2f Mpps, ratio %.2f\n",
        n, a / 1e6, b / 1e6, (b > 0 ? a / b : 0) }'
# Where the generator, not X, sets the rate (X idles between bursts), the
# rates say nothing of X; busy cycles per packet do: each forwarder's
# cycles in the polls that received packets, over those packets.
fhc_med=$(printf '%s\n' "${fh_cycles[@]}" | median)
ioc_med=$(printf '%s\n' "${io_cycles[@]}" | median)
awk -v a="$fhc_med" -v b="$ioc_med" -v n="$rounds" 'BEGIN {
    printf "median busy cycles per packet over %d rounds: flowhome %.1f, testpmd io %.1f;" \
        " io / flowhome (flowhome'"'"'s capacity / io'"'"'s) %.2f\n", n, a, b, (a > 0 ? b / a : 0) }'
# A VM that switches between a fast and a slow state (seen: chains at 13-18
# Mpps, then at 5-6, io's busy cycles a packet up by a tenth to double,
# flowhome's by a sixth) pairs one chain's fast round with the other's
# slow one, and the medians above mix states. The rounds in which both
# chains ran at two thirds or more of the run's highest rate ran in one
# state, the fast one if the run saw it at all (a run all in the slow state
# passes every round): their medians are the figures to compare across
# runs.
max_rate=$(printf '%s\n' "${fh_rates[@]}" "${io_rates[@]}" | sort -n | tail -1)
fast_fh=()
fast_io=()
if [ "$max_rate" -gt 0 ]; then
    for i in "${!fh_rates[@]}"; do
        if [ $((3 * fh_rates[i])) -ge $((2 * max_rate)) ] && [ $((3 * io_rates[i])) -ge $((2 * max_rate)) ]; then
            fast_fh+=("${fh_cycles[i]}")
            fast_io+=("${io_cycles[i]}")
        fi
    done
fi
if [ "${#fast_fh[@]}" -eq 0 ]; then
    echo "no round with both chains at two thirds or more of the highest rate ($max_rate pps)"
else
    ffm=$(printf '%s\n' "${fast_fh[@]}" | median)
    fim=$(printf '%s\n' "${fast_io[@]}" | median)
    awk -v a="$ffm" -v b="$fim" -v n="${#fast_fh[@]}" -v r="$rounds" -v m="$max_rate" 'BEGIN {
        printf "median busy cycles per packet over the %d of %d rounds with both chains at 2/3 of" \
            " %.2f Mpps or more: flowhome %.1f, testpmd io %.1f; io / flowhome %.2f\n",
            n, r, m / 1e6, a, b, (a > 0 ? b / a : 0) }'
fi
