#!/usr/bin/env bash
# Aggregate-stage time: CaptureGen captures -> packets Parquet (CaptureParser, one probe per capture) -> timed
# `survey6 aggregate once --stage aggregate` over all of them.
#
#   bench/aggregate.sh [--captures 10] [--packets 1000000] [--runs 2] [--work DIR]
#
# The captures and the lake are kept in --work (default $TMPDIR/survey6-aggregate-bench) for reruns: generating
# 10 M packets takes minutes. Each timed run starts from an empty ledger and no aggregate outputs, so it rebuilds
# every dataset. Writes bench/out/aggregate.md (and prints it); docs/performance.md explains the figures.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
captures=10
packets=1000000
runs=2
work="${TMPDIR:-/tmp}/survey6-aggregate-bench"
survey6="${SURVEY6:-$root/survey6}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --captures) captures="$2"; shift 2 ;;
        --packets) packets="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "aggregate.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v /usr/bin/time >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y -qq time >/dev/null
mkdir -p "$work/captures" "$root/bench/out"
out="$root/bench/out/aggregate.md"
"$survey6" --help >/dev/null

# CaptureGen starts every capture at 2025-01-01 00:00 UTC; a different seed per capture gives different traffic.
date=2025-01-01
files=()
for i in $(seq "$captures"); do
    f="$work/captures/gen-$packets-seed$i.pcap"
    if [[ ! -s "$f" ]]; then
        echo "aggregate.sh: generating $f" >&2
        dotnet run --project "$root/bench/Survey6.CaptureGen" -c Release -- "$f.part" --packets "$packets" --seed "$i" >/dev/null
        mv "$f.part" "$f"
    fi
    files+=("$f")
done

data="$work/data"
lake="$data/lake"
stamp="$work/lake.stamp"
want="$captures x $packets"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    rm -rf "$data"; mkdir -p "$data"
    dotnet build "$root/bench/Survey6.Aggregator.Bench" -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
    echo "aggregate.sh: parsing into $lake (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    dotnet "$root/bench/Survey6.Aggregator.Bench/bin/Release/net10.0/$(dotnet --info >/dev/null; ls "$root/bench/Survey6.Aggregator.Bench/bin/Release/net10.0" | grep -m1 -E '^linux-')/Survey6.Aggregator.Bench.dll" \
        lake "$lake" "$date" "${files[@]}" | tee "$work/parse.txt" >&2
    echo "$want" >"$stamp"
fi

packet_rows=0
for f in "${files[@]}"; do packet_rows=$((packet_rows + $(capinfos -c -M "$f" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}'))); done
packets_bytes="$(du -cb "$lake"/packets | tail -1 | cut -f1)"

results="$work/runs.tsv"
: >"$results"
for r in $(seq "$runs"); do
    rm -f "$data"/aggregator.db* "$data"/aggregator-scheduler.db*
    for d in "$lake"/*/; do
        case "$(basename "$d")" in packets|captures|.staging) ;; *) rm -rf "$d" ;; esac
    done
    sync
    l0="$(cut -d' ' -f1 /proc/loadavg)"
    /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$work/time.txt" "$survey6" aggregate once --stage aggregate --data-dir "$data" --lake "$lake" >"$work/aggregate.log" 2>&1 \
        || { cat "$work/aggregate.log" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$r" "$(cat "$work/time.txt")" "$l0" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results"
    echo "aggregate.sh: run $r: $(tail -1 "$results")" >&2
done

{
    echo "# Aggregate stage over $(printf "%'d" "$packet_rows" 2>/dev/null || echo "$packet_rows") packets"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, Linux $(uname -r), $("$survey6" --version 2>/dev/null | head -1)."
    echo "$captures CaptureGen captures of $packets packets (seeds 1..$captures), one probe each, parsed into $((packets_bytes / 1000000)) MB of packets Parquet."
    echo
    echo "| run | wall (s) | user CPU (s) | system CPU (s) | peak RSS (MiB) | packets/s (wall) | load (1 min) before → after |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    while IFS=$'\t' read -r run wall user sys rss l0 l1; do
        echo "| $run | $wall | $user | $sys | $((rss / 1024)) | $(awk -v n="$packet_rows" -v w="$wall" 'BEGIN {printf "%.0f", n / w}') | $l0 → $l1 |"
    done <"$results"
    echo
    echo "Rows written by the last run (from the ledger):"
    echo
    if command -v sqlite3 >/dev/null; then
        sqlite3 "$data/aggregator.db" "select * from partitions" | cut -d'|' -f1,4
    else
        echo "(sqlite3 not installed)"
    fi
    [[ -f "$work/parse.txt" ]] && { echo; echo "Parse (when the lake was built):"; echo; sed 's/^/    /' "$work/parse.txt"; }
} >"$out"
cat "$out"
