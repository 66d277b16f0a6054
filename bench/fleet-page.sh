#!/usr/bin/env bash
# Size and time of the fleet page and GET /api/v1/probes on a data directory with many probes, such as
# the one `bench/load.sh --probes 10000 --work DIR --keep` leaves in DIR/server.
#
#   bench/fleet-page.sh --data-dir DIR [--survey6 PATH] [--runs 5]
#
# Starts `survey6 server run` on a copy of DIR (HTTP on loopback, no probes connected), logs in as the
# admin with the password file the first start wrote, and prints one line per request:
# path, bytes, best and median seconds of --runs. docs/performance.md ("Fleet page and probe list") has results.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
survey6="$root/survey6" data="" runs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data-dir) data="$2"; shift 2 ;;
        --survey6) survey6="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        *) echo "fleet-page.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$data" && -f "$data/state.db" ]] || { echo "fleet-page.sh: --data-dir must hold a server's state.db" >&2; exit 2; }
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cp -a "$data" "$work/server"
port=$(( 20000 + RANDOM % 20000 ))
Logging__LogLevel__Default=Warning "$survey6" server run --data-dir "$work/server" --grpc-listen 127.0.0.1:0 --http-listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
url="http://127.0.0.1:$port"
for _ in $(seq 600); do curl -fs -o /dev/null "$url/login" && break; sleep 0.5; done
jar="$work/cookies"
token="$(curl -fs -c "$jar" "$url/login" | grep -o 'name="__af" value="[^"]*"' | sed 's/.*value="//; s/"$//')"
curl -fs -b "$jar" -c "$jar" -o /dev/null --data-urlencode "__af=$token" --data-urlencode "username=admin" \
    --data-urlencode "password=$(head -n1 "$work/server/web-admin-password")" "$url/login"
for path in / "/?limit=100" "/?sort=-last_heartbeat" "/?q=zzz-no-match" /api/v1/probes "/api/v1/probes?limit=1000"; do
    times=()
    for _ in $(seq "$runs"); do
        line="$(curl -fs -b "$jar" -o /dev/null -w '%{size_download} %{time_total}' "$url$path")" || line="failed 0"
        bytes="${line% *}"
        times+=("${line#* }")
    done
    sorted=($(printf '%s\n' "${times[@]}" | sort -g))
    printf '%-28s %10s bytes  best %ss  median %ss\n' "$path" "$bytes" "${sorted[0]}" "${sorted[$(( runs / 2 ))]}"
done
