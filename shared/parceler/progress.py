"""How far a job has got: group counts, throughput, ETA, overdue and failed groups (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from parceler.details import FailedGroup
from parceler.ledger import GroupItem, JobItem

OVERDUE_FACTOR = 2.0  # a group running longer than this times its prediction is listed
_TERMINAL_JOB = frozenset({"SUCCEEDED", "FAILED"})


@dataclass(frozen=True)
class Overdue:
    group: int
    running_seconds: float
    predicted_seconds: float
    attempt: int
    worker: str | None


@dataclass(frozen=True)
class Progress:
    """A snapshot of one job, computed from its ledger items (pure: see :func:`progress`)."""

    job_id: str
    status: str
    n_groups: int
    pending: int
    running: int
    succeeded: int
    failed: int
    remaining: int | None
    bytes_done: int
    bytes_total: int
    elapsed_seconds: float
    groups_per_second: float | None
    bytes_per_second: float | None
    eta_seconds: float | None
    overdue: list[Overdue] = field(default_factory=list)
    failures: list[FailedGroup] = field(default_factory=list)
    retrying: list[FailedGroup] = field(default_factory=list)
    """Groups not done whose last attempt failed (and will be retried): that attempt's
    number, error and cause."""
    error: str | None = None
    groups_skipped: int = 0  # of ``succeeded``: results reused from earlier jobs, not run

    @property
    def finished(self) -> bool:
        """The job ended, or every group is done (only the aggregation is left)."""
        return self.status in _TERMINAL_JOB or (
            self.remaining == 0 and self.running == 0 and self.pending == 0
        )

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["failures"] = [f.to_details() for f in self.failures]
        document["retrying"] = [f.to_details() for f in self.retrying]
        return document


def progress(job: JobItem, groups: list[GroupItem], now: float) -> Progress:
    """Count groups by status; throughput since the job started; ETA from that throughput.

    ETA is ``(groups not done) / (groups done per second)``; None until a group is done.
    """
    counts = Counter(g.status for g in groups)
    done = [g for g in groups if g.status in ("SUCCEEDED", "FAILED")]
    size = {g.index: int(g.size or 0) for g in groups}
    bytes_done = sum(size[g.index] for g in done)
    started = job.created_at or now
    elapsed = max(0.0, now - started)
    n_groups = int(job.n_groups or len(groups))
    rate = len(done) / elapsed if done and elapsed > 0 else None
    left = n_groups - len(done)
    overdue = [
        Overdue(
            g.index,
            now - (g.started_at or now),
            float(g.predicted_seconds or 0.0),
            g.attempt,
            g.worker,
        )
        for g in groups
        if g.status == "RUNNING"
        and g.started_at is not None
        and now - g.started_at > OVERDUE_FACTOR * max(1.0, float(g.predicted_seconds or 0.0))
    ]
    failures = [
        FailedGroup(
            index=g.index, status=g.status, error=g.error or "Unknown", cause=g.cause,
            attempt=g.attempt,
        )
        for g in groups
        if g.status == "FAILED"
    ]  # fmt: skip
    retrying = [
        FailedGroup(
            index=g.index, status=g.status, error=g.last_error, cause=g.last_cause,
            attempt=g.last_attempt,
        )
        for g in groups
        if g.last_error is not None and not g.terminal
    ]  # fmt: skip
    return Progress(
        job_id=job.job_id,
        status=job.status,
        n_groups=n_groups,
        pending=counts.get("PENDING", 0),
        running=counts.get("RUNNING", 0),
        succeeded=counts.get("SUCCEEDED", 0),
        failed=counts.get("FAILED", 0),
        remaining=job.remaining,
        bytes_done=bytes_done,
        bytes_total=sum(size.values()),
        elapsed_seconds=elapsed,
        groups_per_second=rate,
        bytes_per_second=bytes_done / elapsed if done and elapsed > 0 else None,
        eta_seconds=(left / rate) if rate and left > 0 else (0.0 if left == 0 else None),
        overdue=overdue,
        failures=failures,
        retrying=retrying,
        error=job.error,
        groups_skipped=sum(1 for g in groups if g.skipped),
    )
