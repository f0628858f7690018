"""``parceler redrive``: re-run only the groups of a finished job that did not succeed."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from parceler.aws.ledger import Ledger
from parceler.cli import err_console, friendly_errors
from parceler.cli.options import JsonOption, LedgerTableOption, StateMachineOption, TimeoutOption
from parceler.cli.pipeline_run import (
    find_pipeline,
    pipeline_document_of,
    print_pipeline,
    redrive_pipeline,
)
from parceler.cli.run import (
    DEPLOYED_POLL_SECONDS,
    LOCAL_POLL_SECONDS,
    _follow_with_progress,
    _required_env,
    print_result,
    result_document,
    write_document,
)
from parceler.execution import JobResult, start_redrive
from parceler.ledger import SUCCEEDED
from parceler.local.run_folder import RUNS_FOLDER, RunFolder
from parceler.local.work_area import WORK_AREA_FOLDER, LocalWorkArea
from parceler.spec import PipelineSpec


def register(app: typer.Typer) -> None:
    """Add ``redrive`` to ``app``."""

    @app.command("redrive")
    @friendly_errors
    def redrive(
        job_id: Annotated[str, typer.Argument(metavar="JOB", help="the finished job's id")],
        local: Annotated[
            bool,
            typer.Option("--local", metavar="", help="a job run with run --local from this folder"),
        ] = False,
        workers: Annotated[int, typer.Option(min=1, help="--local: worker processes")] = 2,
        run_dir: Annotated[
            Path | None,
            typer.Option(help=f"--local: the job's run folder; default ./{RUNS_FOLDER}/JOB"),
        ] = None,
        work_area: Annotated[
            Path | None,
            typer.Option(
                help=f"--local: the saved work area; default ./{RUNS_FOLDER}/{WORK_AREA_FOLDER}"
            ),
        ] = None,
        state_machine: StateMachineOption = None,
        ledger_table: LedgerTableOption = None,
        timeout: TimeoutOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Re-run the groups of finished job JOB that failed (or never finished), with new
        attempts, then aggregate every committed result again. Succeeded groups are not
        touched. A SUCCEEDED job has nothing to redrive: the command says so and exits 0.
        Given a pipeline's id, its first stage that did not succeed is redriven and the
        stages after it run once it succeeds.

        Deployed: a new execution of the job state machine named JOB-redrive-N-TIME with
        input {"redrive": JOB} (the same as starting it from the console). --local: the job
        is restored from its saved work area into a new emulator, redriven there, and its
        run folder updated.
        """
        area = (LocalWorkArea(work_area.resolve()) if work_area else None) or (
            LocalWorkArea.default() if local else None
        )
        pipeline = find_pipeline(job_id, local=local, run_dir=run_dir, state_machine=state_machine)
        if pipeline is not None:
            _redrive_pipeline(job_id, pipeline, local=local, run_dir=run_dir, area=area,
                              workers=workers, as_json=as_json, timeout=timeout,
                              state_machine=state_machine, ledger_table=ledger_table)  # fmt: skip
            return
        folder = RunFolder.find(job_id, run_dir) if local else None
        result = _redrive(job_id, folder, area, workers=workers, quiet=as_json, timeout=timeout,
                          state_machine=state_machine, ledger_table=ledger_table)  # fmt: skip
        if result is None:
            message = f"job {job_id} SUCCEEDED: nothing to redrive (its groups are untouched)."
            if as_json:
                typer.echo(json.dumps({"job_id": job_id, "status": SUCCEEDED, "redriven": 0}))
            else:
                Console().print(message, highlight=False)
            return
        document = result_document(result, folder)
        if folder is not None:
            folder.run_document.write_text(json.dumps(document, indent=2), encoding="utf-8")
        if as_json:
            typer.echo(json.dumps(document))
        else:
            print_result(Console(), result, None, folder)
        if not result.succeeded:
            raise typer.Exit(1)


def _redrive_pipeline(
    pipeline_id: str, spec: PipelineSpec, *, local: bool, run_dir: Path | None,
    area: LocalWorkArea | None, workers: int, as_json: bool, timeout: float | None,
    state_machine: str | None, ledger_table: str | None,
) -> None:  # fmt: skip
    """``redrive PIPELINE``: its first stage that did not succeed, then the stages after it."""
    folder = (
        (RunFolder(run_dir.resolve()) if run_dir else RunFolder.default(pipeline_id))
        if local
        else None
    )
    result = redrive_pipeline(pipeline_id, spec, folder, area, workers=workers, quiet=as_json,
                              timeout=timeout, state_machine=state_machine,
                              ledger_table=ledger_table)  # fmt: skip
    if result is None:
        message = f"pipeline {pipeline_id}: every stage SUCCEEDED; nothing to redrive."
        if as_json:
            typer.echo(json.dumps({"pipeline_id": pipeline_id, "status": SUCCEEDED, "redriven": 0}))
        else:
            Console().print(message, highlight=False)
        return
    document = pipeline_document_of(result, folder)
    if write_document(document, folder, None, as_json):
        print_pipeline(Console(), result, document, folder)
    if not result.succeeded:
        raise typer.Exit(1)


def _redrive(
    job_id: str,
    folder: RunFolder | None,
    area: LocalWorkArea | None,
    *,
    workers: int,
    quiet: bool,
    timeout: float | None,
    state_machine: str | None,
    ledger_table: str | None,
) -> JobResult | None:
    """Start and follow the redrive; None when the job had succeeded (nothing started)."""
    with ExitStack() as stack:
        if folder is not None and area is not None:
            from parceler.local.session import LocalSession

            started = time.monotonic()
            with err_console.status("starting the local AWS emulator and workers…"):
                session = stack.enter_context(LocalSession(workers=workers, log_dir=folder.logs))
            area.restore_job(session.stack, job_id)
            area.restore_cache(session.stack)
            if not quiet and not err_console.is_terminal:
                err_console.print(
                    f"{job_id}: local emulator, {workers} worker(s) and the saved work area "
                    f"ready in {time.monotonic() - started:.1f} s",
                    highlight=False,
                )
            machine, table = session.stack.state_machine_arn, session.stack.ledger_table
        else:
            machine = state_machine or _required_env(
                "PARCELER_STATE_MACHINE_ARN", "--state-machine"
            )
            table = ledger_table or _required_env("PARCELER_LEDGER_TABLE", "--ledger-table")
        ledger = Ledger(table)
        if ledger.get_job(job_id).status == SUCCEEDED:
            return None
        arn = start_redrive(job_id, machine, ledger)
        poll = LOCAL_POLL_SECONDS if folder is not None else DEPLOYED_POLL_SECONDS
        result = _follow_with_progress(
            arn, job_id, ledger, quiet=quiet, timeout=timeout, poll_seconds=poll,
            enforce_quotas=folder is not None,
        )  # fmt: skip
        if folder is not None and area is not None:
            folder.save_ledger(table, job_id)
            folder.save_result(result.result_uri, result.value_uri)
            area.save(session.stack, job_id)
    return result
