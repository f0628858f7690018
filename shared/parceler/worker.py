"""The worker protocol, one core for the Lambda and the container worker.

For one group message: read the group manifest and the job's spec → claim the group in
the ledger (a new attempt number) → run the processor with outputs in the attempt's folder
(``workarea.AttemptArea``) → write the group result manifest (``AttemptArea.result``,
listing only this attempt's outputs) → commit (a conditional write: exactly one attempt
is ever committed) → the caller deletes the message.

Result manifest details (``details.GroupResultDetails``): ``job_id``, ``attempt``, and the
group's value — inline as ``value`` when small (``values.place``), otherwise written to
``AttemptArea.value`` and named by ``value_uri``. Readers trust only the
``result_uri`` of the group's ledger item (the committed attempt); files of other attempts
are orphans nobody lists.

Failures:

- a :class:`PermanentError` (``ProcessorError``: user code raised ``PermanentError`` or a
  built-in failed; a malformed manifest, an unreadable or changed input) fails the group
  in the ledger at once and the message is deleted — permanent errors do not burn retries;
- anything else (throttling, timeouts, any other exception from user code as
  ``UserCodeError``, a Lambda deadline) records ``last_error`` on the group, hands it back and leaves the message: it
  reappears after a backoff (attempt-based visibility). The attempt that reaches the spec's
  ``limits.max_attempts`` fails the group with that error instead. A worker that dies
  mid-group records nothing: the next claim finds its lease expired, and the claim past
  ``max_attempts`` fails the group (cause: the last recorded error, or the lost worker).

``limits.max_concurrency``: a job with more groups than the limit has that many in-flight
slots in the ledger (:meth:`Ledger.take_slot`); a delivery takes one before it claims the
group, the heartbeat extends it and the end of the attempt frees it. A delivery that finds
none free is ``deferred``: no attempt starts.

Deliveries that are not attempts never spend the queue's ``maxReceiveCount``: a message
whose group is busy (another attempt holds a live lease), that is deferred (no in-flight
slot free), or that a worker cannot start (too little Lambda time left) is replaced by a
fresh copy (:func:`parceler.aws.queue.requeue`),
so the DLQ receives only groups whose attempts kept failing without recording it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from parceler import values
from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.details import GroupDetails, GroupResultDetails
from parceler.errors import ManifestError, ParcelerError, PermanentError, StaleReceiptError
from parceler.ledger import Claim, GroupItem, slot_holder
from parceler.manifest import Manifest, read_manifest, write_manifest
from parceler.messages import GroupMessage, ReceivedMessage
from parceler.processors import GroupContext, reducer_of, run_group
from parceler.settings import WorkerSettings
from parceler.spec import JobSpec
from parceler.spec_store import read_spec
from parceler.workarea import GroupArea, output_folder, parse_group_uri

log = logging.getLogger(__name__)

VALUE_SUMMARY_CHARS = 200
DEFAULT_MIN_START_SECONDS = 20.0  # a Lambda with less time left releases the message instead
DEFAULT_RETRY_BASE_SECONDS = 10.0
MIN_DEFER_SECONDS = 1.0
MAX_DEFER_SECONDS = 300.0

Status = Literal[
    "succeeded",
    "failed",
    "duplicate",
    "lost",
    "busy",
    "deferred",
    "retry",
    "rejected",
    "released",
]
_DELETE = frozenset({"succeeded", "failed", "duplicate", "lost"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one delivered message.

    ``succeeded``: this attempt committed. ``failed``: the group is FAILED (permanent error).
    ``duplicate``: the group was already done (or is unknown to the ledger). ``lost``: this
    attempt finished but another one committed first. — The caller deletes the message.

    ``busy``: another attempt holds the lease. ``deferred``: the job already runs
    ``limits.max_concurrency`` groups (no attempt started). ``retry``: a retryable failure was recorded.
    ``rejected``: the message names no readable group. ``released``: not started (no time
    left). — The caller leaves the message (``retry_after`` seconds, if set), unless it was
    ``requeued``: replaced by a fresh copy, so the caller deletes it.
    """

    status: Status
    job_id: str | None = None
    group_index: int | None = None
    attempt: int | None = None
    result_uri: str | None = None
    error: str | None = None
    cause: str | None = None
    retry_after: float | None = None
    requeued: bool = False

    @property
    def delete(self) -> bool:
        """Whether the message is done with and must be deleted (a requeued one was replaced
        by a fresh copy)."""
        return self.status in _DELETE or self.requeued


def retry_delay(attempt: int, base: float = DEFAULT_RETRY_BASE_SECONDS) -> float:
    """Backoff before the next delivery after ``attempt`` failed: base·2^(attempt-1), ≤ 15 min."""
    return float(min(900.0, base * 2 ** max(0, attempt - 1)))


def process_message(
    body: str,
    settings: WorkerSettings,
    *,
    worker_id: str,
    heartbeat: queue.Heartbeat | None = None,
    lease_seconds: float | None = None,
    deadline: float | None = None,
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS,
    on_claim: Callable[[str, int, int], None] | None = None,
) -> Delivery:
    """Run the worker protocol for one message body (see the module docstring).

    Args:
        body: the SQS message body (a ``GroupMessage``).
        settings: the ledger table (the work area is where the group manifest is).
        worker_id: recorded on the claim (host/process or Lambda request id).
        heartbeat: keeps the message invisible while the group runs, and extends the
            ledger lease at each beat; None for no heartbeat.
        lease_seconds: how long the claim keeps other claimants out (default: the
            heartbeat's visibility, else 900 s).
        deadline: a :func:`time.monotonic` instant the processor must finish by (Lambda).
        retry_base_seconds: the backoff base for ``retry`` deliveries.
        on_claim: told ``(job_id, group, attempt)`` once the group is claimed (the
            container worker uses it to hand the group back if it must stop mid-group).

    Returns:
        The :class:`Delivery`; ``delivery.delete`` says whether to delete the message.

    Raises:
        RetryableError: the ledger could not record the outcome (leave the message).
    """
    if lease_seconds is None:
        lease_seconds = float(heartbeat.visibility_seconds) if heartbeat is not None else 900.0
    try:
        message = GroupMessage.parse(body)
        manifest = read_manifest(message.summary_uri)
        summary = manifest.summary
        details = GroupDetails.of(summary, message.summary_uri)
        group = parse_group_uri(message.summary_uri)
        if group is None or (group.job.job_id, group.index) != (
            details.job_id,
            summary.group_index,
        ):
            raise ManifestError(
                f"{message.summary_uri} is not the work-area manifest of group "
                f"{summary.group_index} of job {details.job_id!r}.",
                "send only the summary URIs the planner wrote.",
            )
        spec = read_spec(group.job, details.spec_sha256)
    except PermanentError as exc:
        log.error("rejected message %r: %s", body[:200], exc)
        return Delivery("rejected", error=type(exc).__name__, cause=str(exc))
    job_id, index = details.job_id, group.index

    ledger = Ledger(settings.ledger_table)
    if summary.group_count is not None:
        ledger.know_group_count(job_id, summary.group_count)
    limit = spec.limits.max_concurrency
    holder = slot_holder(index, worker_id, uuid.uuid4().hex[:8])
    slot: int | None = None
    if limit is not None and summary.group_count is not None and summary.group_count > limit:
        # More groups than the job may run at once: hold one of its in-flight slots (none
        # needed when every group fits under the limit).
        slot = ledger.take_slot(
            job_id, limit=limit, holder=holder, group_index=index, lease_seconds=lease_seconds
        )
        if slot is None:
            return Delivery(
                "deferred", job_id, index, retry_after=defer_delay(summary.total_size, spec)
            )

    def extend_slot() -> None:
        if slot is not None:
            ledger.extend_slot(job_id, slot, holder, lease_seconds=lease_seconds)

    try:
        return _claim_and_run(
            ledger, manifest, details, group, spec, worker_id,
            heartbeat=heartbeat, lease_seconds=lease_seconds, deadline=deadline,
            retry_base_seconds=retry_base_seconds, on_claim=on_claim, on_beat=extend_slot,
        )  # fmt: skip
    finally:
        if slot is not None:
            try:
                ledger.release_slot(job_id, slot, holder)
            except ParcelerError as exc:  # the outcome is recorded; the slot lapses with its lease
                log.warning("group %s/%d: could not free slot %d: %s", job_id, index, slot, exc)


def defer_delay(size: int, spec: JobSpec) -> float:
    """How long a delivery deferred by ``limits.max_concurrency`` waits before it is tried
    again: the group's predicted duration (``routing``), 1 s to 5 min, plus up to 50% jitter
    so deferred copies do not all return at once."""
    predicted = size / spec.routing.throughput_bytes_per_second
    bounded = min(MAX_DEFER_SECONDS, max(MIN_DEFER_SECONDS, predicted))
    return bounded * random.uniform(1.0, 1.5)


def _claim_and_run(
    ledger: Ledger,
    manifest: Manifest,
    details: GroupDetails,
    group: GroupArea,
    spec: JobSpec,
    worker_id: str,
    *,
    heartbeat: queue.Heartbeat | None,
    lease_seconds: float,
    deadline: float | None,
    retry_base_seconds: float,
    on_claim: Callable[[str, int, int], None] | None,
    on_beat: Callable[[], None],
) -> Delivery:
    """Claim the group, run an attempt, commit (the protocol past reading the message)."""
    summary = manifest.summary
    job_id, index = details.job_id, group.index
    claim = ledger.claim_group(job_id, index, worker_id, lease_seconds=lease_seconds)
    if not isinstance(claim, Claim):
        if claim.reason == "busy":
            left = (claim.group.lease_until or 0) - time.time() if claim.group else 0
            return Delivery("busy", job_id, index, retry_after=max(1.0, left))
        return Delivery("duplicate", job_id, index, error=claim.reason)
    attempt = claim.attempt
    if on_claim is not None:
        on_claim(job_id, index, attempt)
    # A redrive gives the group a fresh budget: attempts count from its ``attempt_base``.
    max_attempts = spec.limits.max_attempts + claim.group.attempt_base
    if attempt > max_attempts:
        return _give_up(ledger, job_id, index, attempt, claim.group, max_attempts)

    def beat() -> None:
        ledger.extend_lease(job_id, index, attempt, lease_seconds=lease_seconds)
        on_beat()

    area = group.attempt(attempt, details.run_id)
    outputs = (
        output_folder(spec.output, job_id, details.run_id, index, attempt)
        if spec.output
        else area.folder
    )
    if heartbeat is not None:
        heartbeat.start(on_beat=beat)
    try:
        ctx = GroupContext(job_id, index, attempt, outputs, deadline)
        run = run_group(
            spec.processor, reducer_of(spec), manifest.table, ctx,
            kind=spec.kind, partitions=spec.partitions,
        )  # fmt: skip
        result_uri = area.result
        # Encoded once: a big value (30k words) is slow to encode.
        value_json = None if run.value is None else values.encode(run.value)
        result = GroupResultDetails(
            job_id=job_id, attempt=attempt, **values.place(run.value, area.value, value_json)
        )
        write_manifest(
            run.outputs,
            result_uri,
            parent_fingerprint=summary.fingerprint,
            group_index=index,
            group_count=summary.group_count,
            details=result.to_details(),
        )
        committed = ledger.commit_group(
            job_id, index, attempt, result_uri, _summary_text(value_json)
        )
    except PermanentError as exc:
        ledger.fail_group(job_id, index, type(exc).__name__, str(exc))
        return Delivery("failed", job_id, index, attempt, error=type(exc).__name__, cause=str(exc))
    except Exception as exc:  # noqa: BLE001 -- retryable and unknown faults: retried up to max_attempts
        return _retry(ledger, job_id, index, attempt, exc, retry_base_seconds, max_attempts)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    return Delivery(
        "succeeded" if committed else "lost", job_id, index, attempt, result_uri=result_uri
    )


def _retry(
    ledger: Ledger,
    job_id: str,
    index: int,
    attempt: int,
    exc: Exception,
    base: float,
    max_attempts: int,
) -> Delivery:
    cause = str(exc) if isinstance(exc, ParcelerError) else f"{type(exc).__name__}: {exc}"
    if attempt >= max_attempts:
        error = type(exc).__name__
        full = f"{cause} (attempt {attempt} of limits.max_attempts {max_attempts})"
        log.error("group %s/%d: %s: %s", job_id, index, error, full)
        ledger.fail_group(job_id, index, error, full)
        return Delivery("failed", job_id, index, attempt, error=error, cause=full)
    log.warning("group %s/%d attempt %d failed, will retry: %s", job_id, index, attempt, cause)
    ledger.record_error(job_id, index, attempt, type(exc).__name__, cause)
    return Delivery(
        "retry", job_id, index, attempt, error=type(exc).__name__, cause=cause,
        retry_after=retry_delay(attempt, base),
    )  # fmt: skip


def _give_up(
    ledger: Ledger,
    job_id: str,
    index: int,
    attempt: int,
    group: GroupItem,
    max_attempts: int,
) -> Delivery:
    """A claim past ``max_attempts``: the earlier attempts ended without an outcome (their
    workers died, or recorded only a retryable error). Fail the group with what is known."""
    error = group.last_error or "WorkerLost"
    cause = (
        f"{group.last_cause or 'the worker stopped without recording an outcome'}"
        f" (gave up at attempt {attempt}: limits.max_attempts is {max_attempts})"
    )
    log.error("group %s/%d: %s: %s", job_id, index, error, cause)
    ledger.fail_group(job_id, index, error, cause)
    return Delivery("failed", job_id, index, attempt - 1, error=error, cause=cause)


def _summary_text(body: bytes | None) -> str | None:
    if body is None:
        return None
    text = body.decode()
    return text if len(text) <= VALUE_SUMMARY_CHARS else text[: VALUE_SUMMARY_CHARS - 1] + "…"


def handle_delivery(
    queue_url: str,
    message: ReceivedMessage,
    settings: WorkerSettings,
    *,
    worker_id: str,
    visibility_seconds: int,
    time_left: Callable[[], float] | None = None,
    min_start_seconds: float = DEFAULT_MIN_START_SECONDS,
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS,
    delete_when_done: bool = True,
    heartbeat_interval: float | None = None,
    on_claim: Callable[[str, int, int], None] | None = None,
) -> Delivery:
    """Handle one received message end to end: start or requeue, process, delete or back off.

    Args:
        queue_url: the queue the message came from.
        message: the received message.
        visibility_seconds: the queue's visibility timeout (the heartbeat's extension).
        time_left: seconds this worker has left (Lambda); None for no limit. With less than
            ``min_start_seconds`` left the message is requeued (a fresh copy), not started.
        delete_when_done: delete finished messages here (the container worker loop); a Lambda
            leaves deletion to its event source mapping (partial batch response).
        heartbeat_interval: seconds between heartbeats (default a third of the visibility).

    Returns:
        The delivery. A ``requeued`` one is done with (a copy replaced it): the caller
        deletes it (a Lambda reports it as processed). Otherwise, when the message is not
        done, its visibility was set to the delivery's ``retry_after`` (a backoff), and the
        caller reports it as a failure.
    """
    receipt = message.receipt_handle if delete_when_done else None
    if time_left is not None and time_left() < min_start_seconds:
        queue.requeue(queue_url, message.body, receipt)
        return Delivery("released", retry_after=0.0, requeued=True)
    deadline = None if time_left is None else time.monotonic() + max(0.0, time_left() - 5.0)
    heartbeat = queue.Heartbeat(
        queue_url,
        message.receipt_handle,
        visibility_seconds=visibility_seconds,
        interval=heartbeat_interval,
    )
    delivery = process_message(
        message.body,
        settings,
        worker_id=worker_id,
        heartbeat=heartbeat,
        lease_seconds=float(visibility_seconds),
        deadline=deadline,
        retry_base_seconds=retry_base_seconds,
        on_claim=on_claim,
    )
    if delivery.status in ("busy", "deferred"):
        # Not an attempt: a fresh copy, due when the lease runs out, keeps the receive count
        # of a healthy group from reaching the DLQ (the copy finds the group done, or takes
        # it over from a dead holder).
        queue.requeue(queue_url, message.body, receipt, delay=delivery.retry_after or 0.0)
        return dataclasses.replace(delivery, requeued=True)
    if delivery.delete:
        if delete_when_done:
            queue.delete(queue_url, message.receipt_handle)
    elif delivery.retry_after is not None:
        try:
            queue.change_visibility(queue_url, message.receipt_handle, delivery.retry_after)
        except StaleReceiptError:
            log.warning(
                "could not set the backoff of message %s: stale receipt", message.message_id
            )
    return delivery


def handle_lambda_record(
    queue_arn: str,
    message: ReceivedMessage,
    settings: WorkerSettings,
    *,
    worker_id: str,
    time_left: Callable[[], float],
) -> Delivery:
    """One record of a Lambda's SQS batch: :func:`handle_delivery` without deleting.

    The queue's URL and visibility timeout are looked up from its ARN (cached per
    process); the event source mapping deletes the records the handler reports done.
    """
    url = queue.queue_url_from_arn(queue_arn)
    return handle_delivery(
        url,
        message,
        settings,
        worker_id=worker_id,
        visibility_seconds=queue.visibility_timeout(url),
        time_left=time_left,
        delete_when_done=False,
    )
