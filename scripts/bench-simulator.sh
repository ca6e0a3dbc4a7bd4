#!/usr/bin/env bash
# Simulator speed: wall seconds per simulated second for N peers, with the start-up (building the
# steady-state network) taken out by running each size twice, for SHORT and for LONG simulated
# seconds, and dividing the difference. Prints a markdown table for docs/performance.md.
#
# Usage: scripts/bench-simulator.sh [--task membership|average|train] [--crypto simulated|real]
#                                   [--sizes "256 512 1024"] [--short 30] [--long 90] [--loss 0.05]
# Takes minutes to hours depending on the sizes (1024 membership peers: about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
task=membership crypto=simulated sizes="256 512 1024" short=30 long=90 loss=0.05
while [ $# -gt 0 ]; do
    case "$1" in
        --task) task="$2"; shift 2 ;;
        --crypto) crypto="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --short) short="$2"; shift 2 ;;
        --long) long="$2"; shift 2 ;;
        --loss) loss="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "bench-simulator.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
. scripts/lib/dependencies.sh
ensure_swift
ensure_libsodium
swift build -c release >&2
chorus="$(swift build -c release --show-bin-path)/chorus"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

wall() {  # peers duration → "wall_seconds bytes_per_peer_per_s peak_kb"
    /usr/bin/time -f "%M" -o "$work/time" "$chorus" simulate --peers "$1" --duration "$2" --task "$task" \
        --crypto "$crypto" --loss "$loss" --sample-interval 10 --out "$work/run" >/dev/null 2>"$work/err" \
        || { cat "$work/err" >&2; exit 1; }
    python3 - "$work/run" <<'PY' | tr '\n' ' '
import csv, json, sys
run = sys.argv[1]
rows = [r for r in csv.DictReader(open(run + "/series.csv")) if float(r["time"]) > 10]
traffic = sum(float(r["bytes_per_peer_per_s"]) for r in rows) / max(1, len(rows))
print(json.load(open(run + "/summary.json"))["wallSeconds"], round(traffic))
PY
    tail -1 "$work/time"
}

echo "| peers | start-up (s) | wall s per simulated s | per peer (ms) | bytes sent per peer per s | peak memory (MB) |"
echo "|---|---|---|---|---|---|"
for n in $sizes; do
    echo "bench-simulator: $n peers, $short and $long simulated s ($task, $crypto crypto)" >&2
    read -r a _ _ <<<"$(wall "$n" "$short")"
    read -r b traffic kb <<<"$(wall "$n" "$long")"
    python3 - "$n" "$a" "$b" "$kb" "$short" "$long" "$traffic" <<'PY'
import sys
n, a, b, kb, short, long, traffic = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
rate = (b - a) / (long - short)
print(f"| {n} | {max(0, a - rate * short):.1f} | {rate:.3f} | {1000 * rate / n:.3f} | {traffic} | {kb / 1024:.0f} |")
PY
done
