"""``parceler status JOB``: group counts, progress, throughput, ETA, overdue and failed groups."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parceler.cli import friendly_errors
from parceler.cli.job_state import RunDirOption, read_job_state
from parceler.ledger import GroupItem, JobItem
from parceler.units import format_size

OVERDUE_FACTOR = 2.0  # a group running longer than this times its prediction is listed
_TERMINAL_JOB = frozenset({"SUCCEEDED", "FAILED"})


@dataclass(frozen=True)
class Overdue:
    group: int
    running_seconds: float
    predicted_seconds: float
    attempt: int
    worker: str | None


@dataclass(frozen=True)
class FailedGroup:
    group: int
    error: str | None
    cause: str | None
    attempt: int


@dataclass(frozen=True)
class JobProgress:
    """A snapshot of one job, computed from its ledger items (pure: see :func:`progress`)."""

    job_id: str
    status: str
    n_groups: int
    pending: int
    running: int
    succeeded: int
    failed: int
    remaining: int | None
    bytes_done: int
    bytes_total: int
    elapsed_seconds: float
    groups_per_second: float | None
    bytes_per_second: float | None
    eta_seconds: float | None
    overdue: list[Overdue] = field(default_factory=list)
    failures: list[FailedGroup] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def progress(job: JobItem, groups: list[GroupItem], now: float) -> JobProgress:
    """Count groups by status; throughput since the job started; ETA from that throughput.

    ETA is ``(groups not done) / (groups done per second)``; None until a group is done.
    """
    counts = Counter(g.status for g in groups)
    done = [g for g in groups if g.status in ("SUCCEEDED", "FAILED")]
    size = {g.index: int(g.attrs.get("size") or 0) for g in groups}
    bytes_done = sum(size[g.index] for g in done)
    started = job.created_at or now
    elapsed = max(0.0, now - started)
    n_groups = int(job.n_groups or len(groups))
    rate = len(done) / elapsed if done and elapsed > 0 else None
    left = n_groups - len(done)
    overdue = [
        Overdue(
            g.index,
            now - (g.started_at or now),
            float(g.predicted_seconds or 0.0),
            g.attempt,
            g.attrs.get("worker"),
        )
        for g in groups
        if g.status == "RUNNING"
        and g.started_at is not None
        and now - g.started_at > OVERDUE_FACTOR * max(1.0, float(g.predicted_seconds or 0.0))
    ]
    failures = [
        FailedGroup(g.index, g.error, g.cause, g.attempt) for g in groups if g.status == "FAILED"
    ]
    return JobProgress(
        job_id=job.job_id,
        status=job.status,
        n_groups=n_groups,
        pending=counts.get("PENDING", 0),
        running=counts.get("RUNNING", 0),
        succeeded=counts.get("SUCCEEDED", 0),
        failed=counts.get("FAILED", 0),
        remaining=job.remaining,
        bytes_done=bytes_done,
        bytes_total=sum(size.values()),
        elapsed_seconds=elapsed,
        groups_per_second=rate,
        bytes_per_second=bytes_done / elapsed if done and elapsed > 0 else None,
        eta_seconds=(left / rate) if rate and left > 0 else (0.0 if left == 0 else None),
        overdue=overdue,
        failures=failures,
        error=job.attrs.get("error"),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def render(p: JobProgress) -> Group:
    """The rich view of a snapshot."""
    done = p.succeeded + p.failed
    head = Text.assemble(
        (f"job {p.job_id} ", "bold"),
        (
            p.status,
            "green" if p.status == "SUCCEEDED" else "red" if p.status == "FAILED" else "cyan",
        ),
        f"   {done}/{p.n_groups} groups done",
    )
    bar = ProgressBar(total=max(1, p.n_groups), completed=done, width=50)
    rate = (
        f"{p.groups_per_second * 60:.1f} groups/min, {format_size(int(p.bytes_per_second or 0))}/s"
        if p.groups_per_second
        else "no group done yet"
    )
    counts = Table.grid(padding=(0, 2))
    counts.add_row("pending", str(p.pending), "running", str(p.running))
    counts.add_row("succeeded", str(p.succeeded), "failed", str(p.failed))
    counts.add_row("elapsed", _duration(p.elapsed_seconds), "ETA", _duration(p.eta_seconds))
    counts.add_row(
        "throughput", rate, "data", f"{format_size(p.bytes_done)} of {format_size(p.bytes_total)}"
    )
    parts: list[Any] = [head, bar, counts]
    if p.overdue:
        slow = Table(
            "group",
            "running",
            "predicted",
            "attempt",
            "worker",
            title="running longer than predicted",
        )
        for o in p.overdue:
            slow.add_row(str(o.group), _duration(o.running_seconds), _duration(o.predicted_seconds),
                         str(o.attempt), o.worker or "")  # fmt: skip
        parts.append(slow)
    if p.failures:
        failed = Table(
            "group", "error", "cause", "attempts", title="failed groups", show_lines=True
        )
        for f in p.failures:
            failed.add_row(str(f.group), f.error or "", (f.cause or "")[:300], str(f.attempt))
        parts.append(failed)
    if p.error:
        parts.append(Text(f"job error: {p.error}", style="red"))
    return Group(*parts)


def register(app: typer.Typer) -> None:
    """Add ``status`` to ``app``."""

    @app.command("status")
    @friendly_errors
    def status(
        job_id: Annotated[str, typer.Argument(help="the job id (the execution name)")],
        ledger_table: Annotated[
            str | None, typer.Option(help="ledger table (default: $PARCELER_LEDGER_TABLE)")
        ] = None,
        watch: Annotated[
            bool, typer.Option("--watch", metavar="", help="refresh until every group is done")
        ] = False,
        interval: Annotated[float, typer.Option(min=0.1, help="seconds between refreshes")] = 2.0,
        as_json: Annotated[
            bool, typer.Option("--json", metavar="", help="print one JSON object")
        ] = False,
        run_dir: RunDirOption = None,
    ) -> None:
        """Show a job's groups: pending/running/succeeded/failed, progress, ETA and errors.

        Reads the deployed ledger, or after a local run the state saved in its run folder.
        """

        def snapshot() -> JobProgress:
            state = read_job_state(job_id, ledger_table, run_dir)
            # A saved run is over: measure it up to its last update, not to now.
            now = (state.job.updated_at or time.time()) if state.folder else time.time()
            return progress(state.job, state.groups, now)

        current = snapshot()
        if as_json:
            while watch and not _finished(current):
                time.sleep(interval)
                current = snapshot()
            typer.echo(json.dumps(current.to_json()))
            return
        console = Console()
        if not watch:
            console.print(render(current))
            return
        with Live(render(current), console=console, refresh_per_second=4) as live:
            while not _finished(current):
                time.sleep(interval)
                current = snapshot()
                live.update(render(current))


def _finished(p: JobProgress) -> bool:
    return p.status in _TERMINAL_JOB or (p.remaining == 0 and p.running == 0 and p.pending == 0)
