#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Instructions per packet of the data path's main paths, counted by
# valgrind --tool=callgrind: deterministic, so a change shows regardless of
# machine noise. Runs datapath_bench --callgrind (1024 packets per path, a
# 4096-flow table) once per family and prints, per path, the inclusive
# instruction count of its cg_* function divided by its packets.
#
#   bench/callgrind.sh [BUILD_DIR [BENCH_OPTION...]]   (default: build-bench)
#
# BENCH_OPTIONs go to datapath_bench: "--vips 64" counts a node with 64 VIPs.
#
# Output lines: "IPv4 local_hit 412.3" (family, path, instructions/packet).
set -eu

build=${1:-build-bench}
[ $# -eq 0 ] || shift
bench="$build/bench/datapath_bench"
[ -x "$bench" ] || { echo "callgrind.sh: $bench not built" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not installed" >&2; exit 1; }

tmp=$(mktemp -d)
prefix="fh_cg_$$"
trap 'rm -rf "$tmp" "/var/run/dpdk/$prefix"' EXIT INT TERM

for fam in 4 6; do
    out="$tmp/cg.$fam"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bench" --no-huge -m 256 --no-pci --no-shconf --file-prefix "$prefix" -l 0 \
        --log-level=error -- --callgrind --families "$fam" "$@" >"$tmp/log.$fam" 2>&1 ||
        { echo "callgrind.sh: the IPv$fam run failed:" >&2; tail -20 "$tmp/log.$fam" >&2
          ! grep -q 'SIGILL' "$tmp/log.$fam" ||
              echo "callgrind.sh: valgrind cannot run some of this build's instructions (its -Dcpu); count a build with the default" >&2
          exit 1; }
    rm -rf "/var/run/dpdk/$prefix"
    # "path IPv4 cg_local_hit 1024 packets" lines give the packet counts.
    callgrind_annotate --inclusive=yes --threshold=100 "$out" >"$tmp/ann.$fam"
    grep '^path ' "$tmp/log.$fam" | while read -r _ family fn packets _; do
        ir=$(grep -E "[^A-Za-z_]${fn}\(" "$tmp/ann.$fam" | head -1 | awk '{gsub(",", "", $1); print $1}')
        [ -n "$ir" ] || { echo "callgrind.sh: no count for $fn" >&2; exit 1; }
        awk -v f="$family" -v n="${fn#cg_}" -v ir="$ir" -v p="$packets" \
            'BEGIN { printf "%s %s %.1f\n", f, n, ir / p }'
    done
done
