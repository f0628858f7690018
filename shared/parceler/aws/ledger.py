"""The ledger adapter: job and group state in DynamoDB, moved only by conditional writes.

Keys (docs/INTERNALS.md): the job item ``pk = "job#{job_id}", sk = "job"``; the job's
groups and counters are spread over ``S = shards_for(n_groups)`` partition keys
``job#{job_id}#{s:03d}`` (``s = g % S``): group item ``sk = "group#{g:06d}"``, the shard's
counter item ``sk = "counts"`` (``remaining``, ``n_succeeded``, ``n_failed``), plan slice
items ``sk = "slice#{k:05d}"``. A commit writes two items under one partition key, and
commits spread over S keys, so no key nears DynamoDB's per-partition throughput
(docs/quotas.md has the arithmetic).

Guarantees, each held by a DynamoDB condition rather than by the caller's good behaviour:

- **Claim** (:meth:`Ledger.claim_group`): a group that is PENDING, or RUNNING with an expired
  lease, becomes RUNNING under a new ``attempt`` number (``ADD attempt 1``). A terminal group
  (SUCCEEDED/FAILED) refuses with ``reason="done"`` (the message is a duplicate: delete it);
  a live lease refuses with ``reason="busy"`` (another worker holds it: leave the message).
  The lease covers SQS's at-least-once delivery: a duplicate delivered while the first
  worker runs does not start a second attempt.
- **Commit** (:meth:`Ledger.commit_group`): one ``TransactWriteItems`` sets the group
  SUCCEEDED with ``committed_attempt`` under ``attribute_not_exists(committed_attempt)``
  and a non-terminal status, and moves its shard's counters (``remaining - 1``,
  ``n_succeeded + 1``). The first attempt to finish wins, whatever its number; a later
  commit is refused, so exactly one attempt is ever committed and the counters move
  exactly once per group. Readers trust only ``committed_attempt`` / ``result_uri``.
  A transaction conflict (two commits on one shard at once) is retried in place with
  jittered backoff: finished work is never handed back for a conflict.
- **Completion**: the commit or fail that takes a shard's ``remaining`` to 0 adds the shard
  to the job item's ``done_shards`` set (idempotent); the one that completes the set sends
  ``SendTaskSuccess`` with the task token the job state machine's waiter stored there
  (:mod:`parceler.completion`).
- **Fail** (:meth:`Ledger.fail_group`): the same transaction shape for FAILED
  (``n_failed + 1``), refused if the group is already terminal.

Conditional refusals come back as typed values (``Claim`` / ``Refusal`` / ``bool``, from the
pure :mod:`parceler.ledger`); other failures go through :func:`parceler.aws.errors.raise_mapped`
(throttling and transaction conflicts → :class:`RetryableError`; a missing table →
:class:`LedgerError`), by code, never message text. Items read back become
:class:`JobItem` / :class:`GroupItem`; :meth:`Ledger.mark_job` and :meth:`Ledger.record_plan`
write only attributes those types declare. The planner's items carry ``expires_at``
(``created_at`` + the retention) for the table's TTL.
Timestamps are epoch seconds (floats); leases compare against the caller's clock, so
workers need roughly synchronised clocks (seconds, not minutes).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws
from parceler.aws import completion
from parceler.aws.dynamodb_codec import from_attribute, from_item, set_clauses, to_attribute
from parceler.aws.errors import error_code, raise_mapped
from parceler.errors import JobNotFoundError, LedgerError, RetryableError
from parceler.ledger import (
    DEFAULT_RETENTION_DAYS,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TTL_ATTRIBUTE,
    CachedResult,
    Claim,
    GroupItem,
    JobItem,
    JobStatus,
    NewGroup,
    Refusal,
    SlotItem,
    slot_holder_worker,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_WRITE = 25  # the BatchWriteItem maximum
_BATCH_GET = 100  # the BatchGetItem maximum
MAX_SHARDS = 256
"""Partition keys a job's groups and counters spread over, at most (docs/quotas.md)."""
GROUPS_PER_SHARD = 250
"""Groups per shard before another shard is added (a job of up to 250 groups has one)."""
CONFLICT_ATTEMPTS = 10
"""Tries of a commit transaction that conflicts with another on the same shard."""
_MAX_TEXT = 4_000  # errors and causes are truncated: an item is capped at 400 KB
_DAY = 86_400.0
# Per-item reasons of a cancelled transaction that a retry can clear.
_RETRYABLE_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)
_JOB_FIELDS = frozenset(f.name for f in fields(JobItem))


def create_table(name: str) -> None:
    """Create a ledger table as the CDK stack declares it: ``pk``/``sk`` strings, on-demand,
    TTL on ``expires_at``. For the local mode and tests (on AWS the stack owns the table)."""
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def shards_for(n_groups: int) -> int:
    """How many partition keys a job of ``n_groups`` groups spreads its groups over:
    ``ceil(n_groups / GROUPS_PER_SHARD)``, between 1 and :data:`MAX_SHARDS`."""
    return max(1, min(MAX_SHARDS, math.ceil(n_groups / GROUPS_PER_SHARD)))


def job_key(job_id: str) -> dict[str, Any]:
    """The key of a job item."""
    return {"pk": {"S": f"job#{job_id}"}, "sk": {"S": "job"}}


def shard_pk(job_id: str, shard: int) -> str:
    """The partition key of one of a job's shards."""
    return f"job#{job_id}#{shard:03d}"


def group_key(job_id: str, index: int, n_shards: int) -> dict[str, Any]:
    """The key of a group item (under shard ``index % n_shards``)."""
    return {"pk": {"S": shard_pk(job_id, index % n_shards)}, "sk": {"S": f"group#{index:06d}"}}


def slots_pk(job_id: str) -> str:
    """The partition key of a job's in-flight slots (``limits.max_concurrency``)."""
    return f"job#{job_id}#slots"


def slot_key(job_id: str, slot: int) -> dict[str, Any]:
    """The key of one of a job's in-flight slots."""
    return {"pk": {"S": slots_pk(job_id)}, "sk": {"S": f"slot#{slot:04d}"}}


def slot_from_item(item: Mapping[str, Any]) -> SlotItem:
    data = from_item(item)
    return SlotItem(
        slot=int(str(data["sk"]).removeprefix("slot#")),
        holder=_str(data.get("holder")),
        group_index=_int(data.get("group_index")),
        lease_until=_float(data.get("lease_until")),
        updated_at=_float(data.get("updated_at")),
        expires_at=_float(data.get(TTL_ATTRIBUTE)),
    )


def counter_key(job_id: str, shard: int) -> dict[str, Any]:
    """The key of a shard's counter item."""
    return {"pk": {"S": shard_pk(job_id, shard)}, "sk": {"S": "counts"}}


def slice_key(job_id: str, slice_index: int, n_shards: int) -> dict[str, Any]:
    """The key of a plan slice's progress item."""
    return {
        "pk": {"S": shard_pk(job_id, slice_index % n_shards)},
        "sk": {"S": f"slice#{slice_index:05d}"},
    }


def cache_key(identity: str) -> dict[str, Any]:
    """The key of a cached group result (``parceler.identity``): its own partition key, so
    lookups spread over the table and never touch a job's items."""
    return {"pk": {"S": f"cache#{identity}"}, "sk": {"S": "result"}}


def _job_id_of(pk: Any) -> str:
    """The job id in a job's or a shard's partition key (``job#{id}`` or ``job#{id}#{s}``)."""
    text = str(pk).removeprefix("job#")
    head, _, shard = text.rpartition("#")
    return head if head and len(shard) == 3 and shard.isdigit() else text


def _reasons(exc: ClientError) -> list[Any]:
    """The per-item ``CancellationReasons`` of a cancelled transaction."""
    reasons: Any = dict(exc.response).get("CancellationReasons") or []
    return list(reasons)


def _text(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_TEXT]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def job_from_item(item: Mapping[str, Any], counters: Sequence[Mapping[str, Any]] = ()) -> JobItem:
    """A job item and its shard counters as DynamoDB returns them → :class:`JobItem` (the
    counts are the counters' sums; a job not planned yet has none)."""
    data = from_item(item)
    counts = [from_item(c) for c in counters]
    n_groups = _int(data.get("n_groups"))
    return JobItem(
        job_id=_job_id_of(data["pk"]),
        status=str(data.get("status", "")),
        n_groups=n_groups,
        n_succeeded=sum(int(c.get("n_succeeded") or 0) for c in counts),
        n_failed=sum(int(c.get("n_failed") or 0) for c in counts),
        n_skipped=sum(int(c.get("n_skipped") or 0) for c in counts),
        remaining=(
            sum(int(c.get("remaining") or 0) for c in counts) if n_groups is not None else None
        ),
        created_at=_float(data.get("created_at")),
        updated_at=_float(data.get("updated_at")),
        expires_at=_float(data.get(TTL_ATTRIBUTE)),
        spec=_str(data.get("spec")),
        run_id=_str(data.get("run_id")),
        n_shards=int(data.get("n_shards") or 1),
        n_slices=_int(data.get("n_slices")),
        recheck_seconds=_int(data.get("recheck_seconds")),
        done_shards=frozenset(int(x) for x in (data.get("done_shards") or ())),
        wait_token=_str(data.get("wait_token")),
        n_files=_int(data.get("n_files")),
        total_size=_int(data.get("total_size")),
        fingerprint=_str(data.get("fingerprint")),
        result_uri=_str(data.get("result_uri")),
        value_uri=_str(data.get("value_uri")),
        error=_str(data.get("error")),
        cause=_str(data.get("cause")),
        redrives=int(data.get("redrives") or 0),
        redrive_execution=_str(data.get("redrive_execution")),
    )


def group_from_item(item: Mapping[str, Any]) -> GroupItem:
    """A group item as DynamoDB returns it → :class:`GroupItem`."""
    data = from_item(item)
    return GroupItem(
        job_id=_job_id_of(data["pk"]),
        index=int(str(data["sk"]).removeprefix("group#")),
        status=str(data.get("status", "")),
        attempt=int(data.get("attempt") or 0),
        committed_attempt=_int(data.get("committed_attempt")),
        summary_uri=_str(data.get("summary_uri")),
        result_uri=_str(data.get("result_uri")),
        predicted_seconds=_float(data.get("predicted_seconds")),
        queue=_str(data.get("queue")),
        error=_str(data.get("error")),
        cause=_str(data.get("cause")),
        last_error=_str(data.get("last_error")),
        last_cause=_str(data.get("last_cause")),
        started_at=_float(data.get("started_at")),
        finished_at=_float(data.get("finished_at")),
        lease_until=_float(data.get("lease_until")),
        fingerprint=_str(data.get("fingerprint")),
        n_files=_int(data.get("n_files")),
        size=_int(data.get("size")),
        worker=_str(data.get("worker")),
        value_summary=_str(data.get("value_summary")),
        last_attempt=_int(data.get("last_attempt")),
        identity=_str(data.get("identity")),
        reused_from=_str(data.get("reused_from")),
        redrive=_int(data.get("redrive")),
        attempt_base=int(data.get("attempt_base") or 0),
        created_at=_float(data.get("created_at")),
        updated_at=_float(data.get("updated_at")),
        expires_at=_float(data.get(TTL_ATTRIBUTE)),
    )


def _job_attrs(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``attrs`` unchanged, once every name is a :class:`JobItem` field (none goes unread)."""
    unknown = sorted(set(attrs) - _JOB_FIELDS)
    if unknown:
        raise ValueError(f"not job item attributes: {unknown}")
    return attrs


class Ledger:
    """Job and group state in one DynamoDB table (see the module docstring for guarantees).

    Args:
        table: the ledger table's name.
        retention_days: how long after creation the items this ledger creates (a job and
            its groups) may be deleted by the table's TTL on ``expires_at``.
    """

    def __init__(self, table: str, *, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.table = table
        self.retention_seconds = retention_days * _DAY
        self._shards: dict[str, int] = {}

    def n_shards(self, job_id: str) -> int:
        """The job's shard count, read from the job item once its plan is recorded (and
        cached from then on: it never changes). A job that is unknown or not planned yet
        has no group items; 1 is returned so that lookups find nothing."""
        if job_id not in self._shards:
            item = self._get(job_key(job_id), "GetItem(job)")
            if item is None or "n_groups" not in item:
                return 1
            self._shards[job_id] = int(from_attribute(item.get("n_shards", {"N": "1"})) or 1)
        return self._shards[job_id]

    def know_group_count(self, job_id: str, n_groups: int) -> None:
        """Remember a job's group count (a group manifest's ``group_count``), so that its
        shard count needs no read of the job item: a worker would otherwise read that one
        hot item once per message."""
        self._shards.setdefault(job_id, shards_for(n_groups))

    def _group_key(self, job_id: str, index: int) -> dict[str, Any]:
        return group_key(job_id, index, self.n_shards(job_id))

    @property
    def _db(self) -> DynamoDBClient:
        return aws.client("dynamodb")

    # ---- jobs ---------------------------------------------------------------------------

    def create_job(
        self, job_id: str, *, spec_json: str, run_id: str, now: float | None = None
    ) -> tuple[JobItem, bool]:
        """Create the job item (status PLANNING) unless it exists.

        ``run_id`` is stored only by the call that creates the item: a planner that runs
        again for the same job reads the first call's run id back.

        Returns:
            ``(job, created)``: the item as stored, and whether this call created it.
        """
        ts = time.time() if now is None else now
        item = {
            **job_key(job_id),
            "status": {"S": "PLANNING"},
            "spec": {"S": spec_json},
            "run_id": {"S": run_id},
            "n_succeeded": {"N": "0"},
            "n_failed": {"N": "0"},
            "created_at": to_attribute(ts),
            "updated_at": to_attribute(ts),
            TTL_ATTRIBUTE: to_attribute(ts + self.retention_seconds),
        }
        try:
            self._db.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
            return job_from_item(item), True
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise_mapped(exc, "dynamodb", "PutItem(job)")
        except BotoCoreError as exc:
            raise_mapped(exc, "dynamodb", "PutItem(job)")
        return self.get_job(job_id), False

    def get_job(self, job_id: str) -> JobItem:
        """The job item (strongly consistent), with counts summed over its shard counters.

        Raises:
            JobNotFoundError: no such job.
        """
        item = self._get(job_key(job_id), "GetItem(job)")
        if item is None:
            raise JobNotFoundError(
                f"job {job_id!r} is not in ledger table {self.table!r}.",
                "check the job id and the ledger table.",
            )
        counters: list[dict[str, Any]] = []
        if "n_groups" in item:
            n_shards = int(from_attribute(item.get("n_shards", {"N": "1"})) or 1)
            self._shards[job_id] = n_shards
            counters = self._get_many([counter_key(job_id, s) for s in range(n_shards)])
        return job_from_item(item, counters)

    def record_plan(self, job_id: str, *, n_groups: int, attrs: Mapping[str, Any]) -> bool:
        """Create the shard counters and record the plan on the job item, once.

        The counters are written first (unconditionally: nothing can have counted yet, as
        no message of the job was sent before the plan is recorded), then ``n_groups`` and
        ``n_shards`` under ``attribute_not_exists(n_groups)``. Returns False if a plan was
        already recorded (its counters are left alone).
        """
        _job_attrs(attrs)
        n_shards = shards_for(n_groups)
        now = time.time()
        if self.get_job(job_id).n_groups is not None:
            return False
        self._put_many(
            [
                {
                    **counter_key(job_id, s),
                    "remaining": to_attribute(len(range(s, n_groups, n_shards))),
                    "n_succeeded": {"N": "0"},
                    "n_failed": {"N": "0"},
                    "created_at": to_attribute(now),
                    TTL_ATTRIBUTE: to_attribute(now + self.retention_seconds),
                }
                for s in range(n_shards)
            ]
        )
        names, values, sets = set_clauses(
            {"n_groups": n_groups, "n_shards": n_shards, **_job_attrs(attrs)}
        )
        recorded = self._update(
            job_key(job_id),
            "SET " + ", ".join(sets),
            names,
            values,
            condition="attribute_exists(pk) AND attribute_not_exists(n_groups)",
            action="UpdateItem(record_plan)",
        )
        if recorded:
            self._shards[job_id] = n_shards
        return recorded

    def mark_job(
        self,
        job_id: str,
        status: JobStatus,
        *,
        expected: Sequence[JobStatus] | None = None,
        **attrs: Any,
    ) -> bool:
        """Set the job's status (and ``attrs``); with ``expected``, only from one of those statuses.

        Returns:
            False when ``expected`` was given and the job was in another status.
        """
        names, values, sets = set_clauses(
            {"status": status, "updated_at": time.time(), **_job_attrs(attrs)}
        )
        condition = "attribute_exists(pk)"
        if expected:
            keys = []
            for i, old in enumerate(expected):
                values[f":exp{i}"] = to_attribute(old)
                keys.append(f"#k_status = :exp{i}")
            condition += " AND (" + " OR ".join(keys) + ")"
        return self._update(
            job_key(job_id),
            "SET " + ", ".join(sets),
            names,
            values,
            condition=condition,
            action="UpdateItem(mark_job)",
        )

    # ---- groups -------------------------------------------------------------------------

    def put_groups(
        self, job_id: str, groups: Sequence[NewGroup], *, now: float | None = None
    ) -> None:
        """Write PENDING group items (BatchWriteItem, 25 per call, unprocessed items retried).

        Unconditional on purpose: the planner calls it only before any message of the job
        was sent (see :func:`parceler.planner.plan`), when rewriting an item is harmless.
        """
        ts = time.time() if now is None else now
        n_shards = self.n_shards(job_id)
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        **group_key(job_id, g.index, n_shards),
                        "status": {"S": PENDING},
                        "attempt": {"N": "0"},
                        "fingerprint": {"S": g.fingerprint},
                        "summary_uri": {"S": g.summary_uri},
                        "predicted_seconds": to_attribute(float(g.predicted_seconds)),
                        "queue": {"S": g.queue},
                        "n_files": to_attribute(g.n_files),
                        "size": to_attribute(g.size),
                        "created_at": to_attribute(ts),
                        "updated_at": to_attribute(ts),
                        TTL_ATTRIBUTE: to_attribute(ts + self.retention_seconds),
                        **({"identity": {"S": g.identity}} if g.identity else {}),
                    }
                }
            }
            for g in groups
        ]
        self._write_requests(requests)

    def _put_many(self, items: Sequence[dict[str, Any]]) -> None:
        """BatchWriteItem ``items``, 25 per call, unprocessed items retried with backoff."""
        self._write_requests([{"PutRequest": {"Item": item}} for item in items])

    def _write_requests(self, requests: Sequence[dict[str, Any]]) -> None:
        def call(pending: list[Any]) -> list[Any]:
            response = self._db.batch_write_item(RequestItems={self.table: pending})
            return list(response.get("UnprocessedItems", {}).get(self.table, []))

        self._batched(requests, _BATCH_WRITE, call, "BatchWriteItem")

    def get_group(self, job_id: str, index: int) -> GroupItem | None:
        """One group item (strongly consistent), or None."""
        item = self._get(self._group_key(job_id, index), "GetItem(group)")
        return None if item is None else group_from_item(item)

    def get_groups(self, job_id: str, indices: Sequence[int]) -> dict[int, GroupItem]:
        """Several group items by index (BatchGetItem, consistent); missing ones are absent."""
        n_shards = self.n_shards(job_id)
        items = self._get_many([group_key(job_id, i, n_shards) for i in indices])
        groups = (group_from_item(item) for item in items)
        return {g.index: g for g in groups}

    def list_groups(self, job_id: str) -> Iterator[GroupItem]:
        """Every group item of a job, in index order (a paginated, consistent Query per
        shard, merged)."""
        shards = [self._query_groups(job_id, s) for s in range(self.n_shards(job_id))]
        yield from heapq.merge(*shards, key=lambda g: g.index)

    def _query_groups(self, job_id: str, shard: int) -> Iterator[GroupItem]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :g)",
            "ExpressionAttributeValues": {
                ":pk": {"S": shard_pk(job_id, shard)},
                ":g": {"S": "group#"},
            },
            "ConsistentRead": True,
        }
        while True:
            try:
                page = self._db.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise_mapped(exc, "dynamodb", "Query(groups)")
            for item in page.get("Items", []):
                yield group_from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def groups_held_by(self, worker_id: str) -> list[GroupItem]:
        """The RUNNING groups whose current claim is ``worker_id``'s.

        A Scan of the whole table: for the local mode's supervisor (a small table, a dead
        worker now and then), never for a worker's hot path.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "worker = :w AND #status = :running",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":w": {"S": worker_id}, ":running": {"S": RUNNING}},
            "ConsistentRead": True,
        }
        held: list[GroupItem] = []
        while True:
            try:
                page = self._db.scan(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise_mapped(exc, "dynamodb", "Scan(groups held by a worker)")
            held.extend(group_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return held
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim_group(
        self,
        job_id: str,
        index: int,
        worker_id: str,
        *,
        lease_seconds: float,
        now: float | None = None,
    ) -> Claim | Refusal:
        """Start a new attempt of a group: PENDING (or RUNNING with an expired lease) → RUNNING.

        Args:
            lease_seconds: how long the claim excludes other claimants (the worker's
                heartbeat extends it with :meth:`extend_lease`).
            now: the caller's clock (epoch seconds), injectable for tests.

        Returns:
            :class:`Claim` with the new attempt number, or :class:`Refusal` saying why not.
        """
        ts = time.time() if now is None else now
        lease = ts + max(0.0, lease_seconds)
        try:
            response = self._db.update_item(
                TableName=self.table,
                Key=self._group_key(job_id, index),
                UpdateExpression=(
                    "SET #status = :running, worker = :w, started_at = :now, lease_until = :lease,"
                    " updated_at = :now ADD attempt :one"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND (#status = :pending OR (#status = :running AND"
                    " (attribute_not_exists(lease_until) OR lease_until <= :now)))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":running": {"S": RUNNING},
                    ":pending": {"S": PENDING},
                    ":w": {"S": worker_id},
                    ":now": to_attribute(ts),
                    ":lease": to_attribute(lease),
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise_mapped(exc, "dynamodb", "UpdateItem(claim)")
            old: Any = dict(exc.response).get("Item")
            group = group_from_item(old) if old else self.get_group(job_id, index)
            if group is None:
                return Refusal("missing", None)
            return Refusal("done" if group.terminal else "busy", group)
        except BotoCoreError as exc:
            raise_mapped(exc, "dynamodb", "UpdateItem(claim)")
        group = group_from_item(response["Attributes"])
        return Claim(attempt=group.attempt, lease_until=lease, group=group)

    def slots(self, job_id: str) -> list[SlotItem]:
        """The job's in-flight slot items that exist (strongly consistent Query of one
        partition: at most ``limits.max_concurrency`` small items)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": slots_pk(job_id)}},
            "ConsistentRead": True,
        }
        found: list[SlotItem] = []
        while True:
            try:
                page = self._db.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise_mapped(exc, "dynamodb", "Query(slots)")
            found.extend(slot_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def take_slot(
        self,
        job_id: str,
        *,
        limit: int,
        holder: str,
        group_index: int,
        lease_seconds: float,
        now: float | None = None,
    ) -> int | None:
        """Take one of the job's ``limit`` in-flight slots for ``holder``, if one is free.

        Reads the slots (one Query), then tries the free ones in random order with a
        conditional update (``holder`` unset or its lease run out), so two deliveries never
        hold one slot and at most ``limit`` deliveries hold slots at any time.

        Returns:
            The slot number taken, or None when all ``limit`` slots are held by live leases.
        """
        ts = time.time() if now is None else now
        busy = {slot.slot for slot in self.slots(job_id) if slot.live(ts)}
        free = [k for k in range(limit) if k not in busy]
        random.shuffle(free)  # deliveries racing for slots spread over them
        for k in free:
            taken = self._update(
                slot_key(job_id, k),
                "SET holder = :h, group_index = :g, lease_until = :lease, updated_at = :now,"
                f" {TTL_ATTRIBUTE} = if_not_exists({TTL_ATTRIBUTE}, :expires)",
                {},
                {
                    ":h": {"S": holder},
                    ":g": to_attribute(group_index),
                    ":lease": to_attribute(ts + max(0.0, lease_seconds)),
                    ":now": to_attribute(ts),
                    ":expires": to_attribute(ts + self.retention_seconds),
                },
                condition="attribute_not_exists(holder) OR lease_until <= :now",
                action="UpdateItem(take_slot)",
            )
            if taken:
                return k
        return None

    def extend_slot(self, job_id: str, slot: int, holder: str, *, lease_seconds: float) -> bool:
        """Push the lease of ``holder``'s slot forward (the heartbeat); False if it lost it."""
        now = time.time()
        return self._update(
            slot_key(job_id, slot),
            "SET lease_until = :lease, updated_at = :now",
            {},
            {
                ":lease": to_attribute(now + lease_seconds),
                ":now": to_attribute(now),
                ":h": {"S": holder},
            },
            condition="holder = :h",
            action="UpdateItem(extend_slot)",
        )

    def release_slots_held_by(self, job_id: str, worker_id: str) -> int:
        """Free every slot of the job that ``worker_id`` holds (it died: the local mode's
        supervisor, so deferred groups need not wait for the dead holder's lease).

        Returns:
            How many slots were freed.
        """
        freed = 0
        for slot in self.slots(job_id):
            if slot.holder is not None and slot_holder_worker(slot.holder) == worker_id:
                freed += self.release_slot(job_id, slot.slot, slot.holder)
        return freed

    def release_slot(self, job_id: str, slot: int, holder: str) -> bool:
        """Free ``holder``'s slot; False if it no longer held it (its lease had run out)."""
        return self._update(
            slot_key(job_id, slot),
            "REMOVE holder, group_index, lease_until SET updated_at = :now",
            {},
            {":now": to_attribute(time.time()), ":h": {"S": holder}},
            condition="holder = :h",
            action="UpdateItem(release_slot)",
        )

    def extend_lease(self, job_id: str, index: int, attempt: int, *, lease_seconds: float) -> bool:
        """Push the lease of ``attempt`` forward (the heartbeat); False if the attempt lost it."""
        now = time.time()
        return self._update(
            self._group_key(job_id, index),
            "SET lease_until = :lease, updated_at = :now",
            {"#status": "status"},
            {
                ":lease": to_attribute(now + lease_seconds),
                ":now": to_attribute(now),
                ":a": to_attribute(attempt),
                ":running": {"S": RUNNING},
            },
            condition="#status = :running AND attempt = :a",
            action="UpdateItem(extend_lease)",
        )

    def commit_group(
        self,
        job_id: str,
        index: int,
        attempt: int,
        result_uri: str,
        value_summary: str | None = None,
    ) -> bool:
        """Commit ``attempt`` as the group's result and count the group done, atomically.

        Returns:
            True if this call committed; False if another attempt already committed or the
            group was marked FAILED (the caller's outputs are orphans nobody reads).

        Raises:
            RetryableError: throttling or a transaction conflict; commit again.
        """
        now = time.time()
        group_update = {
            "TableName": self.table,
            "Key": self._group_key(job_id, index),
            "UpdateExpression": (
                "SET #status = :succeeded, committed_attempt = :a, result_uri = :r,"
                " value_summary = :v, finished_at = :now, updated_at = :now REMOVE lease_until"
            ),
            "ConditionExpression": (
                "attribute_exists(pk) AND attribute_not_exists(committed_attempt)"
                " AND (#status = :pending OR #status = :running) AND attempt >= :a"
            ),
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":succeeded": {"S": SUCCEEDED},
                ":pending": {"S": PENDING},
                ":running": {"S": RUNNING},
                ":a": to_attribute(attempt),
                ":r": {"S": result_uri},
                ":v": to_attribute(_text(value_summary)),
                ":now": to_attribute(now),
            },
        }
        return self._finish(job_id, group_update, "n_succeeded", now, "TransactWriteItems(commit)")

    def fail_group(self, job_id: str, index: int, error: str, cause: str | None = None) -> bool:
        """Mark a group FAILED with its error and count it done, atomically.

        Returns:
            False if the group was already SUCCEEDED or FAILED (nothing changes).
        """
        now = time.time()
        group_update = {
            "TableName": self.table,
            "Key": self._group_key(job_id, index),
            "UpdateExpression": (
                "SET #status = :failed, #error = :e, cause = :c, finished_at = :now,"
                " updated_at = :now REMOVE lease_until"
            ),
            "ConditionExpression": (
                "attribute_exists(pk) AND (#status = :pending OR #status = :running)"
            ),
            "ExpressionAttributeNames": {"#status": "status", "#error": "error"},
            "ExpressionAttributeValues": {
                ":failed": {"S": FAILED},
                ":pending": {"S": PENDING},
                ":running": {"S": RUNNING},
                ":e": {"S": _text(error) or "Error"},
                ":c": to_attribute(_text(cause)),
                ":now": to_attribute(now),
            },
        }
        return self._finish(job_id, group_update, "n_failed", now, "TransactWriteItems(fail)")

    def record_error(
        self, job_id: str, index: int, attempt: int, error: str, cause: str | None = None
    ) -> bool:
        """Record a retryable failure of ``attempt`` and hand the group back (PENDING, no lease).

        If another attempt has claimed the group since, only ``last_error`` is recorded.

        Returns:
            True if the group was handed back; False if only the error was recorded (or not
            even that, for a terminal group).
        """
        now = time.time()
        values = {
            ":e": {"S": _text(error) or "Error"},
            ":c": to_attribute(_text(cause)),
            ":now": to_attribute(now),
            ":pending": {"S": PENDING},
            ":running": {"S": RUNNING},
        }
        handed_back = self._update(
            self._group_key(job_id, index),
            "SET last_error = :e, last_cause = :c, last_attempt = :a, #status = :pending,"
            " updated_at = :now REMOVE lease_until",
            {"#status": "status"},
            {**values, ":a": to_attribute(attempt)},
            condition="#status = :running AND attempt = :a",
            action="UpdateItem(record_error)",
        )
        if handed_back:
            return True
        self._update(
            self._group_key(job_id, index),
            "SET last_error = :e, last_cause = :c, updated_at = :now",
            {"#status": "status"},
            values,
            condition="#status = :pending OR #status = :running",
            action="UpdateItem(record_error)",
        )
        return False

    # ---- incremental runs and redrives ----------------------------------------------------

    def reuse_group(self, job_id: str, index: int, cached: CachedResult) -> bool:
        """Commit an earlier job's result as this PENDING group's (an incremental skip): the
        group becomes SUCCEEDED with ``result_uri`` = the cached one and ``reused_from``, and
        its shard counts it succeeded and skipped, in one transaction (as a commit).

        Returns:
            False if the group was not PENDING or already committed (nothing changes).
        """
        now = time.time()
        group_update = {
            "TableName": self.table,
            "Key": self._group_key(job_id, index),
            "UpdateExpression": (
                "SET #status = :succeeded, committed_attempt = :zero, result_uri = :r,"
                " value_summary = :v, reused_from = :from, finished_at = :now, updated_at = :now"
            ),
            "ConditionExpression": (
                "attribute_exists(pk) AND attribute_not_exists(committed_attempt)"
                " AND #status = :pending"
            ),
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":succeeded": {"S": SUCCEEDED},
                ":pending": {"S": PENDING},
                ":zero": {"N": "0"},
                ":r": {"S": cached.result_uri},
                ":v": to_attribute(_text(cached.value_summary)),
                ":from": {"S": f"{cached.job_id}/{cached.index}"},
                ":now": to_attribute(now),
            },
        }
        moves = {"remaining": -1, "n_succeeded": 1, "n_skipped": 1}
        return self._finish(job_id, group_update, moves, now, "TransactWriteItems(reuse)")

    def get_cached_results(self, identities: Sequence[str]) -> dict[str, CachedResult]:
        """The cached results of these group identities (BatchGetItem), by identity."""
        wanted = sorted(set(identities))
        items = self._get_many([cache_key(i) for i in wanted])
        found = {}
        for item in items:
            data = from_item(item)
            identity = str(data["pk"]).removeprefix("cache#")
            found[identity] = CachedResult(
                identity=identity,
                result_uri=str(data["result_uri"]),
                job_id=str(data["job_id"]),
                index=int(data["group"]),
                value_summary=_str(data.get("value_summary")),
            )
        return found

    def put_cached_results(self, results: Sequence[CachedResult]) -> None:
        """Record committed results under their group identities (last writer wins: two jobs
        committing the same identity both wrote a valid result; either may be reused). The
        items expire with the ledger's retention, like the jobs they point into."""
        now = time.time()
        self._put_many(
            [
                {
                    **cache_key(r.identity),
                    "result_uri": {"S": r.result_uri},
                    "job_id": {"S": r.job_id},
                    "group": to_attribute(r.index),
                    "value_summary": to_attribute(_text(r.value_summary)),
                    "created_at": to_attribute(now),
                    TTL_ATTRIBUTE: to_attribute(now + self.retention_seconds),
                }
                for r in {r.identity: r for r in results}.values()
            ]
        )

    def start_redrive(self, job_id: str, execution: str) -> JobItem | None:
        """Move a FAILED job back to RUNNING for redrive number ``redrives + 1``, run by
        ``execution``: its error, cause, waiter token and done shards are removed (the
        waiter recounts every shard). A redrive already started by ``execution`` (a retried
        step) is returned as it is.

        Returns:
            The job after the move, or None if the job is not FAILED (nor being redriven by
            ``execution``).
        """
        job = self.get_job(job_id)
        if job.redrive_execution == execution and job.status != FAILED:
            return job
        moved = self._update(
            job_key(job_id),
            "SET #status = :running, redrives = :n, redrive_execution = :x, updated_at = :now"
            " REMOVE #error, cause, wait_token, done_shards, result_uri, value_uri",
            {"#status": "status", "#error": "error"},
            {
                ":running": {"S": RUNNING},
                ":failed": {"S": FAILED},
                ":n": to_attribute(job.redrives + 1),
                ":old": to_attribute(job.redrives),
                ":x": {"S": execution},
                ":now": to_attribute(time.time()),
            },
            condition="#status = :failed AND (attribute_not_exists(redrives) OR redrives = :old)",
            action="UpdateItem(start_redrive)",
        )
        return self.get_job(job_id) if moved else None

    def reset_group(self, job_id: str, group: GroupItem, redrive: int) -> bool:
        """Make a group that did not succeed runnable again for redrive ``redrive``, with
        a fresh attempt budget (``attempt_base`` = its attempts so far).

        A FAILED group becomes PENDING (error and cause cleared, ``last_error`` kept) and its
        shard counts it remaining again, not failed (one transaction). A PENDING or RUNNING
        one (the job ended before it did) only gets the new budget: it is still counted
        remaining. Idempotent per redrive: a group already reset for ``redrive`` is left.

        Returns:
            True if this call reset the group.
        """
        now = time.time()
        key = self._group_key(job_id, group.index)
        values: dict[str, Any] = {
            ":n": to_attribute(redrive),
            ":base": to_attribute(group.attempt),
            ":now": to_attribute(now),
            ":failed": {"S": FAILED},
            ":pending": {"S": PENDING},
            ":running": {"S": RUNNING},
        }
        fresh = "(attribute_not_exists(redrive) OR redrive < :n)"
        if group.status != FAILED:
            return self._update(
                key,
                "SET redrive = :n, attempt_base = attempt, updated_at = :now",
                {"#status": "status"},
                {k: v for k, v in values.items() if k not in (":base", ":failed")},
                condition=f"(#status = :pending OR #status = :running) AND {fresh}",
                action="UpdateItem(reset_group)",
            )
        group_update = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": (
                "SET #status = :pending, redrive = :n, attempt_base = attempt, updated_at = :now"
                " REMOVE #error, cause, finished_at, lease_until"
            ),
            "ConditionExpression": f"#status = :failed AND {fresh}",
            "ExpressionAttributeNames": {"#status": "status", "#error": "error"},
            "ExpressionAttributeValues": {k: v for k, v in values.items() if k != ":base"},
        }
        moves = {"remaining": 1, "n_failed": -1}
        return self._finish(job_id, group_update, moves, now, "TransactWriteItems(reset)")

    # ---- internals ----------------------------------------------------------------------

    def _finish(
        self,
        job_id: str,
        group_update: dict[str, Any],
        counter: str | Mapping[str, int],
        now: float,
        action: str,
    ) -> bool:
        """One transaction: the group's update and its shard counter's move.

        ``counter`` names the count a finished group adds one to (``remaining`` loses one),
        or gives every counter's move (a redrive's reset: ``remaining + 1, n_failed - 1``).
        Conflicts with another transaction on the same shard are retried here, with full
        jitter, up to :data:`CONFLICT_ATTEMPTS` times; the ``ClientRequestToken`` makes a
        retry of a transaction that did commit (an ambiguous network failure) a no-op.
        Afterwards the shard's completion is noted (:meth:`note_shard_progress`).
        """
        index = int(str(group_update["Key"]["sk"]["S"]).removeprefix("group#"))
        shard = index % self.n_shards(job_id)
        moves = {"remaining": -1, counter: 1} if isinstance(counter, str) else dict(counter)
        names = {f"#c{i}": name for i, name in enumerate(moves)}
        counter_update = {
            "TableName": self.table,
            "Key": counter_key(job_id, shard),
            "UpdateExpression": "SET updated_at = :now ADD "
            + ", ".join(f"#c{i} :v{i}" for i in range(len(moves))),
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                ":now": to_attribute(now),
                **{f":v{i}": {"N": str(move)} for i, move in enumerate(moves.values())},
            },
        }
        digest = hashlib.sha256(repr((group_update, moves)).encode()).digest()[:16]
        token = str(uuid.UUID(bytes=digest))
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._db.transact_write_items(
                    TransactItems=[{"Update": group_update}, {"Update": counter_update}],  # type: ignore[typeddict-item]
                    ClientRequestToken=token,
                )
                break
            except ClientError as exc:
                code = error_code(exc)
                reasons = [str(r.get("Code") or "None") for r in _reasons(exc)]
                conflicted = code == "TransactionConflictException" or (
                    code == "TransactionCanceledException"
                    and any(r in _RETRYABLE_REASONS for r in reasons)
                )
                if conflicted and attempt + 1 < CONFLICT_ATTEMPTS:
                    time.sleep(random.uniform(0.0, min(1.0, 0.025 * 2**attempt)))
                    continue
                if code != "TransactionCanceledException":
                    raise_mapped(exc, "dynamodb", action)
                if conflicted:
                    raise RetryableError(f"ledger {action} conflicted ({reasons}); retry.") from exc
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    raise JobNotFoundError(
                        f"ledger {action}: job {job_id!r} has no counter for shard {shard}."
                    ) from exc
                raise LedgerError(f"ledger {action} was cancelled ({reasons}).") from exc
            except BotoCoreError as exc:
                raise_mapped(exc, "dynamodb", action)
        self.note_shard_progress(job_id, shard)
        return True

    # ---- completion -----------------------------------------------------------------------

    def note_shard_progress(self, job_id: str, shard: int) -> None:
        """If ``shard`` has no group left, add it to the job's ``done_shards`` and, when that
        completes the set, signal the waiting execution (idempotent; any caller may repeat
        it). A failure to signal is logged, never raised: the waiter's re-check covers it."""
        counts = self._get(counter_key(job_id, shard), "GetItem(counts)")
        if counts is None or int(from_attribute(counts.get("remaining", {"N": "1"})) or 0) > 0:
            return
        completion.signal_if_complete(job_id, self._add_done_shards(job_id, [shard]))

    def register_waiter(self, job_id: str, task_token: str) -> completion.JobProgress:
        """Store the waiting execution's task token on the job item, recount every shard
        (repairing ``done_shards``), and return where the job stands."""
        self._update(
            job_key(job_id),
            "SET wait_token = :t, updated_at = :now",
            {},
            {":t": {"S": task_token}, ":now": to_attribute(time.time())},
            condition="attribute_exists(pk)",
            action="UpdateItem(register_waiter)",
        )
        job = self.get_job(job_id)
        counters = self._get_many([counter_key(job_id, s) for s in range(job.n_shards)])
        done = [
            int(str(c["pk"]["S"]).rsplit("#", 1)[1])
            for c in counters
            if int(from_attribute(c.get("remaining", {"N": "1"})) or 0) <= 0
        ]
        item = (
            self._add_done_shards(job_id, done)
            if done
            else from_item(self._get(job_key(job_id), "GetItem(job)") or {})
        )
        return completion.progress_of(job_id, item)

    def _add_done_shards(self, job_id: str, shards: Sequence[int]) -> dict[str, Any]:
        try:
            response = self._db.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression="ADD done_shards :s SET updated_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":s": {"NS": [str(s) for s in sorted(set(shards))]},
                    ":now": to_attribute(time.time()),
                },
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "dynamodb", "UpdateItem(done_shards)")
        return from_item(response.get("Attributes", {}))

    # ---- plan slices ----------------------------------------------------------------------

    def get_slice(self, job_id: str, slice_index: int) -> dict[str, Any]:
        """A plan slice's progress marks (``items_written``, ``enqueued_through``), or {}."""
        item = self._get(slice_key(job_id, slice_index, self.n_shards(job_id)), "GetItem(slice)")
        return {} if item is None else from_item(item)

    def mark_slice(self, job_id: str, slice_index: int, **marks: Any) -> None:
        """Set progress marks on a plan slice's item (creating it)."""
        names, values, sets = set_clauses({**marks, "updated_at": time.time()})
        self._update(
            slice_key(job_id, slice_index, self.n_shards(job_id)),
            "SET " + ", ".join(sets),
            names,
            values,
            condition=None,
            action="UpdateItem(slice)",
        )

    def _get_many(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """BatchGetItem (consistent), 100 keys per call, unprocessed keys retried; the items
        found, in no particular order."""
        found: list[dict[str, Any]] = []

        def call(pending: list[Any]) -> list[Any]:
            response = self._db.batch_get_item(
                RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}}
            )
            found.extend(dict(i) for i in response.get("Responses", {}).get(self.table, []))
            unprocessed: Any = response.get("UnprocessedKeys", {}).get(self.table, {})
            return list(unprocessed.get("Keys", []))

        self._batched(keys, _BATCH_GET, call, "BatchGetItem")
        return found

    def _batched(
        self,
        entries: Sequence[Any],
        size: int,
        call: Callable[[list[Any]], list[Any]],
        action: str,
    ) -> None:
        """Run a batch call over ``entries``, ``size`` at a time; ``call`` returns what the
        service left unprocessed, which is retried with backoff (throttling too), 10 tries."""
        for start in range(0, len(entries), size):
            pending: list[Any] = list(entries[start : start + size])
            for attempt in range(10):
                if not pending:
                    break
                if attempt:
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                try:
                    pending = call(pending)
                except (ClientError, BotoCoreError) as exc:
                    try:
                        raise_mapped(exc, "dynamodb", action)
                    except RetryableError:
                        continue
            if pending:
                raise RetryableError(
                    f"ledger {action} left {len(pending)} entries unprocessed.",
                    "run the step again (it is idempotent).",
                )

    def _get(self, key: dict[str, Any], action: str) -> dict[str, Any] | None:
        try:
            response = self._db.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "dynamodb", action)
        item = response.get("Item")
        return dict(item) if item else None

    def _update(
        self,
        key: dict[str, Any],
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        *,
        condition: str | None,
        action: str,
    ) -> bool:
        used_names = {k: v for k, v in names.items() if k in expression or k in (condition or "")}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        if used_names:
            kwargs["ExpressionAttributeNames"] = used_names
        try:
            self._db.update_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise_mapped(exc, "dynamodb", action)
        except BotoCoreError as exc:
            raise_mapped(exc, "dynamodb", action)
        return True
