"""``parceler logs JOB [--group G]``: what a local run's workers printed, group by group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parceler.cli import friendly_errors
from parceler.cli.job_state import RunDirOption
from parceler.errors import InputError
from parceler.local import warm_stack
from parceler.local.run_folder import RunFolder, RunNotFoundError, log_sections


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
        """Print each group attempt's log lines (processor prints and logging) of a local run
        (its run folder, else the logs of the stack `parceler local up` started).

        Deployed jobs log to CloudWatch: Lambda workers under the worker function's log
        group, container workers under the service's.
        """
        try:
            log_dir = RunFolder.find(job_id, run_dir).logs
        except RunNotFoundError:
            # A job on a stack `parceler local up` started (its run folder is written when it
            # ends; one started by an AWS client has none): the stack's own worker logs.
            warm = warm_stack.running_stack() if run_dir is None else None
            if warm is None:
                raise
            log_dir = Path(warm.worker_log_dir)
        found = False
        for section in log_sections(log_dir, group, job_id):
            found = True
            typer.echo(
                f"=== group {section.index} attempt {section.attempt}: {section.status} "
                f"({section.worker_log}) ==="
            )
            for line in section.lines:
                typer.echo(line)
        if group is not None and not found:
            raise InputError(
                f"job {job_id} has no log of group {group} in {log_dir}.",
                "check the group index (`parceler status JOB` lists the groups).",
            )
        if not found:
            typer.echo(f"no group logs of job {job_id} in {log_dir}", err=True)
