#!/usr/bin/env bash
# Times survey6 against the usual capture readers on one generated capture, on one core.
#
#   bench/run.sh [--big] [--packets N] [--prefix N] [--seed S] [--runs N] [--slow-runs N] [--cpu N]
#
# Rows: survey6 pcap stats / records, tshark -T fields, tcpdump -r -w /dev/null, dpkt, and a C loop
# over libpcap (the read floor). tshark and dpkt are too slow for the full capture and run on a
# prefix of it instead (the first --prefix packets; the generator guarantees it is a true prefix).
# Results go to bench/out/results.md; docs/performance.md explains the columns.
#
# SURVEY6 names the CLI to time (default ./survey6, the repository launcher; a relative path is
# taken from the repository root). Rows for survey6 commands that do not exist yet are reported as
# unavailable rather than failing the run.
set -euo pipefail

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }

PACKETS=2000000
PREFIX=200000
SEED=1
RUNS=3
SLOW_RUNS=3
CPU=0
BIG=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --big) BIG=1 ;;
    --packets) PACKETS="$2"; shift ;;
    --prefix) PREFIX="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --slow-runs) SLOW_RUNS="$2"; shift ;;
    --cpu) CPU="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if (( PREFIX > PACKETS )); then PREFIX=$PACKETS; fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SURVEY6="${SURVEY6:-./survey6}"
OUT=bench/out
PY=/usr/bin/python3   # Debian's interpreter: python3-dpkt is installed for it, not for any pyenv one
mkdir -p "$OUT"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Tools. Each is installed from Debian if missing, so the script runs on a fresh machine.
# ---------------------------------------------------------------------------------------------
ensure_tools() {
  local missing=()
  command -v tshark >/dev/null || missing+=(tshark)
  command -v tcpdump >/dev/null || missing+=(tcpdump)
  command -v hyperfine >/dev/null || missing+=(hyperfine)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v taskset >/dev/null || missing+=(util-linux)
  [[ -x /usr/bin/time ]] || missing+=(time)
  [[ -f /usr/include/pcap/pcap.h ]] || missing+=(libpcap-dev)
  [[ -x $PY ]] && $PY -c 'import dpkt' 2>/dev/null || missing+=(python3 python3-dpkt)
  if (( ${#missing[@]} == 0 )); then return; fi
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing ${missing[*]}"
  local sudo=()
  if (( EUID != 0 )); then sudo=(sudo); fi
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
  # wireshark-common asks whether non-root users may capture; the default answer is fine here.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# Captures. Cached under bench/out and keyed by the generator's source, so an edited generator
# never benchmarks a stale file.
# ---------------------------------------------------------------------------------------------
GEN_DLL=bench/Survey6.CaptureGen/bin/Release/net10.0/survey6-capturegen.dll
GEN_KEY=$(cat bench/Survey6.CaptureGen/*.cs bench/Survey6.CaptureGen/*.csproj | sha256sum | cut -c1-10)

build_generator() {
  log "building the capture generator"
  dotnet build bench/Survey6.CaptureGen -c Release -v quiet -nologo >/dev/null
}

# capture N -> prints the path of the (cached) capture of N packets
capture() {
  local n="$1" path="$OUT/capture-s$SEED-n$1-$GEN_KEY.pcap"
  if [[ ! -s $path ]]; then
    log "generating $n packets (seed $SEED)"
    dotnet "$GEN_DLL" "$path.tmp" --packets "$n" --seed "$SEED" | sed "1s#\.tmp:#:#" > "${path%.pcap}.txt"
    mv "$path.tmp" "$path"
  fi
  echo "$path"
}

prune_captures() {
  local f
  for f in "$OUT"/capture-*.pcap; do
    [[ -e $f && $f != *"-$GEN_KEY.pcap" ]] || continue
    log "removing stale $(basename "$f")"
    rm -f "$f" "${f%.pcap}.txt"
  done
}

warm() { cat "$@" > /dev/null; }

# ---------------------------------------------------------------------------------------------
# Measurement. One /usr/bin/time run per row gives peak RSS and doubles as the warm-up; then
# hyperfine times RUNS runs and the best is reported.
# ---------------------------------------------------------------------------------------------
# IP reassembly off: survey6 does none, so both tools do the same work and their output can be compared.
TSHARK_FIELDS=(-o ipv6.defragment:FALSE -o ip.defragment:FALSE -T fields -E header=y -E separator=/t -E occurrence=f
  -e frame.number -e frame.time_epoch -e frame.len -e frame.cap_len -e ipv6.src -e ipv6.dst
  -e ipv6.nxt -e ipv6.hlim -e ipv6.flow -e ipv6.tclass -e tcp.srcport -e tcp.dstport -e tcp.flags
  -e udp.srcport -e udp.dstport -e icmpv6.type -e icmpv6.code -e dns.qry.name -e dns.qry.type
  -e dns.flags.rcode -e dns.aaaa)

# Outputs of an earlier run must not leak into this run's report.
rm -f "$OUT"/hyperfine-*.json "$OUT"/rss-*.txt "$OUT"/stderr-*.txt "$OUT"/big-*.txt "$OUT"/big-*.json \
  "$OUT"/prefix.*.tsv "$OUT"/survey6-stats.json

MEASUREMENTS="$OUT/measurements.tsv"
printf 'name\tinput\tpackets\tbytes\tstatus\trss_kb\tjson\tcommand\n' > "$MEASUREMENTS"

# measure NAME INPUT_LABEL CAPTURE PACKETS RUNS STDOUT_FILE -- COMMAND...
measure() {
  local name="$1" label="$2" file="$3" packets="$4" runs="$5" stdout="$6"
  shift 7
  local slug bytes json rss status=ok
  slug=$(tr -c 'a-zA-Z0-9\n' '_' <<< "$name-$label")
  bytes=$(stat -c %s "$file")
  json="$OUT/hyperfine-$slug.json"
  log "$name on the $label capture: peak RSS"
  if ! /usr/bin/time -f %M -o "$OUT/rss-$slug.txt" taskset -c "$CPU" "$@" > "$stdout" 2> "$OUT/stderr-$slug.txt"; then
    status=failed
    rss=""
    log "$name failed; see $OUT/stderr-$slug.txt"
  else
    rss=$(tail -n 1 "$OUT/rss-$slug.txt")
    log "$name on the $label capture: $runs timed runs"
    local quoted
    quoted=$(printf '%q ' taskset -c "$CPU" "$@")
    hyperfine -N --runs "$runs" --export-json "$json" --command-name "$name" "$quoted" >&2 || status=failed
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$packets" "$bytes" "$status" "$rss" "$json" "$*" >> "$MEASUREMENTS"
}

unavailable() {
  printf '%s\t%s\t\t\t%s\t\t\t%s\n' "$1" "$2" "unavailable" "$3" >> "$MEASUREMENTS"
}

count_packets() { "$OUT/pcap_read" "$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["packets"])'; }

# A subcommand exists when its own help names it: help exits 0 even for unknown subcommands (it then
# describes the parent), so the exit status alone cannot tell.
survey6_has() {
  local help
  help=$("$SURVEY6" pcap "$1" --help 2>&1) || return 1
  [[ $help == *"pcap $1"* ]]
}

# ---------------------------------------------------------------------------------------------
ensure_tools
build_generator
prune_captures
FULL=$(capture "$PACKETS")
PREFIX_FILE=$(capture "$PREFIX")

log "building the libpcap read floor"
gcc -O2 -Wall -Wextra -o "$OUT/pcap_read" bench/readfloor/pcap_read.c -lpcap

log "warming the page cache"
warm "$FULL" "$PREFIX_FILE"
# Both files must hold exactly what was asked; a short file would make every rate wrong.
[[ $(count_packets "$FULL") == "$PACKETS" && $(count_packets "$PREFIX_FILE") == "$PREFIX" ]] || {
  echo "capture packet counts do not match --packets/--prefix" >&2; exit 1; }

P=$PACKETS
Q=$PREFIX
if survey6_has stats; then
  measure "survey6 pcap stats" full "$FULL" "$P" "$RUNS" "$OUT/survey6-stats.json" -- "$SURVEY6" pcap stats "$FULL"
  # The same command on the prefix, for a like-for-like comparison with the slow peers.
  measure "survey6 pcap stats" prefix "$PREFIX_FILE" "$Q" "$RUNS" /dev/null -- "$SURVEY6" pcap stats "$PREFIX_FILE"
else
  unavailable "survey6 pcap stats" full "$SURVEY6 pcap stats FILE"
fi
if survey6_has records; then
  measure "survey6 pcap records --format tshark" full "$FULL" "$P" "$RUNS" /dev/null -- "$SURVEY6" pcap records "$FULL" --format tshark
  taskset -c "$CPU" "$SURVEY6" pcap records "$PREFIX_FILE" --format tshark > "$OUT/prefix.survey6.tsv" || true
else
  unavailable "survey6 pcap records --format tshark" full "$SURVEY6 pcap records FILE --format tshark"
fi
measure "tcpdump -r -w /dev/null" full "$FULL" "$P" "$RUNS" /dev/null -- tcpdump -r "$FULL" -w /dev/null
measure "libpcap read floor (C)" full "$FULL" "$P" "$RUNS" /dev/null -- "$OUT/pcap_read" "$FULL"
measure "tshark -T fields" prefix "$PREFIX_FILE" "$Q" "$SLOW_RUNS" "$OUT/prefix.tshark.tsv" -- tshark -r "$PREFIX_FILE" "${TSHARK_FIELDS[@]}"
measure "dpkt (Ethernet/IPv6/TCP/UDP)" prefix "$PREFIX_FILE" "$Q" "$SLOW_RUNS" /dev/null -- "$PY" bench/dpkt_read.py "$PREFIX_FILE"

# survey6's tshark-format records must match tshark's, or its speed means nothing.
RECORDS_CHECK="not checked: survey6 pcap records is not available"
if [[ -s $OUT/prefix.survey6.tsv ]]; then
  if cmp -s "$OUT/prefix.tshark.tsv" "$OUT/prefix.survey6.tsv"; then
    RECORDS_CHECK="identical to tshark on the prefix capture ($PREFIX packets)"
  else
    RECORDS_CHECK="DIFFERS from tshark on the prefix capture: $( { diff "$OUT/prefix.tshark.tsv" "$OUT/prefix.survey6.tsv" || true; } | grep -c '^[<>]' || true) differing lines (diff $OUT/prefix.tshark.tsv $OUT/prefix.survey6.tsv)"
  fi
fi

BIG_FILE=""
if (( BIG )); then
  # About 1 GiB: scale the packet count by the mean record size of the full capture.
  BIG_PACKETS=$(( (1073741824 * PACKETS) / $(stat -c %s "$FULL") ))
  BIG_FILE=$(capture "$BIG_PACKETS")
  warm "$BIG_FILE"
  if survey6_has stats; then
    log "survey6 pcap stats on the ~1 GiB capture (memory check)"
    BIG_STATUS=ok
    /usr/bin/time -v -o "$OUT/big-survey6-time.txt" taskset -c "$CPU" "$SURVEY6" pcap stats "$BIG_FILE" > "$OUT/big-survey6-stats.json" 2> "$OUT/big-survey6-stderr.txt" || BIG_STATUS=failed
    echo "$BIG_STATUS" > "$OUT/big-survey6-status.txt"
  fi
  log "libpcap read floor on the ~1 GiB capture (reference)"
  /usr/bin/time -v -o "$OUT/big-floor-time.txt" taskset -c "$CPU" "$OUT/pcap_read" "$BIG_FILE" > /dev/null
fi

# ---------------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------------
{
  echo "model=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
  echo "cpus=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "dotnet=$(dotnet --version)"
  echo "tshark=$(tshark --version 2>/dev/null | head -n 1)"
  echo "tcpdump=$(tcpdump --version 2>&1 | head -n 1)"
  echo "libpcap=$(tcpdump --version 2>&1 | sed -n 2p)"
  echo "python=$($PY --version 2>&1), dpkt $($PY -c 'import dpkt; print(dpkt.__version__)')"
  echo "gcc=$(gcc --version | head -n 1)"
  echo "hyperfine=$(hyperfine --version)"
  echo "cpu_pinned=$CPU"
  echo "survey6=$SURVEY6"
  echo "records_check=$RECORDS_CHECK"
  echo "full=$FULL"
  echo "prefix=$PREFIX_FILE"
  echo "big=$BIG_FILE"
} > "$OUT/machine.txt"

$PY - "$OUT" <<'PYEOF'
import json, os, sys

out = sys.argv[1]
info = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(out, "machine.txt")))
rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(out, "measurements.tsv"))][1:]

def timing(path):
    if not path or not os.path.exists(path):
        return None
    r = json.load(open(path))["results"][0]
    return min(r["times"]), r["mean"], r["stddev"] or 0.0, len(r["times"])

measured = []
for name, label, packets, size, status, rss, path, command in rows:
    t = timing(path) if status == "ok" else None
    pps = int(packets) / t[0] if t else None
    measured.append((name, label, packets, size, status, rss, t, pps, command))

base = next((m[7] for m in measured if m[0] == "survey6 pcap stats" and m[1] == "full" and m[7]), None)

def fmt(v, spec):
    return format(v, spec) if v is not None else "–"

lines = [
    "# survey6 benchmark results",
    "",
    f"Machine: {info['model']}, {info['cpus']} CPUs, Linux {info['kernel']}, .NET SDK {info['dotnet']}. "
    f"Every command pinned to CPU {info['cpu_pinned']} with `taskset`; page cache warm.",
    "",
    f"Captures: full `{os.path.basename(info['full'])}`, prefix `{os.path.basename(info['prefix'])}` "
    "(its first packets; tshark and dpkt run on it because they are too slow for the full file).",
    "",
    "| Tool | Input | Packets | Best of n (s) | Mean ± sd (s) | Packets/s | MB/s | Packets/s vs `survey6 pcap stats` | Peak RSS (MiB) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for name, label, packets, size, status, rss, t, pps, command in measured:
    if status != "ok":
        lines.append(f"| {name} | {label} | – | {status} | – | – | – | – | – |")
        continue
    best, mean, sd, n = t
    mbps = int(size) / best / 1e6
    ratio = f"{pps / base:.3f}×" if base else "–"
    rss_mib = f"{int(rss) / 1024:.0f}" if rss else "–"
    lines.append(f"| {name} | {label} | {int(packets):,} | {best:.3f} (n={n}) | {mean:.3f} ± {sd:.3f} | "
                 f"{pps:,.0f} | {mbps:,.0f} | {ratio} | {rss_mib} |")

lines += ["", f"`survey6 pcap records --format tshark` output: {info['records_check']}.", ""]

big = info.get("big", "")
if big:
    def peak(path):
        for line in open(path):
            if "Maximum resident set size" in line:
                return int(line.split(":")[1]) / 1024
        return None
    def wall(path):
        for line in open(path):
            if "Elapsed (wall clock)" in line:
                return line.split("):", 1)[1].strip()
        return None
    size_gib = os.path.getsize(big) / 2**30
    lines += ["## Memory on a large capture", "", f"`{os.path.basename(big)}`: {size_gib:.2f} GiB.", "",
              "| Command | Status | Wall | Peak RSS (MiB) |", "| --- | --- | ---: | ---: |"]
    survey6_time = os.path.join(out, "big-survey6-time.txt")
    if os.path.exists(survey6_time):
        status = open(os.path.join(out, "big-survey6-status.txt")).read().strip()
        lines.append(f"| survey6 pcap stats | {status} | {wall(survey6_time)} | {peak(survey6_time):.0f} |")
    else:
        lines.append("| survey6 pcap stats | unavailable | – | – |")
    floor = os.path.join(out, "big-floor-time.txt")
    lines.append(f"| libpcap read floor (C) | ok | {wall(floor)} | {peak(floor):.0f} |")
    lines.append("")

lines += ["## Tools", ""] + [f"- {k}: {info[k]}" for k in ("tshark", "tcpdump", "libpcap", "python", "gcc", "hyperfine")]
lines += ["", "## Commands", ""]
for name, label, packets, size, status, rss, t, pps, command in measured:
    lines.append(f"- {name} ({label}): `{command}`")

composition = os.path.splitext(info["full"])[0] + ".txt"
if os.path.exists(composition):
    lines += ["", "## Capture composition", "", "```", open(composition).read().rstrip(), "```"]

text = "\n".join(lines) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
PYEOF
log "written $OUT/results.md"
