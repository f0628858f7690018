"""``parceler run pipeline.json``: run a pipeline's stages in one execution (docs/pipelines.md).

A local pipeline run leaves ``parceler-runs/<pipeline>/`` (run.json: one entry per stage;
outputs/: every stage's outputs; logs/) and one run folder per stage beside it,
``parceler-runs/<pipeline>--<stage>/`` (its ledger, result manifest, value and logs), so
``parceler status``, ``report`` and ``logs`` work on each stage's job id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from parceler import aws, storage
from parceler.aws.ledger import Ledger
from parceler.cli import err_console
from parceler.cli.cancel import execution_arn
from parceler.cli.run import (
    DEPLOYED_POLL_SECONDS,
    LOCAL_POLL_SECONDS,
    PLAIN_PROGRESS_SECONDS,
    RunTarget,
    absolute_if_local,
    new_job_id,
    print_failures,
    run_target,
    save_local_job,
    value_table,
    write_document,
)
from parceler.errors import JobNotFoundError, RedriveError, SpecError
from parceler.execution import PipelineResult, follow_pipeline, start_pipeline, start_redrive
from parceler.ledger import SUCCEEDED, JobItem
from parceler.local import warm_stack
from parceler.local.run_folder import RunFolder
from parceler.local.work_area import LocalWorkArea
from parceler.pipeline import PipelineState, pipeline_spec_uri, stage_job_id
from parceler.preflight import check_pipeline
from parceler.spec import PipelineSpec, StageSpec, is_pipeline, parse_pipeline


def pipeline_document(argument: str) -> dict[str, Any] | None:
    """The pipeline spec in file ``argument``, or None when it is not a pipeline file."""
    path = Path(argument)
    if not (argument.endswith(".json") and path.is_file()):
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return None  # the job path reports it, with its own message
    return document if is_pipeline(document) else None


def prepare(document: dict[str, Any], pipeline_id: str | None) -> PipelineSpec:
    """The pipeline spec, local sources made absolute and the id applied."""
    document = dict(document)
    if pipeline_id is not None:
        document["pipeline_id"] = pipeline_id
    if isinstance(document.get("source"), str):
        document["source"] = absolute_if_local(document["source"])
    stages = document.get("stages")
    if isinstance(stages, list):
        document["stages"] = [
            {**stage, "source": absolute_if_local(stage["source"])}
            if isinstance(stage, dict) and isinstance(stage.get("source"), str)
            else stage
            for stage in stages
        ]
    return parse_pipeline(document)


def run_pipeline(
    document: dict[str, Any],
    *,
    pipeline_id: str | None,
    local: bool,
    workers: int,
    output: Path | None,
    as_json: bool,
    save_result: Path | None,
    timeout: float | None,
    state_machine: str | None,
    ledger_table: str | None,
    no_cache: bool,
) -> None:
    """The ``run`` command for a pipeline spec: check, start, follow, save, print."""
    warm = warm_stack.running_stack() if local else None
    if warm is not None:
        workers = warm.workers
    spec = prepare(document, pipeline_id)
    the_id = spec.pipeline_id or new_job_id().replace("job-", "pipeline-", 1)
    check_pipeline(spec, import_from=Path.cwd(), import_code=local)
    folder: RunFolder | None = None
    if local:
        folder = RunFolder(output.resolve()) if output else RunFolder.default(the_id)
    spec = _with_defaults(spec, folder, no_cache=no_cache)
    if folder is not None:  # what a local redrive needs to go on after a failed stage
        folder.path.mkdir(parents=True, exist_ok=True)
        saved_spec(folder).write_text(spec.model_dump_json(exclude_none=True), encoding="utf-8")
    try:
        result = _run(spec, the_id, folder, workers=workers, quiet=as_json, timeout=timeout,
                      state_machine=state_machine, ledger_table=ledger_table, warm=warm)  # fmt: skip
    except KeyboardInterrupt:
        err_console.print(
            f"parceler: stopped following pipeline {the_id}"
            + (" (the local emulator and its workers are stopped)." if local and not warm else "."),
            highlight=False,
        )
        raise typer.Exit(130) from None
    document_out = pipeline_document_of(result, folder)
    if write_document(document_out, folder, save_result, as_json):
        print_pipeline(Console(), result, document_out, folder)
    if not result.succeeded:
        raise typer.Exit(1)


def pipeline_document_of(result: PipelineResult, folder: RunFolder | None) -> dict[str, Any]:
    """What ``--json`` prints for a pipeline: for a local run, each stage's result and value
    in its run folder in place of the vanished work area's URIs."""
    document = result.to_json()
    if folder is None:
        return document
    document["run_folder"] = str(folder.path)
    for entry in document["stages"]:
        stage_folder = _stage_folder(folder, entry["job_id"])
        if stage_folder.result_summary.is_file():
            entry["result_uri"] = str(stage_folder.result_summary)
        if stage_folder.value.is_file():
            entry["value_uri"] = str(stage_folder.value)
    last = document["stages"][-1]
    document["result_uri"] = last.get("result_uri")
    document["value_uri"] = last.get("value_uri")
    document["outputs"] = str(folder.outputs) if folder.outputs.is_dir() else None
    return document


def _with_defaults(spec: PipelineSpec, folder: RunFolder | None, *, no_cache: bool) -> PipelineSpec:
    """Local stages write their outputs to the run folder; --no-cache turns reuse off."""
    stages = []
    for stage in spec.stages:
        update: dict[str, Any] = {}
        if folder is not None and stage.output is None:
            update["output"] = str(folder.outputs)
        if no_cache:
            update["incremental"] = False
        stages.append(stage.model_copy(update=update) if update else stage)
    return spec.model_copy(update={"stages": tuple(stages)})


def _stage_folder(folder: RunFolder, job_id: str) -> RunFolder:
    """A stage's run folder: beside the pipeline's, named by the stage's job id."""
    return RunFolder(folder.path.parent / job_id)


def _run(
    spec: PipelineSpec,
    pipeline_id: str,
    folder: RunFolder | None,
    *,
    workers: int,
    quiet: bool,
    timeout: float | None,
    state_machine: str | None,
    ledger_table: str | None,
    warm: warm_stack.StackState | None,
) -> PipelineResult:
    incremental = any(stage.incremental for stage in spec.stages)
    with run_target(
        pipeline_id, folder, workers=workers, quiet=quiet, incremental=incremental,
        state_machine=state_machine, ledger_table=ledger_table, warm=warm,
    ) as target:  # fmt: skip
        ledger = Ledger(target.table)
        arn = start_pipeline(spec, pipeline_id, target.machine)
        last: list[Any] = [-PLAIN_PROGRESS_SECONDS, ""]
        n_stages = len(spec.stages)
        order = [stage.name for stage in spec.order()]

        def show(status: str, stage: StageSpec | None, job: JobItem | None, elapsed: float) -> None:
            if target.check is not None:
                target.check()
            if quiet:
                return
            where = "starting"
            if stage is not None:
                number = order.index(stage.name) + 1
                groups = (
                    f"{job.n_succeeded + job.n_failed}/{job.n_groups} groups done"
                    if job is not None and job.n_groups is not None
                    else "planning"
                )
                where = f"stage {number}/{n_stages} {stage.name} ({stage.kind}): {groups}"
            line = f"{pipeline_id}: {where}, {elapsed:.1f} s elapsed"
            due = elapsed - float(last[0]) >= PLAIN_PROGRESS_SECONDS
            if status != "RUNNING" or due or where != last[1]:
                last[0], last[1] = elapsed, where
                err_console.print(line, highlight=False, soft_wrap=True)

        return _follow_and_save(arn, pipeline_id, spec, ledger, target, folder, timeout, show)


def _follow_and_save(
    arn: str, pipeline_id: str, spec: PipelineSpec, ledger: Ledger, target: RunTarget,
    folder: RunFolder | None, timeout: float | None,
    show: Callable[[str, StageSpec | None, JobItem | None, float], None] | None = None,
) -> PipelineResult:  # fmt: skip
    """Follow the execution to its end; for a local run, save every stage's run folder
    before the emulator stops."""
    poll = LOCAL_POLL_SECONDS if folder is not None else DEPLOYED_POLL_SECONDS
    result = follow_pipeline(
        arn, pipeline_id, spec, ledger, on_progress=show, poll_seconds=poll,
        timeout_seconds=timeout, enforce_quotas=folder is not None,
    )  # fmt: skip
    if folder is not None:
        for stage in result.stages:
            if stage.job is not None:
                save_local_job(
                    _stage_folder(folder, stage.job_id), target, stage.job_id,
                    stage.job.result_uri, stage.job.value_uri, logs=folder.logs,
                )  # fmt: skip
    return result


def print_pipeline(
    console: Console, result: PipelineResult, document: dict[str, Any], folder: RunFolder | None
) -> None:
    """One row per stage, the failures of the stage that failed, and the last value."""
    style = "green" if result.succeeded else "red"
    table = Table(title=f"pipeline {result.pipeline_id}", title_justify="left")
    for column in ("stage", "kind", "status", "groups", "partitions", "result"):
        table.add_column(column, overflow="fold")
    for stage, entry in zip(result.stages, document["stages"], strict=True):
        job = stage.job
        groups = (
            f"{job.groups_succeeded}/{job.n_groups}"
            + (f", {job.groups_failed} failed" if job.groups_failed else "")
            if job is not None
            else "—"
        )
        table.add_row(
            stage.name, stage.kind, entry.get("status", "—"), groups,
            partitions_text(stage.partition_sizes), str(entry.get("result_uri") or "—"),
        )  # fmt: skip
    console.print(table, soft_wrap=True)
    console.print(
        f"[{style}]{result.status}[/] in {result.seconds:.1f} s"
        + (f"; run folder {folder.path}" if folder is not None else ""),
        highlight=False,
        soft_wrap=True,
    )
    for stage in result.stages:
        if stage.job is not None and stage.job.failed_groups:
            stage_folder = _stage_folder(folder, stage.job_id) if folder else None
            print_failures(console, stage.job_id, stage.job.failed_groups, stage_folder)
    if result.error and not any(s.job and s.job.failed_groups for s in result.stages):
        console.print(f"error {result.error}: {(result.cause or '')[:2000]}", highlight=False)
    last = result.last
    if result.succeeded and last is not None and last.result is not None:
        console.print(value_table(last.result))


def partitions_text(sizes: dict[str, Any] | None) -> str:
    if not sizes:
        return ""
    text = f"{sizes['min']:,}/{sizes['median']:,}/{sizes['max']:,} B (min/median/max)"
    if sizes.get("skewed"):
        text += f"; over 4x the median: {', '.join(map(str, sizes['skewed']))}"
    return text


def refuse_job_options(argument: str, given: list[Any]) -> None:
    """A pipeline file carries its stages' processors: job options are refused."""
    if any(value is not None and value is not False for value in given):
        raise SpecError(
            f"{argument} is a pipeline spec; its stages' processors, partitioning and limits "
            "come from it, not from options.",
            "edit the pipeline file (`parceler spec-schema --pipeline` prints its schema).",
        )


def saved_spec(folder: RunFolder) -> Path:
    """Where a local pipeline run keeps its spec (as run, local outputs filled in)."""
    return folder.path / "pipeline.json"


def find_pipeline(
    name: str, *, local: bool, run_dir: Path | None, state_machine: str | None
) -> PipelineSpec | None:
    """The pipeline spec ``name`` ran, or None when ``name`` is a job: a local run's saved
    ``pipeline.json``, or a deployed execution's input."""
    if local:
        path = saved_spec(RunFolder(run_dir) if run_dir else RunFolder.default(name))
        return parse_pipeline(path.read_text(encoding="utf-8")) if path.is_file() else None
    machine = state_machine or os.environ.get("PARCELER_STATE_MACHINE_ARN")
    if not machine:
        return None  # the job path asks for it
    try:
        described = aws.client("stepfunctions").describe_execution(
            executionArn=execution_arn(machine, name)
        )
    except ClientError:
        return None  # no such execution: the job path says what is missing
    document = json.loads(described.get("input") or "{}")
    return parse_pipeline(document) if is_pipeline(document) else None


def redrive_pipeline(
    pipeline_id: str,
    spec: PipelineSpec,
    folder: RunFolder | None,
    area: LocalWorkArea | None,
    *,
    workers: int,
    quiet: bool,
    timeout: float | None,
    state_machine: str | None,
    ledger_table: str | None,
) -> PipelineResult | None:
    """Redrive the pipeline's first stage that did not succeed; once it succeeds the stages
    after it run (one execution). None when every stage had succeeded.

    Raises:
        RedriveError: the first unfinished stage never started (run the pipeline again).
    """
    stages = spec.order()
    with run_target(
        pipeline_id, folder, workers=workers, quiet=quiet, incremental=True,
        state_machine=state_machine, ledger_table=ledger_table,
    ) as target:  # fmt: skip
        if folder is not None and area is not None:  # the emulator is new: restore the run
            bucket = target.session.stack.work_bucket
            storage.write_bytes(
                pipeline_spec_uri(bucket, pipeline_id), spec.model_dump_json().encode()
            )
            for stage in stages:
                if area.has_job(stage_job_id(pipeline_id, stage.name)):
                    area.restore_job(target.session.stack, stage_job_id(pipeline_id, stage.name))
        ledger = Ledger(target.table)
        index = next(
            (
                i
                for i, stage in enumerate(stages)
                if _status(ledger, pipeline_id, stage) != SUCCEEDED
            ),
            None,
        )
        if index is None:
            return None
        job_id = stage_job_id(pipeline_id, stages[index].name)
        if _status(ledger, pipeline_id, stages[index]) is None:
            raise RedriveError(
                f"stage {stages[index].name!r} of pipeline {pipeline_id!r} never started, so "
                "it has nothing to redrive.",
                "run the pipeline again (a new pipeline id).",
            )
        state = PipelineState(pipeline_id, index, len(stages)).to_json()
        arn = start_redrive(job_id, target.machine, ledger, pipeline=state)
        return _follow_and_save(arn, pipeline_id, spec, ledger, target, folder, timeout)


def _status(ledger: Ledger, pipeline_id: str, stage: StageSpec) -> str | None:
    try:
        return ledger.get_job(stage_job_id(pipeline_id, stage.name)).status
    except JobNotFoundError:
        return None
