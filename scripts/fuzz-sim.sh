#!/usr/bin/env bash
# Swarm-tests the simulated peers: `chorus simulate fuzz` over a range of seeds, each seed a whole
# run with every option and fault drawn from it (docs/experiments.md, "Fuzzing").
# Usage: scripts/fuzz-sim.sh [SEEDS] [MINUTES] [OUT]
#   SEEDS    N, A-B or a comma-separated list (default 1-2000)
#   MINUTES  stop after this many minutes, keeping what ran (default: no limit)
#   OUT      directory for fuzz.csv and failing seeds' runs (default fuzz-runs)
# Exits 1 when a seed fails (its replay command is printed), 0 when every seed run passed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dependencies.sh
ensure_swift
ensure_libsodium

seeds="${1:-1-2000}"
minutes="${2:-0}"
out="${3:-fuzz-runs}"
echo "== building (release)"
swift build -c release --product chorus >/dev/null
bin="$(swift build -c release --show-bin-path)/chorus"
echo "== the corpus of earlier failures (scripts/fuzz-corpus), each replayed exactly"
for replay in scripts/fuzz-corpus/*.json; do
    if ! "$bin" simulate --replay "$replay" --out "$out/corpus/$(basename "$replay" .json)" --no-plot >/dev/null 2>&1; then
        echo "FAILED: $replay (chorus simulate --replay $replay --out DIR shows why)"
        exit 1
    fi
    echo "   passed: $(basename "$replay")"
done
echo "== chorus simulate fuzz --seeds $seeds (${minutes:-0} min limit) into $out"
status=0
if [ "$minutes" != "0" ]; then
    timeout -s INT "$((minutes * 60))" "$bin" simulate fuzz --seeds "$seeds" --out "$out" --keep-going || status=$?
else
    "$bin" simulate fuzz --seeds "$seeds" --out "$out" --keep-going || status=$?
fi
# 130: the time limit stopped the sweep after a whole seed; what ran passed.
if [ "$status" = 130 ]; then echo "time limit reached; every seed run passed"; exit 0; fi
exit "$status"
