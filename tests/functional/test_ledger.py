"""The ledger's conditional transitions against moto's DynamoDB."""

from __future__ import annotations

import time
from dataclasses import fields

import pytest

from parceler import aws
from parceler.aws.dynamodb_codec import from_item
from parceler.aws.ledger import Ledger
from parceler.errors import LedgerError
from parceler.ledger import (
    Claim,
    GroupItem,
    JobItem,
    NewGroup,
    Refusal,
    SlotItem,
    slot_holder,
    slot_holder_worker,
)

from .conftest import Resources

JOB = "job-1"


def _ledger(resources: Resources, n_groups: int = 3) -> Ledger:
    ledger = Ledger(resources.worker.ledger_table)
    _job, created = ledger.create_job(JOB, spec_json="{}", run_id="run-20261202T011447-3f9a1c")
    assert created
    ledger.put_groups(
        JOB,
        [
            NewGroup(
                g, f"fp{g}", f"s3://b/jobs/{JOB}/groups/{g:06d}/manifest.json", 1.0, "lambda", 1, 10
            )
            for g in range(n_groups)
        ],
    )
    assert ledger.record_plan(JOB, n_groups=n_groups, attrs={})
    return ledger


def test_create_job_is_idempotent(resources: Resources) -> None:
    ledger = _ledger(resources)
    job, created = ledger.create_job(JOB, spec_json="{other}", run_id="run-20261202T011447-3f9a1c")
    assert not created
    assert job.spec == "{}"
    assert job.n_groups == 3 and job.remaining == 3
    assert not ledger.record_plan(JOB, n_groups=5, attrs={})
    assert ledger.get_job(JOB).n_groups == 3


def test_claim_increments_attempt_and_respects_the_lease(resources: Resources) -> None:
    ledger = _ledger(resources)
    first = ledger.claim_group(JOB, 0, "w1", lease_seconds=60, now=1000.0)
    assert isinstance(first, Claim) and first.attempt == 1
    busy = ledger.claim_group(JOB, 0, "w2", lease_seconds=60, now=1030.0)
    assert isinstance(busy, Refusal) and busy.reason == "busy"
    after_expiry = ledger.claim_group(JOB, 0, "w2", lease_seconds=60, now=1061.0)
    assert isinstance(after_expiry, Claim) and after_expiry.attempt == 2
    missing = ledger.claim_group(JOB, 99, "w2", lease_seconds=60)
    assert isinstance(missing, Refusal) and missing.reason == "missing"


def test_exactly_one_attempt_commits_and_counters_move_once(resources: Resources) -> None:
    ledger = _ledger(resources)
    a = ledger.claim_group(JOB, 0, "w1", lease_seconds=0, now=1000.0)
    b = ledger.claim_group(JOB, 0, "w2", lease_seconds=0, now=1001.0)
    assert isinstance(a, Claim) and isinstance(b, Claim)
    assert ledger.commit_group(JOB, 0, b.attempt, "s3://r/b.json", "2")
    assert not ledger.commit_group(JOB, 0, a.attempt, "s3://r/a.json", "1")
    assert not ledger.commit_group(JOB, 0, b.attempt, "s3://r/b.json", "2")
    assert not ledger.fail_group(JOB, 0, "Late", "a late permanent failure")
    group = ledger.get_group(JOB, 0)
    assert group is not None
    assert (group.status, group.committed_attempt, group.result_uri) == (
        "SUCCEEDED",
        2,
        "s3://r/b.json",
    )
    job = ledger.get_job(JOB)
    assert (job.remaining, job.n_succeeded, job.n_failed) == (2, 1, 0)
    done = ledger.claim_group(JOB, 0, "w3", lease_seconds=60)
    assert isinstance(done, Refusal) and done.reason == "done"


def test_fail_group_counts_once_and_blocks_commit(resources: Resources) -> None:
    ledger = _ledger(resources)
    claim = ledger.claim_group(JOB, 1, "w1", lease_seconds=60)
    assert isinstance(claim, Claim)
    assert ledger.fail_group(JOB, 1, "ProcessorError", "boom")
    assert not ledger.fail_group(JOB, 1, "ProcessorError", "boom again")
    assert not ledger.commit_group(JOB, 1, claim.attempt, "s3://r.json")
    job = ledger.get_job(JOB)
    assert (job.remaining, job.n_succeeded, job.n_failed) == (2, 0, 1)
    group = ledger.get_group(JOB, 1)
    assert group is not None and (group.status, group.error, group.cause) == (
        "FAILED",
        "ProcessorError",
        "boom",
    )


def test_record_error_hands_the_group_back_only_for_the_current_attempt(
    resources: Resources,
) -> None:
    ledger = _ledger(resources)
    old = ledger.claim_group(JOB, 2, "w1", lease_seconds=0, now=1000.0)
    new = ledger.claim_group(JOB, 2, "w2", lease_seconds=600)
    assert isinstance(old, Claim) and isinstance(new, Claim)
    assert not ledger.record_error(JOB, 2, old.attempt, "TimeoutError", "slow")
    group = ledger.get_group(JOB, 2)
    assert group is not None and group.status == "RUNNING" and group.last_error == "TimeoutError"
    assert ledger.record_error(JOB, 2, new.attempt, "RetryableError", "throttled")
    group = ledger.get_group(JOB, 2)
    assert group is not None and group.status == "PENDING" and group.lease_until is None
    again = ledger.claim_group(JOB, 2, "w3", lease_seconds=600)
    assert isinstance(again, Claim) and again.attempt == 3


def test_list_groups_pages_through_every_group(resources: Resources) -> None:
    ledger = _ledger(resources, n_groups=60)
    groups = list(ledger.list_groups(JOB))
    assert [g.index for g in groups] == list(range(60))
    assert {g.status for g in groups} == {"PENDING"}


def test_mark_job_with_expected_status(resources: Resources) -> None:
    ledger = _ledger(resources)
    assert not ledger.mark_job(JOB, "SUCCEEDED", expected=["AGGREGATING"])
    assert ledger.mark_job(JOB, "RUNNING", expected=["PLANNING"], recheck_seconds=5)
    job = ledger.get_job(JOB)
    assert job.status == "RUNNING" and job.recheck_seconds == 5


def test_missing_table_is_a_typed_error(moto: str) -> None:
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger("no-such-table").get_job(JOB)


def test_every_attribute_the_adapter_writes_is_a_typed_field(resources: Resources) -> None:
    # Drive every write path, then read the raw items: no attribute may go unmodelled.
    ledger = _ledger(resources)
    ledger.mark_slice(JOB, 0, items_written=True, enqueued_through=3)
    ok = ledger.claim_group(JOB, 0, "w1", lease_seconds=60)
    failing = ledger.claim_group(JOB, 1, "w1", lease_seconds=60)
    retried = ledger.claim_group(JOB, 2, "w1", lease_seconds=60)
    assert isinstance(ok, Claim) and isinstance(failing, Claim) and isinstance(retried, Claim)
    ledger.extend_lease(JOB, 0, ok.attempt, lease_seconds=60)
    assert ledger.commit_group(JOB, 0, ok.attempt, "s3://r/0.json", '{"n":1}')
    assert ledger.fail_group(JOB, 1, "ProcessorError", "boom")
    assert ledger.record_error(JOB, 2, retried.attempt, "RetryableError", "throttled")
    assert ledger.mark_job(
        JOB, "FAILED", result_uri="s3://r.json", value_uri="s3://v.json", error="E", cause="C"
    )
    held = ledger.take_slot(JOB, limit=2, holder="h1", group_index=0, lease_seconds=60)
    freed = ledger.take_slot(JOB, limit=2, holder="h2", group_index=1, lease_seconds=60)
    assert held is not None and freed is not None and held != freed
    assert ledger.extend_slot(JOB, held, "h1", lease_seconds=60)
    assert ledger.release_slot(JOB, freed, "h2")
    items = aws.client("dynamodb").scan(TableName=resources.worker.ledger_table)["Items"]
    job_names = {f.name for f in fields(JobItem)} | {"pk", "sk"}
    group_names = ({f.name for f in fields(GroupItem)} - {"job_id", "index"}) | {"pk", "sk"}
    # A shard's counter and a plan slice's marks are the adapter's own bookkeeping.
    counter_names = {"pk", "sk", "remaining", "n_succeeded", "n_failed", "created_at",
                     "updated_at", "expires_at"}  # fmt: skip
    slice_names = {"pk", "sk", "items_written", "enqueued_through", "updated_at"}
    slot_names = ({f.name for f in fields(SlotItem)} - {"slot"}) | {"pk", "sk"}
    for item in items:
        sk = item["sk"]["S"]
        names = {"job": job_names, "counts": counter_names}.get(sk) or (
            slice_names
            if sk.startswith("slice#")
            else slot_names
            if sk.startswith("slot#")
            else group_names
        )
        assert set(item) <= names, set(item) - names
    group = ledger.get_group(JOB, 2)
    assert group is not None and (group.worker, group.last_attempt) == ("w1", retried.attempt)
    assert ledger.get_slice(JOB, 0)["enqueued_through"] == 3


def test_attributes_that_no_type_declares_are_refused(resources: Resources) -> None:
    ledger = _ledger(resources)
    with pytest.raises(ValueError, match="not job item attributes"):
        ledger.mark_job(JOB, "RUNNING", pol_seconds=5)
    with pytest.raises(ValueError, match="not job item attributes"):
        ledger.record_plan(JOB, n_groups=3, attrs={"typo": 1})


def test_created_items_expire_after_the_retention(resources: Resources) -> None:
    ledger = Ledger(resources.worker.ledger_table, retention_days=2)
    ledger.create_job(JOB, spec_json="{}", run_id="run-20261202T011447-3f9a1c", now=1000.0)
    ledger.put_groups(JOB, [NewGroup(0, "fp", "s3://b/g.json", 1.0, "lambda", 1, 10)], now=1000.0)
    items = aws.client("dynamodb").scan(TableName=resources.worker.ledger_table)["Items"]
    assert [from_item(i)["expires_at"] for i in items] == [1000 + 2 * 86_400] * 2
    group = ledger.get_group(JOB, 0)
    assert group is not None and group.expires_at == ledger.get_job(JOB).expires_at


def test_in_flight_slots_are_never_held_twice_and_free_when_their_lease_runs_out(
    resources: Resources,
) -> None:
    ledger = _ledger(resources)
    first = ledger.take_slot(JOB, limit=2, holder="a", group_index=0, lease_seconds=60)
    second = ledger.take_slot(JOB, limit=2, holder="b", group_index=1, lease_seconds=0.5)
    assert {first, second} == {0, 1}
    assert ledger.take_slot(JOB, limit=2, holder="c", group_index=2, lease_seconds=60) is None
    assert not ledger.release_slot(JOB, first or 0, "not-the-holder")
    # b's holder died: its lease runs out and the slot is taken over.
    later = time.time() + 1.0
    taken = ledger.take_slot(JOB, limit=2, holder="c", group_index=2, lease_seconds=60, now=later)
    assert taken == second
    assert not ledger.extend_slot(JOB, second or 0, "b", lease_seconds=60)  # b lost it
    assert ledger.release_slot(JOB, first or 0, "a")
    assert ledger.take_slot(JOB, limit=2, holder="d", group_index=3, lease_seconds=60) == first


def test_the_slots_of_a_dead_worker_are_freed_and_no_one_elses(resources: Resources) -> None:
    ledger = _ledger(resources)
    dead, alive = "host:101:0", "host:102:0"
    ledger.take_slot(JOB, limit=3, holder=slot_holder(0, dead, "t1"), group_index=0,
                     lease_seconds=60)  # fmt: skip
    ledger.take_slot(JOB, limit=3, holder=slot_holder(1, alive, "t2"), group_index=1,
                     lease_seconds=60)  # fmt: skip

    assert ledger.release_slots_held_by(JOB, dead) == 1

    held = [s for s in ledger.slots(JOB) if s.holder is not None]
    assert [s.holder for s in held] == [slot_holder(1, alive, "t2")]
    assert slot_holder_worker(slot_holder(7, dead, "t9")) == dead
