#!/usr/bin/env python3
"""Overlays several runs (say a simulated and a real run of one schedule) in one figure.

Panels: consensus_max (log), test accuracy (mean line, translucent min-max band), live peers;
each run in its own colour, its events as vertical lines in that colour and its own line
style, each event's action written above the top panel. Also prints, as markdown tables, each
run's final values and how long each event took to be seen by every live peer.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in scripts/lib/ of the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import chorus_runs as runs  # noqa: E402

PROGRAM = "compare.py"
EVENT_STYLES = ["--", ":", "-.", (0, (5, 2, 1, 2, 1, 2))]

EXAMPLE = """\
example:
  scripts/compare.py runs/rq32-sim runs/rq32-real --labels simulated,real \\
      --out docs/rq32.png

Exit status: 0 drawn (tables and the image's path on stdout), 2 missing or malformed input,
3 matplotlib missing (sudo apt-get install python3-matplotlib).
"""


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", metavar="DIR", nargs="+",
                        help="run directories holding series.csv, events.csv and summary.json")
    parser.add_argument("--out", metavar="FILE", type=Path, default=Path("comparison.png"),
                        help="image to write (format from the extension; "
                             "default ./comparison.png)")
    parser.add_argument("--labels", metavar="A,B,...",
                        help="one label per DIR (default: the directory's name and the "
                             "crypto/real marker of its summary.json)")
    arguments = parser.parse_args()
    if arguments.labels is not None:
        arguments.labels = arguments.labels.split(",")
        if len(arguments.labels) != len(arguments.dirs):
            parser.error(f"--labels has {len(arguments.labels)} label(s) "
                         f"for {len(arguments.dirs)} DIR(s)")
    return arguments


def default_label(run: runs.Run) -> str:
    """'rq32 (real run, real crypto)' or 'rq32 (simulated, simulated crypto)': what tells runs
    of one schedule apart."""
    markers = []
    if "real" in run.summary:
        markers.append("real run" if run.summary["real"] is True else "simulated")
    if run.summary.get("crypto"):
        markers.append(f"{run.summary['crypto']} crypto")
    name = run.directory.name
    return f"{name} ({', '.join(markers)})" if markers else name


@dataclass
class Shown:
    """A run with how it is drawn."""
    run: runs.Run
    label: str
    line: dict  # options of its lines: colour, width, markers for a lone sample
    event_style: str | tuple


def styled(all_runs: list[runs.Run], labels: list[str]) -> list[Shown]:
    """A colour and an event line style per run; earlier runs get wider lines so that where
    runs coincide (live peers of one schedule) each stays visible under the next."""
    shown = []
    for i, (run, label) in enumerate(zip(all_runs, labels)):
        line = {"color": f"C{i % 10}", "linewidth": 1.2 + 0.8 * min(len(all_runs) - 1 - i, 3),
                **runs.points(run)}
        shown.append(Shown(run, label, line, EVENT_STYLES[i % len(EVENT_STYLES)]))
    return shown


def draw_consensus(ax, shown: list[Shown]):
    shown = [s for s in shown if s.run.has("consensus_max")]
    any_zero = False
    for s in shown:
        values, had_zero = runs.zeros_as_gaps(s.run.series["consensus_max"])
        any_zero |= had_zero
        ax.plot(s.run.times, runs.nan_for_none(values), label=s.label, **s.line)
    ax.set_yscale("log")
    ax.set_ylabel("consensus distance, max\n‖xᵢ − x̄‖ / ‖x̄‖")
    handles, texts = ax.get_legend_handles_labels()
    if any_zero:
        handles.append(ax.plot([], [], linestyle="none")[0])
        texts.append(runs.ZERO_NOTE)
    runs.legend_outside(ax, handles=handles, labels=texts)


def draw_accuracy(ax, shown: list[Shown]):
    shown = [s for s in shown if s.run.has("accuracy_mean")]
    bottom = runs.zoom_accuracy_axis(ax, [s.run for s in shown])
    for s in shown:
        series = s.run.series
        ax.fill_between(s.run.times, runs.nan_for_none(runs.percent(series["accuracy_min"])),
                        runs.nan_for_none(runs.percent(series["accuracy_max"])),
                        color=s.line["color"], alpha=0.2, linewidth=0)
        ax.plot(s.run.times, runs.nan_for_none(runs.percent(series["accuracy_mean"])),
                label=s.label + runs.below_axis_note(s.run, bottom), **s.line)
    ax.set_ylabel("test accuracy (%)\nmean, min–max band")
    runs.legend_outside(ax)


def draw_live_peers(ax, shown: list[Shown]):
    for s in shown:
        ax.plot(s.run.times, s.run.series["live_peers"], drawstyle="steps-post", label=s.label,
                **s.line)
    runs.peers_axis(ax)
    runs.legend_outside(ax)


def draw_events(axes, shown: list[Shown]):
    """Each run's events in its colour and line style; the actions written over the top panel."""
    actions = []
    for s in shown:
        for kind, times in runs.event_times_by_kind(s.run.events).items():
            for time in times:
                for ax in axes:
                    ax.axvline(time, color=s.line["color"], linestyle=s.event_style,
                               linewidth=1.2, alpha=0.8)
                actions.append((time, kind))
    span = max(t for s in shown for t in s.run.times) - min(t for s in shown for t in s.run.times)
    for time, kinds in action_labels(actions, 0.02 * span):
        axes[0].text(time, 1.02, "+".join(kinds), transform=axes[0].get_xaxis_transform(),
                     ha="center", va="bottom", fontsize="small")


def action_labels(actions: list[tuple[float, str]], near: float) -> list[tuple[float, list]]:
    """One label per group of events less than `near` seconds apart: the same crash at 60 s in
    a simulated run and at 60.4 s in a real one is written once, not twice on top of itself."""
    labels: list[tuple[float, list]] = []
    for time, kind in sorted(actions):
        if labels and time - labels[-1][0] < near:
            if kind not in labels[-1][1]:
                labels[-1][1].append(kind)
        else:
            labels.append((time, [kind]))
    return labels


def panels_for(all_runs: list[runs.Run]) -> list:
    """The drawing functions for which some run has data, top to bottom."""
    panels = []
    if any(run.has("consensus_max") for run in all_runs):
        panels.append(draw_consensus)
    if any(run.has("accuracy_mean") for run in all_runs):
        panels.append(draw_accuracy)
    panels.append(draw_live_peers)
    return panels


def format_number(value: float | None, form: str) -> str:
    return "—" if value is None else format(value, form)


def format_percent(fraction: float | None) -> str:
    return format_number(None if fraction is None else 100 * fraction, ".2f")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def tables(all_runs: list[runs.Run], labels: list[str]) -> str:
    """Final values per run (the last row of series.csv), then every event per run."""
    finals = [
        [label,
         format_number(run.final("live_peers"), "g"),
         format_percent(run.final("accuracy_min")),
         format_percent(run.final("accuracy_mean")),
         format_number(run.final("consensus_max"), ".3g")]
        for run, label in zip(all_runs, labels)
    ]
    events = [
        [label, f"{event.time:g}", event.action, event.peer,
         format_number(event.seen_by_all_after, "g")]
        for run, label in zip(all_runs, labels) for event in run.events
    ]
    text = markdown_table(["run", "final live peers", "accuracy min (%)", "accuracy mean (%)",
                           "consensus max"], finals)
    if events:
        text += "\n\n" + markdown_table(
            ["run", "time (s)", "action", "peer", "seen by all after (s)"], events)
    return text


def main():
    arguments = parse_arguments()
    all_runs = runs.load_runs_or_exit(arguments.dirs, PROGRAM)
    labels = arguments.labels or [default_label(run) for run in all_runs]
    pyplot = runs.import_pyplot(PROGRAM)

    shown = styled(all_runs, labels)
    panels = panels_for(all_runs)
    figure, axes = runs.stacked_panels(pyplot, panels, shown, top=1.4, per_panel=2.4)
    draw_events(axes, shown)
    runs.set_time_axis(axes, [t for run in all_runs for t in run.times], [e.time for run in all_runs for e in run.events])
    figure.suptitle("comparison: " + ", ".join(labels))
    out = runs.save(figure, arguments.out, PROGRAM)
    print(tables(all_runs, labels))
    print()
    print(out)


if __name__ == "__main__":
    main()
