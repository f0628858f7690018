"""The AWS quotas moto does not enforce, and an execution history measured against them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from parceler.errors import QuotaExceededError

_SFN_STANDARD = "https://docs.aws.amazon.com/step-functions/latest/dg/limits.html"
_SFN_MAP = "https://docs.aws.amazon.com/step-functions/latest/dg/state-map.html"
_SFN_DISTRIBUTED = "https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html"
_LAMBDA = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
_DDB_PARTITION = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)
_DDB_QUOTAS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html"
_DDB_TRANSACTIONS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html"
)
_SQS_MESSAGES = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"
_SQS_QUEUES = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html"
)
_S3 = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"


@dataclass(frozen=True, slots=True)
class Quota:
    """One AWS limit: what it bounds, its number, and the AWS page that states it."""

    name: str
    limit: int
    unit: str
    source: str


# Step Functions (Standard workflows).
HISTORY_EVENTS = Quota(
    "Step Functions history events per execution", 25_000, "events", _SFN_STANDARD
)
STATE_PAYLOAD = Quota(
    "Step Functions input/output per task, state or execution", 262_144, "bytes", _SFN_STANDARD
)
INLINE_MAP_CONCURRENCY = Quota("inline Map concurrent iterations", 40, "iterations", _SFN_MAP)
DISTRIBUTED_MAP_CHILDREN = Quota(
    "Distributed Map parallel child executions", 10_000, "executions", _SFN_DISTRIBUTED
)
# Lambda.
LAMBDA_TIMEOUT = Quota("Lambda function timeout", 900, "seconds", _LAMBDA)
LAMBDA_MEMORY = Quota("Lambda function memory", 10_240, "MB", _LAMBDA)
LAMBDA_SYNC_PAYLOAD = Quota(
    "Lambda synchronous invocation payload (request and response)",
    6 * 1024 * 1024,
    "bytes",
    _LAMBDA,
)
LAMBDA_UNZIPPED = Quota(
    "Lambda deployment package unzipped, with layers", 262_144_000, "bytes", _LAMBDA
)
# DynamoDB.
DYNAMODB_PARTITION_WCU = Quota(
    "DynamoDB write units per second per partition", 1_000, "WCU/s", _DDB_PARTITION
)
DYNAMODB_PARTITION_RCU = Quota(
    "DynamoDB read units per second per partition", 3_000, "RCU/s", _DDB_PARTITION
)
DYNAMODB_ITEM = Quota("DynamoDB item size", 400 * 1024, "bytes", _DDB_QUOTAS)
# A transactional write costs two write units per KB of each item (prepare and commit).
DYNAMODB_TRANSACTION_WCU_PER_KB = 2
DYNAMODB_TRANSACTION_SOURCE = _DDB_TRANSACTIONS
# SQS (standard queues).
SQS_MESSAGE = Quota("SQS message size", 262_144, "bytes", _SQS_MESSAGES)
SQS_RETENTION = Quota("SQS message retention (maximum)", 1_209_600, "seconds", _SQS_MESSAGES)
SQS_DEFAULT_RETENTION_SECONDS = 345_600  # 4 days, what a queue gets unless it says otherwise
SQS_IN_FLIGHT = Quota("SQS in-flight messages per standard queue", 120_000, "messages", _SQS_QUEUES)
# S3 (per partitioned prefix; S3 partitions a prefix further under sustained load).
S3_PUT_RATE = Quota("S3 PUT/COPY/POST/DELETE per second per prefix", 3_500, "requests/s", _S3)
S3_GET_RATE = Quota("S3 GET/HEAD per second per prefix", 5_500, "requests/s", _S3)

ALL: tuple[Quota, ...] = (
    HISTORY_EVENTS, STATE_PAYLOAD, INLINE_MAP_CONCURRENCY, DISTRIBUTED_MAP_CHILDREN,
    LAMBDA_TIMEOUT, LAMBDA_MEMORY, LAMBDA_SYNC_PAYLOAD, LAMBDA_UNZIPPED,
    DYNAMODB_PARTITION_WCU, DYNAMODB_PARTITION_RCU, DYNAMODB_ITEM,
    SQS_MESSAGE, SQS_RETENTION, SQS_IN_FLIGHT, S3_PUT_RATE, S3_GET_RATE,
)  # fmt: skip

_MAP_RUN_STARTED = "MapRunStarted"
_MAP_RUN_ENDED = frozenset({"MapRunSucceeded", "MapRunFailed", "MapRunAborted"})
# Detail fields that carry a state's data (what the 256 KiB quota bounds).
_PAYLOAD_FIELDS = ("input", "output", "parameters")
EXECUTION = "(execution)"


@dataclass(frozen=True, slots=True)
class ExecutionMeasure:
    """An execution history as AWS would count it.

    Attributes:
        history_events: events in the execution's own history. Inline Map iterations count
            here (AWS records them in the parent); Distributed Map iterations do not.
        largest_child_events: events of the largest Distributed Map child execution seen in
            the history; 0 when none is visible (moto 5.2.5 records no child events at all,
            see ``docs/local-aws-facts.md``).
        child_executions: Distributed Map children whose events the history showed.
        map_runs: Distributed Map runs started (``MapRunStarted`` events).
        largest_state_bytes: the largest input, output or task parameters, UTF-8 bytes.
        largest_state: where that payload was: ``"<state> (<event type>.<field>)"``.
        events_by_type: the parent's events per event type.
        events_by_state: the parent's events per state name (``"(execution)"`` for the
            execution's own start and end).
    """

    history_events: int
    largest_child_events: int
    child_executions: int
    map_runs: int
    largest_state_bytes: int
    largest_state: str
    events_by_type: Mapping[str, int] = field(default_factory=dict)
    events_by_state: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What ``parceler run --json`` reports under ``state_machine``."""
        return {
            "history_events": self.history_events,
            "largest_state_bytes": self.largest_state_bytes,
            "largest_state": self.largest_state,
            "largest_child_history_events": self.largest_child_events,
            "map_runs": self.map_runs,
            "quotas_exceeded": [v.quota.name for v in violations(self)],
        }


@dataclass(frozen=True, slots=True)
class Violation:
    """One quota an execution went over."""

    quota: Quota
    measured: int
    where: str
    fix: str

    def describe(self) -> str:
        return (
            f"{self.quota.name}: {self.measured:,} {self.quota.unit} {self.where}, over the "
            f"limit of {self.quota.limit:,} ({self.quota.source}). Fix: {self.fix}"
        )


def measure_history(events: Iterable[Mapping[str, Any]]) -> ExecutionMeasure:
    """Measure one execution's history (``GetExecutionHistory`` events, in any order).

    Each event is attributed to the parent or to a Distributed Map child by following
    ``previousEventId``: an event whose chain reaches a ``MapRunStarted`` before that run's
    end event belongs to the child rooted at the first event after it; everything else,
    inline Map iterations included, is the parent's. One pass in id order, O(n).

    Args:
        events: the history's events (dicts with ``id``, ``previousEventId``, ``type`` and
            one ``...EventDetails``).

    Returns:
        The measure; an empty history measures 0 everywhere.
    """
    ordered = sorted(events, key=lambda e: int(e["id"]))
    by_id = {int(e["id"]): e for e in ordered}
    child_of: dict[int, int | None] = {}  # event id -> child root id, None for the parent
    state_of: dict[int, str] = {}
    by_type: Counter[str] = Counter()
    by_state: Counter[str] = Counter()
    child_sizes: Counter[int] = Counter()
    map_runs = 0
    largest, largest_where = 0, ""
    for event in ordered:
        event_id, kind = int(event["id"]), str(event["type"])
        previous_id = int(event.get("previousEventId") or 0)
        previous = by_id.get(previous_id)
        if previous is None or kind in _MAP_RUN_ENDED:
            child = None
        elif previous["type"] == _MAP_RUN_STARTED:
            child = event_id
        elif previous["type"] in _MAP_RUN_ENDED:
            child = None
        else:
            child = child_of.get(previous_id)
        child_of[event_id] = child
        state = _state_name(event) or state_of.get(previous_id, EXECUTION)
        state_of[event_id] = state
        if kind == _MAP_RUN_STARTED:
            map_runs += 1
        if child is None:
            by_type[kind] += 1
            by_state[EXECUTION if kind.startswith("Execution") else state] += 1
        else:
            child_sizes[child] += 1
        for where, size in _payload_sizes(event):
            if size > largest:
                largest, largest_where = size, f"{state} ({kind}.{where})"
    return ExecutionMeasure(
        history_events=sum(by_type.values()),
        largest_child_events=max(child_sizes.values(), default=0),
        child_executions=len(child_sizes),
        map_runs=map_runs,
        largest_state_bytes=largest,
        largest_state=largest_where,
        events_by_type=dict(by_type),
        events_by_state=dict(by_state),
    )


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _state_name(event: Mapping[str, Any]) -> str | None:
    kind = str(event["type"])
    if kind.endswith("StateEntered") or kind.endswith("StateExited"):
        name = _details(event).get("name")
        return str(name) if name is not None else None
    return None


def _payload_sizes(event: Mapping[str, Any]) -> list[tuple[str, int]]:
    details = _details(event)
    return [
        (name, len(value.encode("utf-8")))
        for name in _PAYLOAD_FIELDS
        if isinstance(value := details.get(name), str)
    ]


def violations(measure: ExecutionMeasure) -> list[Violation]:
    """Every quota ``measure`` goes over (history events, child events, state payload)."""
    found: list[Violation] = []
    if measure.history_events > HISTORY_EVENTS.limit:
        top = sorted(measure.events_by_state.items(), key=lambda kv: -kv[1])[:3]
        found.append(
            Violation(
                HISTORY_EVENTS,
                measure.history_events,
                f"in the parent execution (most: {', '.join(f'{s} {n:,}' for s, n in top)})",
                "keep the parent's history independent of duration and group count: wait on "
                "a task token instead of polling, and run per-item work in a Distributed Map "
                "(its children have their own histories).",
            )
        )
    if measure.largest_child_events > HISTORY_EVENTS.limit:
        found.append(
            Violation(
                HISTORY_EVENTS,
                measure.largest_child_events,
                "in the largest Distributed Map child execution",
                "give each child fewer items (smaller batches in the item file).",
            )
        )
    if measure.largest_state_bytes > STATE_PAYLOAD.limit:
        found.append(
            Violation(
                STATE_PAYLOAD,
                measure.largest_state_bytes,
                f"at {measure.largest_state}",
                "pass S3 URIs and counts between states, never lists that grow with the job; "
                "discard a Map's results (ResultPath null) and write them to S3. A Catch "
                "cannot save this on AWS: States.DataLimitExceeded is not matched by States.ALL.",
            )
        )
    return found


def check(measure: ExecutionMeasure, execution: str = "the execution") -> ExecutionMeasure:
    """Return ``measure`` when it fits every quota it covers; raise otherwise.

    Raises:
        QuotaExceededError: naming each quota exceeded, its limit, the measured value and
            the fix; ``quota_names`` lists them.
    """
    found = violations(measure)
    if not found:
        return measure
    error = QuotaExceededError(
        f"{execution} exceeds {len(found)} AWS quota(s) moto does not enforce: "
        + "; ".join(v.describe() for v in found),
        "on AWS this execution would fail; change the design as each fix says.",
    )
    error.quota_names = tuple(v.quota.name for v in found)
    raise error
