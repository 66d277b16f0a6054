#!/usr/bin/env bash
# Loss-free capture rate: `survey6 probe run` and `tcpdump -w` capture the same traffic on the same
# veth interface while tcpreplay sends it at increasing rates from a network namespace on the far end.
#
#   bench/capture.sh [--rates 10000,20000,...] [--seconds 5] [--repeats 2] [--cpu-seconds 30]
#                    [--tcpdump-buffer KiB] [--packets N] [--work DIR] [--keep]
#
# Writes bench/out/capture.md (and prints it). docs/performance.md ("Probe capture rate") explains
# the method and the columns. Needs root (namespaces, capture), the .NET SDK, and installs tcpreplay,
# tcpdump and capinfos from Debian when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

rates="10000,25000,50000,100000,150000,200000,300000,400000,0"
seconds=5
repeats=2
cpu_seconds=30
tcpdump_buffer=32768   # KiB; survey6's default KernelBufferBytes (32 MiB), so both get the same ring
packets=200000
work=""
keep=0
survey6="${SURVEY6:-$root/survey6}"
# The probe's default filter: native IPv6, 6in4, Teredo.
filter='ip6 or (ip proto 41) or (udp port 3544)'

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rates) rates="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --cpu-seconds) cpu_seconds="$2"; shift 2 ;;
        --tcpdump-buffer) tcpdump_buffer="$2"; shift 2 ;;
        --packets) packets="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "capture.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [[ $EUID -ne 0 ]]; then echo "capture.sh: needs root (network namespaces and capture)" >&2; exit 1; fi
source "$root/bench/need.sh"
need tcpreplay tcpreplay tcpdump tcpdump capinfos tshark

suffix="$(printf '%04x%04x' $RANDOM $RANDOM)"
ns="s6cap-$suffix"
host_if="s6c${suffix}h"   # captured on, in the root namespace
far_if="s6c${suffix}n"    # the sender's end, inside $ns
[[ -n "$work" ]] || work="$(mktemp -d "${TMPDIR:-/tmp}/survey6-capture-bench.XXXXXX")"
mkdir -p "$work" "$root/bench/out"
out="$root/bench/out/capture.md"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$host_if" 2>/dev/null || true
    if [[ $keep -eq 0 ]]; then rm -rf "$work"; else echo "capture.sh: kept $work" >&2; fi
}
trap cleanup EXIT INT TERM

# --- traffic: the CaptureGen mix, reduced to what the probe's filter takes and what fits the MTU ----
gen="$work/gen.pcap"
replay="$work/replay.pcap"
dotnet run --project "$root/bench/Survey6.CaptureGen" -c Release -- "$gen" --packets "$packets" >/dev/null
tcpdump -r "$gen" -w "$replay" "($filter) and len <= 1514" 2>/dev/null
rm -f "$gen"
replay_packets="$(capinfos -c -M "$replay" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')"
replay_avg="$(capinfos -z "$replay" | awk -F: '/Average packet size/ {gsub(/ bytes| /, "", $2); print $2}')"

# --- the lab: a veth pair, far end in a namespace; IPv6 off on both ends so the kernel adds no
# traffic of its own (router solicitations, MLD) to what is counted ----------------------------------
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$far_if"
ip link set "$far_if" netns "$ns"
sysctl -qw "net.ipv6.conf.$host_if.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$far_if.disable_ipv6=1"
ip link set "$host_if" up
ip netns exec "$ns" ip link set "$far_if" up
ip netns exec "$ns" ip link set lo up

"$survey6" --help >/dev/null   # builds the launcher's binary once, outside any timing
s6bin="$root/.build/survey6/survey6"
[[ "$survey6" == "$root/survey6" ]] || s6bin="$survey6"

ticks="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# RSS counts the mapped packet ring (KernelBufferBytes) and the mapped runtime files; RssAnon is the process's own heap.
anon_kib() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
softnet_drops() { local s=0 d; for d in $(awk '{print $2}' /proc/net/softnet_stat); do s=$((s + 16#$d)); done; echo "$s"; }
load1() { awk '{print $1}' /proc/loadavg; }

start_tcpdump() {   # $1 = output file
    tcpdump -i "$host_if" -w "$1" -B "$tcpdump_buffer" -s 262144 -n "$filter" 2>"$1.err" &
    td_pid=$!
    pids+=("$td_pid")
    for _ in $(seq 100); do grep -q 'listening on' "$1.err" 2>/dev/null && return; sleep 0.1; done
    echo "capture.sh: tcpdump did not start: $(cat "$1.err")" >&2; exit 1
}

start_survey6() {   # $1 = state directory
    mkdir -p "$1"
    cat >"$1.json" <<EOF
{
  "Logging": { "LogLevel": { "Default": "Warning" } },
  "Probe": {
    "Id": "bench-capture",
    "Capture": { "Interfaces": [ "$host_if" ], "Filter": "$filter" }
  }
}
EOF
    "$s6bin" probe run --config "$1.json" --state-dir "$1" >"$1.log" 2>&1 &
    s6_pid=$!
    pids+=("$s6_pid")
    for _ in $(seq 300); do
        if "$s6bin" probe status --json --state-dir "$1" 2>/dev/null | grep -q '"state": *"capturing"'; then return; fi
        kill -0 "$s6_pid" 2>/dev/null || { echo "capture.sh: survey6 exited: $(cat "$1.log")" >&2; exit 1; }
        sleep 0.1
    done
    echo "capture.sh: survey6 did not reach capturing: $(cat "$1.log")" >&2; exit 1
}

stop() {   # $1 = pid, $2 = signal
    kill "-$2" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep_pids=()
    for p in "${pids[@]}"; do [[ "$p" == "$1" ]] || keep_pids+=("$p"); done
    pids=("${keep_pids[@]}")
}

frames_in() { # frames in the given capture files
    local n=0 f c
    for f in "$@"; do
        [[ -s "$f" ]] || continue
        c="$(capinfos -c -M "$f" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')"
        n=$((n + ${c:-0}))
    done
    echo "$n"
}

json_field() { grep -o "\"$2\": *[0-9]*" "$1" | head -1 | grep -o '[0-9]*$'; }

# One step: both captures running, tcpreplay sends `count` packets at `rate` (0 = as fast as it can).
# Appends one tab-separated line of raw figures to $3. Runs in the main shell (never in a pipeline),
# so that the EXIT trap knows the pids it started.
step() {
    step_no=$((step_no + 1))
    local rate="$1" count="$2" into="$3" dir="$work/step-$step_no"
    mkdir -p "$dir"
    start_tcpdump "$dir/tcpdump.pcap"
    start_survey6 "$dir/probe"
    local load_before soft_before s6_cpu_before td_cpu_before t0 t1
    load_before="$(load1)"
    soft_before="$(softnet_drops)"
    s6_cpu_before="$(cpu_ticks "$s6_pid")"
    td_cpu_before="$(cpu_ticks "$td_pid")"
    local speed=(--pps "$rate")
    [[ "$rate" -eq 0 ]] && speed=(--topspeed)
    t0="$(date +%s.%N)"
    ip netns exec "$ns" tcpreplay -i "$far_if" "${speed[@]}" --loop 0 --limit "$count" "$replay" >"$dir/tcpreplay.out" 2>&1
    t1="$(date +%s.%N)"
    local s6_cpu td_cpu rss hwm
    s6_cpu="$(( $(cpu_ticks "$s6_pid") - s6_cpu_before ))"
    td_cpu="$(( $(cpu_ticks "$td_pid") - td_cpu_before ))"
    rss="$(rss_kib "$s6_pid")"
    hwm="$(hwm_kib "$s6_pid")"
    local anon
    anon="$(anon_kib "$s6_pid")"
    # Let the kernel batches (100 ms timeout), the queue and the 2 s pcap statistics settle.
    sleep 3
    "$s6bin" probe status --json --state-dir "$dir/probe" >"$dir/status.json"
    stop "$td_pid" INT
    stop "$s6_pid" TERM
    local soft_after sent failed actual_pps
    soft_after="$(softnet_drops)"
    sent="$(awk '/Actual:/ {print $2; exit}' "$dir/tcpreplay.out")"
    failed="$(awk '/Failed packets:/ {print $3; exit}' "$dir/tcpreplay.out")"
    actual_pps="$(awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i ~ /pps/) {v = $(i-1)} } END {printf "%.0f", v}' "$dir/tcpreplay.out")"
    local td_frames td_kdrop s6_frames s6_kdrop s6_qdrop
    td_frames="$(frames_in "$dir/tcpdump.pcap")"
    td_kdrop="$(awk '/dropped by kernel/ {print $1}' "$dir/tcpdump.pcap.err")"
    s6_frames="$(frames_in "$dir"/probe/spool/*.pcapng)"
    # A file still .partial after the stop means the daemon did not finish closing it in time (the next
    # start would repair and publish it); its frames are counted separately, not as captured.
    local partial
    partial="$(frames_in "$dir"/probe/spool/*.partial)"
    [[ "$partial" -eq 0 ]] || echo "capture.sh: rate $rate: $partial frames left in .partial spool files after the stop" | tee -a "$work/notes.txt" >&2
    s6_kdrop="$(json_field "$dir/status.json" kernel_dropped)"
    s6_qdrop="$(json_field "$dir/status.json" queue_dropped)"
    local s6_capt
    s6_capt="$(json_field "$dir/status.json" captured)"
    local wall
    wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$rate" "$sent" "${failed:-0}" "$actual_pps" "$wall" "$td_frames" "${td_kdrop:-?}" "$s6_frames" "${s6_kdrop:-?}" "${s6_qdrop:-?}" \
        "$((soft_after - soft_before))" "$s6_cpu" "$td_cpu" "$rss" "$hwm" "$load_before" "$(load1)" "${s6_capt:-?}" "$anon" >>"$into"
    tail -1 "$into" >&2
    [[ $keep -eq 1 ]] || rm -rf "$dir"
}
step_no=0

fmt() { local n="$1" s=""; [[ "$n" =~ ^[0-9]+$ ]] || { echo "$n"; return; }; while [[ ${#n} -gt 3 ]]; do s=",${n: -3}$s"; n="${n:0:${#n}-3}"; done; echo "$n$s"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "–"; else printf "%.2f %%", 100 * (b - a) / b }'; }

raw="$work/raw.tsv"
: >"$raw"
IFS=',' read -ra rate_list <<<"$rates"
for r in $(seq "$repeats"); do
    for rate in "${rate_list[@]}"; do
        count=$((rate * seconds))
        [[ "$rate" -eq 0 ]] && count=$((400000 * seconds))
        echo "capture.sh: run $r, rate ${rate:-top} pps, $count packets" >&2
        printf '%s\t' "$r" >>"$raw"
        step "$rate" "$count" "$raw"
    done
done

# The CPU and memory figure: survey6 alone would be the cleanest, but the target is stated for the
# comparison setup, so it is measured the same way, over a longer window.
echo "capture.sh: ${cpu_seconds} s at 10,000 pps for CPU and RSS" >&2
step 10000 $((10000 * cpu_seconds)) "$work/cpu.tsv"
cpu_line="$(cat "$work/cpu.tsv")"

{
    echo "# Capture rate: survey6 probe run vs tcpdump -w"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, Linux $(uname -r),"
    echo "$(tcpdump --version 2>&1 | head -2 | tr '\n' ' '), $(tcpreplay --version 2>&1 | head -1), survey6 $("$s6bin" --version 2>/dev/null | head -1)."
    echo "Traffic: $(fmt "$replay_packets") CaptureGen frames matching \`$filter\` (mean $replay_avg bytes), looped;"
    echo "$seconds s per step; tcpdump -B $tcpdump_buffer KiB; survey6 defaults (32 MiB kernel buffer, 100 ms read timeout)."
    echo
    echo "| run | target pps | sent | achieved pps | tcpdump frames | tcpdump loss | tcpdump kernel drops | survey6 frames | survey6 loss | survey6 libpcap delivered / kernel drops / queue drops | softnet drops | survey6 CPU % | tcpdump CPU % | load (1 min) before → after |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    while IFS=$'\t' read -r run rate sent failed apps wall tdf tdk s6f s6k s6q soft s6c tdc rss hwm l0 l1 s6cap anon; do
        target="$(fmt "$rate")"; [[ "$rate" -eq 0 ]] && target="top speed"
        s6pct="$(awk -v t="$s6c" -v k="$ticks" -v w="$wall" 'BEGIN {printf "%.1f", 100 * t / k / w}')"
        tdpct="$(awk -v t="$tdc" -v k="$ticks" -v w="$wall" 'BEGIN {printf "%.1f", 100 * t / k / w}')"
        echo "| $run | $target | $(fmt "$sent") | $(fmt "$apps") | $(fmt "$tdf") | $(pct "$tdf" "$sent") | $tdk | $(fmt "$s6f") | $(pct "$s6f" "$sent") | $(fmt "$s6cap") / $s6k / $s6q | $soft | $s6pct | $tdpct | $l0 → $l1 |"
    done <"$raw"
    echo
    # Highest achieved rate of a run before that tool's first loss.
    for tool in tcpdump survey6; do
        col=6; [[ $tool == survey6 ]] && col=8
        awk -F'\t' -v c="$col" -v t="$tool" '
            { run = $1; if (!(run in broken)) broken[run] = 0
              if (!broken[run] && $(c + 1) == $3) best[run] = $5 > best[run] ? $5 : best[run]; else broken[run] = 1 }
            END { for (r in best) printf "- %s, run %s: highest loss-free achieved rate %d pps\n", t, r, best[r] }' "$raw" | sort
    done
    echo
    [[ -f "$work/notes.txt" ]] && { sed 's/^capture.sh: /- /' "$work/notes.txt"; echo; }
    IFS=$'\t' read -r rate sent failed apps wall tdf tdk s6f s6k s6q soft s6c tdc rss hwm l0 l1 s6cap anon <<<"$cpu_line"
    echo "At 10,000 pps for $wall s ($(fmt "$sent") packets sent, load $l0 → $l1): survey6 $(awk -v t="$s6c" -v k="$ticks" -v w="$wall" 'BEGIN {printf "%.1f", 100 * t / k / w}') % of one core,"
    echo "RSS $((rss / 1024)) MiB at the end (peak $((hwm / 1024)) MiB; anonymous $((anon / 1024)) MiB, the rest is the mapped packet ring and runtime files), $(fmt "$s6f") frames spooled ($(pct "$s6f" "$sent") loss);"
    echo "tcpdump $(awk -v t="$tdc" -v k="$ticks" -v w="$wall" 'BEGIN {printf "%.1f", 100 * t / k / w}') % of one core, $(fmt "$tdf") frames ($(pct "$tdf" "$sent") loss)."
} >"$out"
cat "$out"
