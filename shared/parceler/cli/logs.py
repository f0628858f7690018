"""``parceler logs JOB [--group G]``: what a local run's workers printed, group by group."""

from __future__ import annotations

from typing import Annotated

import typer

from parceler.cli import friendly_errors
from parceler.cli.job_state import RunDirOption
from parceler.errors import InputError
from parceler.local.run_folder import RunFolder


def register(app: typer.Typer) -> None:
    """Add ``logs`` to ``app``."""

    @app.command("logs")
    @friendly_errors
    def logs(
        job_id: Annotated[str, typer.Argument(help="the job id of a local run")],
        group: Annotated[
            int | None, typer.Option(help="only this group's attempts (default: every group)")
        ] = None,
        run_dir: RunDirOption = None,
    ) -> None:
        """Print each group attempt's log lines (processor prints and logging) of a local run.

        Deployed jobs log to CloudWatch: Lambda workers under the worker function's log
        group, container workers under the service's.
        """
        folder = RunFolder.find(job_id, run_dir)
        found = False
        for section in folder.group_logs(group):
            found = True
            typer.echo(
                f"=== group {section.index} attempt {section.attempt}: {section.status} "
                f"({section.worker_log}) ==="
            )
            for line in section.lines:
                typer.echo(line)
        if group is not None and not found:
            raise InputError(
                f"job {job_id} has no log of group {group} in {folder.logs}.",
                "check the group index (`parceler status JOB` lists the groups).",
            )
        if not found:
            typer.echo(f"no group logs in {folder.logs}", err=True)
