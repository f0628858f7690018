"""``parceler report JOB --out FILE.html``: a self-contained HTML report of a job's groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parceler.cli import err_console, friendly_errors
from parceler.cli.job_state import RunDirOption, read_job_state
from parceler.report import build_report, check_png_support, render_html, render_png


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""

    @app.command("report")
    @friendly_errors
    def report(
        job_id: Annotated[str, typer.Argument(help="the job id (the execution name)")],
        out: Annotated[
            Path, typer.Option(help="the HTML file to write (self-contained, opens offline)")
        ],
        png: Annotated[
            Path | None,
            typer.Option(help="also draw the timeline and histograms into this PNG (matplotlib)"),
        ] = None,
        ledger_table: Annotated[
            str | None, typer.Option(help="ledger table (default: $PARCELER_LEDGER_TABLE)")
        ] = None,
        run_dir: RunDirOption = None,
    ) -> None:
        """Write a report of JOB: groups per worker over time, sizes, durations, failures.

        Reads the deployed ledger, or after a local run the state saved in its run folder.
        """
        if png is not None:
            check_png_support()  # before any ledger call: a missing extra fails fast
        state = read_job_state(job_id, ledger_table, run_dir)
        data = build_report(state.job, state.groups)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(data), encoding="utf-8")
        written = [str(out)]
        if png is not None:
            png.parent.mkdir(parents=True, exist_ok=True)
            render_png(data, png)
            written.append(str(png))
        err_console.print(
            f"job {job_id}: {data.n_groups} groups on {len(data.rows)} worker(s), "
            f"{len(data.failures)} failure(s) → {', '.join(written)}",
            highlight=False,
        )
