#!/usr/bin/env bash
# Stored size per rotation on a silent link: does a probe store its own traffic with the C&C?
#
#   sudo bench/own-traffic.sh [--rotate SECONDS] [--seconds N] [--marker]
#
# The setup of a first deployment: a veth pair, the server listening on the address of one end
# (survey6 server run --grpc-listen '[ADDR]:PORT'), a probe in a network namespace on the other end,
# joined with the printed command and running the product's defaults apart from its interface and
# Spool:RotateAge (--rotate, default 10 s). Nothing else crosses the link, unless --marker sends one
# echo request a second from the namespace. After --seconds (default 150: the uploader's 30 s quiet
# period and some rotations) it lists every capture the server stored, oldest first: size, packets,
# and packets to or from the server's port. Needs root, iproute2, ping and tcpdump.
#
# SURVEY6 names the CLI (default ./survey6, the repository launcher), e.g.
# SURVEY6="dotnet /path/to/survey6.dll" to measure another build.
set -euo pipefail

usage() { sed -n '2,15s/^# \{0,1\}//p' "$0"; }

ROTATE=10
SECONDS_TOTAL=150
MARKER=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rotate) ROTATE="$2"; shift ;;
    --seconds) SECONDS_TOTAL="$2"; shift ;;
    --marker) MARKER=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
read -r -a survey6 <<<"${SURVEY6:-./survey6}"
[[ $(id -u) -eq 0 ]] || { echo "own-traffic.sh: needs root (namespaces, capture)" >&2; exit 1; }

id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
ns="s6o-$id"; outer="s6oh$id"; inner="s6on$id"
prefix="fd5e:6a00:${id:0:4}:${id:4:4}"
server="$prefix::1"
dir=$(mktemp -d /tmp/s6own.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip link del "$outer" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

ip netns add "$ns"
ip link add "$outer" type veth peer name "$inner" netns "$ns"
ip addr add "$server/64" dev "$outer" nodad
ip link set "$outer" up
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$prefix::2/64" dev "$inner" nodad
ip -n "$ns" link set "$inner" up

Server__TlsNames__0="$server" "${survey6[@]}" server run --data-dir "$dir/server" --grpc-listen "[$server]:0" \
  --http-listen 127.0.0.1:0 --no-aggregator >"$dir/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do grep -q '^grpc: ' "$dir/server.log" && break; sleep 0.1; done
port=$(sed -n 's/^grpc: .*\]:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
[[ -n "$port" ]] || { cat "$dir/server.log" >&2; exit 1; }

join=$("${survey6[@]}" server token create --data-dir "$dir/server" --ttl 1h --uses 1 | sed -n 's/^ *survey6 probe join //p' | head -1)
read -r -a join_args <<<"$join"
ip netns exec "$ns" "${survey6[@]}" probe join "${join_args[@]}" --state-dir "$dir/probe" >/dev/null
printf '{"Probe":{"Capture":{"Interfaces":["%s"]},"Spool":{"RotateAge":"%s"}}}\n' "$inner" "$(date -u -d "@$ROTATE" +%H:%M:%S)" >"$dir/probe-config.json"
ip netns exec "$ns" "${survey6[@]}" probe run --config "$dir/probe-config.json" --state-dir "$dir/probe" >"$dir/probe.log" 2>&1 &
pids+=($!)
if ((MARKER)); then
  ip netns exec "$ns" ping -6 -n -q -i 1 -w "$SECONDS_TOTAL" "$server" >/dev/null 2>&1 &
  pids+=($!)
fi

echo "server [$server]:$port, probe in $ns on $inner, rotation ${ROTATE} s, marker $((MARKER)), ${SECONDS_TOTAL} s"
sleep "$SECONDS_TOTAL"

echo "stored captures, oldest first (KB, packets, packets to or from the server's port):"
n=0
while read -r _ file; do
  n=$((n + 1))
  packets=$(tcpdump -nr "$file" 2>/dev/null | wc -l)
  own=$(tcpdump -nr "$file" "tcp port $port" 2>/dev/null | wc -l)
  awk -v n="$n" -v bytes="$(stat -c %s "$file")" -v packets="$packets" -v own="$own" \
    'BEGIN { printf "  %2d  %6.1f KB  %4d packets  %4d own\n", n, bytes / 1024, packets, own }'
done < <(find "$dir/server/captures" -name '*.pcapng' -printf '%T@ %p\n' 2>/dev/null | sort -n)
((n > 0)) || echo "  none: the probe closed no file with a packet in it"
echo "probe: $(ip netns exec "$ns" "${survey6[@]}" probe status --state-dir "$dir/probe" | sed -n 's/^frames: *//p')"
