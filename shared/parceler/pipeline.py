"""Pipelines: stages run one after another in one execution (docs/pipelines.md).

A pipeline execution is the job state machine running its stages in turn: the
``StartPipeline`` state (:func:`start`) stores the pipeline spec once and dispatches the
first stage; every stage runs the job path (Plan → WriteGroups → WaitForGroups →
aggregation) as the job ``<pipeline>--<stage>``; after a stage succeeds, ``NextStage``
(:func:`next_stage`) dispatches the next — its source the result manifest of its input
stage, read from the ledger — or ends the execution with :func:`summary`.

The state carries :class:`PipelineState` (three fields) and the next stage's spec: nothing
in it grows with the stages, and each stage adds a bounded number of history events
(docs/quotas.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.errors import JobNotFoundError, ManifestError, ParcelerError, SpecError
from parceler.ledger import JobItem
from parceler.manifest import read_summary
from parceler.spec import PipelineSpec, StageSpec, parse_pipeline
from parceler.workarea import JobArea

_STAGE_SEPARATOR = "--"
_ID_ROOM = 80 - len(_STAGE_SEPARATOR) - 32  # a job id is at most 80 characters


def stage_job_id(pipeline_id: str, stage: str) -> str:
    """The job id of stage ``stage``: ``<pipeline>--<stage>``; a pipeline id too long to
    fit is cut and suffixed with its hash, so ids of different pipelines stay apart."""
    if len(pipeline_id) > _ID_ROOM:
        digest = hashlib.sha256(pipeline_id.encode()).hexdigest()[:8]
        pipeline_id = f"{pipeline_id[: _ID_ROOM - 9]}-{digest}"
    return f"{pipeline_id}{_STAGE_SEPARATOR}{stage}"


def pipeline_spec_uri(work_bucket: str, pipeline_id: str) -> str:
    """Where the pipeline's spec is stored (its one copy)."""
    return f"s3://{work_bucket}/pipelines/{pipeline_id}/pipeline.json"


@dataclass(frozen=True, slots=True)
class PipelineState:
    """What the execution's state carries between stages."""

    pipeline_id: str
    stage: int  # index into PipelineSpec.order()
    n_stages: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.pipeline_id, "stage": self.stage, "n_stages": self.n_stages}

    @classmethod
    def of(cls, document: Any) -> PipelineState:
        try:
            return cls(str(document["id"]), int(document["stage"]), int(document["n_stages"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"a pipeline state {document!r} is malformed ({exc}).") from exc


def start(
    document: dict[str, Any], execution_name: str, work_bucket: str, ledger: Ledger
) -> dict[str, Any]:
    """The ``StartPipeline`` state: validate and store the spec, dispatch the first stage.

    Idempotent (a retried task stores the same spec and dispatches the same stage).

    Raises:
        SpecError: the spec is invalid (naming the stage), or its pipeline_id differs from
            the execution name.
    """
    spec = parse_pipeline(document)
    if spec.pipeline_id is not None and spec.pipeline_id != execution_name:
        raise SpecError(
            f"the spec's pipeline_id {spec.pipeline_id!r} differs from the execution name "
            f"{execution_name!r}.",
            "name the execution after the pipeline_id, or leave pipeline_id out.",
        )
    body = spec.model_dump_json(exclude_none=True).encode()
    storage.write_bytes(
        pipeline_spec_uri(work_bucket, execution_name), body, content_type="application/json"
    )
    return dispatch(spec, PipelineState(execution_name, 0, len(spec.stages)), ledger)


def next_stage(state: dict[str, Any], work_bucket: str, ledger: Ledger) -> dict[str, Any]:
    """The ``NextStage`` state: the stage after ``state``'s, or the pipeline's summary."""
    current = PipelineState.of(state)
    spec = read_pipeline(work_bucket, current.pipeline_id)
    after = PipelineState(current.pipeline_id, current.stage + 1, current.n_stages)
    if after.stage >= after.n_stages:
        return {
            "done": True,
            "job_id": None,
            "spec": None,
            "pipeline": after.to_json(),
            "result": summary(spec, current.pipeline_id, ledger, work_bucket),
        }
    return dispatch(spec, after, ledger)


def read_pipeline(work_bucket: str, pipeline_id: str) -> PipelineSpec:
    """The stored spec of pipeline ``pipeline_id``."""
    return parse_pipeline(storage.read_bytes(pipeline_spec_uri(work_bucket, pipeline_id)))


def dispatch(spec: PipelineSpec, state: PipelineState, ledger: Ledger) -> dict[str, Any]:
    """The job the stage at ``state.stage`` runs: its id and spec (source resolved)."""
    stage = spec.order()[state.stage]
    job_spec = stage.job_spec(
        stage_source(spec, stage, state.pipeline_id, ledger),
        stage_job_id(state.pipeline_id, stage.name),
    )
    return {
        "done": False,
        "job_id": job_spec.job_id,
        "spec": json.loads(job_spec.model_dump_json(exclude_none=True)),
        "pipeline": state.to_json(),
        "result": None,
    }


def stage_source(spec: PipelineSpec, stage: StageSpec, pipeline_id: str, ledger: Ledger) -> str:
    """The stage's source: its input stage's result manifest, or its (the pipeline's) source.

    Raises:
        ManifestError: the input stage has no result (it has not run, or did not succeed).
    """
    feeder = spec.inputs()[stage.name]
    if feeder is None:
        source = stage.source or spec.source
        assert source is not None  # PipelineSpec.order() checked it
        return source
    job = _job(ledger, stage_job_id(pipeline_id, feeder))
    if job is None or job.status != "SUCCEEDED" or not job.result_uri:
        raise ManifestError(
            f"stage {stage.name!r} reads stage {feeder!r}, which has no result "
            f"({'not run' if job is None else job.status}).",
            "run the pipeline again; its stages run in input order.",
        )
    return job.result_uri


def summary(
    spec: PipelineSpec, pipeline_id: str, ledger: Ledger, work_bucket: str
) -> dict[str, Any]:
    """The pipeline's result: one entry per stage (status, groups, result URI), and the
    last stage's result and value URIs."""
    stages = [stage_summary(s, pipeline_id, ledger, work_bucket) for s in spec.order()]
    failed = [s for s in stages if s["status"] != "SUCCEEDED"]
    last = stages[-1]
    return {
        "pipeline_id": pipeline_id,
        "status": "FAILED" if failed else "SUCCEEDED",
        "stages": stages,
        "result_uri": last["result_uri"],
        "value_uri": last["value_uri"],
    }


def stage_summary(
    stage: StageSpec, pipeline_id: str, ledger: Ledger, work_bucket: str
) -> dict[str, Any]:
    """One stage's entry in :func:`summary` (``status`` NOT_STARTED before it runs)."""
    job_id = stage_job_id(pipeline_id, stage.name)
    job = _job(ledger, job_id)
    entry: dict[str, Any] = {
        "name": stage.name,
        "kind": stage.kind,
        "job_id": job_id,
        "status": "NOT_STARTED" if job is None else job.status,
        "n_groups": None if job is None else job.n_groups,
        "groups_succeeded": 0 if job is None else job.n_succeeded,
        "groups_failed": 0 if job is None else job.n_failed,
        "result_uri": None if job is None else job.result_uri,
        "value_uri": None if job is None else job.value_uri,
    }
    if stage.kind == "map_from_n" and job is not None and job.n_groups is not None:
        entry["partition_sizes"] = _partition_sizes(work_bucket, job_id)
    return entry


def _partition_sizes(work_bucket: str, job_id: str) -> dict[str, Any] | None:
    """The partition sizes the planner recorded on the stage's master manifest."""
    try:
        master = read_summary(JobArea(work_bucket, job_id).manifest)
    except ParcelerError:  # a summary entry, never worth failing the pipeline for
        return None
    sizes = master.details.get("partition_sizes")
    return sizes if isinstance(sizes, dict) else None


def _job(ledger: Ledger, job_id: str) -> JobItem | None:
    try:
        return ledger.get_job(job_id)
    except JobNotFoundError:
        return None
