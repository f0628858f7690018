"""Planning against moto: the plan step, the slice writers, routing, messages — and
idempotence after a crash at any point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from parceler import aws, storage
from parceler.aws.ledger import Ledger
from parceler.errors import SpecError
from parceler.manifest import read_summary
from parceler.planner import plan, plan_and_send, write_slice

from .conftest import SOURCE_BUCKET, Resources, drain, group_spec, seed_source


class PlannerCrashError(Exception):
    """Stands in for the planner Lambda dying (timeout, OOM) in the middle of enqueueing."""


@pytest.fixture
def crash_after_batches() -> Iterator[Any]:
    """``crash_after_batches(k)``: SendMessageBatch call k+1 raises, like a dying planner."""
    events = aws.client("sqs").meta.events
    handlers: list[Any] = []

    def arm(k: int) -> None:
        calls = {"n": 0}

        def before_call(**_kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] > k:
                raise PlannerCrashError(f"killed before SendMessageBatch #{calls['n']}")

        events.register("before-call.sqs.SendMessageBatch", before_call, unique_id="crash")
        handlers.append(before_call)

    yield arm
    events.unregister("before-call.sqs.SendMessageBatch", unique_id="crash")


def _items(resources: Resources) -> list[dict[str, Any]]:
    scan = aws.client("dynamodb").scan(TableName=resources.worker.ledger_table)
    return list(scan["Items"])


def test_plan_writes_groups_ledger_and_one_message_per_group(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two steps of a plan too large to write inline (a small plan: below)."""
    monkeypatch.setattr("parceler.planner.INLINE_FILES", 0)
    seed_source(7)
    spec = group_spec(files_per_group=2)
    result = plan(spec, "job-a", resources.planner)

    assert result.n_groups == 4 and result.n_slices == 1
    assert result.to_json() == {
        "job_id": "job-a",
        "n_groups": 4,
        "n_slices": 1,
        "slices": {"bucket": "parceler-work", "key": "jobs/job-a/plan/slices.json"},
        "recheck_seconds": 60,  # tiny groups: the shortest re-check period
        "noop": False,
    }
    assert json.loads(storage.read_bytes("s3://parceler-work/jobs/job-a/plan/slices.json")) == [
        {"job_id": "job-a", "slice": 0, "redrive": 0}
    ]
    assert drain(resources.lambda_queue_url) == []  # the plan step sends nothing
    assert write_slice("job-a", 0, resources.planner) == 4
    saved = json.loads(storage.read_bytes("s3://parceler-work/jobs/job-a/spec.json"))
    assert saved["processor"]["function"] == "tests.functional.procs:copy_files"

    ledger = Ledger(resources.worker.ledger_table)
    job = ledger.get_job("job-a")
    assert (job.status, job.n_groups, job.remaining, job.n_succeeded) == ("RUNNING", 4, 4, 0)
    groups = list(ledger.list_groups("job-a"))
    assert [g.status for g in groups] == ["PENDING"] * 4
    assert {g.queue for g in groups} == {"lambda"}
    summary = read_summary(groups[0].summary_uri or "")
    assert summary.details["job_id"] == "job-a" and summary.group_index == 0
    assert summary.fingerprint == groups[0].fingerprint

    bodies = [json.loads(m.body) for m in drain(resources.lambda_queue_url)]
    assert sorted(b["summary_uri"] for b in bodies) == sorted(g.summary_uri for g in groups)
    assert all(b == {"schema_version": 1, "summary_uri": b["summary_uri"]} for b in bodies)
    assert drain(resources.container_queue_url) == []


def test_long_groups_are_routed_to_the_container_queue(resources: Resources) -> None:
    seed_source(3)
    aws.client("s3").put_object(Bucket=SOURCE_BUCKET, Key="data/big.bin", Body=b"x" * 5000)
    spec = group_spec(routing={"throughput_bytes_per_second": 100, "lambda_max_seconds": 10})
    result = plan_and_send(spec, "job-r", resources.planner)

    groups = {g.summary_uri: g for g in Ledger(resources.worker.ledger_table).list_groups("job-r")}
    assert len(groups) == result.n_groups == 4
    big = [g for g in groups.values() if g.queue == "container"]
    assert len(big) == 1 and big[0].predicted_seconds == pytest.approx(50.0)
    assert result.recheck_seconds == 150  # three times the longest predicted group (50 s)
    container = [json.loads(m.body)["summary_uri"] for m in drain(resources.container_queue_url)]
    lam = [json.loads(m.body)["summary_uri"] for m in drain(resources.lambda_queue_url)]
    assert container == [big[0].summary_uri]
    assert sorted(lam) == sorted(u for u, g in groups.items() if g.queue == "lambda")


def test_planner_killed_while_enqueueing_resumes_without_duplicates(
    resources: Resources, crash_after_batches: Any
) -> None:
    seed_source(35)
    spec = group_spec()
    crash_after_batches(2)
    with pytest.raises(PlannerCrashError):
        plan_and_send(spec, "job-c", resources.planner)

    ledger = Ledger(resources.worker.ledger_table)
    job = ledger.get_job("job-c")
    # Watermarks are raised every 10 calls: a crash after call 2 re-sends those 20.
    assert job.status == "PLANNING" and ledger.get_slice("job-c", 0)["items_written"]
    aws.client("sqs").meta.events.unregister("before-call.sqs.SendMessageBatch", unique_id="crash")

    result = plan_and_send(spec, "job-c", resources.planner)
    again = plan_and_send(spec, "job-c", resources.planner)  # complete: nothing new is sent

    assert result == again and result.n_groups == 35
    assert ledger.get_job("job-c").status == "RUNNING"
    items = _items(resources)
    assert len(items) == 38  # the job item, 35 group items, 1 shard counter, 1 slice item
    uris = [json.loads(m.body)["summary_uri"] for m in drain(resources.lambda_queue_url)]
    # At most WATERMARK_EVERY x 10 duplicates from the unrecorded sends; every group once.
    assert 35 <= len(uris) <= 35 + 20 and len(set(uris)) == 35
    assert set(uris) == {g.summary_uri for g in ledger.list_groups("job-c")}
    # A third run of the same slice sends nothing at all.
    assert write_slice("job-c", 0, resources.planner) == 35
    assert drain(resources.lambda_queue_url) == []


def test_slices_split_a_plan_and_spread_groups_over_shards(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several slices each write their own groups; group items and counters are spread over
    the job's shards, and the counts add up across them."""
    monkeypatch.setattr("parceler.planner.SLICE_GROUPS", 4)
    monkeypatch.setattr("parceler.aws.ledger.GROUPS_PER_SHARD", 3)
    seed_source(10)
    result = plan(group_spec(), "job-sl", resources.planner)
    assert (result.n_groups, result.n_slices) == (10, 3)
    assert [write_slice("job-sl", k, resources.planner) for k in range(3)] == [4, 4, 2]
    ledger = Ledger(resources.worker.ledger_table)
    job = ledger.get_job("job-sl")
    assert (job.n_shards, job.remaining, job.status) == (4, 10, "RUNNING")
    assert [g.index for g in ledger.list_groups("job-sl")] == list(range(10))
    partition_keys = {item["pk"]["S"] for item in _items(resources) if item["sk"]["S"] != "job"}
    assert partition_keys == {f"job#job-sl#{s:03d}" for s in range(4)}
    assert len(drain(resources.lambda_queue_url)) == 10


def test_same_job_id_with_another_spec_is_refused(resources: Resources) -> None:
    seed_source(2)
    plan(group_spec(), "job-s", resources.planner)
    with pytest.raises(SpecError, match="different spec"):
        plan(group_spec(files_per_group=2), "job-s", resources.planner)


def test_a_processor_that_cannot_load_sends_nothing(resources: Resources) -> None:
    seed_source(2)
    with pytest.raises(SpecError):
        plan(group_spec("no_such_function"), "job-x", resources.planner)
    assert drain(resources.lambda_queue_url) == []
    assert Ledger(resources.worker.ledger_table).get_job("job-x").n_groups is None
