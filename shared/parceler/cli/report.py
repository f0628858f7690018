"""``parceler report JOB --out FILE.html``: a self-contained HTML report of a job's groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parceler.aws.ledger import Ledger
from parceler.cli import err_console, friendly_errors
from parceler.report import build_report, check_png_support, render_html, render_png
from parceler.settings import LedgerSettings


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
    ) -> None:
        """Write a report of JOB: groups per worker over time, sizes, durations, failures."""
        if png is not None:
            check_png_support()  # before any ledger call: a missing extra fails fast
        table = ledger_table or LedgerSettings.from_env().ledger_table
        ledger = Ledger(table)
        job = ledger.get_job(job_id)
        data = build_report(job, list(ledger.list_groups(job_id)))
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
