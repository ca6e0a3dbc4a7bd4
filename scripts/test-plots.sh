#!/usr/bin/env bash
# Tests scripts/plot.py and scripts/compare.py on small runs written here (a training run with a
# crash and a join, a membership run with empty columns, a run of one row): bad input is reported
# in one line with exit status 2, and the figures are drawn. The input checks run even where
# matplotlib cannot be had; the drawing checks are then skipped. Takes a few seconds.
# Usage: scripts/test-plots.sh
set -uo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "ok: $1"; }
fail() { echo "FAIL: $1" >&2; failures=$((failures + 1)); }

# run COMMAND...: runs it, keeping status, stdout and stderr in $status, $out, $err.
run() {
    "$@" >"$work/stdout" 2>"$work/stderr"
    status=$?
    out="$(cat "$work/stdout")"
    err="$(cat "$work/stderr")"
}

# expect_error WHAT STATUS TEXT... COMMAND: the command fails with STATUS and one stderr line
# holding every TEXT.
expect_error() {
    local what="$1" expected="$2"; shift 2
    local texts=()
    while [ "$1" != "--" ]; do texts+=("$1"); shift; done
    shift
    run "$@"
    if [ "$status" != "$expected" ]; then
        fail "$what: exit status $status, expected $expected (stderr: $err)"; return
    fi
    if [ "$(printf '%s\n' "$err" | wc -l)" != 1 ]; then
        fail "$what: expected one line on stderr, got: $err"; return
    fi
    for text in "${texts[@]}"; do
        case "$err" in
            *"$text"*) ;;
            *) fail "$what: stderr lacks '$text': $err"; return ;;
        esac
    done
    pass "$what ($err)"
}

# expect_image WHAT FILE: the last command succeeded and wrote FILE, a non-empty PNG.
expect_image() {
    if [ "$status" != 0 ]; then fail "$1: exit status $status ($err)"; return; fi
    if [ ! -s "$2" ]; then fail "$1: $2 missing or empty"; return; fi
    if [ "$(head -c 4 "$2" | tail -c 3)" != PNG ]; then fail "$1: $2 is not a PNG"; return; fi
    pass "$1"
}

header=time,live_peers,consensus_mean,consensus_max,accuracy_mean,accuracy_min,accuracy_max,loss_mean,view_agreement,bytes_per_peer_per_s,datagrams_dropped,datagrams_rejected
events_header=time,action,peer,seen_by_all_after

mkdir "$work/train" "$work/membership" "$work/one" "$work/nothing" "$work/malformed"
cat >"$work/train/series.csv" <<EOF
$header
0.000,4,0,0,0.1,0.1,0.1,2.3,1.0000,0.0,0,0
5.000,4,0.02,0.03,0.90,0.88,0.92,0.4,1.0000,1000.0,0,3
10.000,3,0.01,0.02,0.92,0.91,0.93,0.3,0.0000,900.0,12,0
15.000,4,0.008,0.01,0.93,0.92,0.94,0.25,1.0000,950.0,0,0
EOF
cat >"$work/train/events.csv" <<EOF
$events_header
7.000,crash,p3,2.500
12.000,join,p4,0.750
EOF
cat >"$work/train/summary.json" <<EOF
{"peers": 4, "seed": 7, "duration": 15, "task": "train", "crypto": "simulated", "real": true,
 "final": {"livePeers": 4, "accuracyMin": 0.92, "accuracyMean": 0.93, "consensusMax": 0.01},
 "falseFailures": 0, "someNewKey": [1, 2]}
EOF

cat >"$work/membership/series.csv" <<EOF
$header
0.000,4,,,,,,,1.0000,0.0,0,0
5.000,4,,,,,,,1.0000,800.0,40,0
10.000,3,,,,,,,0.6667,700.0,0,0
EOF
cat >"$work/membership/events.csv" <<EOF
$events_header
2.000,loss:0.05,network,
4.000,partition,network,
6.000,heal,network,
8.000,leave,p1,1.250
EOF
echo '{"peers": 4, "task": "membership", "real": false, "final": {"accuracyMin": null}}' >"$work/membership/summary.json"

# One row, an events.csv with only its header, no summary.json.
printf '%s\n0.000,2,0,0,0.1,0.1,0.1,2.3,1.0000,0.0,0,0\n' "$header" >"$work/one/series.csv"
echo "$events_header" >"$work/one/events.csv"

cp "$work/train/events.csv" "$work/malformed/"
sed '4s/0\.92,0\.91/0.9x,0.91/' "$work/train/series.csv" >"$work/malformed/series.csv"

echo "== bad input"
expect_error "plot.py: missing series.csv" 2 "series.csv" "not found" -- scripts/plot.py "$work/nothing"
expect_error "compare.py: missing series.csv" 2 "nothing/series.csv" -- \
    scripts/compare.py "$work/train" "$work/nothing"
expect_error "plot.py: missing directory" 2 "$work/absent" -- scripts/plot.py "$work/absent"
expect_error "plot.py: malformed number" 2 "series.csv" "line 4 (row 3)" "accuracy_mean" "0.9x" -- \
    scripts/plot.py "$work/malformed"
expect_error "compare.py: malformed number" 2 "line 4 (row 3)" -- \
    scripts/compare.py "$work/train" "$work/malformed"

echo "== event lines"
run python3 -c '
import sys
sys.path.insert(0, "scripts/lib")
import chorus_runs as runs
by_kind = {"crash": [60.0, 90.0], "join": [60.0], "leave": [120.0]}
crash, join = runs.event_line_style("crash", 60.0, by_kind), runs.event_line_style("join", 60.0, by_kind)
assert crash != join and ":" not in (crash, join), (crash, join)
assert crash[1] == join[1] and crash[0] != join[0], (crash, join)
assert runs.event_line_style("crash", 90.0, by_kind) == ":" and runs.event_line_style("leave", 120.0, by_kind) == ":"
'
if [ "$status" = 0 ]; then pass "actions at one time get interleaved dashes, a lone one is dotted"; else fail "event line styles: $err"; fi

echo "== zeros and edges"
run python3 -c '
import sys
sys.path.insert(0, "scripts/lib")
import chorus_runs as runs
kept, had_zero = runs.zeros_as_gaps([0.0, 1e-3, None, 2e-4])
assert kept == [None, 1e-3, None, 2e-4] and had_zero, kept
assert runs.zeros_as_gaps([1e-3, None]) == ([1e-3, None], False)
'
if [ "$status" = 0 ]; then pass "a consensus distance of 0 is a gap on the log axis, not a dive to a floor"; else fail "zeros: $err"; fi

echo "== drawing"
run scripts/plot.py "$work/train"
if [ "$status" = 3 ]; then
    echo "skipped: drawing checks, matplotlib is not available ($err)"
else
    expect_image "plot.py: training run" "$work/train/convergence.png"
    [ "$out" = "$work/train/convergence.png" ] || fail "plot.py printed '$out', not the image's path"

    run scripts/plot.py "$work/membership" --out "$work/images/membership.png" --title "membership"
    expect_image "plot.py: membership run (accuracy and consensus empty)" "$work/images/membership.png"

    run scripts/plot.py "$work/one"
    expect_image "plot.py: one row, no events" "$work/one/convergence.png"

    # An event at the run's last instant must be inside the frame, not on its edge. (Under the
    # interpreter that has matplotlib: Debian's, where plot.py found it.)
    python="$(python3 -c 'import matplotlib' 2>/dev/null && echo python3 || echo /usr/bin/python3)"
    run "$python" -c '
import sys
sys.path.insert(0, "scripts/lib")
import chorus_runs as runs
from matplotlib import pyplot
figure, axes = pyplot.subplots(2, 1, sharex=True)
runs.set_time_axis(list(axes), [0.0, 50.0, 100.0], [100.0])
low, high = axes[-1].get_xlim()
assert low < 0.0 and high > 100.0, (low, high)
runs.set_time_axis(list(axes), [0.0, 50.0], [80.0])
assert axes[-1].get_xlim()[1] > 80.0, axes[-1].get_xlim()
'
    if [ "$status" = 0 ]; then pass "events at the first and last instant are inside the frame"; else fail "time axis: $err"; fi

    mkdir "$work/dense"
    cp "$work/train/series.csv" "$work/train/summary.json" "$work/dense/"
    { echo "$events_header"; for i in $(seq 0 199); do echo "$((i % 15)).$((i % 10))00,crash,p$i,"; done; } \
        >"$work/dense/events.csv"
    run scripts/plot.py "$work/dense"
    expect_image "plot.py: 200 events, drawn as ticks" "$work/dense/convergence.png"

    run scripts/compare.py "$work/train" "$work/membership" "$work/one" --labels a,b,c \
        --out "$work/comparison.png"
    expect_image "compare.py: three runs" "$work/comparison.png"
    for line in "| a | 4 | 92.00 | 93.00 | 0.01 |" "| b | 3 | — | — | — |" \
                "| a | 7 | crash | p3 | 2.5 |" "| b | 2 | loss:0.05 | network | — |"; do
        case "$out" in
            *"$line"*) pass "compare.py table has '$line'" ;;
            *) fail "compare.py table lacks '$line':"$'\n'"$out" ;;
        esac
    done

    run scripts/compare.py "$work/train" "$work/membership" --out "$work/labels.png"
    case "$out" in
        *"train (real run"*"membership (simulated"*) pass "compare.py says which run is real and which simulated" ;;
        *) fail "compare.py does not say which run is real and which simulated:"$'\n'"$out" ;;
    esac

    mkdir "$work/here"
    run bash -c "cd '$work/here' && '$PWD/scripts/compare.py' ../train ../membership"
    expect_image "compare.py: default output in the current directory" "$work/here/comparison.png"
fi

if [ "$failures" != 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all plot checks passed"
