"""The job report: groups per worker over time, size and duration histograms, failures.

:func:`build_report` turns a job and its group items (as the ledger holds them) into a
:class:`ReportData`; :func:`render_html` turns that into one self-contained HTML page
(inline CSS and SVG, no script, no external resource: it opens offline and can be mailed
or attached to a ticket). :func:`render_png` draws the same timeline and histograms with
matplotlib, an optional extra (``pip install 'parceler[report]'``).

What the ledger can tell, and so what the report shows:

- The timeline has one row per worker id and one bar per group, from ``started_at`` to
  ``finished_at``. The ledger keeps the *latest* attempt's start and worker only, so a
  retried group is drawn once, for its last attempt (its attempt number is in the
  tooltip). A RUNNING group is drawn up to the report's end (``now``, else the newest
  timestamp in the ledger). A group never claimed has no bar; it is counted as not
  started.
- Balance: each worker's busy time (the sum of its bars), and the imbalance, the
  busiest worker's busy time over the mean (1.0 is perfect).
- Failures: every FAILED group, and every other group that recorded a retryable error on
  the way (``last_error``), with attempts, error and cause.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parceler.errors import MissingExtraError
from parceler.ledger import GroupItem, JobItem
from parceler.units import format_size

UNKNOWN_WORKER = "(no worker recorded)"
STATUS_COLOURS = {
    "SUCCEEDED": "#2e7d32",
    "FAILED": "#c62828",
    "RUNNING": "#1565c0",
    "PENDING": "#9e9e9e",
}
_OTHER_COLOUR = "#6d4c41"
MAX_BINS = 20

# Timeline geometry (pixels); tests position bars with these.
TIMELINE_LABEL_WIDTH = 200
TIMELINE_PLOT_WIDTH = 900
TIMELINE_ROW_HEIGHT = 20
_ROW_GAP = 4
_AXIS_HEIGHT = 30
_TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    """One group's latest attempt, in seconds since the report's origin.

    ``open`` bars have no ``finished_at`` yet (RUNNING): they end at the report's end.
    """

    group: int
    status: str
    attempt: int
    start: float
    end: float
    open: bool

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One timeline row: a worker id and its bars, by start time."""

    worker: str
    bars: tuple[Bar, ...]
    busy_seconds: float


@dataclass(frozen=True, slots=True)
class Bin:
    """One histogram bin ``[low, high)`` (the last bin includes ``high``)."""

    low: float
    high: float
    count: int


@dataclass(frozen=True, slots=True)
class Failure:
    """A group that failed, or recorded an error before it succeeded."""

    group: int
    status: str
    attempts: int
    error: str
    cause: str | None
    worker: str | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the renderers draw; built by :func:`build_report`.

    Attributes:
        origin: epoch seconds of the earliest group start (bar times are relative to it),
            or None when no group has started.
        span_seconds: from ``origin`` to the latest bar end (the makespan).
        queue_delay_seconds: from the job's creation to the first group start (planning
            and queueing), or None if either is unknown.
        imbalance: busiest worker's busy seconds / mean busy seconds (1.0 is perfect);
            None with no bars.
    """

    job_id: str
    job_status: str
    job_error: str | None
    n_groups: int
    status_counts: tuple[tuple[str, int], ...]
    origin: float | None
    span_seconds: float
    queue_delay_seconds: float | None
    rows: tuple[WorkerRow, ...]
    not_started: int
    total_bytes: int
    duration_bins: tuple[Bin, ...]
    size_bins: tuple[Bin, ...]
    failures: tuple[Failure, ...]
    imbalance: float | None
    skipped: int = 0  # groups whose result was reused from an earlier job (never started)


def histogram(values: Sequence[float], bins: int | None = None) -> tuple[Bin, ...]:
    """Equal-width bins over ``[min(values), max(values)]``.

    Args:
        values: the samples (any order).
        bins: how many bins; default ``ceil(sqrt(n))`` capped at ``MAX_BINS``.

    Returns:
        The bins, low to high, whose counts add up to ``len(values)``; one bin when every
        value is equal; ``()`` for no values. O(n).
    """
    if not values:
        return ()
    low, high = min(values), max(values)
    if high == low:
        return (Bin(low, high, len(values)),)
    n = bins or max(1, min(MAX_BINS, math.ceil(math.sqrt(len(values)))))
    width = (high - low) / n
    counts = [0] * n
    for value in values:
        counts[min(n - 1, int((value - low) / width))] += 1
    return tuple(Bin(low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts))


def _latest_known(job: JobItem, groups: Sequence[GroupItem]) -> float | None:
    stamps = [job.updated_at]
    for g in groups:
        stamps += [g.started_at, g.finished_at, g.updated_at]
    known = [float(s) for s in stamps if s is not None]
    return max(known) if known else None


def build_report(
    job: JobItem, groups: Sequence[GroupItem], *, now: float | None = None
) -> ReportData:
    """Lay a job's groups out for the report (pure: no I/O, no clock).

    Args:
        job: the job item.
        groups: its group items (any order).
        now: where RUNNING groups' bars end (epoch seconds); default the newest timestamp
            in the ledger items, so the same items always give the same report.

    Returns:
        The report's data; see :class:`ReportData` and the module docstring.
    """
    started = [(g, float(g.started_at)) for g in groups if g.started_at is not None]
    origin = min((start for _, start in started), default=0.0)
    open_end = now if now is not None else _latest_known(job, groups)
    by_worker: dict[str, list[Bar]] = defaultdict(list)
    for g, start in started:
        is_open = g.finished_at is None and g.status == "RUNNING"
        if g.finished_at is not None:
            end = float(g.finished_at)
        elif is_open:
            end = float(open_end if open_end is not None else start)
        else:  # handed back after a retryable error: the attempt ended at its last update
            end = g.updated_at or start
        worker = g.worker or UNKNOWN_WORKER
        by_worker[worker].append(
            Bar(g.index, g.status, g.attempt, start - origin, max(start, end) - origin, is_open)
        )
    rows = tuple(
        WorkerRow(
            worker,
            tuple(sorted(bars, key=lambda b: (b.start, b.group))),
            sum(b.seconds for b in bars),
        )
        for worker, bars in sorted(by_worker.items())
    )
    span = max((b.end for row in rows for b in row.bars), default=0.0)
    busy = [row.busy_seconds for row in rows]
    mean_busy = sum(busy) / len(busy) if busy else 0.0
    durations = [
        float(g.finished_at - g.started_at)
        for g in groups
        if g.finished_at is not None and g.started_at is not None
    ]
    sizes = [float(g.size) for g in groups if g.size is not None]
    failures = tuple(
        Failure(
            group=g.index,
            status=g.status,
            attempts=g.attempt,
            error=g.error or g.last_error or "(no error recorded)",
            cause=g.cause if g.error else (g.cause or g.last_cause),
            worker=g.worker,
        )
        for g in sorted(groups, key=lambda g: g.index)
        if g.status == "FAILED" or g.last_error is not None
    )
    counts = Counter(g.status for g in groups)
    return ReportData(
        job_id=job.job_id,
        job_status=job.status,
        job_error=job.error,
        n_groups=int(job.n_groups if job.n_groups is not None else len(groups)),
        status_counts=tuple(sorted(counts.items())),
        origin=origin if started else None,
        span_seconds=span,
        queue_delay_seconds=(
            origin - job.created_at if started and job.created_at is not None else None
        ),
        rows=rows,
        not_started=len(groups) - len(started),
        total_bytes=int(sum(sizes)),
        duration_bins=histogram(durations),
        size_bins=histogram(sizes),
        failures=failures,
        imbalance=(max(busy) / mean_busy) if busy and mean_busy > 0 else None,
        skipped=sum(1 for g in groups if g.skipped),
    )


# ---- HTML ------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_seconds(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4m05s``, ``2h03m``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _nice_step(span: float, ticks: int = 8) -> float:
    """A 1/2/5 x 10^k step that cuts ``span`` into about ``ticks`` intervals."""
    raw = max(span, 1e-9) / ticks
    magnitude: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _tick_label(seconds: float, step: float) -> str:
    if step >= 60:
        return format_seconds(seconds)
    return f"{round(seconds, 6):g} s"


def _colour(status: str) -> str:
    return STATUS_COLOURS.get(status, _OTHER_COLOUR)


def _timeline_svg(data: ReportData) -> str:
    span = data.span_seconds if data.span_seconds > 0 else 1.0
    scale = TIMELINE_PLOT_WIDTH / span
    pitch = TIMELINE_ROW_HEIGHT + _ROW_GAP
    plot_height = len(data.rows) * pitch
    width = TIMELINE_LABEL_WIDTH + TIMELINE_PLOT_WIDTH + 20
    height = _TOP + plot_height + _AXIS_HEIGHT
    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="groups per worker over time">'
    ]
    step = _nice_step(span)
    axis_y = _TOP + plot_height
    for k in range(int(span / step + 1e-9) + 1):
        tick = k * step
        x = TIMELINE_LABEL_WIDTH + tick * scale
        out.append(
            f'<line x1="{x:.2f}" y1="{_TOP}" x2="{x:.2f}" y2="{axis_y}" class="grid"/>'
            f'<text x="{x:.2f}" y="{axis_y + 16}" text-anchor="middle">'
            f"{_e(_tick_label(tick, step))}</text>"
        )
    for i, row in enumerate(data.rows):
        y = _TOP + i * pitch
        label = row.worker if len(row.worker) <= 28 else row.worker[:27] + "…"
        out.append(
            f'<g class="worker-row" data-worker="{_e(row.worker)}">'
            f'<text x="{TIMELINE_LABEL_WIDTH - 6}" y="{y + TIMELINE_ROW_HEIGHT * 0.7:.1f}" '
            f'text-anchor="end"><title>{_e(row.worker)}</title>{_e(label)}</text>'
        )
        for bar in row.bars:
            x = TIMELINE_LABEL_WIDTH + bar.start * scale
            w = max(1.0, bar.seconds * scale)  # a zero-length group is still visible
            tip = (
                f"group {bar.group} · {bar.status} · attempt {bar.attempt} · "
                f"{format_seconds(bar.seconds)}{' (still running)' if bar.open else ''}"
            )
            out.append(
                f'<rect class="bar" data-group="{bar.group}" data-status="{_e(bar.status)}" '
                f'x="{x:.2f}" y="{y}" width="{w:.2f}" height="{TIMELINE_ROW_HEIGHT}" '
                f'fill="{_colour(bar.status)}"><title>{_e(tip)}</title></rect>'
            )
        out.append("</g>")
    out.append(
        f'<line x1="{TIMELINE_LABEL_WIDTH}" y1="{axis_y}" '
        f'x2="{TIMELINE_LABEL_WIDTH + TIMELINE_PLOT_WIDTH}" y2="{axis_y}" class="axis"/>'
    )
    out.append("</svg>")
    return "".join(out)


def _histogram_svg(bins: Sequence[Bin], label: Callable[[float], str], title: str) -> str:
    if not bins:
        return f"<p class='muted'>{_e(title)}: no data.</p>"
    width, height, left, bottom, top = 460, 220, 40, 36, 18
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(b.count for b in bins) or 1
    bar_w = plot_w / len(bins)
    out = [
        f'<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">'
        f'<text x="{left}" y="12" class="title">{_e(title)}</text>'
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{peak}</text>'
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>'
    ]
    for i, b in enumerate(bins):
        h = plot_h * b.count / peak
        x = left + i * bar_w
        tip = f"{label(b.low)} to {label(b.high)}: {b.count} group(s)"
        out.append(
            f'<rect class="bin" data-count="{b.count}" x="{x + 1:.2f}" y="{top + plot_h - h:.2f}" '
            f'width="{max(1.0, bar_w - 2):.2f}" height="{h:.2f}"><title>{_e(tip)}</title></rect>'
        )
    axis_y = top + plot_h
    out.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" class="axis"/>'
        f'<text x="{left}" y="{axis_y + 16}">{_e(label(bins[0].low))}</text>'
        f'<text x="{left + plot_w}" y="{axis_y + 16}" text-anchor="end">'
        f"{_e(label(bins[-1].high))}</text></svg>"
    )
    return "".join(out)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f5f5f5}td.num{text-align:right}
.muted{color:#777}.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .title{font-weight:600}
svg .grid{stroke:#eee}svg .bar{stroke:#fff;stroke-width:0.5}
svg .axis{stroke:#999}svg .bin{fill:#5c6bc0}
pre{white-space:pre-wrap;margin:0;max-width:700px;font-size:12px}
"""


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script).

    Every value that comes from the ledger (worker ids, errors, causes, the job id) is
    HTML-escaped.
    """
    counts = ", ".join(f"{n} {s.lower()}" for s, n in data.status_counts) or "no groups"
    facts = [
        ("status", data.job_status),
        (
            "groups",
            f"{data.n_groups} ({counts}; {data.not_started} not started, of which "
            f"{data.skipped} skipped: results reused from earlier jobs)",
        ),
        ("data", format_size(data.total_bytes)),
        ("workers", str(len(data.rows))),
        ("makespan", format_seconds(data.span_seconds) if data.rows else "-"),
        (
            "first group started",
            "-"
            if data.queue_delay_seconds is None
            else f"{format_seconds(data.queue_delay_seconds)} after the job was created",
        ),
        ("imbalance", "-" if data.imbalance is None else f"{data.imbalance:.2f} (1.00 is perfect)"),
    ]
    if data.job_error:
        facts.append(("job error", data.job_error))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>parceler report: {_e(data.job_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>parceler job <code>{_e(data.job_id)}</code></h1>",
        '<table class="facts">',
        *(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts),
        "</table>",
        "<h2>Groups per worker over time</h2>",
        '<p class="legend">',
        *(
            f'<span><i style="background:{c}"></i>{_e(s.lower())}</span>'
            for s, c in STATUS_COLOURS.items()
        ),
        "</p>",
        _timeline_svg(data) if data.rows else "<p class='muted'>No group has started.</p>",
        "<h2>Balance</h2>",
        '<table class="workers"><tr><th>worker</th><th>groups</th><th>busy</th>'
        "<th>busy / makespan</th></tr>",
    ]
    for row in data.rows:
        share = row.busy_seconds / data.span_seconds if data.span_seconds > 0 else 0.0
        parts.append(
            f"<tr><td>{_e(row.worker)}</td><td class='num'>{len(row.bars)}</td>"
            f"<td class='num'>{_e(format_seconds(row.busy_seconds))}</td>"
            f"<td class='num'>{share:.0%}</td></tr>"
        )
    parts += [
        "</table>",
        "<h2>Group durations and sizes</h2><div>",
        _histogram_svg(data.duration_bins, format_seconds, "duration of the last attempt"),
        _histogram_svg(data.size_bins, lambda v: format_size(int(v)), "group size"),
        "</div>",
        f"<h2>Failures ({len(data.failures)})</h2>",
    ]
    if data.failures:
        parts.append(
            '<table class="failures"><tr><th>group</th><th>status</th><th>attempts</th>'
            "<th>worker</th><th>error</th><th>cause</th></tr>"
        )
        for f in data.failures:
            parts.append(
                f"<tr><td class='num'>{f.group}</td><td>{_e(f.status)}</td>"
                f"<td class='num'>{f.attempts}</td><td>{_e(f.worker or '')}</td>"
                f"<td><pre>{_e(f.error)}</pre></td><td><pre>{_e(f.cause or '')}</pre></td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p class='muted'>No group failed or retried.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ---- PNG (optional: matplotlib) --------------------------------------------------------


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or a clear error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError(
            "--png needs matplotlib, which is not installed.",
            "pip install 'parceler[report]' (or drop --png: the HTML report needs nothing).",
        ) from exc
    return plt


def check_png_support() -> None:
    """Raise :class:`MissingExtraError` now if :func:`render_png` cannot work."""
    _pyplot()


def render_png(data: ReportData, path: Path) -> None:
    """Draw the timeline and both histograms into one PNG at ``path`` (matplotlib, Agg).

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    plt = _pyplot()
    n_rows = max(1, len(data.rows))
    fig = plt.figure(figsize=(12, 3 + 0.3 * n_rows), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=[max(1.0, 0.3 * n_rows), 2.5])
    timeline = fig.add_subplot(grid[0, :])
    for i, row in enumerate(data.rows):
        timeline.broken_barh(
            [(b.start, max(b.seconds, data.span_seconds / 2000)) for b in row.bars],
            (i - 0.4, 0.8),
            facecolors=[_colour(b.status) for b in row.bars],
        )
    timeline.set_yticks(range(len(data.rows)), [r.worker[:28] for r in data.rows])
    timeline.set_ylim(-0.6, n_rows - 0.4)
    timeline.invert_yaxis()
    timeline.set_xlabel("seconds since the first group started")
    timeline.set_title(f"job {data.job_id}: groups per worker ({data.job_status})")
    for slot, bins, title in (
        (grid[1, 0], data.duration_bins, "duration of the last attempt (s)"),
        (grid[1, 1], data.size_bins, "group size (bytes)"),
    ):
        axes = fig.add_subplot(slot)
        if bins:
            axes.bar(
                [b.low for b in bins],
                [b.count for b in bins],
                width=[(b.high - b.low) or max(abs(b.low) * 0.1, 1.0) for b in bins],
                align="edge",
                color="#5c6bc0",
            )
        axes.set_title(title)
        axes.set_ylabel("groups")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
