#!/usr/bin/env bash
# Runs every survey6 test. Installs missing Debian prerequisites first (needs root or sudo).
# Tiers (docs/testing.md): the unit tier runs first; a failure there stops the run before the slow tiers
# (capture, browser, packages, systemd). ./test.sh --fast runs the unit tier only. Other arguments go to dotnet test (a --filter narrows each tier).
# Last line: "N passed, N failed, N skipped", counted from the test results.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

fast=0
filter=""
args=()
while (($#)); do
    case $1 in
        --fast) fast=1 ;;
        --filter) filter="${2-}"; shift ;;
        --filter=*) filter="${1#--filter=}" ;;
        *) args+=("$1") ;;
    esac
    shift
done
tier() { if [[ -n $filter ]]; then echo "($1)&($filter)"; else echo "$1"; fi; }

packages=(tshark tcpdump libpcap0.8 libpcap-dev iproute2 iputils-ping python3-dpkt redis-server systemd mount chromium apt-utils gpg gpg-agent adduser init-system-helpers libssl3 debootstrap systemd-container)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}"
    sudo_cmd=""
    [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
    $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi

results="$root/.build/test-results"
rm -rf "$results"
mkdir -p "$results"
dotnet test "$root/Survey6.slnx" -c Release --logger "trx" --results-directory "$results" --filter "$(tier Category=unit)" "${args[@]}"
status=$?
if ((status == 0 && fast == 0)); then
    dotnet test "$root/Survey6.slnx" -c Release --no-build --logger "trx" --results-directory "$results" --filter "$(tier Category!=unit)" "${args[@]}"
    status=$?
elif ((status != 0 && fast == 0)); then
    echo "test.sh: the unit tier failed; the slow tiers were not run"
fi

passed=0; failed=0; skipped=0
shopt -s nullglob
trx=("$results"/*.trx)
for f in "${trx[@]}"; do
    counters=$(grep -o '<Counters [^>]*>' "$f" | head -1)
    get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
    passed=$((passed + $(get passed)))
    failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
    skipped=$((skipped + $(get notExecuted)))
done
if ((status != 0 && failed == 0)); then
    failed=1 # the build or the test host failed before any result was recorded
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit $((status != 0 ? 1 : 0))
