"""The aggregator: committed results only, a two-level reduce, tolerance, ledger outcome."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from parceler import spec_store, storage
from parceler.aggregator import finalize, reduce_batch
from parceler.aws import ledger
from parceler.aws.ledger import Ledger
from parceler.details import FailedGroup, GroupResultDetails
from parceler.ledger import NewGroup
from parceler.manifest import read_manifest, write_manifest
from parceler.models import DATA_FILE_SCHEMA
from parceler.settings import AggregatorSettings
from parceler.spec import parse_spec
from parceler.values import INLINE_VALUE_BYTES
from parceler.workarea import JobArea

pytestmark = pytest.mark.functional

TABLE = "ledger"


@pytest.fixture
def settings(bucket: str) -> AggregatorSettings:
    ledger.create_table(TABLE)
    return AggregatorSettings.from_env(
        {"PARCELER_LEDGER_TABLE": TABLE, "PARCELER_WORK_BUCKET": bucket}
    )


def _outputs(group: int, attempt: int, n: int) -> pa.Table:
    return pa.table(
        {
            "uri": [f"s3://out/g{group}/a{attempt}/{i}" for i in range(n)],
            "size": [10] * n,
            "n_record": [None] * n,
            "etag": [None] * n,
        },
        schema=DATA_FILE_SCHEMA,
    )


def _job(
    settings: AggregatorSettings,
    job_id: str,
    values: dict[int, Any],
    *,
    failed: tuple[int, ...] = (),
    tolerated: float = 0.0,
    orphan: int | None = None,
) -> Ledger:
    """A planned job whose groups in ``values`` committed that value; ``failed`` groups failed.

    ``orphan``: that group also has an uncommitted attempt whose result says 1,000,000.
    """
    area = JobArea(settings.work_bucket, job_id)
    spec = parse_spec(
        {
            "source": "s3://in/",
            "processor": {"kind": "builtin", "name": "linecount"},
            "reducer": {"kind": "builtin", "name": "sum"},
            "limits": {"tolerated_failure_percent": tolerated},
        }
    )
    n_groups = len(values) + len(failed)
    ledger = Ledger(settings.ledger_table)
    ledger.create_job(
        job_id, spec_json=spec_store.write_spec(area, spec), run_id="run-20261202T011447-3f9a1c"
    )
    ledger.record_plan(job_id, n_groups=n_groups, attrs={"fingerprint": "master-fp"})
    ledger.put_groups(
        job_id,
        [
            NewGroup(g, f"fp{g}", area.group(g).manifest, 1.0, "lambda", 1, 10)
            for g in range(n_groups)
        ],
    )
    ledger.mark_job(job_id, "RUNNING")
    for group, value in values.items():
        claim = ledger.claim_group(job_id, group, "w", lease_seconds=60)
        attempt = getattr(claim, "attempt", 1)
        if group == orphan:
            write_manifest(
                _outputs(group, 99, 5),
                area.group(group).attempt(99, "run-20261202T011447-3f9a1c").result,
                details=_result(job_id, 99, {"lines": 1_000_000}),
            )
        uri = area.group(group).attempt(attempt, "run-20261202T011447-3f9a1c").result
        write_manifest(_outputs(group, attempt, 2), uri, details=_result(job_id, attempt, value))
        assert ledger.commit_group(job_id, group, attempt, uri)
    for group in failed:
        assert ledger.fail_group(job_id, group, "ProcessorError", f"group {group} is poison")
    return ledger


def _result(job_id: str, attempt: int, value: Any) -> dict[str, Any]:
    return GroupResultDetails(job_id=job_id, attempt=attempt, value=value).to_details()


def test_only_committed_results_are_reduced_through_the_tree(settings: AggregatorSettings) -> None:
    ledger = _job(settings, "j1", {0: {"lines": 1}, 1: {"lines": 2}, 2: {"lines": 4}}, orphan=1)

    partials = [reduce_batch("j1", 0, 0, 2, settings), reduce_batch("j1", 1, 2, 1, settings)]
    outcome = finalize("j1", len(partials), settings)

    assert partials[0].endswith("/jobs/j1/aggregate/batch-00000.json")
    assert read_manifest(partials[0]).summary.details["value"] == {"lines": 3}
    assert outcome.to_json() | {"result_uri": "", "value_uri": ""} == {
        "status": "SUCCEEDED",
        "within_tolerance": True,
        "n_groups": 3,
        "groups_succeeded": 3,
        "groups_failed": 0,
        "groups_skipped": 0,
        "result_uri": "",
        "value_uri": "",
        "failures_uri": None,
    }
    assert outcome.value_uri is not None
    assert json.loads(storage.read_bytes(outcome.value_uri)) == {"lines": 7}
    result = read_manifest(outcome.result_uri)
    assert result.summary.parent_fingerprint == "master-fp"
    assert result.summary.details["value"] == {"lines": 7}
    uris = result.table.column("uri").to_pylist()
    assert len(uris) == 6 and not any("/a99/" in u for u in uris)
    job = ledger.get_job("j1")
    assert job.status == "SUCCEEDED" and job.result_uri == outcome.result_uri


def test_failures_within_tolerance_succeed_and_are_listed(settings: AggregatorSettings) -> None:
    _job(
        settings,
        "j2",
        {0: {"lines": 1}, 1: {"lines": 1}, 2: {"lines": 1}},
        failed=(3,),
        tolerated=25,
    )

    reduce_batch("j2", 0, 0, 4, settings)
    outcome = finalize("j2", 1, settings)

    assert (outcome.status, outcome.within_tolerance) == ("SUCCEEDED", True)
    assert (outcome.groups_succeeded, outcome.groups_failed) == (3, 1)
    [failed] = outcome.failed_groups
    assert failed == FailedGroup(
        index=3, status="FAILED", error="ProcessorError", cause="group 3 is poison", attempt=0
    )
    # The outcome the state machine sees carries counts and URIs, never the list.
    assert "failed_groups" not in outcome.to_json()
    assert outcome.failures_uri is not None
    assert json.loads(storage.read_bytes(outcome.failures_uri)) == [failed.to_details()]
    assert read_manifest(outcome.result_uri).summary.details["failures_uri"] == outcome.failures_uri


def test_failures_over_tolerance_fail_the_job_in_the_ledger(settings: AggregatorSettings) -> None:
    ledger = _job(settings, "j3", {0: {"lines": 1}}, failed=(1,), tolerated=49.9)

    reduce_batch("j3", 0, 0, 2, settings)
    outcome = finalize("j3", 1, settings)

    assert (outcome.status, outcome.within_tolerance) == ("FAILED", False)
    job = ledger.get_job("j3")
    assert job.status == "FAILED"
    assert job.error == "Parceler.ToleranceExceeded"
    assert "1 of 2 groups failed" in job.cause


def test_a_group_no_partial_covers_counts_as_failed(settings: AggregatorSettings) -> None:
    _job(settings, "j4", {0: {"lines": 1}, 1: {"lines": 1}}, tolerated=100)

    reduce_batch("j4", 0, 0, 1, settings)
    outcome = finalize("j4", 1, settings)

    assert (outcome.n_groups, outcome.groups_succeeded, outcome.groups_failed) == (2, 1, 1)


def test_a_large_value_goes_to_its_own_object(settings: AggregatorSettings) -> None:
    words = {f"word{i}": 1 for i in range(INLINE_VALUE_BYTES // 8)}
    _job(settings, "j5", {0: words, 1: words})

    partial = reduce_batch("j5", 0, 0, 2, settings)
    details = read_manifest(partial).summary.details
    outcome = finalize("j5", 1, settings)

    assert "value" not in details and details["value_uri"].endswith("batch-00000-value.json")
    assert outcome.value_uri is not None
    total = json.loads(storage.read_bytes(outcome.value_uri))
    assert total["word0"] == 2 and len(total) == len(words)


def test_reduce_batch_is_idempotent(settings: AggregatorSettings) -> None:
    _job(settings, "j6", {0: {"lines": 5}})

    first = reduce_batch("j6", 0, 0, 1, settings)
    again = reduce_batch("j6", 0, 0, 1, settings)

    assert first == again
    assert read_manifest(again).summary.details["value"] == {"lines": 5}
