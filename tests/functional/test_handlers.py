"""The Lambda handlers against moto: exact partial batch responses, the time guard, the DLQ."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from parceler import aws
from parceler.aws.ledger import Ledger
from parceler.aws.queue import receive, send_batch
from parceler.errors import SpecError
from parceler.ledger import Claim, GroupItem
from parceler.manifest import read_manifest
from parceler.messages import GroupMessage, ReceivedMessage, encode
from parceler.planner import plan_and_send

from .conftest import Resources, drain, group_spec, seed_source


@dataclass
class FakeContext:
    """The part of the Lambda context the handlers use."""

    remaining_ms: int = 300_000
    function_name: str = "parceler-worker"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:parceler-worker"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _handler(role: str, resources: Resources, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in resources.env.items():
        monkeypatch.setenv(name, value)
    module = importlib.import_module(f"functions.{role}.handler")
    module.settings.cache_clear()
    return module


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    yield
    for role in ("worker", "dead_letter", "planner"):
        module = importlib.import_module(f"functions.{role}.handler")
        module.settings.cache_clear()


def _arn(url: str) -> str:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def _event(messages: list[ReceivedMessage], queue_url: str) -> dict[str, Any]:
    arn = _arn(queue_url)
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": str(m.receive_count),
                    "SentTimestamp": "1700000000000",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "1700000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def _holds_poison(group: GroupItem) -> bool:
    files = read_manifest(group.summary_uri or "").table.column("uri").to_pylist()
    return any("poison" in str(uri) for uri in files)


def _by_group(messages: list[ReceivedMessage]) -> dict[str, list[ReceivedMessage]]:
    out: dict[str, list[ReceivedMessage]] = {}
    for m in messages:
        out.setdefault(json.loads(m.body)["summary_uri"], []).append(m)
    return out


def test_worker_handler_reports_exactly_the_retryable_record(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_source(2, names={1: "poison.txt"})
    plan_and_send(group_spec("poison_or_copy"), "job-l", resources.planner)
    ledger = Ledger(resources.worker.ledger_table)
    good, poison = sorted(ledger.list_groups("job-l"), key=_holds_poison)
    # a duplicate delivery of the good group
    send_batch(
        resources.lambda_queue_url, [encode(GroupMessage(summary_uri=good.summary_uri or ""))]
    )
    messages = _by_group(drain(resources.lambda_queue_url, visibility=60))
    ok_first, ok_dup = messages[good.summary_uri or ""]
    (bad,) = messages[poison.summary_uri or ""]

    handler = _handler("worker", resources, monkeypatch)
    response = handler.handler(
        _event([ok_first, bad, ok_dup], resources.lambda_queue_url), FakeContext()
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": bad.message_id}]}
    job = ledger.get_job("job-l")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (1, 1, 0)
    failed = ledger.get_group("job-l", poison.index)
    assert (
        failed is not None and failed.status == "PENDING" and failed.last_error == "RetryableError"
    )
    committed = ledger.get_group("job-l", good.index)
    assert committed is not None and committed.committed_attempt == 1


def test_worker_handler_requeues_records_it_has_no_time_to_start(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_source(2)
    plan_and_send(group_spec(), "job-t", resources.planner)
    messages = drain(resources.lambda_queue_url, visibility=600)
    handler = _handler("worker", resources, monkeypatch)

    response = handler.handler(
        _event(messages, resources.lambda_queue_url), FakeContext(remaining_ms=5_000)
    )

    # Not reported as failures: each record was replaced by a fresh copy, visible at once,
    # whose receive count starts again (a delivery the worker never started spends none of
    # the group's maxReceiveCount); the event source mapping deletes the received ones.
    assert response == {"batchItemFailures": []}
    again = receive(resources.lambda_queue_url, max_messages=10, wait_seconds=0)
    assert sorted(m.body for m in again) == sorted(m.body for m in messages)
    assert not {m.message_id for m in again} & {m.message_id for m in messages}
    assert {m.receive_count for m in again} == {1}
    assert {g.attempt for g in Ledger(resources.worker.ledger_table).list_groups("job-t")} == {0}


def test_dead_letter_handler_fails_groups_with_their_last_error(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_source(3)
    plan_and_send(group_spec(), "job-q", resources.planner)
    ledger = Ledger(resources.worker.ledger_table)
    groups = list(ledger.list_groups("job-q"))
    assert isinstance(ledger.claim_group("job-q", 0, "w", lease_seconds=600), Claim)
    ledger.record_error("job-q", 0, 1, "TimeoutError", "read timed out")
    assert isinstance(ledger.claim_group("job-q", 2, "w", lease_seconds=600), Claim)
    assert ledger.commit_group("job-q", 2, 1, "s3://parceler-work/r.json")
    bodies = [encode(GroupMessage(summary_uri=g.summary_uri or "")) for g in groups]
    send_batch(resources.lambda_dlq_url, [*bodies, "not a parceler message"])
    dead = drain(resources.lambda_dlq_url)

    handler = _handler("dead_letter", resources, monkeypatch)
    response = handler.handler(_event(dead, resources.lambda_dlq_url), FakeContext())

    assert response == {"batchItemFailures": []}
    g0, g1, g2 = ledger.list_groups("job-q")
    assert (g0.status, g0.error, g0.cause) == ("FAILED", "TimeoutError", "read timed out")
    assert (g1.status, g1.error) == ("FAILED", "MaxReceiveCountExceeded")
    assert g2.status == "SUCCEEDED"  # finished after all: left alone
    job = ledger.get_job("job-q")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (0, 1, 2)


def test_planner_handler_writes_a_small_plan_itself_and_says_no_slice_is_left(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slice of few files: the Plan task writes it (group items, one message per
    group) and returns ``n_slices`` 0, which sends the state machine past WriteGroups."""
    seed_source(3)
    handler = _handler("planner", resources, monkeypatch)
    spec = group_spec().model_dump(mode="json", exclude_none=True)
    event = {"job_id": "exec-1", "spec": spec}

    first = handler.handler(event, FakeContext())
    second = handler.handler(event, FakeContext())  # a Step Functions retry: same answer

    assert (
        first
        == second
        == {
            "job_id": "exec-1",
            "n_groups": 3,
            "n_slices": 0,
            "slices": {"bucket": "parceler-work", "key": "jobs/exec-1/plan/slices.json"},
            "recheck_seconds": 60,
            "noop": False,
            "pipeline": None,  # a plain job; a pipeline's stage gets its pipeline state back
        }
    )
    job = Ledger(resources.planner.ledger_table).get_job("exec-1")
    assert (job.status, job.n_slices, job.remaining) == ("RUNNING", 1, 3)
    # The retry resumed after the slice's watermark: each group was sent once.
    assert len(drain(resources.lambda_queue_url)) == 3


@pytest.mark.parametrize(
    ("limit", "expected_slices"),
    [({"SLICE_GROUPS": 2}, 2), ({"INLINE_FILES": 2}, 1)],
    ids=["two-slices", "one-slice-of-more-files-than-inline"],
)
def test_planner_handler_leaves_larger_plans_to_the_write_groups_fan_out(
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
    limit: dict[str, int],
    expected_slices: int,
) -> None:
    seed_source(3)
    for name, value in limit.items():
        monkeypatch.setattr(f"parceler.planner.{name}", value)
    handler = _handler("planner", resources, monkeypatch)
    spec = group_spec().model_dump(mode="json", exclude_none=True)

    planned = handler.handler({"job_id": "exec-2", "spec": spec}, FakeContext())

    assert (planned["n_groups"], planned["n_slices"]) == (3, expected_slices)
    assert drain(resources.lambda_queue_url) == []  # WriteGroups' children send
    written = handler.handler(
        {"action": "write_slice", "job_id": "exec-2", "slice": 0}, FakeContext()
    )
    assert written["n_groups"] == (2 if expected_slices == 2 else 3)
    assert len(drain(resources.lambda_queue_url)) == written["n_groups"]


def test_dead_letter_handler_sends_back_a_group_whose_lease_is_live(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate message can exhaust its receives while attempt 1 still runs: the DLQ
    handler must not fail that group, and must not lose the message either."""
    seed_source(1)
    plan_and_send(group_spec(), "job-live", resources.planner)
    [original] = drain(resources.lambda_queue_url, visibility=600)
    ledger = Ledger(resources.worker.ledger_table)
    assert isinstance(ledger.claim_group("job-live", 0, "w", lease_seconds=600), Claim)
    send_batch(resources.lambda_dlq_url, [original.body])
    dead = drain(resources.lambda_dlq_url)

    handler = _handler("dead_letter", resources, monkeypatch)
    assert handler.handler(_event(dead, resources.lambda_dlq_url), FakeContext()) == {
        "batchItemFailures": []
    }
    group = ledger.get_group("job-live", 0)
    assert group is not None and group.status == "RUNNING"
    assert ledger.get_job("job-live").n_failed == 0
    # Sent back to the work queue, due when the lease runs out (SQS delays at most 15 min).
    depth = aws.client("sqs").get_queue_attributes(
        QueueUrl=resources.lambda_queue_url,
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert depth == "1"


def test_planner_handler_refuses_a_spec_job_id_that_is_not_the_execution_name(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_source(2)
    handler = _handler("planner", resources, monkeypatch)
    spec = {**group_spec().model_dump(mode="json", exclude_none=True), "job_id": "other"}
    with pytest.raises(SpecError, match="differs from the execution name"):
        handler.handler({"job_id": "exec-2", "spec": spec}, FakeContext())
    assert drain(resources.lambda_queue_url) == []
