"""Loading and drawing the output of `chorus simulate` / `chorus experiment` runs.

Shared by scripts/plot.py and scripts/compare.py. A run directory holds series.csv, events.csv
and summary.json (docs/experiments.md, "Outputs"). Everything is read and checked before
matplotlib is imported, so a bad input is reported the same way on a machine without it.
"""

import csv
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

SERIES_COLUMNS = (
    "time", "live_peers", "consensus_mean", "consensus_max", "accuracy_mean", "accuracy_min",
    "accuracy_max", "loss_mean", "view_agreement", "bytes_per_peer_per_s", "datagrams_dropped",
    "datagrams_rejected",
)
# Columns every row must fill; the others are empty when the task does not measure them.
REQUIRED_VALUES = ("time", "live_peers")
EVENT_COLUMNS = ("time", "action", "peer", "seen_by_all_after")

# One colour per schedule action, the same in every figure.
ACTION_COLOURS = {
    "crash": "#d62728", "leave": "#ff7f0e", "join": "#2ca02c", "restart": "#9467bd",
    "partition": "#8c564b", "heal": "#17becf", "loss": "#7f7f7f",
}

MATPLOTLIB_PACKAGE = "python3-matplotlib"
INSTALL_HINT = f"sudo apt-get install {MATPLOTLIB_PACKAGE}"
# Debian's matplotlib is built for Debian's interpreter; another python3 first on PATH (pyenv,
# a venv) cannot import it, so the scripts start again under this one.
SYSTEM_PYTHON = "/usr/bin/python3"
REEXEC_MARK = "CHORUS_PLOTS_REEXEC"


class DataError(Exception):
    """An input file is missing or malformed; the message is one line naming the file."""


@dataclass
class Event:
    time: float
    action: str  # as written, e.g. "crash" or "loss:0.05"
    peer: str
    seen_by_all_after: float | None

    @property
    def kind(self) -> str:
        """The action without its argument ("loss:0.05" -> "loss"): what colours group by."""
        return self.action.split(":", 1)[0]


@dataclass
class Run:
    directory: Path
    series: dict[str, list[float | None]]  # column -> one value per row, None where empty
    events: list[Event]
    summary: dict

    @property
    def times(self) -> list[float]:
        return self.series["time"]

    def has(self, *columns: str) -> bool:
        """Whether any of the columns holds a value (membership runs leave accuracy empty)."""
        return any(v is not None for c in columns for v in self.series[c])

    def final(self, column: str) -> float | None:
        return self.series[column][-1]

    def title(self) -> str:
        """'train32: 32 peers, task train, seed 1, simulated crypto' from what summary.json has."""
        s = self.summary
        parts = [
            f"{s['peers']} peers" if s.get("peers") is not None else None,
            f"task {s['task']}" if s.get("task") else None,
            f"seed {s['seed']}" if s.get("seed") is not None else None,
            f"{s['crypto']} crypto" if s.get("crypto") else None,
        ]
        details = ", ".join(p for p in parts if p)
        return f"{self.directory.name}: {details}" if details else self.directory.name


def load_run(directory: str) -> Run:
    """Reads and checks a run directory; raises DataError naming the first problem."""
    path = Path(directory)
    if not path.is_dir():
        raise DataError(f"{directory}: no such directory")
    return Run(
        directory=path.resolve(),
        series=_read_series(path / "series.csv"),
        events=_read_events(path / "events.csv"),
        summary=_read_summary(path / "summary.json"),
    )


def load_runs_or_exit(directories: list[str], program: str) -> list[Run]:
    """load_run for each directory, or one line on stderr and exit status 2."""
    try:
        return [load_run(d) for d in directories]
    except DataError as error:
        fail(program, str(error), 2)


def fail(program: str, message: str, status: int) -> NoReturn:
    print(f"{program}: {message}", file=sys.stderr)
    sys.exit(status)


def _csv_rows(path: Path, columns: tuple[str, ...]):
    """Yields (line number, {column: text}) for each row, after checking the header."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path}: empty file (expected the header {','.join(columns)})")
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"{path}: line 1: header lacks column(s) {', '.join(missing)}")
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise DataError(f"{path}: {_where(reader.line_num)}: expected {len(header)} "
                                f"fields, got {len(fields)}")
            yield reader.line_num, dict(zip(header, fields))


def _where(line: int) -> str:
    return f"line {line} (row {line - 1})"


def _number(path: Path, line: int, column: str, text: str, required: bool) -> float | None:
    """The value of one cell; empty is None (not measured); NaN and infinities are gaps too."""
    text = text.strip()
    if not text:
        if required:
            raise DataError(f"{path}: {_where(line)}, column {column}: empty")
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}: {_where(line)}, column {column}: "
                        f"expected a number, got {text!r}") from None
    return value if math.isfinite(value) else None


def _read_series(path: Path) -> dict[str, list[float | None]]:
    series: dict[str, list[float | None]] = {c: [] for c in SERIES_COLUMNS}
    for line, row in _csv_rows(path, SERIES_COLUMNS):
        for column in SERIES_COLUMNS:
            required = column in REQUIRED_VALUES
            series[column].append(_number(path, line, column, row[column], required))
    if not series["time"]:
        raise DataError(f"{path}: no rows after the header")
    return series


def _read_events(path: Path) -> list[Event]:
    """The schedule's events; a run without events.csv simply has none."""
    if not path.exists():
        return []
    return [
        Event(
            time=_number(path, line, "time", row["time"], required=True),
            action=row["action"].strip(),
            peer=row["peer"].strip(),
            seen_by_all_after=_number(path, line, "seen_by_all_after", row["seen_by_all_after"],
                                      required=False),
        )
        for line, row in _csv_rows(path, EVENT_COLUMNS)
    ]


def _read_summary(path: Path) -> dict:
    """summary.json as a dict; missing is {} so titles and labels fall back to the directory."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: line {error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(summary, dict):
        raise DataError(f"{path}: expected a JSON object")
    return summary


# --- matplotlib -----------------------------------------------------------------------------

def import_pyplot(program: str):
    """matplotlib.pyplot on the Agg backend, installing Debian's package when we are root.

    Exits with status 3 and the command to run when matplotlib cannot be had. May replace the
    process with the same script under Debian's python3 (see SYSTEM_PYTHON), so call it before
    printing anything.
    """
    if not _matplotlib_importable():
        _rerun_under_system_python()
        _apt_install(program)
        if not _matplotlib_importable():
            _rerun_under_system_python()
            fail(program, f"{MATPLOTLIB_PACKAGE} is installed but {sys.executable} cannot "
                          f"import matplotlib (the package is for {SYSTEM_PYTHON})", 3)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def _matplotlib_importable() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _rerun_under_system_python():
    """Starts this script again under SYSTEM_PYTHON if that one has matplotlib; else returns."""
    if os.environ.get(REEXEC_MARK) or not os.path.exists(SYSTEM_PYTHON):
        return
    if os.path.realpath(SYSTEM_PYTHON) == os.path.realpath(sys.executable):
        return
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import matplotlib"], capture_output=True)
    if probe.returncode != 0:
        return
    os.environ[REEXEC_MARK] = "1"
    sys.stdout.flush()
    os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, sys.argv[0], *sys.argv[1:]])


def _apt_install(program: str):
    """apt-get install as root (after apt-get update if the first try fails), or exit 3."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        fail(program, f"matplotlib is missing; install it with: {INSTALL_HINT}", 3)
    print(f"{program}: installing {MATPLOTLIB_PACKAGE} (apt-get)…", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", MATPLOTLIB_PACKAGE]
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.run(install, **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], **quiet)
        if subprocess.run(install, **quiet).returncode != 0:
            fail(program, f"apt-get could not install {MATPLOTLIB_PACKAGE}; try: "
                          f"{INSTALL_HINT}", 3)
    importlib.invalidate_caches()


# --- drawing --------------------------------------------------------------------------------

def zeros_as_gaps(values: list[float | None]) -> tuple[list[float | None], bool]:
    """The values with zeros (and negatives) left out, and whether any was.

    A consensus distance of exactly 0 (every peer starts from the same model, or a single peer
    is left) has no place on a log axis. Drawing it at a floor made a dive to an arbitrary value,
    a spike that never happened; a gap shows nothing, and the legend says why.
    """
    kept = [None if v is None or v <= 0 else v for v in values]
    return kept, any(v is not None and v <= 0 for v in values)


ZERO_NOTE = "0 not drawn (log axis)"


def accuracy_range(run: Run) -> tuple[float, float]:
    """(low, high) in % for the accuracy axis, leaving out the warm-up.

    Training starts near chance (10 %) and is above 90 % within seconds; an axis from 0 to
    100 % would flatten the min-max band and every dip caused by churn. The range covers the
    samples from the first one whose mean reaches 90 % of the run's best mean.
    """
    mean = run.series["accuracy_mean"]
    best = max(v for v in mean if v is not None)
    start = next(i for i, v in enumerate(mean) if v is not None and v >= 0.9 * best)
    shown = [v for column in ("accuracy_min", "accuracy_mean", "accuracy_max")
             for v in run.series[column][start:] if v is not None]
    return 100 * min(shown), 100 * max(shown)


def zoom_accuracy_axis(ax, runs: list[Run]) -> float:
    """Limits the axis to the union of the runs' accuracy_range; returns its bottom in %."""
    ranges = [accuracy_range(run) for run in runs]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    pad = max(0.5, 0.1 * (high - low))
    bottom = max(0.0, low - pad)
    ax.set_ylim(bottom, min(100.0, high + pad))
    return bottom


def below_axis_note(run: Run, bottom: float) -> str:
    """' (from 7.5 % at 0 s)' when the run's first mean is under the zoomed axis, else ''."""
    time, first = next((t, v) for t, v in zip(run.times, run.series["accuracy_mean"])
                       if v is not None)
    return f" (from {100 * first:.1f} % at {time:g} s)" if 100 * first < bottom else ""


def percent(values: list[float | None]) -> list[float | None]:
    return [None if v is None else 100 * v for v in values]


def nan_for_none(values: list[float | None]) -> list[float]:
    """matplotlib leaves a gap at NaN; None would make numpy build an object array."""
    return [math.nan if v is None else v for v in values]


def points(run: Run) -> dict:
    """Line options that show a run of a single sample, which as a line would be invisible."""
    return {"marker": "o"} if len(run.times) == 1 else {}


def action_colour(kind: str) -> str:
    return ACTION_COLOURS.get(kind, "black")


def event_times_by_kind(events: list[Event]) -> dict[str, list[float]]:
    """Distinct event times per action kind: eight crashes at 60 s are one line, not eight."""
    by_kind: dict[str, list[float]] = {}
    for event in events:
        times = by_kind.setdefault(event.kind, [])
        if event.time not in times:
            times.append(event.time)
    return by_kind


def event_line_style(kind: str, time: float, by_kind: dict[str, list[float]]):
    """Dotted for an action alone at its time. Where several actions share a time (a replace
    schedule crashes some peers and adds others at once), each line gets dashes offset from the
    others', so every colour shows instead of the last one drawn hiding the rest."""
    sharing = [k for k, times in by_kind.items() if time in times]
    if len(sharing) == 1:
        return ":"
    dash = 3
    return (dash * sharing.index(kind), (dash, dash * (len(sharing) - 1)))


def legend_outside(ax, **kwargs):
    """A legend to the right of the panel, where it cannot hide any data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                     fontsize="small", **kwargs)


def peers_axis(ax):
    """From 0, whole numbers: a constant 32 should not look like noise around 32."""
    ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]) * 1.08)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("live peers")


def set_time_axis(axes, times: list[float], events: list[float] = ()):
    """The run's time span with a 1 % margin each side, so that an event at the first or last
    instant (a crash at the end of a run) is drawn inside the frame rather than on its edge."""
    axes[-1].set_xlabel("time (s)")
    span = list(times) + list(events)
    if len(span) > 1 and max(span) > min(span):
        low, high = min(span), max(span)
        margin = 0.01 * (high - low)
        axes[-1].set_xlim(low - margin, high + margin)


def save(figure, out: Path, program: str) -> Path:
    """Writes the figure (format from the extension), or exits 2 naming the file."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=120)
    except OSError as error:
        fail(program, f"{out}: cannot write ({error.strerror})", 2)
    return out


def stacked_panels(pyplot, panels, data, top, per_panel):
    """One panel per drawing function, stacked over a shared time axis, each drawn from `data`."""
    figure, axes = pyplot.subplots(len(panels), 1, sharex=True, squeeze=False,
                                   figsize=(10, top + per_panel * len(panels)), layout="constrained")
    axes = list(axes[:, 0])
    for draw, ax in zip(panels, axes):
        draw(ax, data)
        ax.grid(True, alpha=0.3)
    return figure, axes
