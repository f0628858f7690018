"""The ledger under load: sharded counters, conflicts retried in place, the completion signal.

moto serialises requests, so two transactions never conflict on it (docs/local-aws-facts.md):
conflicts are injected at the AWS seam, as DynamoDB reports them
(``TransactionCanceledException`` with a ``TransactionConflict`` reason), while the
committers really run concurrently against moto.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from parceler import aws
from parceler.aws.ledger import CONFLICT_ATTEMPTS, Ledger
from parceler.errors import RetryableError
from parceler.ledger import Claim, NewGroup
from parceler.local.emulator import LocalAws

from .conftest import Resources, create_resources

JOB = "job-load"


def _planned(resources: Resources, n_groups: int) -> Ledger:
    ledger = Ledger(resources.worker.ledger_table)
    ledger.create_job(JOB, spec_json="{}", run_id="run-20261202T011447-3f9a1c")
    assert ledger.record_plan(JOB, n_groups=n_groups, attrs={})
    ledger.put_groups(
        JOB,
        [NewGroup(g, f"fp{g}", f"s3://b/g{g}.json", 1.0, "lambda", 1, 10) for g in range(n_groups)],
    )
    for g in range(n_groups):
        assert isinstance(ledger.claim_group(JOB, g, f"w{g}", lease_seconds=600), Claim)
    return ledger


@pytest.fixture
def conflicts() -> Iterator[Counter[str]]:
    """Make the first two tries of every commit transaction conflict; count tries per token."""
    tries: Counter[str] = Counter()
    lock = threading.Lock()

    def before_call(params: dict[str, Any], **_: Any) -> None:
        token = str(json.loads(params["body"])["ClientRequestToken"])
        with lock:
            tries[token] += 1
            seen = tries[token]
        if seen <= 2:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb.TransactWriteItems", before_call, unique_id="conflict")
    yield tries
    events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="conflict")


@dataclass
class _Ok:
    status_code: int = 200


@pytest.fixture
def signals() -> Iterator[list[dict[str, Any]]]:
    """Record every ``SendTaskSuccess`` (answered as accepted) instead of sending it."""
    sent: list[dict[str, Any]] = []

    def before_call(params: dict[str, Any], **_: Any) -> tuple[_Ok, dict[str, Any]]:
        sent.append(json.loads(params["body"]))
        return _Ok(), {}

    events = aws.client("stepfunctions").meta.events
    events.register("before-call.sfn.SendTaskSuccess", before_call, unique_id="signals")
    yield sent
    events.unregister("before-call.sfn.SendTaskSuccess", unique_id="signals")


@pytest.fixture
def serialized() -> Iterator[Resources]:
    """The resources in the local mode's emulator, which serialises requests: the
    test-wide moto server does not, and loses concurrent ``ADD`` updates of its own."""
    with LocalAws(lambda_hook=False):
        yield create_resources()


def test_concurrent_commits_that_conflict_are_retried_in_place_and_counted_once(
    serialized: Resources, conflicts: Counter[str]
) -> None:
    n = 12
    ledger = _planned(serialized, n)  # 12 groups: one shard, so every commit hits one counter
    start = threading.Barrier(n)

    def commit(g: int) -> bool:
        start.wait()
        return ledger.commit_group(JOB, g, 1, f"s3://b/r{g}.json")

    with ThreadPoolExecutor(max_workers=n) as threads:
        committed = list(threads.map(commit, range(n)))

    assert committed == [True] * n  # no finished group was handed back for a conflict
    assert sorted(conflicts.values()) == [3] * n  # two conflicts, then the commit, each
    job = ledger.get_job(JOB)
    assert (job.n_succeeded, job.n_failed, job.remaining) == (n, 0, 0)
    assert all(g.status == "SUCCEEDED" for g in ledger.list_groups(JOB))


def test_a_commit_that_keeps_conflicting_is_retryable_and_changes_nothing(
    resources: Resources, monkeypatch: pytest.MonkeyPatch, conflicts: Counter[str]
) -> None:
    ledger = _planned(resources, 1)
    monkeypatch.setattr("parceler.aws.ledger.CONFLICT_ATTEMPTS", 2)
    with pytest.raises(RetryableError, match="conflicted"):
        ledger.commit_group(JOB, 0, 1, "s3://b/r0.json")
    assert ledger.get_job(JOB).remaining == 1
    group = ledger.get_group(JOB, 0)
    assert group is not None and group.status == "RUNNING"
    monkeypatch.setattr("parceler.aws.ledger.CONFLICT_ATTEMPTS", 3)
    assert ledger.commit_group(JOB, 0, 1, "s3://b/r0.json")  # the third try goes through
    assert ledger.get_job(JOB).remaining == 0


def test_the_default_retries_outlast_a_burst_of_conflicts() -> None:
    assert CONFLICT_ATTEMPTS >= 5


def test_the_commit_that_empties_the_last_shard_signals_once(
    resources: Resources, monkeypatch: pytest.MonkeyPatch, signals: list[dict[str, Any]]
) -> None:
    monkeypatch.setattr("parceler.aws.ledger.GROUPS_PER_SHARD", 2)
    ledger = _planned(resources, 5)  # 3 shards: {0, 3}, {1, 4}, {2}
    progress = ledger.register_waiter(JOB, "token-1")
    assert (progress.n_shards, progress.done_shards, progress.complete) == (3, 0, False)

    for g in (0, 1, 2, 3):
        ledger.commit_group(JOB, g, 1, f"s3://b/r{g}.json")
    assert signals == []  # shard 1 still holds group 4
    assert ledger.get_job(JOB).done_shards == {0, 2}

    assert ledger.fail_group(JOB, 4, "ProcessorError", "poison")  # a failure completes too
    assert [s["taskToken"] for s in signals] == ["token-1"]
    assert not ledger.fail_group(JOB, 4, "ProcessorError", "again")  # no second count
    assert len(signals) == 1


def test_a_waiter_registering_after_the_last_commit_is_signalled_at_once(
    resources: Resources, signals: list[dict[str, Any]]
) -> None:
    """The last commit may come before the token is stored: the waiter's recount sees it."""
    ledger = _planned(resources, 2)
    for g in (0, 1):
        ledger.commit_group(JOB, g, 1, f"s3://b/r{g}.json")
    assert signals == []  # nobody waits yet

    from parceler.settings import WaiterSettings
    from parceler.waiter import register

    settings = WaiterSettings.from_env({"PARCELER_LEDGER_TABLE": resources.worker.ledger_table})
    registration = register(JOB, "token-late", settings)
    assert registration.signalled and [s["taskToken"] for s in signals] == ["token-late"]
