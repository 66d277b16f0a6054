#!/usr/bin/env bash
# Prints the path of survey6 as the server package ships it (deploy/debian/build: self-contained, ReadyToRun), built
# from this tree and unpacked into DIR, for the benches that run survey6:
#
#   SURVEY6="$(bench/shipped.sh [DIR])" bench/aggregate.sh ...
#
# ./survey6 is a framework-dependent build whose code is compiled as it runs; the package's is precompiled, which
# changes what a short run costs. DIR defaults to $TMPDIR/survey6-shipped; the package is built again when what it is
# built from changed since (by commit, and by content when uncommitted).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-${TMPDIR:-/tmp}/survey6-shipped}"
program="$dir/root/usr/lib/survey6-server/survey6"
# What the package is built from: the sources, the protocol, the packaging and the build's shared settings and versions.
inputs=(src proto deploy Directory.Build.props Directory.Packages.props global.json)
want="$(git -C "$root" ls-tree HEAD -- "${inputs[@]}" | sha256sum | cut -c1-16) $(git -C "$root" diff HEAD -- "${inputs[@]}" | sha256sum | cut -c1-16)"
if [[ ! -x "$program" || ! -f "$dir/stamp" || "$(cat "$dir/stamp")" != "$want" ]]; then
    rm -rf "$dir"
    mkdir -p "$dir/deb"
    echo "shipped.sh: building the server package into $dir" >&2
    deb="$("$root/deploy/debian/build" --only server --out "$dir/deb" | tail -1)"
    dpkg-deb -x "$deb" "$dir/root"
    echo "$want" >"$dir/stamp"
fi
echo "$program"
