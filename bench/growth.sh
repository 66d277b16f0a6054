#!/usr/bin/env bash
# Growth of one day: does the cost of a run follow the new data, and does memory stay flat, as the day fills?
#
#   bench/growth.sh [--probes 10] [--batches 10] [--packets 1000000] [--distinct] [--work DIR]
#
# A simulated day of --probes probes whose captures arrive in --batches batches, one capture per probe per batch
# (--packets packets each, CaptureGen's traffic with the probe's own seed, moved to hour B of 2025-01-01 with
# editcap; with --distinct each batch is new traffic, seed probe + 1000 x batch, so that the day's distinct flows,
# names and addresses grow with it instead of repeating). Each batch is put where the C&C stores uploads
# (DATA/captures/PROBE/DATE/SHA.pcapng and its manifest; the bench's `store` mode), then `survey6 aggregate once --data-dir DATA` runs every stage with the
# product's defaults (parse, aggregate, cleanup; Aggregator:MemoryLimit 1 GiB). Per batch the whole process's CPU
# (user + system) and peak RSS are recorded, with the packets of the day so far. Writes bench/out/growth.md (and
# prints it); docs/performance.md explains the figures. probes x batches x packets is the day's size: the defaults
# give 100 M packets (about 22 GB of captures in --work, which is removed first).
# The program run is the server package's, precompiled as it ships (bench/shipped.sh builds it); SURVEY6=./survey6
# runs the source tree's build instead, compiled as it runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
probes=10
batches=10
packets=1000000
work="${TMPDIR:-/tmp}/survey6-growth-bench"
distinct=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --probes) probes="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        --packets) packets="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --distinct) distinct=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set/!p}' "$0"; exit 0 ;;
        *) echo "growth.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
# As the package ships, unless SURVEY6 names another build.
survey6="${SURVEY6:-$("$root/bench/shipped.sh")}"
((batches <= 24)) || { echo "growth.sh: at most 24 batches (one per hour of the day)" >&2; exit 2; }
source "$root/bench/need.sh"
need /usr/bin/time time editcap tshark
"$survey6" --help >/dev/null
version="$("$survey6" --version)"
dotnet build "$root/bench/Survey6.Aggregator.Bench" -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
dotnet build "$root/bench/Survey6.CaptureGen" -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
bench_dll="$root/bench/Survey6.Aggregator.Bench/bin/Release/net10.0/$(ls "$root/bench/Survey6.Aggregator.Bench/bin/Release/net10.0" | grep -m1 -E '^linux-')/Survey6.Aggregator.Bench.dll"
gen_dll="$root/bench/Survey6.CaptureGen/bin/Release/net10.0/survey6-capturegen.dll"

rm -rf "$work"
mkdir -p "$work/base" "$work/batch" "$root/bench/out"
data="$work/data"
mkdir -p "$data"
out="$root/bench/out/growth.md"
# Away from any ./appsettings.json, which the aggregator would read: the product's defaults only.
cd "$work"
results="$work/runs.tsv"
: >"$results"
steps="$work/steps.tsv"
: >"$steps"

# One base capture per probe; each batch is the same traffic moved to its hour (editcap -t), so every batch costs
# the same to parse and the growth, if any, is the day's.
for p in $(seq "$probes"); do
    dotnet "$gen_dll" "$work/base/probe$p.pcap" --packets "$packets" --seed "$p" >/dev/null
done

day_packets=0
for b in $(seq 0 $((batches - 1))); do
    for p in $(seq "$probes"); do
        f="$work/batch/probe$p-hour$b.pcap"
        base="$work/base/probe$p.pcap"
        if ((distinct && b > 0)); then
            base="$work/batch/probe$p-seed.pcap"
            dotnet "$gen_dll" "$base" --packets "$packets" --seed $((p + 1000 * b)) >/dev/null
        fi
        editcap -t $((b * 3600)) "$base" "$f"
        dotnet "$bench_dll" store "$data" "bench-$(printf %02d "$p")" "$f" >/dev/null
    done
    day_packets=$((day_packets + probes * packets))
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$work/time.txt" env 'Logging__LogLevel__Survey6.Aggregator.Aggregate.AggregateStage=Debug' \
        "$survey6" aggregate once --data-dir "$data" >"$work/run-$b.log" 2>&1 \
        || { echo "growth.sh: batch $b failed:" >&2; tail -20 "$work/run-$b.log" >&2; exit 1; }
    # The aggregate stage's steps, as batch<TAB>step<TAB>CPU ms<TAB>peak RSS so far MiB<TAB>managed heap MiB<TAB>RSS MiB.
    sed -nE 's/.*Aggregate step (.*) of [0-9-]+: [0-9]+ ms, ([0-9]+) ms of the process.s CPU; RSS ([0-9]+) MiB, peak so far ([0-9]+) MiB, managed heap ([0-9]+) MiB.*/\1\t\2\t\4\t\5\t\3/p' "$work/run-$b.log" \
        | awk -F'\t' -v b="$b" '{print b "\t" $0}' >>"$steps"
    IFS=$'\t' read -r wall user sys rss <"$work/time.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$b" "$((probes * packets))" "$day_packets" "$wall" "$user" "$sys" "$rss" >>"$results"
    printf 'batch %s: %s new packets, day %s, %.1f CPU-s, peak RSS %d MiB (load %s)\n' "$b" "$((probes * packets))" "$day_packets" \
        "$(echo "$user + $sys" | bc)" "$((rss / 1024))" "$load" >&2
done

{
    echo "# Growth of one day: $probes probes x $batches batches x $packets packets$( ((distinct)) && echo ", new traffic in every batch")"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg), survey6 $version"
    echo
    echo "| batch | new packets | day so far | wall s | CPU s | µs CPU per new packet | peak RSS MiB |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    while IFS=$'\t' read -r b new day wall user sys rss; do
        cpu=$(echo "$user + $sys" | bc)
        printf '| %s | %s | %s | %s | %s | %.2f | %d |\n' "$b" "$new" "$day" "$wall" "$cpu" "$(echo "$cpu * 1000000 / $new" | bc -l)" "$((rss / 1024))"
    done <"$results"
    echo
    echo "The aggregate stage's steps per batch (CPU-s of the whole process, from its debug log); the rest of a batch's CPU is the parse and the process:"
    echo
    awk -F'\t' '
        !($1 in seen_batch) {seen_batch[$1] = 1; batches[++nb] = $1}
        !($2 in seen_step) {seen_step[$2] = 1; names[++ns] = $2}
        {cpu[$1, $2] += $3}
        END {
            printf "| batch |"; for (s = 1; s <= ns; s++) printf " %s |", names[s]; print ""
            printf "| ---: |"; for (s = 1; s <= ns; s++) printf " ---: |"; print ""
            for (b = 1; b <= nb; b++) {
                printf "| %s |", batches[b]
                for (s = 1; s <= ns; s++) printf " %.1f |", cpu[batches[b], names[s]] / 1000
                print ""
            }
        }' "$steps"
    echo
    echo "Where each batch's memory went: the process's peak RSS when the aggregate stage's first step ended (the parse"
    echo "and that step), the step in which the peak last grew and the peak after it, and the runtime's largest committed"
    echo "heap and largest RSS at the end of a step, what the process kept between steps (MiB; beside the runtime's heap"
    echo "is DuckDB, whose buffers are bounded at half of Aggregator:MemoryLimit, and native memory beside them):"
    echo
    echo "| batch | peak after the first step | step of the batch's peak | peak | largest managed heap | largest RSS between steps |"
    echo "| ---: | ---: | --- | ---: | ---: | ---: |"
    awk -F'\t' '
        !($1 in first) {first[$1] = $4; top[$1] = $4; where[$1] = $2; order[++n] = $1}
        $4 > top[$1] {top[$1] = $4; where[$1] = $2}
        $5 > heap[$1] {heap[$1] = $5}
        $6 > kept[$1] {kept[$1] = $6}
        END {for (i = 1; i <= n; i++) {b = order[i]; printf "| %s | %d | %s | %d | %d | %d |\n", b, first[b], where[b], top[b], heap[b], kept[b]}}' "$steps"
    echo
    echo "Lake: $(du -sh "$data/lake" | cut -f1); captures left in the store: $(find "$data/captures" -name '*.pcapng' | wc -l)"
} | tee "$out"
