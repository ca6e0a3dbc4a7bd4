#!/usr/bin/env bash
# Simulator speed: CPU (user + sys) and wall seconds per simulated second for N peers, with the
# start-up (building the steady-state network) taken out by running each size twice, for SHORT
# and for LONG simulated seconds, and dividing the difference. CPU time is the figure to compare
# on a shared machine; the "÷ n·log₂n" column is flat when the cost grows as n·log n.
# Prints a markdown table for docs/performance.md.
#
# Usage: scripts/bench-simulator.sh [--task membership|average|train] [--crypto simulated|real]
#                                   [--sizes "256 512 1024"] [--short 30] [--long 90] [--loss 0.05]
#                                   [--binary PATH]   (a chorus binary to time instead of building one)
# Takes minutes to hours depending on the sizes (1024 membership peers: about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
task=membership crypto=simulated sizes="256 512 1024" short=30 long=90 loss=0.05 binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --task) task="$2"; shift 2 ;;
        --crypto) crypto="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --short) short="$2"; shift 2 ;;
        --long) long="$2"; shift 2 ;;
        --loss) loss="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "bench-simulator.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$binary" ]; then
    chorus="$binary"
else
    . scripts/lib/dependencies.sh
    ensure_swift
    ensure_libsodium
    swift build -c release >&2
    chorus="$(swift build -c release --show-bin-path)/chorus"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() {  # peers duration → "wall_s cpu_s bytes_per_peer_per_s peak_kb"
    CHORUS_PLOT=off /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$chorus" simulate --peers "$1" --duration "$2" --task "$task" \
        --crypto "$crypto" --loss "$loss" --sample-interval 10 --out "$work/run" >/dev/null 2>"$work/err" \
        || { cat "$work/err" >&2; exit 1; }
    read -r wall user sys kb < <(tail -1 "$work/time")
    traffic="$(python3 - "$work/run" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1] + "/series.csv")) if float(r["time"]) > 10]
print(round(sum(float(r["bytes_per_peer_per_s"]) for r in rows) / max(1, len(rows))))
PY
)"
    echo "$wall $(python3 -c "print($user + $sys)") $traffic $kb"
}

echo "| peers | start-up CPU (s) | CPU s per simulated s | wall s per simulated s | CPU per peer (ms per simulated s) | CPU ÷ n·log₂n (relative) | bytes sent per peer per s | peak memory (MB) |"
echo "|---|---|---|---|---|---|---|---|"
first=""
for n in $sizes; do
    echo "bench-simulator: $n peers, $short and $long simulated s ($task, $crypto crypto)" >&2
    read -r wa ca _ _ <<<"$(run "$n" "$short")"
    read -r wb cb traffic kb <<<"$(run "$n" "$long")"
    line="$(python3 - "$n" "$wa" "$ca" "$wb" "$cb" "$kb" "$short" "$long" "$traffic" "$first" <<'PY'
import math, sys
n, wa, ca, wb, cb, kb, short, long, traffic = int(sys.argv[1]), *map(float, sys.argv[2:9]), sys.argv[9]
first = sys.argv[10]
cpu = (cb - ca) / (long - short)
wall = (wb - wa) / (long - short)
per_nlogn = cpu / (n * math.log2(n))
relative = per_nlogn / float(first) if first and float(first) > 0 else 1.0
print(f"{per_nlogn}||| {n} | {max(0, ca - cpu * short):.1f} | {cpu:.3f} | {wall:.3f} | {1000 * cpu / n:.3f} | {relative:.2f} | {traffic} | {kb / 1024:.0f} |")
PY
)"
    [ -n "$first" ] || first="${line%%|||*}"
    echo "${line#*||}"  # the row, without the n·log n figure kept for the next sizes
done
