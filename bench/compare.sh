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
# change in the benchmark then shows as a change. A path that only one side
# measures is an error.
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

paths() { awk '{print $1"_"$2}' "$tmp/$1.txt" | sort; }
if [ "$(paths a)" != "$(paths b)" ]; then
    echo "compare.sh: the two sides measured different paths:" >&2
    diff <(paths a) <(paths b) >&2 || true
    exit 1
fi
echo "path                       $a -> $b (instructions/packet)"
join <(awk '{print $1"_"$2, $3}' "$tmp/a.txt" | sort) \
     <(awk '{print $1"_"$2, $3}' "$tmp/b.txt" | sort) |
    awk '{ printf "%-26s %8.1f %8.1f %+7.1f %%\n", $1, $2, $3, ($3 - $2) / $2 * 100 }'
