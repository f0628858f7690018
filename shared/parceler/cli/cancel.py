"""``parceler cancel JOB``: stop a deployed job's (or pipeline's) execution and mark it in the
ledger."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from botocore.exceptions import ClientError

from parceler import aws
from parceler.aws.ledger import Ledger
from parceler.cli import err_console, friendly_errors
from parceler.errors import ExecutionError, SpecError
from parceler.pipeline import stage_job_id
from parceler.spec import is_pipeline, parse_pipeline

CANCELLED_CAUSE = "cancelled by user"


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    """The ARN of the execution named ``job_id`` (``parceler run`` names executions so)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"


def cancel_job(state_machine_arn: str, ledger: Ledger, job_id: str) -> bool:
    """StopExecution, then mark the job FAILED with cause "cancelled by user".

    Groups already in the queues still run when a worker takes them (their results are
    kept in the ledger but never aggregated). Returns False when the execution had already
    ended (the ledger is left as it is).

    Raises:
        ExecutionError: no such execution, or Step Functions refused the call.
    """
    arn = execution_arn(state_machine_arn, job_id)
    sfn = aws.client("stepfunctions")
    try:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return False
        sfn.stop_execution(executionArn=arn, error="Cancelled", cause=CANCELLED_CAUSE)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ExecutionDoesNotExist":
            raise ExecutionError(
                f"no execution named {job_id!r} in {state_machine_arn}.",
                "check the job id and the state machine.",
            ) from exc
        raise ExecutionError(f"StopExecution failed: {code}: {exc}.") from exc
    for target in ledger_jobs(job_id, described.get("input")):
        ledger.mark_job(
            target, "FAILED", expected=["PLANNING", "RUNNING", "AGGREGATING"], error="Cancelled",
            cause=CANCELLED_CAUSE,
        )  # fmt: skip
    return True


def ledger_jobs(execution_name: str, execution_input: str | None) -> list[str]:
    """The ledger's jobs an execution runs: itself, or a pipeline's stages (its input has
    ``stages``; only the one running is still active, the others are left as they are)."""
    try:
        document = json.loads(execution_input or "{}")
        if is_pipeline(document):
            spec = parse_pipeline(document)
            return [stage_job_id(execution_name, stage.name) for stage in spec.order()]
    except (ValueError, SpecError):
        pass  # not a pipeline this parceler reads: the execution's own job
    return [execution_name]


def register(app: typer.Typer) -> None:
    """Add ``cancel`` to ``app``."""

    @app.command("cancel")
    @friendly_errors
    def cancel(
        job_id: Annotated[str, typer.Argument(help="the job id (the execution name)")],
        state_machine: Annotated[
            str | None,
            typer.Option(help="the job state machine ARN (default $PARCELER_STATE_MACHINE_ARN)"),
        ] = None,
        ledger_table: Annotated[
            str | None, typer.Option(help="the ledger table (default $PARCELER_LEDGER_TABLE)")
        ] = None,
    ) -> None:
        """Stop a deployed job: its execution stops and the ledger records it as cancelled.

        A local run is cancelled with Ctrl-C.
        """
        machine = state_machine or os.environ.get("PARCELER_STATE_MACHINE_ARN")
        table = ledger_table or os.environ.get("PARCELER_LEDGER_TABLE")
        if not machine or not table:
            raise SpecError(
                "cancel needs the deployed stack's state machine and ledger table.",
                "pass --state-machine and --ledger-table, or set PARCELER_STATE_MACHINE_ARN "
                "and PARCELER_LEDGER_TABLE (a local run is cancelled with Ctrl-C).",
            )
        if cancel_job(machine, Ledger(table), job_id):
            err_console.print(f"job {job_id}: cancelled", highlight=False)
        else:
            err_console.print(f"job {job_id}: already ended; nothing to cancel", highlight=False)
