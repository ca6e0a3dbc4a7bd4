#!/usr/bin/env bash
# Regenerates the churn table of docs/experiments.md: 0, 1, 5 and 10 % of the peers replaced per
# minute (Poisson: a crash and a join each), over --duration seconds, for three setups:
#   real32      chorus experiment, 32 real processes              (about duration x 4 wall)
#   sim256      chorus simulate, 256 training peers, --crypto simulated
#   sim1024avg  chorus simulate, 1024 peers, --task average with 1 s gossip rounds, --crypto simulated
# Finished runs already in OUT (a summary.json whose "interruptedAt" is null) are kept, so an
# interrupted table resumes where it stopped; an interrupted run starts again from zero.
# Prints the markdown table (scripts/churn-table.py) and each run's convergence.png.
#
# Usage: scripts/churn-table.sh [--setups "real32 sim256 sim1024avg"] [--rates "0 1 5 10"]
#                               [--duration 600] [--out runs/churn] [--seed 1]
set -euo pipefail
cd "$(dirname "$0")/.."
setups="real32 sim256 sim1024avg" rates="0 1 5 10" duration=600 out=runs/churn seed=1
while [ $# -gt 0 ]; do
    case "$1" in
        --setups) setups="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "churn-table.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
. scripts/lib/dependencies.sh
chorus="$(release_chorus)"
mkdir -p "$out/schedules"

schedule() {  # rate in percent per minute -> schedule file
    local file="$out/schedules/poisson-$1.toml"
    if [ "$1" = 0 ]; then
        echo "# no churn: the baseline" > "$file"
    else
        printf '# %s %% of the starting peers replaced per minute (crash + join), from 30 s on.\n[poisson]\nrate_per_minute = %s\nmode = "replace"\nstart = 30\n' \
            "$1" "$(python3 -c "print($1 / 100)")" > "$file"
    fi
    echo "$file"
}

run() {  # setup rate -> runs it unless done
    local dir="$out/$1-$2" file
    file="$(schedule "$2")"
    if [ -f "$dir/summary.json" ] && python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1])).get("interruptedAt") is not None)' "$dir/summary.json"; then
        echo "churn-table.sh: $dir done already" >&2; return
    fi
    echo "churn-table.sh: $1 at $2 %/min for $duration s -> $dir ($(date +%H:%M))" >&2
    case "$1" in
        real32) "$chorus" experiment --peers 32 --duration "$duration" --seed "$seed" --schedule "$file" --out "$dir" --no-plot ;;
        sim256) "$chorus" simulate --peers 256 --duration "$duration" --seed "$seed" --crypto simulated --schedule "$file" --out "$dir" --no-plot ;;
        # 1 s gossip rounds: at 0.1 s, 1024 averaging peers cost about 5 CPU-s per simulated s.
        sim1024avg) "$chorus" simulate --peers 1024 --task average --gossip-interval 1 --duration "$duration" --seed "$seed" --crypto simulated --schedule "$file" --out "$dir" --no-plot ;;
        *) echo "churn-table.sh: unknown setup $1 (real32, sim256, sim1024avg)" >&2; exit 2 ;;
    esac
    python3 scripts/plot.py "$dir" >&2 || true
}

arguments=()
for setup in $setups; do
    dirs=()
    for rate in $rates; do run "$setup" "$rate"; dirs+=("$out/$setup-$rate"); done
    arguments+=("$setup=$(IFS=,; echo "${dirs[*]}")")
done
python3 scripts/churn-table.py --warmup 60 "${arguments[@]}"
