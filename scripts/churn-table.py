#!/usr/bin/env python3
"""The churn table of docs/experiments.md: accuracy, consensus and recovery time against the
rate of Poisson churn, for real processes and the simulator, from run directories.

Each run directory holds series.csv, events.csv and summary.json (chorus simulate or chorus
experiment). Runs are grouped by SETUP (a label) and ordered by churn rate; the rate-0 run of a
setup is its baseline. For every other run:

  recovery after an event  the level is 2 x the baseline's median consensus_max (the noise
                           floor without churn). An event "raised" consensus when consensus_max
                           went above the level within 15 s after it; its recovery is the time
                           from the event until consensus_max is back at or below the level
                           after that peak (at the runs' sample resolution).

Columns: final accuracy (mean, min), consensus_max (median and 95th percentile over the run
after WARMUP seconds), how many events raised consensus and their recovery (median and max),
detection (median seen_by_all_after of crashes), events.
"""

import argparse
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import chorus_runs as runs  # noqa: E402

PROGRAM = "churn-table.py"

EXAMPLE = """\
example (what scripts/churn-table.sh runs):
  scripts/churn-table.py --warmup 60 \\
      "real, 32 processes=runs/churn/real32-0,runs/churn/real32-1,runs/churn/real32-5,runs/churn/real32-10" \\
      "simulated, 256 training=runs/churn/sim256-0,…"
"""


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__, epilog=EXAMPLE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setups", nargs="+", metavar="SETUP=DIR,DIR,…",
                        help="a label and its run directories, the rate-0 run first")
    parser.add_argument("--warmup", type=float, default=60,
                        help="seconds left out at the start of each run (default 60)")
    return parser.parse_args()


def median(values):
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def percentile(values, fraction):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(fraction * len(values)))]


def churn_rate(run) -> float:
    """Fraction of the starting peers replaced per minute, from the run's events."""
    minutes = float(run.summary["duration"]) / 60
    crashes = sum(1 for e in run.events if e.kind in ("crash", "leave"))
    return crashes / max(1, int(run.summary["peers"])) / minutes


def steady_consensus(run, warmup):
    return [v for t, v in zip(run.times, run.series["consensus_max"]) if t >= warmup and v is not None]


EFFECT_WINDOW = 15.0  # seconds after an event in which a rise above the level counts as its effect


def recoveries(run, level, warmup):
    """For each crash, leave or join: None when consensus_max stayed at or below `level` for
    EFFECT_WINDOW seconds after it (no visible effect); otherwise the seconds from the event
    until consensus_max is back at or below the level after its peak (inf: never before the end)."""
    out = []
    pairs = [(t, v) for t, v in zip(run.times, run.series["consensus_max"]) if v is not None]
    for event in run.events:
        if event.kind not in ("crash", "leave", "join") or event.time < warmup:
            continue  # before the warm-up, consensus is still settling from the start
        start = event.time
        above = [(t, v) for t, v in pairs if start < t <= start + EFFECT_WINDOW and v > level]
        if not above:
            out.append(None)
            continue
        peak = max(above, key=lambda p: p[1])[0]
        back = next((t for t, v in pairs if t > peak and v <= level), None)
        out.append(float("inf") if back is None else back - start)
    return out


def fmt(value, pattern):
    return "–" if value is None else pattern.format(value)


def main() -> int:
    arguments = parse_arguments()
    print("| setup | churn (of the peers per minute) | accuracy mean / min at the end | consensus_max median / p95 after warm-up | events that raised consensus_max above 2 × the no-churn median: recovery median / max | crash seen by all (median) | events |")
    print("|---|---|---|---|---|---|---|")
    for setup in arguments.setups:
        label, _, directories = setup.partition("=")
        if not directories:
            print(f"{PROGRAM}: expected LABEL=DIR,DIR,…, got {setup!r}", file=sys.stderr)
            return 2
        loaded = runs.load_runs_or_exit(directories.split(","), PROGRAM)
        baseline = median(steady_consensus(loaded[0], arguments.warmup))
        level = None if baseline is None else 2 * baseline
        for run in loaded:
            final = run.summary["final"]
            consensus = steady_consensus(run, arguments.warmup)
            times = recoveries(run, level, arguments.warmup) if level is not None else []
            felt = [t for t in times if t is not None]
            recovered = [t for t in felt if t != float("inf")]
            missed = len(felt) - len(recovered)
            crashes = [e.seen_by_all_after for e in run.events
                       if e.kind == "crash" and e.seen_by_all_after is not None]
            accuracy = "–" if final["accuracyMean"] is None else \
                f"{100 * final['accuracyMean']:.1f} % / {100 * final['accuracyMin']:.1f} %"
            recovery = "–" if not times else \
                f"{len(felt)} of {len(times)}: {fmt(median(recovered), '{:.1f} s')} / " \
                f"{fmt(max(recovered, default=None), '{:.1f} s')}" + (f", {missed} not by the end" if missed else "")
            print(f"| {label} | {100 * churn_rate(run):.1f} % | {accuracy} | "
                  f"{fmt(median(consensus), '{:.2g}')} / {fmt(percentile(consensus, 0.95), '{:.2g}')} | "
                  f"{recovery} | {fmt(median(crashes), '{:.1f} s')} | {len(run.events)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
