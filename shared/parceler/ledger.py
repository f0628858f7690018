"""The ledger: job and group state in DynamoDB, moved only by conditional writes.

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

Conditional refusals come back as typed values (``Claim`` / ``Refusal`` / ``bool``); throttling
and transaction conflicts raise :class:`RetryableError`; a missing table raises
:class:`LedgerError`. Codes are read from the error response, never from message text.
Timestamps are epoch seconds (floats); leases compare against the caller's clock, so
workers need roughly synchronised clocks (seconds, not minutes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws
from parceler.errors import PermanentError, RetryableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JobStatus = Literal["PLANNING", "RUNNING", "AGGREGATING", "SUCCEEDED", "FAILED"]
GroupStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
QueueName = Literal["lambda", "container"]

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
_BATCH_WRITE = 25  # the BatchWriteItem maximum
_MAX_TEXT = 4_000  # errors and causes are truncated: an item is capped at 400 KB
_RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
_RETRYABLE_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)


class LedgerError(PermanentError):
    """The ledger table refused a request for a reason retrying will not fix."""


class JobNotFoundError(LedgerError):
    """No job item for this job id."""


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
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def job_key(job_id: str) -> dict[str, Any]:
    """The key of a job item."""
    return {"pk": {"S": f"job#{job_id}"}, "sk": {"S": "job"}}


def group_key(job_id: str, index: int) -> dict[str, Any]:
    """The key of a group item."""
    return {"pk": {"S": f"job#{job_id}"}, "sk": {"S": f"group#{index:06d}"}}


def _value(value: Any) -> dict[str, Any]:
    """Python → DynamoDB attribute value (str, bool, int, float, None, list/dict of those)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): _value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_value(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in the ledger")


def _python(attr: Mapping[str, Any]) -> Any:
    """DynamoDB attribute value → Python (numbers as int when integral)."""
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        text = str(attr["N"])
        number = float(text)
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    if "NULL" in attr:
        return None
    if "M" in attr:
        return {k: _python(v) for k, v in attr["M"].items()}
    if "L" in attr:
        return [_python(v) for v in attr["L"]]
    raise TypeError(f"unsupported attribute value {attr!r}")


def _reasons(exc: ClientError) -> list[Any]:
    """The per-item ``CancellationReasons`` of a cancelled transaction."""
    reasons: Any = dict(exc.response).get("CancellationReasons") or []
    return list(reasons)


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _python(v) for k, v in item.items()}


def _text(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_TEXT]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _raise_mapped(exc: Exception, action: str) -> NoReturn:
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _RETRYABLE_CODES or status >= 500:
            raise RetryableError(f"ledger {action} failed transiently ({code}).") from exc
        if code == "ResourceNotFoundException":
            raise LedgerError(
                f"ledger {action}: the table does not exist ({code}).",
                "check PARCELER_LEDGER_TABLE (or --ledger-table) and the region.",
            ) from exc
        raise LedgerError(f"ledger {action} failed ({code}).") from exc
    if isinstance(exc, BotoCoreError):
        raise RetryableError(f"ledger {action} failed: {type(exc).__name__}.") from exc
    raise exc


@dataclass(frozen=True, slots=True)
class JobItem:
    """A job's state as the ledger holds it."""

    job_id: str
    status: str
    n_groups: int | None
    n_succeeded: int
    n_failed: int
    remaining: int | None
    created_at: float | None
    updated_at: float | None
    attrs: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobItem:
        data = _plain(item)
        return cls(
            job_id=str(data["pk"]).removeprefix("job#"),
            status=str(data.get("status", "")),
            n_groups=data.get("n_groups"),
            n_succeeded=int(data.get("n_succeeded") or 0),
            n_failed=int(data.get("n_failed") or 0),
            remaining=data.get("remaining"),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            attrs=data,
        )


@dataclass(frozen=True, slots=True)
class GroupItem:
    """A group's state as the ledger holds it."""

    job_id: str
    index: int
    status: str
    attempt: int
    committed_attempt: int | None
    summary_uri: str | None
    result_uri: str | None
    predicted_seconds: float | None
    queue: str | None
    error: str | None
    cause: str | None
    last_error: str | None
    last_cause: str | None
    started_at: float | None
    finished_at: float | None
    lease_until: float | None
    attrs: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> GroupItem:
        data = _plain(item)
        return cls(
            job_id=str(data["pk"]).removeprefix("job#"),
            index=int(str(data["sk"]).removeprefix("group#")),
            status=str(data.get("status", "")),
            attempt=int(data.get("attempt") or 0),
            committed_attempt=data.get("committed_attempt"),
            summary_uri=data.get("summary_uri"),
            result_uri=data.get("result_uri"),
            predicted_seconds=data.get("predicted_seconds"),
            queue=data.get("queue"),
            error=data.get("error"),
            cause=data.get("cause"),
            last_error=data.get("last_error"),
            last_cause=data.get("last_cause"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            lease_until=data.get("lease_until"),
            attrs=data,
        )

    @property
    def terminal(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)


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


class Ledger:
    """Job and group state in one DynamoDB table (see the module docstring for guarantees)."""

    def __init__(self, table: str) -> None:
        self.table = table

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
            "created_at": _value(ts),
            "updated_at": _value(ts),
        }
        try:
            self._db.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
            return JobItem.from_item(item), True
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                _raise_mapped(exc, "PutItem(job)")
        except BotoCoreError as exc:
            _raise_mapped(exc, "PutItem(job)")
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
        return JobItem.from_item(item)

    def record_plan(self, job_id: str, *, n_groups: int, attrs: Mapping[str, Any]) -> bool:
        """Record the plan's group count once (``remaining = n_groups``); False if recorded."""
        names, values, sets = _sets({"n_groups": n_groups, "remaining": n_groups, **attrs})
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
        self._update(
            job_key(job_id),
            "SET #n = :v, updated_at = :now",
            {"#n": name},
            {":v": _value(value), ":now": _value(time.time())},
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
        names, values, sets = _sets({"status": status, "updated_at": time.time(), **attrs})
        condition = "attribute_exists(pk)"
        if expected:
            keys = []
            for i, old in enumerate(expected):
                values[f":exp{i}"] = _value(old)
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
        was sent (see :func:`parceler.jobs.plan_job`), when rewriting an item is harmless.
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
                        "predicted_seconds": _value(float(g.predicted_seconds)),
                        "queue": {"S": g.queue},
                        "n_files": _value(g.n_files),
                        "size": _value(g.size),
                        "created_at": _value(ts),
                        "updated_at": _value(ts),
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
                        _raise_mapped(exc, "BatchWriteItem")
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
        return None if item is None else GroupItem.from_item(item)

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
                _raise_mapped(exc, "Query(groups)")
            for item in page.get("Items", []):
                yield GroupItem.from_item(item)
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
                _raise_mapped(exc, "Scan(groups held by a worker)")
            held.extend(GroupItem.from_item(item) for item in page.get("Items", []))
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
                    ":now": _value(ts),
                    ":lease": _value(lease),
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                _raise_mapped(exc, "UpdateItem(claim)")
            old: Any = dict(exc.response).get("Item")
            group = GroupItem.from_item(old) if old else self.get_group(job_id, index)
            if group is None:
                return Refusal("missing", None)
            return Refusal("done" if group.terminal else "busy", group)
        except BotoCoreError as exc:
            _raise_mapped(exc, "UpdateItem(claim)")
        group = GroupItem.from_item(response["Attributes"])
        return Claim(attempt=group.attempt, lease_until=lease, group=group)

    def extend_lease(self, job_id: str, index: int, attempt: int, *, lease_seconds: float) -> bool:
        """Push the lease of ``attempt`` forward (the heartbeat); False if the attempt lost it."""
        now = time.time()
        return self._update(
            group_key(job_id, index),
            "SET lease_until = :lease, updated_at = :now",
            {"#status": "status"},
            {
                ":lease": _value(now + lease_seconds),
                ":now": _value(now),
                ":a": _value(attempt),
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
                ":a": _value(attempt),
                ":r": {"S": result_uri},
                ":v": _value(_text(value_summary)),
                ":now": _value(now),
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
                ":c": _value(_text(cause)),
                ":now": _value(now),
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
            ":c": _value(_text(cause)),
            ":now": _value(now),
            ":pending": {"S": PENDING},
            ":running": {"S": RUNNING},
        }
        handed_back = self._update(
            group_key(job_id, index),
            "SET last_error = :e, last_cause = :c, last_attempt = :a, #status = :pending,"
            " updated_at = :now REMOVE lease_until",
            {"#status": "status"},
            {**values, ":a": _value(attempt)},
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
                ":now": _value(now),
                ":minus": {"N": "-1"},
                ":one": {"N": "1"},
            },
        }
        try:
            self._db.transact_write_items(
                TransactItems=[{"Update": group_update}, {"Update": job_update}]  # type: ignore[typeddict-item]
            )
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                _raise_mapped(exc, action)
            reasons = [str(r.get("Code") or "None") for r in _reasons(exc)]
            if any(code in _RETRYABLE_REASONS for code in reasons):
                raise RetryableError(f"ledger {action} conflicted ({reasons}); retry.") from exc
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise JobNotFoundError(f"ledger {action}: job {job_id!r} has no job item.") from exc
            raise LedgerError(f"ledger {action} was cancelled ({reasons}).") from exc
        except BotoCoreError as exc:
            _raise_mapped(exc, action)
        return True

    def _get(self, key: dict[str, Any], action: str) -> dict[str, Any] | None:
        try:
            response = self._db.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            _raise_mapped(exc, action)
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
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            _raise_mapped(exc, action)
        except BotoCoreError as exc:
            _raise_mapped(exc, action)
        return True


def _sets(attrs: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """``SET`` clauses for ``attrs`` with placeholder names (every attribute name is aliased)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for i, (name, value) in enumerate(attrs.items()):
        alias = "#k_status" if name == "status" else f"#k{i}"
        names[alias] = name
        values[f":v{i}"] = _value(value)
        sets.append(f"{alias} = :v{i}")
    return names, values, sets
