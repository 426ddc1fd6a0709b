#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Compares the callgrind instructions per packet of two commits:
#
#   bench/compare.sh A B      (commits, branches or tags; B defaults to HEAD)
#
# Each commit is checked out in a temporary git worktree, built in release
# mode with this tree's bench/ (the benchmark's sources and its fixture, not
# the commit's), and measured with this tree's bench/callgrind.sh, so both
# sides run the same measurement and only the code under it differs. A
# commit that this bench/ does not build against (an interface it uses
# changed) is measured with its own bench/, and the script says so: a
# change in the benchmark then shows as a change, and a path that only one
# side measures shows "-" on the other.
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
    git -C "$repo" worktree add --quiet --detach "$tmp/$side" "$rev"
    mv "$tmp/$side/bench" "$tmp/$side.own-bench" 2>/dev/null || true
    cp -r "$repo/bench" "$tmp/$side/bench"
    grep -q "subdir('bench')" "$tmp/$side/meson.build" ||
        echo "subdir('bench')" >>"$tmp/$side/meson.build"
    meson setup "$tmp/$side/build" "$tmp/$side" -Dbuildtype=release >/dev/null
    if ! ninja -C "$tmp/$side/build" bench/datapath_bench >"$tmp/$side.build.log" 2>&1; then
        [ -d "$tmp/$side.own-bench" ] ||
            { cat "$tmp/$side.build.log" >&2; echo "compare.sh: $rev does not build" >&2; exit 1; }
        echo "compare.sh: this bench/ does not build against $rev; measuring it with its own" >&2
        rm -rf "$tmp/$side/bench"
        mv "$tmp/$side.own-bench" "$tmp/$side/bench"
        ninja -C "$tmp/$side/build" bench/datapath_bench >/dev/null
    fi
    "$repo/bench/callgrind.sh" "$tmp/$side/build" >"$tmp/$side.txt"
done

# A path one side does not measure (a commit's own bench/ from before it
# was added) shows "-" on that side.
echo "path                       $a -> $b (instructions/packet)"
join -a 1 -a 2 -e - -o 0,1.2,2.2 <(awk '{print $1"_"$2, $3}' "$tmp/a.txt" | sort) \
     <(awk '{print $1"_"$2, $3}' "$tmp/b.txt" | sort) |
    awk '$2 == "-" || $3 == "-" { printf "%-26s %8s %8s\n", $1, $2, $3; next }
         { printf "%-26s %8.1f %8.1f %+7.1f %%\n", $1, $2, $3, ($3 - $2) / $2 * 100 }'
