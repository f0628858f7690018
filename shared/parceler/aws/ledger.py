"""The ledger adapter: job and group state in DynamoDB, moved only by conditional writes.

Keys (docs/INTERNALS.md): job item ``pk = "job#{job_id}", sk = "job"``; group item
``pk = "job#{job_id}", sk = "group#{g:06d}"``.

Guarantees, each held by a DynamoDB condition rather than by the caller's good behaviour:

- **Claim** (:meth:`Ledger.claim_group`): a group that is PENDING, or RUNNING with an expired
  lease, becomes RUNNING under a new ``attempt`` number (``ADD attempt 1``). A terminal group
  (SUCCEEDED/FAILED) refuses with ``reason="done"`` (the message is a duplicate: delete it);
  a live lease refuses with ``reason="busy"`` (another worker holds it: leave the message).
  The lease covers SQS's at-least-once delivery: a duplicate delivered while the first
  worker runs does not start a second attempt.
- **Commit** (:meth:`Ledger.commit_group`): one ``TransactWriteItems`` sets the group
  SUCCEEDED with ``committed_attempt`` under ``attribute_not_exists(committed_attempt)``
  and a non-terminal status, and moves the job counters (``remaining - 1``,
  ``n_succeeded + 1``). The first attempt to finish wins, whatever its number; a later
  commit is refused, so exactly one attempt is ever committed and the job counters move
  exactly once per group. Readers trust only ``committed_attempt`` / ``result_uri``.
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

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws
from parceler.aws.dynamodb_codec import from_item, set_clauses, to_attribute
from parceler.aws.errors import error_code, raise_mapped
from parceler.errors import JobNotFoundError, LedgerError, RetryableError
from parceler.ledger import (
    DEFAULT_RETENTION_DAYS,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TTL_ATTRIBUTE,
    Claim,
    GroupItem,
    JobItem,
    JobStatus,
    NewGroup,
    Refusal,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_WRITE = 25  # the BatchWriteItem maximum
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


def job_key(job_id: str) -> dict[str, Any]:
    """The key of a job item."""
    return {"pk": {"S": f"job#{job_id}"}, "sk": {"S": "job"}}


def group_key(job_id: str, index: int) -> dict[str, Any]:
    """The key of a group item."""
    return {"pk": {"S": f"job#{job_id}"}, "sk": {"S": f"group#{index:06d}"}}


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


def job_from_item(item: Mapping[str, Any]) -> JobItem:
    """A job item as DynamoDB returns it → :class:`JobItem`."""
    data = from_item(item)
    return JobItem(
        job_id=str(data["pk"]).removeprefix("job#"),
        status=str(data.get("status", "")),
        n_groups=_int(data.get("n_groups")),
        n_succeeded=int(data.get("n_succeeded") or 0),
        n_failed=int(data.get("n_failed") or 0),
        remaining=_int(data.get("remaining")),
        created_at=_float(data.get("created_at")),
        updated_at=_float(data.get("updated_at")),
        expires_at=_float(data.get(TTL_ATTRIBUTE)),
        spec=_str(data.get("spec")),
        enqueued_through=int(data.get("enqueued_through") or 0),
        poll_seconds=_int(data.get("poll_seconds")),
        plan_uri=_str(data.get("plan_uri")),
        n_files=_int(data.get("n_files")),
        total_size=_int(data.get("total_size")),
        fingerprint=_str(data.get("fingerprint")),
        result_uri=_str(data.get("result_uri")),
        value_uri=_str(data.get("value_uri")),
        error=_str(data.get("error")),
        cause=_str(data.get("cause")),
    )


def group_from_item(item: Mapping[str, Any]) -> GroupItem:
    """A group item as DynamoDB returns it → :class:`GroupItem`."""
    data = from_item(item)
    return GroupItem(
        job_id=str(data["pk"]).removeprefix("job#"),
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

    @property
    def _db(self) -> DynamoDBClient:
        return aws.client("dynamodb")

    # ---- jobs ---------------------------------------------------------------------------

    def create_job(
        self, job_id: str, *, spec_json: str, now: float | None = None
    ) -> tuple[JobItem, bool]:
        """Create the job item (status PLANNING) unless it exists.

        Returns:
            ``(job, created)``: the item as stored, and whether this call created it.
        """
        ts = time.time() if now is None else now
        item = {
            **job_key(job_id),
            "status": {"S": "PLANNING"},
            "spec": {"S": spec_json},
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
        """The job item (strongly consistent).

        Raises:
            JobNotFoundError: no such job.
        """
        item = self._get(job_key(job_id), "GetItem(job)")
        if item is None:
            raise JobNotFoundError(
                f"job {job_id!r} is not in ledger table {self.table!r}.",
                "check the job id and the ledger table.",
            )
        return job_from_item(item)

    def record_plan(self, job_id: str, *, n_groups: int, attrs: Mapping[str, Any]) -> bool:
        """Record the plan's group count once (``remaining = n_groups``); False if recorded."""
        names, values, sets = set_clauses(
            {"n_groups": n_groups, "remaining": n_groups, **_job_attrs(attrs)}
        )
        return self._update(
            job_key(job_id),
            "SET " + ", ".join(sets),
            names,
            values,
            condition="attribute_exists(pk) AND attribute_not_exists(n_groups)",
            action="UpdateItem(record_plan)",
        )

    def advance_job_counter(self, job_id: str, name: str, value: int) -> None:
        """Raise a monotonic job attribute (e.g. ``enqueued_through``) to ``value``, never lower."""
        _job_attrs({name: value})
        self._update(
            job_key(job_id),
            "SET #n = :v, updated_at = :now",
            {"#n": name},
            {":v": to_attribute(value), ":now": to_attribute(time.time())},
            condition="attribute_exists(pk) AND (attribute_not_exists(#n) OR #n < :v)",
            action=f"UpdateItem({name})",
        )

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
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        **group_key(job_id, g.index),
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
                    }
                }
            }
            for g in groups
        ]
        for start in range(0, len(requests), _BATCH_WRITE):
            pending: list[Any] = requests[start : start + _BATCH_WRITE]
            for attempt in range(10):
                if not pending:
                    break
                if attempt:
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                try:
                    response = self._db.batch_write_item(RequestItems={self.table: pending})
                except (ClientError, BotoCoreError) as exc:
                    try:
                        raise_mapped(exc, "dynamodb", "BatchWriteItem")
                    except RetryableError:
                        continue
                pending = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if pending:
                raise RetryableError(
                    f"ledger BatchWriteItem left {len(pending)} group item(s) unwritten.",
                    "run the planner again (it is idempotent).",
                )

    def get_group(self, job_id: str, index: int) -> GroupItem | None:
        """One group item (strongly consistent), or None."""
        item = self._get(group_key(job_id, index), "GetItem(group)")
        return None if item is None else group_from_item(item)

    def list_groups(self, job_id: str) -> Iterator[GroupItem]:
        """Every group item of a job, in index order (a paginated, consistent Query)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :g)",
            "ExpressionAttributeValues": {":pk": {"S": f"job#{job_id}"}, ":g": {"S": "group#"}},
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
                Key=group_key(job_id, index),
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

    def extend_lease(self, job_id: str, index: int, attempt: int, *, lease_seconds: float) -> bool:
        """Push the lease of ``attempt`` forward (the heartbeat); False if the attempt lost it."""
        now = time.time()
        return self._update(
            group_key(job_id, index),
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
            "Key": group_key(job_id, index),
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
            "Key": group_key(job_id, index),
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
            group_key(job_id, index),
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
            group_key(job_id, index),
            "SET last_error = :e, last_cause = :c, updated_at = :now",
            {"#status": "status"},
            values,
            condition="#status = :pending OR #status = :running",
            action="UpdateItem(record_error)",
        )
        return False

    # ---- internals ----------------------------------------------------------------------

    def _finish(
        self, job_id: str, group_update: dict[str, Any], counter: str, now: float, action: str
    ) -> bool:
        job_update = {
            "TableName": self.table,
            "Key": job_key(job_id),
            "UpdateExpression": "SET updated_at = :now ADD remaining :minus, #counter :one",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#counter": counter},
            "ExpressionAttributeValues": {
                ":now": to_attribute(now),
                ":minus": {"N": "-1"},
                ":one": {"N": "1"},
            },
        }
        try:
            self._db.transact_write_items(
                TransactItems=[{"Update": group_update}, {"Update": job_update}]  # type: ignore[typeddict-item]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise_mapped(exc, "dynamodb", action)
            reasons = [str(r.get("Code") or "None") for r in _reasons(exc)]
            if any(code in _RETRYABLE_REASONS for code in reasons):
                raise RetryableError(f"ledger {action} conflicted ({reasons}); retry.") from exc
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise JobNotFoundError(f"ledger {action}: job {job_id!r} has no job item.") from exc
            raise LedgerError(f"ledger {action} was cancelled ({reasons}).") from exc
        except BotoCoreError as exc:
            raise_mapped(exc, "dynamodb", action)
        return True

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
        condition: str,
        action: str,
    ) -> bool:
        used_names = {k: v for k, v in names.items() if k in expression or k in condition}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
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
