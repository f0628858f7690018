"""The ledger's vocabulary: job and group state as plain values (no I/O, no boto3).

The DynamoDB adapter, :class:`parceler.aws.ledger.Ledger`, stores these and converts its
items to them; every attribute it writes is a typed field here. Timestamps are epoch
seconds (floats). ``expires_at`` is when DynamoDB's TTL may delete the item: ``created_at``
plus the retention the planner's settings carry (``PARCELER_LEDGER_RETENTION_DAYS``,
default :data:`DEFAULT_RETENTION_DAYS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JobStatus = Literal["PLANNING", "RUNNING", "AGGREGATING", "SUCCEEDED", "FAILED"]
GroupStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
QueueName = Literal["lambda", "container"]

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
DEFAULT_RETENTION_DAYS = 90
TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True, slots=True)
class JobItem:
    """A job's state as the ledger holds it.

    Written by the planner (``spec`` … ``fingerprint``, ``n_shards``, ``n_slices``,
    ``recheck_seconds``), completed shard by shard by the commits and failures that empty
    them (``done_shards``; the counts ``remaining``, ``n_succeeded``, ``n_failed`` are the
    sums of the shard counters, filled in by the adapter), watched by the job's waiting
    execution (``wait_token``) and closed by the aggregator (``result_uri``, ``value_uri``,
    ``error``, ``cause``).
    """

    job_id: str
    status: str
    n_groups: int | None = None
    n_succeeded: int = 0
    n_failed: int = 0
    n_skipped: int = 0  # groups whose result was reused from an earlier job (incremental)
    remaining: int | None = None
    created_at: float | None = None
    updated_at: float | None = None
    expires_at: float | None = None
    spec: str | None = None  # the spec's sha256 (its one copy is spec.json in the work area)
    run_id: str | None = None  # minted at creation: names this run's attempt folders
    n_shards: int = 1  # partition keys the groups and counters spread over
    n_slices: int | None = None  # plan slices the WriteGroups map writes
    recheck_seconds: int | None = None  # the waiter's timeout: a lost signal's longest delay
    done_shards: frozenset[int] = frozenset()  # shards with no group left
    wait_token: str | None = None  # the task token of the execution waiting for the groups
    n_files: int | None = None
    total_size: int | None = None
    fingerprint: str | None = None  # the master manifest's
    result_uri: str | None = None
    value_uri: str | None = None
    error: str | None = None
    cause: str | None = None
    redrives: int = 0  # how many times the job was redriven
    redrive_execution: str | None = None  # the execution running the latest redrive


@dataclass(frozen=True, slots=True)
class GroupItem:
    """A group's state as the ledger holds it (the latest attempt's claim, the outcome)."""

    job_id: str
    index: int
    status: str
    attempt: int = 0
    committed_attempt: int | None = None
    summary_uri: str | None = None
    result_uri: str | None = None
    predicted_seconds: float | None = None
    queue: str | None = None
    error: str | None = None
    cause: str | None = None
    last_error: str | None = None
    last_cause: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    lease_until: float | None = None
    fingerprint: str | None = None
    n_files: int | None = None
    size: int | None = None
    worker: str | None = None  # who holds or held the latest attempt
    value_summary: str | None = None  # the committed value's JSON, truncated
    last_attempt: int | None = None  # the attempt that recorded ``last_error``
    identity: str | None = None  # fingerprint + processor identity (``parceler.identity``)
    reused_from: str | None = None  # the earlier job's result this group reuses (a skip)
    redrive: int | None = None  # the redrive that last reset this group
    attempt_base: int = 0  # attempts before that redrive: ``limits.max_attempts`` counts after it
    created_at: float | None = None
    updated_at: float | None = None
    expires_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)

    @property
    def skipped(self) -> bool:
        """Whether the group's result was reused instead of run (an incremental skip)."""
        return self.reused_from is not None


def slot_holder(group_index: int, worker_id: str, token: str) -> str:
    """The ``holder`` of an in-flight slot: one delivery, ``{group}/{worker}/{token}``
    (worker ids, ``host:pid:index``, hold no ``/``)."""
    return f"{group_index}/{worker_id}/{token}"


def slot_holder_worker(holder: str) -> str | None:
    """The worker id inside a :func:`slot_holder` string (None if it is not one)."""
    parts = holder.split("/")
    return parts[1] if len(parts) == 3 else None


@dataclass(frozen=True, slots=True)
class SlotItem:
    """One of a job's ``limits.max_concurrency`` in-flight slots (``pk = job#{job}#slots``,
    ``sk = slot#{k:04d}``): a group runs only while its delivery holds a live slot.

    Held while ``holder`` is set and ``lease_until`` is in the future (the worker's
    heartbeat extends it, the worker clears it when the attempt ends); a dead worker's slot
    frees itself when its lease runs out, as its group's message reappears.
    """

    slot: int
    holder: str | None = None  # the delivery holding it: "{group}/{worker}/{token}"
    group_index: int | None = None
    lease_until: float | None = None
    updated_at: float | None = None
    expires_at: float | None = None

    def live(self, now: float) -> bool:
        return self.holder is not None and (self.lease_until or 0.0) > now


@dataclass(frozen=True, slots=True)
class NewGroup:
    """What the planner records for a group before its message is sent."""

    index: int
    fingerprint: str
    summary_uri: str
    predicted_seconds: float
    queue: QueueName
    n_files: int
    size: int
    identity: str | None = None  # None when the job is not incremental


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A committed group result any later job with the same group identity may reuse."""

    identity: str
    result_uri: str
    job_id: str
    index: int
    value_summary: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """The caller now holds attempt ``attempt`` of the group until ``lease_until``."""

    attempt: int
    lease_until: float
    group: GroupItem


@dataclass(frozen=True, slots=True)
class Refusal:
    """A claim that did not happen.

    ``done``: the group is SUCCEEDED or FAILED (a duplicate delivery; delete the message).
    ``busy``: another attempt holds a live lease (leave the message; it comes back).
    ``missing``: the ledger has no such group (a message for an unknown or deleted job).
    """

    reason: Literal["done", "busy", "missing"]
    group: GroupItem | None
