"""``parceler status``'s snapshot arithmetic (pure)."""

from __future__ import annotations

from typing import Any

from parceler.ledger import GroupItem, JobItem
from parceler.progress import progress


def _group(index: int, status: str, **fields: Any) -> GroupItem:
    return GroupItem(job_id="j", index=index, status=status, attempt=1, size=100, **fields)


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
