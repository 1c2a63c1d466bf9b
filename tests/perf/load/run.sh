#!/usr/bin/env bash
# The documented lookup load run (BENCHMARKS.md): the bench pipeline fills a data
# directory with PEOPLE generated people, then serves it with the public per-client rate
# limit lifted (wrk sends everything from one address), and wrk (Debian package wrk) runs
# POST /v1/passports/lookup and GET of the QR image over distinct certified people.
#
#   tests/perf/load/run.sh [PEOPLE] [DURATION] [CONNECTIONS...]   # defaults 100000 30s "16 64"
#
# CONNECTIONS is a list: each endpoint is run once per number of open connections (wrk
# keeps every connection busy, so more connections trade latency for throughput).
# Everything it prints goes to stdout; the data directory is removed at the end unless
# KEEP=1.
set -euo pipefail
people=${1:-100000}
duration=${2:-30s}
conns=${3:-16 64}
port=${PORT:-8089}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v wrk >/dev/null || { echo "wrk is not installed (Debian: apt-get install -y wrk)" >&2; exit 1; }

work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/vaxpass" ./cmd/vaxpass)
data="$work/data"
echo "== bench --people $people, then serving on 127.0.0.1:$port"
"$work/vaxpass" bench --people "$people" --data "$data" --load-files "$people" --crypto-time 1s \
  --serve "127.0.0.1:$port" > "$work/bench.json" 2> "$work/bench.err" &
server=$!
until grep -q "serving .* for load runs" "$work/bench.err" 2>/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/bench.err" >&2; exit 1; fi
  sleep 1
done
grep -E "^(machine|population)|end to end|invariants" "$work/bench.err" || true
lookups="$data/load/lookups.jsonl"
qrs="$data/load/qr_paths.txt"
echo "== $(wc -l < "$lookups") distinct people with a certificate"

for c in $conns; do
  for run in "lookup.lua $lookups" "qr.lua $qrs"; do
    set -- $run
    echo
    echo "== wrk -t2 -c$c -d$duration --latency -s tests/perf/load/$1 http://127.0.0.1:$port -- $(basename "$2")"
    echo "   $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    wrk -t2 -c"$c" -d"$duration" --latency -s "$here/$1" "http://127.0.0.1:$port" -- "$2"
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
