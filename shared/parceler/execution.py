"""Start a job's Step Functions execution (named by the job id) and follow it to the end.

The same code drives a deployed stack, another emulator (``AWS_ENDPOINT_URL``) and the
local mode: it talks only to Step Functions, the ledger and the work area.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws, history, values
from parceler.aws.errors import raise_mapped
from parceler.aws.ledger import Ledger
from parceler.details import FailedGroup, JobResultDetails
from parceler.errors import ExecutionError, JobNotFoundError
from parceler.ledger import JobItem
from parceler.manifest import read_summary
from parceler.pipeline import stage_job_id
from parceler.quotas import ExecutionMeasure
from parceler.spec import JobSpec, PipelineSpec, StageSpec

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
PROGRESS_READ_SECONDS = 0.5
"""How stale the job item given to a follower's progress callback may be."""
# A reducer value up to this size is printed and returned inline; larger ones by URI only.
INLINE_VALUE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class JobResult:
    """How a job ended (``parceler run --json`` prints :meth:`to_json`)."""

    job_id: str
    status: str
    execution_arn: str
    n_groups: int
    groups_succeeded: int
    groups_failed: int
    result_uri: str | None
    value_uri: str | None
    result: Any
    error: str | None
    cause: str | None
    seconds: float
    failed_groups: list[FailedGroup] = field(default_factory=list)
    groups_skipped: int = 0  # of groups_succeeded: results reused from earlier jobs
    # The ended execution's history measured against the AWS quotas (None: not readable).
    state_machine: ExecutionMeasure | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "job_id": self.job_id,
            "execution_arn": self.execution_arn,
            "n_groups": self.n_groups,
            "groups_succeeded": self.groups_succeeded,
            "groups_failed": self.groups_failed,
            "groups_skipped": self.groups_skipped,
            "failed_groups": [f.to_details() for f in self.failed_groups],
            "result": self.result,
            "result_uri": self.result_uri,
            "value_uri": self.value_uri,
            "error": self.error,
            "cause": self.cause,
            "seconds": round(self.seconds, 3),
            "state_machine": self.state_machine.summary() if self.state_machine else None,
        }


def start_job(spec: JobSpec, job_id: str, state_machine_arn: str) -> str:
    """Start the execution named ``job_id`` with ``spec`` as its input; return its ARN.

    Raises:
        ExecutionError: the name is taken (a job with this id already ran or runs) or
            Step Functions refused the call.
        RetryableError: Step Functions throttled or failed the call.
    """
    return _start(spec, job_id, state_machine_arn)


def _start(spec: JobSpec | PipelineSpec, name: str, state_machine_arn: str) -> str:
    document = spec.model_dump(mode="json", exclude_none=True)
    try:
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
        )
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "stepfunctions", "StartExecution", f"{name!r} in {state_machine_arn}")
    return str(response["executionArn"])


def redrive_execution_name(job_id: str, redrive: int, now: float | None = None) -> str:
    """The name of the execution that redrives ``job_id`` for the ``redrive``-th time: the
    job id (cut to fit Step Functions' 80 characters), the number and the UTC time (a
    redrive refused before it counted keeps its number, so the time keeps names apart)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{job_id[:48]}-redrive-{redrive}-{stamp}"


def start_redrive(
    job_id: str,
    state_machine_arn: str,
    ledger: Ledger,
    pipeline: dict[str, Any] | None = None,
) -> str:
    """Start an execution that redrives job ``job_id`` (input ``{"redrive": job_id}``; see
    :func:`parceler.planner.redrive`); return its ARN.

    Raises:
        JobNotFoundError: the ledger has no such job.
        ExecutionError: Step Functions refused the call.
    """
    job = ledger.get_job(job_id)
    name = redrive_execution_name(job_id, job.redrives + 1)
    document: dict[str, Any] = {"redrive": job_id}
    if pipeline is not None:  # a pipeline's stage: the stages after it run once it succeeds
        document["pipeline"] = pipeline
    try:
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
        )
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "stepfunctions", "StartExecution", f"{name!r} in {state_machine_arn}")
    return str(response["executionArn"])


def follow(
    execution_arn: str,
    job_id: str,
    ledger: Ledger,
    *,
    on_progress: Callable[[str, JobItem | None, float], None] | None = None,
    poll_seconds: float = 0.5,
    timeout_seconds: float | None = None,
    enforce_quotas: bool = False,
) -> JobResult:
    """Poll the execution and the ledger until the execution ends; return the job's result.

    Args:
        execution_arn: from :func:`start_job`.
        job_id: the execution's name.
        ledger: where group counts are read for progress.
        on_progress: called after every poll with the execution's status, the job item
            (None before the planner creates it; read from the ledger at most every
            :data:`PROGRESS_READ_SECONDS`, the last one read in between) and the seconds
            since following began. Without it the ledger is read once, at the end.
        poll_seconds: seconds between polls.
        timeout_seconds: give up (raise) after this long; None waits for the end.
        enforce_quotas: raise when the ended execution's history exceeds an AWS quota
            (the local mode and the tests: moto enforces none); otherwise only report it
            in :attr:`JobResult.state_machine`.

    Raises:
        ExecutionError: the execution could not be described, or the timeout passed.
        QuotaExceededError: ``enforce_quotas`` and the execution exceeds a quota.
    """
    sfn = aws.client("stepfunctions")
    started = time.monotonic()
    job: JobItem | None = None
    job_read = -math.inf
    while True:
        try:
            described = sfn.describe_execution(executionArn=execution_arn)
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "stepfunctions", "DescribeExecution", execution_arn)
        status = str(described["status"])
        now = time.monotonic()
        # The ledger's counts are for display: a job item (two reads) per poll of a fast
        # poll loop was a third of a warm local job's requests to the emulator.
        if status in TERMINAL or (
            on_progress is not None and now - job_read >= PROGRESS_READ_SECONDS
        ):
            job, job_read = _job_or_none(ledger, job_id), now
        if on_progress is not None:
            on_progress(status, job, now - started)
        if status in TERMINAL:
            measure = _measure(execution_arn, enforce=enforce_quotas)
            result = job_result(job_id, execution_arn, described, job, time.monotonic() - started)
            return dataclasses.replace(result, state_machine=measure)
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise ExecutionError(
                f"job {job_id!r} still {status} after {timeout_seconds:.0f} s.",
                "follow it with `parceler status`, or raise the timeout.",
            )
        time.sleep(poll_seconds)


def _measure(execution_arn: str, *, enforce: bool) -> ExecutionMeasure | None:
    """The quota check where every execution ends (issue 10): enforced, it raises; reported,
    a history that cannot be read (no ``states:GetExecutionHistory`` permission) gives None."""
    if enforce:
        return history.check_execution(execution_arn)
    try:
        return history.measure_execution(execution_arn)
    except ClientError:
        return None


def _job_or_none(ledger: Ledger, job_id: str) -> JobItem | None:
    try:
        return ledger.get_job(job_id)
    except JobNotFoundError:
        return None


def job_result(
    job_id: str, execution_arn: str, described: Any, job: JobItem | None, seconds: float
) -> JobResult:
    """Counts come from the ledger; failed groups from the result manifest's details (the
    aggregator writes them whether the job succeeded or failed on tolerance); error and
    cause prefer the ledger's precise ones over the state machine's generic Fail."""
    result_uri = job.result_uri if job is not None else None
    details = JobResultDetails.of(read_summary(result_uri), result_uri) if result_uri else None
    value_uri = job.value_uri if job is not None else None
    error, cause = _task_error(
        (job.error if job else None) or described.get("error"),
        (job.cause if job else None) or described.get("cause"),
    )
    return JobResult(
        job_id=job_id,
        status=str(described["status"]),
        execution_arn=execution_arn,
        n_groups=int((job.n_groups if job else None) or (details.n_groups if details else 0)),
        groups_succeeded=job.n_succeeded if job else (details.groups_succeeded if details else 0),
        groups_failed=job.n_failed if job else (details.groups_failed if details else 0),
        result_uri=result_uri,
        value_uri=value_uri,
        result=read_value(value_uri),
        error=error,
        cause=cause,
        seconds=seconds,
        failed_groups=list(details.failed_groups) if details else [],
        groups_skipped=job.n_skipped if job else (details.groups_skipped if details else 0),
    )


@dataclass(frozen=True, slots=True)
class StageResult:
    """One stage of a pipeline: its job's result (None: it never started)."""

    name: str
    kind: str
    job_id: str
    job: JobResult | None
    partition_sizes: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.job is None:
            document.update(job_id=self.job_id, status="NOT_STARTED")
        else:
            document.update(self.job.to_json())
        if self.partition_sizes is not None:
            document["partition_sizes"] = self.partition_sizes
        return document


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """How a pipeline ended (``parceler run pipeline.json --json`` prints :meth:`to_json`)."""

    pipeline_id: str
    status: str
    execution_arn: str
    stages: list[StageResult]
    error: str | None
    cause: str | None
    seconds: float
    state_machine: ExecutionMeasure | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def last(self) -> JobResult | None:
        """The last stage's result (the pipeline's result manifest and value)."""
        return self.stages[-1].job if self.stages else None

    def to_json(self) -> dict[str, Any]:
        last = self.last
        return {
            "status": self.status,
            "pipeline_id": self.pipeline_id,
            "execution_arn": self.execution_arn,
            "stages": [stage.to_json() for stage in self.stages],
            "result": last.result if last else None,
            "result_uri": last.result_uri if last else None,
            "value_uri": last.value_uri if last else None,
            "error": self.error,
            "cause": self.cause,
            "seconds": round(self.seconds, 3),
            "state_machine": self.state_machine.summary() if self.state_machine else None,
        }


def start_pipeline(spec: PipelineSpec, pipeline_id: str, state_machine_arn: str) -> str:
    """Start the execution named ``pipeline_id`` with the pipeline spec as its input.

    Raises:
        ExecutionError, RetryableError: as for :func:`start_job`.
    """
    return _start(spec, pipeline_id, state_machine_arn)


def follow_pipeline(
    execution_arn: str,
    pipeline_id: str,
    spec: PipelineSpec,
    ledger: Ledger,
    *,
    on_progress: Callable[[str, StageSpec | None, JobItem | None, float], None] | None = None,
    poll_seconds: float = 0.5,
    timeout_seconds: float | None = None,
    enforce_quotas: bool = False,
) -> PipelineResult:
    """:func:`follow` for a pipeline: ``on_progress`` gets the stage running (the last one
    whose job exists) and its job item."""
    sfn = aws.client("stepfunctions")
    stages = spec.order()
    started = time.monotonic()
    while True:
        try:
            described = sfn.describe_execution(executionArn=execution_arn)
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "stepfunctions", "DescribeExecution", execution_arn)
        status = str(described["status"])
        jobs = {s.name: _job_or_none(ledger, stage_job_id(pipeline_id, s.name)) for s in stages}
        if on_progress is not None:
            running = [s for s in stages if jobs[s.name] is not None]
            current = running[-1] if running else None
            job = jobs[current.name] if current else None
            on_progress(status, current, job, time.monotonic() - started)
        if status in TERMINAL:
            break
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise ExecutionError(
                f"pipeline {pipeline_id!r} still {status} after {timeout_seconds:.0f} s.",
                "follow its stages with `parceler status`, or raise the timeout.",
            )
        time.sleep(poll_seconds)
    seconds = time.monotonic() - started
    output = json.loads(described.get("output") or "null")
    sizes = {}
    if isinstance(output, dict):
        sizes = {s.get("name"): s.get("partition_sizes") for s in output.get("stages", [])}
    results = []
    for stage in stages:
        job_id = stage_job_id(pipeline_id, stage.name)
        job = jobs[stage.name]
        # A stage that ran has its own execution status: its job's (the pipeline's for
        # the stage that ended it).
        staged = None
        if job is not None:
            ended = {**described, "status": _stage_status(job, described)}
            # The stage's own time, from its job item (the pipeline's when not recorded).
            took = (
                job.updated_at - job.created_at
                if job.updated_at is not None and job.created_at is not None
                else seconds
            )
            staged = job_result(job_id, execution_arn, ended, job, took)
        results.append(StageResult(stage.name, stage.kind, job_id, staged, sizes.get(stage.name)))
    error, cause = _task_error(described.get("error"), described.get("cause"))
    return PipelineResult(
        pipeline_id=pipeline_id,
        status=status,
        execution_arn=execution_arn,
        stages=results,
        error=error,
        cause=cause,
        seconds=seconds,
        state_machine=_measure(execution_arn, enforce=enforce_quotas),
    )


def _stage_status(job: JobItem, described: Any) -> str:
    return job.status if job.status in TERMINAL else str(described["status"])


def _task_error(error: str | None, cause: str | None) -> tuple[str | None, str | None]:
    """A Lambda task's failure cause is its error document (type, message, stack trace):
    keep the typed error's message, which names the problem and the fix, and drop the
    handler's stack trace."""
    if not cause or not cause.startswith("{"):
        return error, cause
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return error, cause
    if not isinstance(document, dict) or "errorMessage" not in document:
        return error, cause
    return str(document.get("errorType") or error), str(document["errorMessage"])


def read_value(value_uri: str | None, max_bytes: int | None = INLINE_VALUE_BYTES) -> Any:
    """The reducer's value; None when absent or larger than ``max_bytes`` (None: any size)."""
    return values.read_value(value_uri, max_bytes)
