#!/usr/bin/env python3
"""Draws one run of `chorus simulate` / `chorus experiment` as stacked panels over time.

Panels (each omitted when its columns are empty, as in a membership run): consensus distance
(log), test accuracy (mean and min-max band), live peers, view agreement. The schedule's
events are vertical lines on every panel, one colour per action, dashes interleaved where
actions share an instant (short ticks along the bottom when there are more than 60, as with
Poisson churn in a large network).
"""

import argparse
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in scripts/lib/ of the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import chorus_runs as runs  # noqa: E402

PROGRAM = "plot.py"

EXAMPLE = """\
example:
  .build/release/chorus simulate --peers 32 --duration 120 \\
      --schedule scripts/schedules/replace-quarter.toml --out runs/rq32
  scripts/plot.py runs/rq32                 # writes runs/rq32/convergence.png

Exit status: 0 drawn (the PNG's path is printed), 2 missing or malformed input,
3 matplotlib missing (sudo apt-get install python3-matplotlib).
"""


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", metavar="DIR",
                        help="run directory holding series.csv, events.csv and summary.json")
    parser.add_argument("--out", metavar="FILE", type=Path,
                        help="image to write (format from the extension; "
                             "default DIR/convergence.png)")
    parser.add_argument("--title", metavar="T",
                        help="figure title (default: peers, task, seed and crypto "
                             "from summary.json)")
    return parser.parse_args()


def draw_consensus(ax, run: runs.Run):
    columns = [("consensus_max", "max", "-"), ("consensus_mean", "mean", "--")]
    for column, label, style in columns:
        values, had_zero = runs.zeros_as_gaps(run.series[column])
        if had_zero:
            label += f" ({runs.ZERO_NOTE})"
        ax.plot(run.times, runs.nan_for_none(values), style, color="tab:blue", label=label,
                **runs.points(run))
    ax.set_yscale("log")
    ax.set_ylabel("consensus distance\n‖xᵢ − x̄‖ / ‖x̄‖")
    runs.legend_outside(ax)


def draw_accuracy(ax, run: runs.Run):
    bottom = runs.zoom_accuracy_axis(ax, [run])
    ax.fill_between(run.times, runs.nan_for_none(runs.percent(run.series["accuracy_min"])),
                    runs.nan_for_none(runs.percent(run.series["accuracy_max"])),
                    color="tab:green", alpha=0.25, linewidth=0, label="min–max")
    ax.plot(run.times, runs.nan_for_none(runs.percent(run.series["accuracy_mean"])),
            color="tab:green", label="mean" + runs.below_axis_note(run, bottom),
            **runs.points(run))
    ax.set_ylabel("test accuracy (%)")
    runs.legend_outside(ax)


def draw_live_peers(ax, run: runs.Run):
    ax.plot(run.times, run.series["live_peers"], color="black", drawstyle="steps-post",
            **runs.points(run))
    runs.peers_axis(ax)


def draw_view_agreement(ax, run: runs.Run):
    ax.plot(run.times, runs.nan_for_none(runs.percent(run.series["view_agreement"])),
            color="tab:purple", drawstyle="steps-post", **runs.points(run))
    ax.set_ylabel("view agreement\n(% of live peers)")
    ax.set_ylim(-5, 105)


# Beyond this many events, full-height lines would hide the curves (Poisson churn at 10 % of
# 1024 peers per minute makes about 2000): each event becomes a short tick along the bottom.
DENSE_EVENTS = 60


def draw_events(axes, events: list[runs.Event]):
    """Vertical lines on every panel (ticks along the bottom when there are many); the legend
    (one entry per action) goes by the last panel."""
    from matplotlib.lines import Line2D  # matplotlib is imported only once the input checked

    handles = []
    dense = len(events) > DENSE_EVENTS
    by_kind = runs.event_times_by_kind(events)
    for kind, times in by_kind.items():
        colour = runs.action_colour(kind)
        if dense:
            marks = [ax.vlines(times, 0, 0.06, transform=ax.get_xaxis_transform(), color=colour, linewidth=0.6)
                     for ax in axes]
        else:
            marks = [ax.axvline(time, color=colour, linestyle=runs.event_line_style(kind, time, by_kind), linewidth=1.5)
                     for ax in axes for time in times]
        if dense:
            marks[0].set_label(kind)
            handles.append(marks[0])
        else:  # the legend shows the plain dotted line, whatever dashes a shared time got
            handles.append(Line2D([], [], color=colour, linestyle=":", linewidth=1.5, label=kind))
    if handles:
        runs.legend_outside(axes[-1], handles=handles, title="events")


def panels_for(run: runs.Run) -> list:
    """The drawing functions whose columns hold data, top to bottom."""
    panels = []
    if run.has("consensus_max", "consensus_mean"):
        panels.append(draw_consensus)
    if run.has("accuracy_mean"):
        panels.append(draw_accuracy)
    panels.append(draw_live_peers)
    if run.has("view_agreement"):
        panels.append(draw_view_agreement)
    return panels


def main():
    arguments = parse_arguments()
    [run] = runs.load_runs_or_exit([arguments.dir], PROGRAM)
    out = arguments.out or Path(arguments.dir) / "convergence.png"
    pyplot = runs.import_pyplot(PROGRAM)

    panels = panels_for(run)
    figure, axes = runs.stacked_panels(pyplot, panels, run, top=1.2, per_panel=2.2)
    draw_events(axes, run.events)
    runs.set_time_axis(axes, run.times, [event.time for event in run.events])
    figure.suptitle(arguments.title or run.title())
    print(runs.save(figure, out, PROGRAM))


if __name__ == "__main__":
    main()
