#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Compares the callgrind instructions per packet of two commits:
#
#   bench/compare.sh A B      (commits, branches or tags; B defaults to HEAD)
#
# Each commit is checked out in a temporary git worktree, built in release
# mode (a commit without bench/ borrows this tree's), and measured with this
# tree's bench/callgrind.sh, so both sides run the same measurement.
# Prints, per path, A, B and the change in percent. Instruction counts do
# not depend on machine load: a change of more than ~1 % is the code's.
set -euo pipefail

a=${1:?usage: compare.sh A [B]}
b=${2:-HEAD}
repo=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
cleanup() {
    git -C "$repo" worktree remove --force "$tmp/a" 2>/dev/null || true
    git -C "$repo" worktree remove --force "$tmp/b" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

for side in a b; do
    rev=$a
    [ "$side" = b ] && rev=$b
    git -C "$repo" worktree add --detach "$tmp/$side" "$rev" >/dev/null 2>&1
    if [ ! -f "$tmp/$side/bench/meson.build" ]; then
        # An older commit without bench/: borrow the benchmark sources.
        cp -r "$repo/bench" "$tmp/$side/bench"
        grep -q "subdir('bench')" "$tmp/$side/meson.build" ||
            echo "subdir('bench')" >>"$tmp/$side/meson.build"
    fi
    meson setup "$tmp/$side/build" "$tmp/$side" -Dbuildtype=release >/dev/null
    ninja -C "$tmp/$side/build" bench/datapath_bench >/dev/null
    "$repo/bench/callgrind.sh" "$tmp/$side/build" >"$tmp/$side.txt"
done

echo "path                       $a -> $b (instructions/packet)"
join <(awk '{print $1"_"$2, $3}' "$tmp/a.txt" | sort) \
     <(awk '{print $1"_"$2, $3}' "$tmp/b.txt" | sort) 2>/dev/null |
    awk '{ printf "%-26s %8.1f %8.1f %+7.1f %%\n", $1, $2, $3, ($3 - $2) / $2 * 100 }'
