#!/usr/bin/env bash
# C&C heartbeat load: N simulated probes, each on its own mutual-TLS connection and Control.Connect
# stream, against a real `survey6 server run` on loopback.
#
#   bench/load.sh [--probes N] [--interval 10s] [--duration 60s] [--server URL --token T --ca-hash PIN] [--work DIR --keep]
#   bench/load.sh upload [--total 1GiB] [--file-size 256MiB] [--chunk 256KiB] [--server-data DIR] [--work DIR --keep]
#
# The second form times one probe uploading captures (docs/performance.md, "C&C upload throughput").
#
# Raises the open-file limit first (each probe is one socket in the load generator and one in the
# server). --work DIR keeps the server data directory and the probe identities there, so a second
# run with the same DIR skips the joins. docs/performance.md ("C&C heartbeat load") explains the columns.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want=65536
hard="$(ulimit -Hn)"
if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then want="$hard"; fi
ulimit -n "$want" || echo "load.sh: could not raise the open-file limit (now $(ulimit -n))" >&2
dotnet build "$root/bench/Survey6.LoadGen/Survey6.LoadGen.csproj" -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
exec dotnet "$root/bench/Survey6.LoadGen/bin/Release/net10.0/survey6-loadgen.dll" "$@"
