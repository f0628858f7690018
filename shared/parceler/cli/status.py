"""``parceler status JOB``: group counts, progress, throughput, ETA, overdue and failed groups."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parceler.cli import friendly_errors
from parceler.cli.job_state import RunDirOption, read_job_state
from parceler.local.run_folder import RunFolder
from parceler.progress import Progress, progress
from parceler.units import format_size


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def render(p: Progress) -> Group:
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
    if p.groups_skipped:
        counts.add_row("skipped", f"{p.groups_skipped} (results reused)", "", "")
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
            failed.add_row(str(f.index), f.error, (f.cause or "")[:300], str(f.attempt or ""))
        parts.append(failed)
    if p.retrying:
        retrying = Table(
            "group", "now", "failed attempt", "error", "cause", title="being retried",
            show_lines=True,
        )  # fmt: skip
        for r in p.retrying:
            retrying.add_row(str(r.index), r.status, str(r.attempt or ""), r.error,
                             (r.cause or "")[:300])  # fmt: skip
        parts.append(retrying)
    if p.error:
        parts.append(Text(f"job error: {p.error}", style="red"))
    return Group(*parts)


def saved_pipeline(pipeline_id: str, run_dir: Path | None) -> list[dict[str, Any]] | None:
    """The stages a local pipeline run saved in its run document, or None (not a pipeline)."""
    document = (run_dir or RunFolder.default(pipeline_id).path) / "run.json"
    try:
        saved = json.loads(document.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    stages = saved.get("stages") if isinstance(saved, dict) else None
    return stages if isinstance(stages, list) else None


def stage_table(pipeline_id: str, stages: list[dict[str, Any]]) -> Table:
    """One row per stage, with the job id that ``status``, ``report`` and ``logs`` take."""
    table = Table("stage", "kind", "status", "groups", "job id", title=f"pipeline {pipeline_id}")
    for stage in stages:
        groups = (
            f"{stage.get('groups_succeeded', 0)}/{stage['n_groups']}"
            if stage.get("n_groups") is not None
            else "—"
        )
        table.add_row(stage["name"], stage["kind"], stage["status"], groups, stage["job_id"])
    return table


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
        After a local pipeline run, ``status PIPELINE`` lists its stages (each a job).
        """

        stages = saved_pipeline(job_id, run_dir)
        if stages is not None:  # a local pipeline run: one line per stage (each is a job)
            if as_json:
                typer.echo(json.dumps({"pipeline_id": job_id, "stages": stages}))
            else:
                Console().print(stage_table(job_id, stages))
            return

        def snapshot() -> Progress:
            state = read_job_state(job_id, ledger_table, run_dir)
            # A saved run is over: measure it up to its last update, not to now.
            now = (state.job.updated_at or time.time()) if state.folder else time.time()
            return progress(state.job, state.groups, now)

        current = snapshot()
        if as_json:
            while watch and not current.finished:
                time.sleep(interval)
                current = snapshot()
            typer.echo(json.dumps(current.to_json()))
            return
        console = Console()
        if not watch:
            console.print(render(current))
            return
        with Live(render(current), console=console, refresh_per_second=4) as live:
            while not current.finished:
                time.sleep(interval)
                current = snapshot()
                live.update(render(current))
