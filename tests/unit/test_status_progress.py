"""``parceler status``'s snapshot arithmetic (pure)."""

from __future__ import annotations

from typing import Any

from parceler.ledger import GroupItem, JobItem
from parceler.progress import progress


def _group(index: int, status: str, **fields: Any) -> GroupItem:
    fields.setdefault("attempt", 1)
    return GroupItem(job_id="j", index=index, status=status, size=100, **fields)


def test_progress_counts_throughput_eta_and_overdue() -> None:
    job = JobItem(job_id="j", status="RUNNING", n_groups=4, remaining=2, created_at=1000.0)
    groups = [
        _group(0, "SUCCEEDED"),
        _group(1, "FAILED", error="ProcessorError", cause="bad"),
        _group(2, "RUNNING", started_at=1090, predicted_seconds=1.0, worker="w"),
        _group(3, "PENDING"),
    ]
    p = progress(job, groups, now=1100.0)
    assert (p.pending, p.running, p.succeeded, p.failed) == (1, 1, 1, 1)
    assert p.groups_per_second == 2 / 100
    assert p.eta_seconds == 2 / (2 / 100)
    assert (p.bytes_done, p.bytes_total) == (200, 400)
    assert [(o.group, o.running_seconds) for o in p.overdue] == [(2, 10.0)]
    assert [(f.index, f.error, f.cause) for f in p.failures] == [(1, "ProcessorError", "bad")]


def test_no_eta_before_the_first_group_is_done() -> None:
    job = JobItem(job_id="j", status="RUNNING", n_groups=1, created_at=1000.0)
    p = progress(job, [_group(0, "PENDING")], now=1010.0)
    assert p.eta_seconds is None and p.groups_per_second is None


def test_groups_being_retried_show_their_last_failed_attempt_and_its_error() -> None:
    job = JobItem(job_id="j", status="RUNNING", n_groups=3, created_at=1000.0)
    groups = [
        _group(0, "PENDING", last_error="UserCodeError", last_cause="ConnectionError: reset",
               last_attempt=1),
        _group(1, "RUNNING", attempt=2, last_error="UserCodeError", last_cause="timeout",
               last_attempt=1, started_at=1005.0),
        _group(2, "SUCCEEDED", attempt=2, last_error="UserCodeError", last_attempt=1),
    ]  # fmt: skip
    p = progress(job, groups, now=1010.0)
    assert [(r.index, r.status, r.error, r.cause, r.attempt) for r in p.retrying] == [
        (0, "PENDING", "UserCodeError", "ConnectionError: reset", 1),
        (1, "RUNNING", "UserCodeError", "timeout", 1),
    ]
    assert p.to_json()["retrying"][0]["error"] == "UserCodeError"
