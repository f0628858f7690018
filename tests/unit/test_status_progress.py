"""``parceler status``'s snapshot arithmetic (pure)."""

from __future__ import annotations

from typing import Any

from parceler.ledger import GroupItem, JobItem
from parceler.progress import progress


def _group(index: int, status: str, **attrs: Any) -> GroupItem:
    item: dict[str, Any] = {
        "pk": {"S": "job#j"},
        "sk": {"S": f"group#{index:06d}"},
        "status": {"S": status},
        "attempt": {"N": "1"},
        "size": {"N": "100"},
    }
    for key, value in attrs.items():
        item[key] = {"N": str(value)} if isinstance(value, int | float) else {"S": value}
    return GroupItem.from_item(item)


def test_progress_counts_throughput_eta_and_overdue() -> None:
    job = JobItem.from_item({"pk": {"S": "job#j"}, "sk": {"S": "job"}, "status": {"S": "RUNNING"},
                             "n_groups": {"N": "4"}, "remaining": {"N": "2"},
                             "created_at": {"N": "1000"}})  # fmt: skip
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
    job = JobItem.from_item({"pk": {"S": "job#j"}, "sk": {"S": "job"}, "status": {"S": "RUNNING"},
                             "n_groups": {"N": "1"}, "created_at": {"N": "1000"}})  # fmt: skip
    p = progress(job, [_group(0, "PENDING")], now=1010.0)
    assert p.eta_seconds is None and p.groups_per_second is None
