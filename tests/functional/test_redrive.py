"""Redrive through the real state machine: a finished job's failed groups re-run alone.

The job definition runs in moto's Step Functions with the real handlers in-process and the
container worker loop in threads (``test_state_machine``'s harness).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.errors import PermanentError, RedriveError
from parceler.execution import start_redrive
from parceler.local.emulator import LocalAws
from parceler.local.resources import LocalStack, create_local_stack
from parceler.planner import redrive
from parceler.workarea import new_run_id
from tests.functional.test_state_machine import Workers, _files, _job_item, _result, _run, _wait

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws(poll_interval=0.05) as emulator:
        yield emulator


@pytest.fixture
def stack(local: LocalAws) -> Iterator[LocalStack]:
    local.reset()
    created = create_local_stack(prefix="t", lambda_visibility_seconds=30)
    with Workers(created):
        yield created


def lines_unless_marked(file: Any) -> dict[str, int]:
    """Counts lines; fails (permanently) while ``../poison/<name>`` exists beside its folder,
    so a test can poison a group and then fix it without changing the files."""
    path = Path(file.uri.removeprefix("file://"))
    if (path.parent.parent / "poison" / path.name).exists():
        raise PermanentError(f"poisoned input {file.uri}")  # fails at once, no retry
    with file.open() as stream:
        return {"lines": stream.read().count(b"\n")}


def sum_lines(values: list[dict[str, int]]) -> dict[str, int]:
    return {"lines": sum(v["lines"] for v in values)}


BROKEN_REDUCER = {"on": False}  # the handlers run in this process (the Lambda hook)


def sum_lines_unless_broken(values: list[dict[str, int]]) -> dict[str, int]:
    """Fails across groups (the aggregation) while broken; a group of one file reduces one
    value, so the workers succeed."""
    if BROKEN_REDUCER["on"] and len(values) > 1:
        raise ValueError("the reducer is broken")
    return sum_lines(values)


def _spec(source: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": source,
        "partitioning": {"max_files": 1},
        "processor": {"kind": "python", "function": f"{__name__}:lines_unless_marked"},
        "reducer": {"kind": "python", "function": f"{__name__}:sum_lines"},
        **extra,
    }


def _redrive(stack: LocalStack, job_id: str) -> dict[str, Any]:
    return _wait(start_redrive(job_id, stack.state_machine_arn, Ledger(stack.ledger_table)))


def test_redrive_reruns_exactly_the_failed_groups_and_the_job_succeeds_with_the_exact_result(
    stack: LocalStack, tmp_path: Path
) -> None:
    contents = [f"{'x' * i}\n" * (i % 7 + 1) for i in range(100)]
    source = _files(tmp_path / "in", contents)
    poison = tmp_path / "poison"
    poison.mkdir()
    for i in (5, 50, 97):
        (poison / f"part-{i:03d}.txt").write_text("")
    first = _run(stack, "hundred", _spec(source))
    assert first["status"] == "FAILED" and first["error"] == "Parceler.ToleranceExceeded"
    ledger = Ledger(stack.ledger_table)
    before = {g.index: g for g in ledger.list_groups("hundred")}
    failed = sorted(i for i, g in before.items() if g.status == "FAILED")
    assert len(failed) == 3

    for marker in poison.iterdir():  # fix the poison
        marker.unlink()
    execution = _redrive(stack, "hundred")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert (output["n_groups"], output["groups_succeeded"], output["groups_failed"]) == (
        100,
        100,
        0,
    )
    after = {g.index: g for g in ledger.list_groups("hundred")}
    rerun = sorted(i for i, g in after.items() if g != before[i])
    assert rerun == failed  # succeeded groups untouched: the same items, field for field
    for i in failed:
        group = after[i]
        assert (group.status, group.redrive, group.attempt_base) == ("SUCCEEDED", 1, 1)
        assert group.committed_attempt == group.attempt == 2  # a new attempt, not a reuse
    value = json.loads(storage.read_bytes(output["value_uri"]))
    assert value == {"lines": sum(text.count("\n") for text in contents)}
    result = _result(stack, "hundred")["details"]
    assert (result["groups_failed"], result["failed_groups"]) == (0, [])
    job = ledger.get_job("hundred")
    assert (job.status, job.redrives, job.remaining, job.n_failed) == ("SUCCEEDED", 1, 0, 0)
    assert job.error is None and job.cause is None


def test_redrive_of_a_succeeded_job_is_a_clear_no_op(stack: LocalStack, tmp_path: Path) -> None:
    source = _files(tmp_path / "in", ["a\n", "b\n"])
    assert _run(stack, "fine", _spec(source))["status"] == "SUCCEEDED"
    ledger = Ledger(stack.ledger_table)
    job, groups = ledger.get_job("fine"), list(ledger.list_groups("fine"))

    execution = _redrive(stack, "fine")

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["noop"] is True
    assert ledger.get_job("fine") == job
    assert list(ledger.list_groups("fine")) == groups


def test_a_running_job_refuses_redrive_and_keeps_its_state(
    stack: LocalStack, tmp_path: Path
) -> None:
    ledger = Ledger(stack.ledger_table)
    ledger.create_job("busy", spec_json="sha256:x", run_id=new_run_id())
    ledger.record_plan("busy", n_groups=2, attrs={})
    ledger.mark_job("busy", "RUNNING")

    with pytest.raises(RedriveError, match="only a finished job can be redriven"):
        redrive("busy", "busy-redrive-1", stack.planner_settings())
    execution = _redrive(stack, "busy")

    assert execution["status"] == "FAILED" and execution["error"] == "RedriveError"
    assert _job_item(stack, "busy")["status"] == "RUNNING"  # not recorded as a job failure
    assert (
        boto3.client("stepfunctions")
        .describe_execution(executionArn=execution["executionArn"])["name"]
        .startswith("busy-redrive-1-")
    )


def test_a_job_that_failed_in_aggregation_is_redriven_without_rerunning_any_group(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _files(tmp_path / "in", ["a\n", "b\nc\n", "d\n"])
    spec = _spec(
        source, reducer={"kind": "python", "function": f"{__name__}:sum_lines_unless_broken"}
    )
    monkeypatch.setitem(BROKEN_REDUCER, "on", True)
    first = _run(stack, "agg", spec)
    assert first["status"] == "FAILED"  # in the aggregation (moto: at FinalReduce)
    ledger = Ledger(stack.ledger_table)
    groups = list(ledger.list_groups("agg"))
    assert [g.status for g in groups] == ["SUCCEEDED"] * 3

    monkeypatch.setitem(BROKEN_REDUCER, "on", False)
    execution = _redrive(stack, "agg")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert list(ledger.list_groups("agg")) == groups  # nothing re-ran
    output = json.loads(execution["output"])
    assert json.loads(storage.read_bytes(output["value_uri"])) == {"lines": 4}
