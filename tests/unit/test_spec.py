"""The job spec validates like the console needs: every bad field named, with a fix."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from parceler import storage
from parceler.errors import SpecError
from parceler.spec import OUTPUT_SCHEMES, JobSpec, parse_spec, spec_json_schema

GOOD: dict[str, Any] = {
    "source": "s3://input/taxi/",
    "partitioning": {"target_size": "256MB", "max_files": 500},
    "processor": {
        "kind": "builtin",
        "name": "csv-groupby",
        "options": {"column": "passenger_count"},
    },
    "reducer": {"name": "sum"},
    "limits": {"tolerated_failure_percent": 5, "max_concurrency": 20},
}


def test_a_good_spec_parses_from_json_text_and_sizes_are_human() -> None:
    spec = parse_spec(json.dumps(GOOD))
    assert spec.partitioning.target_size == 256_000_000
    assert spec.partitioning.max_files == 500
    assert spec.processor.options == {"column": "passenger_count"}
    assert spec.limits.tolerated_failure_percent == 5


def test_defaults_give_a_runnable_spec() -> None:
    spec = parse_spec({"source": "/data", "processor": {"name": "linecount"}})
    assert spec.partitioning.target_size == 1_000_000_000
    assert spec.limits.max_attempts == 3
    assert spec.reducer is None


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"sourc": "x"}, "sourc"),
        ({"processor": {"kind": "python"}}, "processor"),
        ({"processor": {"kind": "python", "function": "no_colon"}}, "processor.function"),
        ({"partitioning": {"target_size": 0}}, "partitioning.target_size"),
        ({"partitioning": {"groups": 4, "target_size": "1GB"}}, "partitioning"),
        ({"limits": {"tolerated_failure_percent": 150}}, "limits.tolerated_failure_percent"),
        ({"job_id": "has spaces"}, "job_id"),
    ],
)
def test_bad_fields_are_named(patch: dict[str, Any], named: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec({**GOOD, **patch})
    assert named in str(raised.value)
    assert "spec-schema" in (raised.value.fix or "")


def test_not_json_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="not valid JSON"):
        parse_spec("{source: ")


def test_the_schema_is_what_the_model_validates() -> None:
    schema = spec_json_schema()
    assert schema["title"] == "JobSpec"
    assert set(schema["required"]) == {"source", "processor"}
    assert schema["additionalProperties"] is False
    assert isinstance(JobSpec.model_validate(GOOD), JobSpec)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('"processor": {"name": "linecount", "timeout_seconds": Infinity}', "timeout_seconds"),
        ('"processor": {"name": "linecount"}, "limits": {"tolerated_failure_percent": NaN}',
         "limits.tolerated_failure_percent"),
        ('"processor": {"name": "csv-groupby", "options": {"column": "c", "w": [1, -Infinity]}}',
         "options.w.1"),
    ],
)  # fmt: skip
def test_nan_and_infinity_are_refused_not_stored_as_null(text: str, named: str) -> None:
    # json.loads accepts these tokens; JSON (the ledger, the console, DynamoDB) cannot.
    with pytest.raises(SpecError, match=re.escape(named)) as raised:
        parse_spec('{"source": "/data", ' + text + "}")
    assert "finite" in str(raised.value) or "NaN or Infinity" in str(raised.value)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("ftp://x/", "scheme 'ftp' cannot be written"),
        ("https://bucket.s3.amazonaws.com/out/", "scheme 'https' cannot be written"),
        ("s3:///out/", "needs a bucket"),
        ("", "empty output"),
    ],
)
def test_an_output_parceler_cannot_write_is_refused(output: str, problem: str) -> None:
    with pytest.raises(SpecError, match=f"output: .*{re.escape(problem)}"):
        parse_spec({**GOOD, "output": output})


@pytest.mark.parametrize("output", ["s3://out-bucket/results/", "file:///tmp/out", "/tmp/out"])
def test_outputs_parceler_can_write_are_accepted(output: str) -> None:
    assert parse_spec({**GOOD, "output": output}).output == output


def test_output_schemes_are_the_ones_storage_writes() -> None:
    assert OUTPUT_SCHEMES == storage.ACCEPTED_SCHEMES
