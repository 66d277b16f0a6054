#!/usr/bin/env bash
# Aggregate-stage time: CaptureGen captures -> packets Parquet (CaptureParser, one probe per capture) -> timed
# `survey6 aggregate once --stage aggregate` over all of them.
#
#   bench/aggregate.sh [--captures 10] [--packets 1000000] [--runs 2] [--work DIR] [--incremental] [--compare LAKE]
#
# The captures and the lake are kept in --work (default $TMPDIR/survey6-aggregate-bench) for reruns: generating
# 10 M packets takes minutes. Each timed run starts from an empty ledger, no partials and no aggregate outputs, so
# it builds every dataset; after the runs, DuckDB alone times the plain GROUP BY of the flows over the same packets
# files (the engine's floor). The lake is parsed again when the aggregator's sources changed (by commit), and the parse
# is timed as a whole process, so the report also gives the whole pipeline's packets per CPU-second. With
# --incremental, the first run is over all captures but the last, the second adds the last one (a late capture for a
# day already aggregated), that pair --runs times (the ratio per round and its median), and a last run merges again
# from the partials the pair left (no ledger, no datasets): the merge alone. --compare LAKE then counts, per dataset, the rows of this lake's day that
# are not in LAKE's and the other way round (EXCEPT ALL), e.g. against the --work of a run with another SURVEY6 build
# and the same --captures and --packets. Writes bench/out/aggregate.md (and prints it); docs/performance.md explains
# the figures.
# The program timed is the server package's, precompiled as it ships (bench/shipped.sh builds it); SURVEY6=./survey6
# times the source tree's build instead, compiled as it runs, which is quicker to rebuild while iterating.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
captures=10
packets=1000000
runs=2
incremental=0
compare=""
work="${TMPDIR:-/tmp}/survey6-aggregate-bench"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --captures) captures="$2"; shift 2 ;;
        --packets) packets="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --incremental) incremental=1; shift ;;
        --compare) compare="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set/!p}' "$0"; exit 0 ;;
        *) echo "aggregate.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
# As the package ships, unless SURVEY6 names another build.
survey6="${SURVEY6:-$("$root/bench/shipped.sh")}"
source "$root/bench/need.sh"
need /usr/bin/time time capinfos tshark
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
# The parse stage's output depends on its code: a lake parsed by another version of the aggregator is parsed again.
want="$captures x $packets, aggregator $(git -C "$root" rev-parse HEAD:src/Survey6.Aggregator 2>/dev/null || echo unknown)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    rm -rf "$data"; mkdir -p "$data"
    dotnet build "$root/bench/Survey6.Aggregator.Bench" -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
    echo "aggregate.sh: parsing into $lake (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    # The whole process's CPU (user + system, every thread) and peak RSS: the parse half of the pipeline figure.
    /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$work/parse-time.txt" \
        dotnet "$root/bench/Survey6.Aggregator.Bench/bin/Release/net10.0/$(dotnet --info >/dev/null; ls "$root/bench/Survey6.Aggregator.Bench/bin/Release/net10.0" | grep -m1 -E '^linux-')/Survey6.Aggregator.Bench.dll" \
        lake "$lake" "$date" "${files[@]}" | tee "$work/parse.txt" >&2
    echo "$want" >"$stamp"
fi

packet_rows=0
for f in "${files[@]}"; do packet_rows=$((packet_rows + $(capinfos -c -M "$f" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}'))); done
# Every packets-per-CPU-second figure divides by this: a count that failed must stop the bench, not report zero.
(( packet_rows > 0 )) || { echo "aggregate.sh: could not count the captures' packets with capinfos" >&2; exit 1; }
packets_bytes="$(du -cb "$lake"/packets | tail -1 | cut -f1)"

results="$work/runs.tsv"
: >"$results"
# Each run's steps (the stage's debug log: wall and process CPU per step), as run<TAB>step<TAB>wall ms<TAB>CPU ms.
steps="$work/steps.tsv"
: >"$steps"

# No ledger and no datasets (the captures, packets and partials stay).
clear_datasets() {
    rm -f "$data"/aggregator.db* "$data"/aggregator-scheduler.db*
    for d in "$lake"/*/; do
        case "$(basename "$d")" in packets|captures|.staging) ;; *) rm -rf "$d" ;; esac
    done
}

# From nothing: no ledger, no partials, no datasets (the captures and packets stay).
clear_outputs() {
    clear_datasets
    rm -rf "$lake/.partials"
}

# One timed `aggregate once --stage aggregate`, appended to $results with its label.
timed_run() {
    sync
    local l0; l0="$(cut -d' ' -f1 /proc/loadavg)"
    /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$work/time.txt" env 'Logging__LogLevel__Survey6.Aggregator.Aggregate.AggregateStage=Debug' \
        "$survey6" aggregate once --stage aggregate --data-dir "$data" --lake "$lake" >"$work/aggregate.log" 2>&1 \
        || { cat "$work/aggregate.log" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$1" "$(cat "$work/time.txt")" "$l0" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results"
    sed -nE 's/.*Aggregate step (.*) of [0-9-]+: ([0-9]+) ms, ([0-9]+) ms of the process.s CPU.*/\1\t\2\t\3/p' "$work/aggregate.log" \
        | awk -F'\t' -v run="$1" '{print run "\t" $0}' >>"$steps"
    echo "aggregate.sh: $1: $(tail -1 "$results") ($(grep -o '[0-9]* inputs' "$work/aggregate.log" | head -1))" >&2
}

# DuckDB alone: the plain GROUP BY of the flows (per hour, as the dataset) over the same packets files, the engine's floor for this data.
floor_run() {
    sync
    local l0; l0="$(cut -d' ' -f1 /proc/loadavg)"
    /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$work/time.txt" "$survey6" query --data-dir "$data" --lake "$lake" --format csv \
        "SELECT count(*) AS flows, sum(packets) AS packets, sum(bytes) AS bytes FROM (
            SELECT probe_id, flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, encapsulation,
                time_epoch_ns // 3600000000000 AS hour, count(*) AS packets, sum(frame_len) AS bytes, min(time_epoch_ns) AS first_ns, max(time_epoch_ns) AS last_ns
            FROM read_parquet('$lake/packets/date=$date/*/*.parquet', hive_partitioning = false)
            GROUP BY ALL)" >"$work/floor.txt" 2>&1 || { cat "$work/floor.txt" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "DuckDB GROUP BY floor" "$(cat "$work/time.txt")" "$l0" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results"
    echo "aggregate.sh: floor: $(tail -1 "$results")" >&2
}

if (( incremental )); then
    # Hold the last capture back, aggregate the others from nothing, then bring it back and aggregate again.
    last="$(basename "$(ls -d "$lake/packets/date=$date"/probe=* | sort | tail -1)")"
    held="$work/held"
    # --runs rounds of the pair: on a shared VM single runs vary by a fifth, so the ratio is given per round and as the median.
    for r in $(seq "$runs"); do
        rm -rf "$held"; mkdir -p "$held/packets" "$held/captures"
        clear_outputs
        mv "$lake/packets/date=$date/$last" "$held/packets/"
        mv "$lake/captures/date=$date/$last" "$held/captures/"
        timed_run "first: $((captures - 1)) captures, round $r"
        mv "$held/packets/$last" "$lake/packets/date=$date/"
        mv "$held/captures/$last" "$lake/captures/date=$date/"
        timed_run "then +1 capture, round $r"
    done
    # The merge alone: the partials stay, the ledger and the datasets go.
    clear_datasets
    timed_run "merge only, partials kept"
else
    for r in $(seq "$runs"); do
        clear_outputs
        timed_run "$r"
    done
    floor_run
fi

{
    echo "# Aggregate stage over $(printf "%'d" "$packet_rows" 2>/dev/null || echo "$packet_rows") packets"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, Linux $(uname -r), $("$survey6" --version 2>/dev/null | head -1)."
    echo "$captures CaptureGen captures of $packets packets (seeds 1..$captures), one probe each, parsed into $((packets_bytes / 1000000)) MB of packets Parquet."
    echo
    echo "| run | wall (s) | user CPU (s) | system CPU (s) | peak RSS (MiB) | packets/s (wall) | load (1 min) before → after |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    while IFS=$'\t' read -r run wall user sys rss l0 l1; do
        pps="$(awk -v n="$packet_rows" -v w="$wall" 'BEGIN {printf "%.0f", n / w}')"
        (( incremental )) && pps="-" # the runs read different amounts
        echo "| $run | $wall | $user | $sys | $((rss / 1024)) | $pps | $l0 → $l1 |"
    done <"$results"
    if (( incremental )); then
        echo
        awk -F'\t' '
            $1 ~ /^first/ {c1 = $3 + $4}
            $1 ~ /^then/ {n++; later[n] = $3 + $4; first[n] = c1; ratio[n] = 100 * later[n] / c1}
            END {
                for (i = 1; i <= n; i++) printf "Round %d: the run that added one capture cost %.1f CPU-s against %.1f for the first run: %.0f %%.\n", i, later[i], first[i], ratio[i]
                # Median by insertion sort: n is a handful.
                for (i = 2; i <= n; i++) { v = ratio[i]; for (j = i - 1; j >= 1 && ratio[j] > v; j--) ratio[j + 1] = ratio[j]; ratio[j + 1] = v }
                printf "Median over %d rounds: %.0f %%.\n", n, n % 2 ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
            }' "$results"
    else
        echo
        awk -F'\t' -v n="$packet_rows" '$1 == "1" {c = $3 + $4} $1 ~ /floor/ {f = $3 + $4} END {if (f > 0) printf "Aggregate run 1: %.1f CPU-s, %.2f M packets per CPU-second; DuckDB GROUP BY floor: %.1f CPU-s (%.2f M/CPU-s); the stage costs %.1f times the floor.\n", c, n / c / 1e6, f, n / f / 1e6, c / f}' "$results"
    fi
    if [[ -s "$steps" ]]; then
        echo
        echo "Where each run's CPU went (the stage's steps, CPU-s of the whole process; wall s in brackets):"
        echo
        awk -F'\t' '
            !($1 in seen_run) {seen_run[$1] = 1; runs[++nr] = $1}
            !($2 in seen_step) {seen_step[$2] = 1; steps[++ns] = $2}
            {cpu[$1, $2] += $4; wall[$1, $2] += $3}
            END {
                printf "| step |"; for (r = 1; r <= nr; r++) printf " %s |", runs[r]; print ""
                printf "| --- |"; for (r = 1; r <= nr; r++) printf " ---: |"; print ""
                for (s = 1; s <= ns; s++) {
                    printf "| %s |", steps[s]
                    for (r = 1; r <= nr; r++) printf " %.2f (%.2f) |", cpu[runs[r], steps[s]] / 1000, wall[runs[r], steps[s]] / 1000
                    print ""
                }
            }' "$steps"
    fi
    if [[ -f "$work/parse-time.txt" ]]; then
        IFS=$'\t' read -r pwall puser psys prss <"$work/parse-time.txt"
        echo
        echo "Parse (when the lake was built; the bench's lake mode, whole process): $pwall s wall, $puser s user, $psys s system CPU, peak RSS $((prss / 1024)) MiB."
        # Not with --incremental, whose first run leaves a capture out.
        (( incremental )) || awk -F'\t' -v n="$packet_rows" -v p="$(awk -v u="$puser" -v s="$psys" 'BEGIN {print u + s}')" 'NR == 1 {c = $3 + $4} END {printf "Whole pipeline (parse + first aggregate run): %.1f CPU-s, %.2f M packets per CPU-second.\n", p + c, n / (p + c) / 1e6}' "$results"
    fi
    echo
    echo "Rows written by the last run (from the ledger):"
    echo
    if command -v sqlite3 >/dev/null; then
        sqlite3 "$data/aggregator.db" "select * from partitions" | cut -d'|' -f1,4
    else
        echo "(sqlite3 not installed)"
    fi
    if [[ -n "$compare" ]]; then
        echo
        echo "Rows of this lake's $date not in $compare, and the other way round (EXCEPT ALL):"
        echo
        echo "| dataset | rows here | rows there | here only | there only |"
        echo "| --- | ---: | ---: | ---: | ---: |"
        for d in flows connections addresses prefixes dns icmpv6 icmpv6_routers summary; do
            # flows and connections: files in probe folders (an older lake's one data.parquet matches too).
            files="*.parquet"; [[ "$d" == flows || "$d" == connections ]] && files="**/*.parquet"
            a="'$lake/$d/date=$date/$files'"; b="'$compare/$d/date=$date/$files'"
            row="$("$survey6" query --data-dir "$data" --lake "$lake" --format csv \
                "SELECT (SELECT count(*) FROM read_parquet($a)), (SELECT count(*) FROM read_parquet($b)),
                        (SELECT count(*) FROM (SELECT * FROM read_parquet($a) EXCEPT ALL SELECT * FROM read_parquet($b))),
                        (SELECT count(*) FROM (SELECT * FROM read_parquet($b) EXCEPT ALL SELECT * FROM read_parquet($a)))" | tail -1)"
            echo "| $d | ${row//,/ | } |"
        done
    fi
    [[ -f "$work/parse.txt" ]] && { echo; echo "Parse (when the lake was built):"; echo; sed 's/^/    /' "$work/parse.txt"; }
} >"$out"
cat "$out"
