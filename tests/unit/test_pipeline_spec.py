"""Pipeline specs: stages connect by name; a bad pipeline is a SpecError naming the stage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parceler.errors import SpecError
from parceler.pipeline import stage_job_id
from parceler.spec import parse_pipeline, parse_spec, spec_json_schema

SHELL = {"kind": "shell", "command": "cat"}
MERGE = {"kind": "python", "function": "m:f", "per": "group"}


def _pipeline(*stages: dict[str, Any], source: str | None = "/data") -> dict[str, Any]:
    document: dict[str, Any] = {"stages": list(stages)}
    if source is not None:
        document["source"] = source
    return document


def test_stages_default_to_the_stage_before_and_run_after_their_input() -> None:
    spec = parse_pipeline(
        _pipeline(
            {"name": "select", "processor": SHELL},
            {"name": "merge", "kind": "map_from_n", "input": "route", "processor": MERGE},
            {"name": "route", "kind": "map_to_n", "partitions": 8, "input": "select",
             "processor": SHELL},
            {"name": "again", "processor": SHELL},
        )
    )  # fmt: skip
    assert spec.inputs() == {"select": None, "merge": "route", "route": "select", "again": "route"}
    assert [stage.name for stage in spec.order()] == ["select", "route", "merge", "again"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            [{"name": "a", "input": "nope", "processor": SHELL}],
            "stage 'a': input 'nope' names no stage",
        ),
        (
            [
                {"name": "a", "input": "b", "processor": SHELL},
                {"name": "b", "input": "a", "processor": SHELL},
            ],
            "stage 'a' is in a cycle of inputs: a -> b -> a",
        ),
        (
            [
                {"name": "a", "processor": SHELL},
                {"name": "b", "kind": "map_from_n", "processor": MERGE},
            ],
            "stage 'b' is map_from_n, so its input must be a map_to_n stage; it reads 'a'",
        ),
        (
            [{"name": "a", "kind": "map_from_n", "processor": MERGE}],
            "stage 'a' is map_from_n, so its input must be a map_to_n stage",
        ),
        (
            [{"name": "a", "processor": SHELL}, {"name": "a", "processor": SHELL}],
            "stage 'a': two stages have this name",
        ),
        (
            [{"name": "a", "kind": "map_to_n", "processor": SHELL}],
            "map_to_n job needs 'partitions'",
        ),
        (
            [{"name": "a", "partitions": 4, "processor": SHELL}],
            "'partitions' is for map_to_n jobs",
        ),
        (
            [{"name": "a", "kind": "map_to_n", "partitions": 2, "processor": {"name": "copy"}}],
            "runs a 'python' or 'shell' processor",
        ),
    ],
)
def test_a_bad_pipeline_is_a_spec_error_naming_the_stage(
    stages: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_pipeline(_pipeline(*stages))


def test_a_pipeline_without_any_source_names_the_first_stage() -> None:
    with pytest.raises(SpecError, match="stage 'a' reads no stage and has no source"):
        parse_pipeline(_pipeline({"name": "a", "processor": SHELL}, source=None))


def test_a_stage_is_the_job_it_runs() -> None:
    spec = parse_pipeline(
        _pipeline(
            {"name": "route", "kind": "map_to_n", "partitions": 8, "processor": SHELL,
             "limits": {"max_concurrency": 2}},
        )
    )  # fmt: skip
    job = spec.stages[0].job_spec("s3://b/in/", stage_job_id("p1", "route"))
    assert job.job_id == "p1--route"
    assert (job.kind, job.partitions, job.limits.max_concurrency) == ("map_to_n", 8, 2)
    assert parse_spec(job.model_dump(mode="json", exclude_none=True)) == job


def test_stage_job_ids_fit_a_job_id_and_stay_apart() -> None:
    long_a, long_b = "a" * 79 + "x", "a" * 79 + "y"
    ids = {stage_job_id(long_a, "s" * 32), stage_job_id(long_b, "s" * 32)}
    assert len(ids) == 2
    for job_id in ids:
        parse_spec({"source": "/d", "job_id": job_id, "processor": {"name": "linecount"}})


def test_the_pipeline_schema_is_published() -> None:
    schema = spec_json_schema(pipeline=True)
    assert "stages" in schema["properties"]
    assert "StageSpec" in schema["$defs"]


def test_cancelling_a_pipeline_marks_its_stage_jobs_and_a_job_itself() -> None:
    from parceler.cli.cancel import ledger_jobs

    pipeline = _pipeline(
        {"name": "route", "kind": "map_to_n", "partitions": 2, "processor": SHELL},
        {"name": "merge", "kind": "map_from_n", "processor": MERGE},
    )
    assert ledger_jobs("p7", json.dumps(pipeline)) == ["p7--route", "p7--merge"]
    job = {"source": "/d", "processor": {"name": "linecount"}}
    assert ledger_jobs("job-1", json.dumps(job)) == ["job-1"]
    assert ledger_jobs("job-2", "not json") == ["job-2"]
