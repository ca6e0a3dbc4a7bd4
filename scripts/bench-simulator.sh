#!/usr/bin/env bash
# Simulator speed: CPU seconds per simulated second for N peers, with the start-up (building the
# steady-state network, O(n²) claims) measured apart by the simulator itself (`cpuSeconds` in
# summary.json). Each size runs --repeat times (default 3), in rounds of all sizes, and the median is
# reported: on a shared machine one run of the small sizes, which anchor the relative column, varied
# by 15 %. CPU time is the figure to compare; the "÷ n·log₂n" column is flat when the cost grows as
# n·log n.
# Prints a markdown table for docs/performance.md.
#
# Usage: scripts/bench-simulator.sh [--task membership|average|train] [--crypto simulated|real]
#                                   [--sizes "256 512 1024"] [--duration 120] [--loss 0.05]
#                                   [--repeat 3] [--binary PATH]   (a chorus binary to time instead of building one)
#                                   [--no-session-keys]   (the network-sealed format instead of per-pair keys)
# Takes minutes (4096 membership peers: about 20 s of start-up and 3.5 GB of memory per run).
set -euo pipefail
cd "$(dirname "$0")/.."
task=membership crypto=simulated sizes="256 512 1024" duration=120 loss=0.05 binary="" repeat=3 keys=""
while [ $# -gt 0 ]; do
    case "$1" in
        --task) task="$2"; shift 2 ;;
        --crypto) crypto="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --loss) loss="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        --no-session-keys) keys="--no-session-keys"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "bench-simulator.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$binary" ]; then
    chorus="$binary"
else
    . scripts/lib/dependencies.sh
    chorus="$(release_chorus)"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

measure() {  # peers → one more line of "startup run peak-KB" in $work/cpu-N (series kept for the traffic)
    CHORUS_PLOT=off /usr/bin/time -f "%M" -o "$work/time" "$chorus" simulate --peers "$1" --duration "$duration" --task "$task" \
        --crypto "$crypto" --loss "$loss" $keys --sample-interval 10 --out "$work/run-$1" >/dev/null 2>"$work/err" \
        || { cat "$work/err" >&2; exit 1; }
    python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))["cpuSeconds"]; print(c["startup"], c["run"], sys.argv[2])' \
        "$work/run-$1/summary.json" "$(tail -1 "$work/time")" >>"$work/cpu-$1"
}

report() {  # peers → one markdown row (and the n·log n figure of the first size, before "|||")
    python3 - "$work/run-$1" "$1" "$duration" "$work/cpu-$1" "$first" <<'PY'
import csv, math, statistics, sys
run, n, duration, runs, first = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
measured = [tuple(map(float, line.split())) for line in open(runs)]
cpu = {"startup": statistics.median(m[0] for m in measured), "run": statistics.median(m[1] for m in measured)}
kb = max(m[2] for m in measured)
rows = [r for r in csv.DictReader(open(run + "/series.csv")) if float(r["time"]) > 10]
traffic = round(sum(float(r["bytes_per_peer_per_s"]) for r in rows) / max(1, len(rows)))
per_second = cpu["run"] / duration
per_nlogn = per_second / (n * math.log2(n))
relative = per_nlogn / float(first) if first else 1.0
runs_text = ", ".join(f"{m[1] / duration:.4f}" for m in measured)
print(f"{per_nlogn}||| {n} | {cpu['startup']:.1f} | {per_second:.4f} | {1000 * per_second / n:.4f} | {relative:.2f} | {traffic} | {kb / 1024:.0f} | {runs_text} |")
PY
}

# Rounds of every size in turn rather than all runs of one size together: the machine's speed
# drifts over minutes, and the relative column compares sizes, so each round measures them all
# under about the same conditions.
for round in $(seq "$repeat"); do
    for n in $sizes; do
        echo "bench-simulator: round $round of $repeat, $n peers, $duration simulated s ($task, $crypto crypto)" >&2
        measure "$n"
    done
done
echo "| peers | start-up CPU (s) | CPU s per simulated s | CPU per peer (ms per simulated s) | CPU ÷ n·log₂n (relative) | bytes sent per peer per s | peak memory (MB) | each round (CPU s per simulated s) |"
echo "|---|---|---|---|---|---|---|---|"
first=""
for n in $sizes; do
    line="$(report "$n")"
    [ -n "$first" ] || first="${line%%|||*}"
    echo "|${line#*|||}"
done
