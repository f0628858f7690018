"""Incremental runs through the real state machine: unchanged groups reuse earlier results.

The second job of each test runs with no worker at all where nothing should be processed:
a message sent by mistake would stay in its queue, and a group needing a worker would
never finish.
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
from parceler.local.emulator import LocalAws
from parceler.local.resources import LocalStack, create_local_stack
from parceler.manifest import read_manifest
from tests.functional.test_state_machine import Workers, _files, _run, _wait

pytestmark = pytest.mark.functional


def count_lines(file: Any) -> dict[str, int]:
    with file.open() as stream:
        return {"lines": stream.read().count(b"\n")}


def sum_lines(values: list[dict[str, int]]) -> dict[str, int]:
    return {"lines": sum(v["lines"] for v in values)}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws(poll_interval=0.05) as emulator:
        yield emulator


@pytest.fixture
def stack(local: LocalAws) -> LocalStack:
    """The stack's resources with no worker running: each test starts them where needed."""
    local.reset()
    return create_local_stack(prefix="t", lambda_visibility_seconds=30)


def _spec(source: str, max_files: int = 3, **processor: Any) -> dict[str, Any]:
    return {
        "source": source,
        "partitioning": {"max_files": max_files},
        "processor": {"kind": "python", "function": f"{__name__}:count_lines", **processor},
        "reducer": {"kind": "python", "function": f"{__name__}:sum_lines"},
    }


def _queued(stack: LocalStack) -> int:
    sqs = boto3.client("sqs")
    total = 0
    for url in (stack.lambda_queue_url, stack.container_queue_url):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        total += int(attrs["ApproximateNumberOfMessages"])
        total += int(attrs["ApproximateNumberOfMessagesNotVisible"])
        total += int(attrs["ApproximateNumberOfMessagesDelayed"])
    return total


def _outcome(execution: dict[str, Any]) -> dict[str, Any]:
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output: dict[str, Any] = json.loads(execution["output"])
    return output


def _first_job(stack: LocalStack, source: str, max_files: int = 3) -> dict[str, Any]:
    with Workers(stack):
        return _outcome(_run(stack, "first", _spec(source, max_files)))


def test_an_unchanged_job_skips_every_group_sends_nothing_and_gives_the_same_result(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = _files(tmp_path / "in", [f"{i}\n" * (i % 5 + 1) for i in range(1_000)])
    first = _first_job(stack, source, max_files=50)
    n = first["n_groups"]  # stable groups of 38 to 50 files
    assert 20 <= n <= 27 and first["groups_skipped"] == 0

    again = _outcome(_run(stack, "again", _spec(source, 50)))  # no worker runs

    assert (again["n_groups"], again["groups_succeeded"], again["groups_skipped"]) == (n, n, n)
    assert _queued(stack) == 0
    ledger = Ledger(stack.ledger_table)
    groups = list(ledger.list_groups("again"))
    assert all(g.attempt == 0 and g.reused_from is not None for g in groups)
    originals = {g.identity: g.result_uri for g in ledger.list_groups("first")}
    assert {g.identity: g.result_uri for g in groups} == originals  # the very same objects
    assert storage.read_bytes(again["value_uri"]) == storage.read_bytes(first["value_uri"])
    old, new = read_manifest(first["result_uri"]), read_manifest(again["result_uri"])
    assert new.table.equals(old.table) and new.summary.fingerprint == old.summary.fingerprint
    assert new.summary.details["groups_skipped"] == n
    assert ledger.get_job("again").n_skipped == n


def test_a_changed_file_reruns_exactly_its_group(stack: LocalStack, tmp_path: Path) -> None:
    source = _files(tmp_path / "in", ["a\n"] * 12)
    _first_job(stack, source)
    (tmp_path / "in" / "part-007.txt").write_text("a\nb\nc\n")

    with Workers(stack):
        changed = _outcome(_run(stack, "changed", _spec(source)))

    assert (changed["n_groups"], changed["groups_skipped"]) == (4, 3)
    ran = [g for g in Ledger(stack.ledger_table).list_groups("changed") if not g.skipped]
    assert [g.attempt for g in ran] == [1]
    assert "part-007.txt" in str(read_manifest(ran[0].summary_uri or "").table["uri"])
    assert json.loads(storage.read_bytes(changed["value_uri"])) == {"lines": 14}


@pytest.mark.parametrize(
    "change",
    [{"version": "2"}, {"options": {"mode": "other"}}, {"per": "group"}],
    ids=["version", "option", "per"],
)
def test_a_processor_change_reruns_every_group(
    stack: LocalStack, tmp_path: Path, change: dict[str, Any]
) -> None:
    source = _files(tmp_path / "in", ["a\n"] * 6)
    _first_job(stack, source)
    spec = _spec(source, **change)
    if "per" in change:
        spec["processor"]["function"] = f"{__name__}:count_group_lines"

    with Workers(stack):
        rerun = _outcome(_run(stack, "rerun", spec))

    assert (rerun["n_groups"], rerun["groups_skipped"]) == (2, 0)


def test_incremental_false_runs_every_group_and_caches_nothing(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = _files(tmp_path / "in", ["a\n"] * 6)
    with Workers(stack):
        _outcome(_run(stack, "off-1", {**_spec(source), "incremental": False}))
        _outcome(_run(stack, "on-1", _spec(source)))  # nothing cached by off-1
        off = _outcome(_run(stack, "off-2", {**_spec(source), "incremental": False}))

    ledger = Ledger(stack.ledger_table)
    assert ledger.get_job("on-1").n_skipped == 0
    assert off["groups_skipped"] == 0
    assert all(g.identity is None for g in ledger.list_groups("off-2"))


def test_concurrent_jobs_over_the_same_files_each_commit_every_group_once(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Neither job waits for the other: each runs (or reuses) and commits its own groups;
    the cache takes either's results."""
    source = _files(tmp_path / "in", [f"{i}\n" for i in range(12)])
    sfn = boto3.client("stepfunctions")
    with Workers(stack):
        arns = [
            sfn.start_execution(
                stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(_spec(source))
            )["executionArn"]
            for name in ("twin-a", "twin-b")
        ]
        outcomes = [_outcome(_wait(arn)) for arn in arns]

    ledger = Ledger(stack.ledger_table)
    for name, outcome in zip(("twin-a", "twin-b"), outcomes, strict=True):
        assert (outcome["groups_succeeded"], outcome["groups_failed"]) == (4, 0)
        groups = list(ledger.list_groups(name))
        assert all(g.status == "SUCCEEDED" and g.result_uri for g in groups)
        assert ledger.get_job(name).n_succeeded == 4  # counted once each
    assert {g.identity for g in ledger.list_groups("twin-a")} == {
        g.identity for g in ledger.list_groups("twin-b")
    }
    cached = ledger.get_cached_results([g.identity or "" for g in ledger.list_groups("twin-a")])
    assert len(cached) == 4


def count_group_lines(files: list[Any], ctx: Any) -> dict[str, int]:
    return {"lines": sum(count_lines(f)["lines"] for f in files)}
