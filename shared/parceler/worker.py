"""The worker protocol, one core for the Lambda and the container worker.

For one group message: read the group manifest → claim the group in the ledger (a new
attempt number) → run the processor with outputs under
``…/groups/{g:06d}/attempt-{a}/`` → write the group result manifest
(``attempt-{a}/result.json``, listing only this attempt's outputs) → commit (a conditional
write: exactly one attempt is ever committed) → the caller deletes the message.

Result manifest details: ``job_id``, ``attempt``, and the group's value — inline as
``value`` when its JSON is at most :data:`INLINE_VALUE_BYTES`, otherwise written to
``attempt-{a}/value.json`` and named by ``value_uri``. Readers trust only the
``result_uri`` of the group's ledger item (the committed attempt); files of other attempts
are orphans nobody lists.

Failures:

- a :class:`PermanentError` (``ProcessorError`` from user code, a malformed manifest, an
  unreadable input) fails the group in the ledger at once and the message is deleted —
  permanent errors do not burn retries;
- anything else (throttling, timeouts, unknown exceptions, a Lambda deadline) records
  ``last_error`` on the group, hands it back and leaves the message: it reappears after a
  backoff (attempt-based visibility) and, after ``maxReceiveCount``, the queue's redrive
  moves it to the DLQ, whose handler fails the group with that last error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from parceler import storage
from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.errors import MessageError, ParcelerError, PermanentError, StaleReceiptError
from parceler.ledger import Claim
from parceler.manifest import read_manifest, read_summary, write_manifest
from parceler.messages import GroupMessage, ReceivedMessage
from parceler.processors import GroupContext, run_group
from parceler.settings import LedgerSettings, WorkerSettings
from parceler.spec import ProcessorSpec, ReducerSpec

log = logging.getLogger(__name__)

INLINE_VALUE_BYTES = 32_768
VALUE_SUMMARY_CHARS = 200
DEFAULT_MIN_START_SECONDS = 20.0  # a Lambda with less time left releases the message instead
DEFAULT_RETRY_BASE_SECONDS = 10.0

Status = Literal[
    "succeeded", "failed", "duplicate", "lost", "busy", "retry", "rejected", "released"
]
_DELETE = frozenset({"succeeded", "failed", "duplicate", "lost"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message.

    ``succeeded``: this attempt committed. ``failed``: the group is FAILED (permanent error).
    ``duplicate``: the group was already done (or is unknown to the ledger). ``lost``: this
    attempt finished but another one committed first. — The caller deletes the message.

    ``busy``: another attempt holds the lease. ``retry``: a retryable failure was recorded.
    ``rejected``: the message names no readable group. ``released``: not started (no time
    left). — The caller leaves the message (``retry_after`` seconds, if set).
    """

    status: Status
    job_id: str | None = None
    group_index: int | None = None
    attempt: int | None = None
    result_uri: str | None = None
    error: str | None = None
    cause: str | None = None
    retry_after: float | None = None

    @property
    def delete(self) -> bool:
        """Whether the message is done with and must be deleted."""
        return self.status in _DELETE


def attempt_prefix(summary_uri: str, attempt: int) -> str:
    """The attempt folder named after the group manifest:
    ``…/groups/000/000007.json`` → ``…/groups/000/000007/attempt-2/``."""
    return summary_uri.removesuffix(".json") + f"/attempt-{attempt}/"


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
) -> Outcome:
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
        retry_base_seconds: the backoff base for ``retry`` outcomes.

    Returns:
        The :class:`Outcome`; ``outcome.delete`` says whether to delete the message.

    Raises:
        RetryableError: the ledger could not record the outcome (leave the message).
    """
    if lease_seconds is None:
        lease_seconds = float(heartbeat.visibility_seconds) if heartbeat is not None else 900.0
    try:
        message = GroupMessage.parse(body)
        manifest = read_manifest(message.summary_uri)
        summary = manifest.summary
        job_id = str(summary.details["job_id"])
        index = summary.group_index
        if index is None:
            raise PermanentError(f"{message.summary_uri} is not a group manifest (no group_index).")
        processor = ProcessorSpec.model_validate(summary.details["processor"])
        raw_reducer = summary.details.get("reducer")
        reducer = None if raw_reducer is None else ReducerSpec.model_validate(raw_reducer)
    except PermanentError as exc:
        log.error("rejected message %r: %s", body[:200], exc)
        return Outcome("rejected", error=type(exc).__name__, cause=str(exc))
    except (KeyError, ValueError) as exc:
        log.error("rejected message %r: %s", body[:200], exc)
        return Outcome("rejected", error=type(exc).__name__, cause=f"group manifest details: {exc}")

    ledger = Ledger(settings.ledger_table)
    claim = ledger.claim_group(job_id, index, worker_id, lease_seconds=lease_seconds)
    if not isinstance(claim, Claim):
        if claim.reason == "busy":
            left = (claim.group.lease_until or 0) - time.time() if claim.group else 0
            return Outcome("busy", job_id, index, retry_after=max(1.0, left))
        return Outcome("duplicate", job_id, index, error=claim.reason)
    attempt = claim.attempt

    def beat() -> None:
        ledger.extend_lease(job_id, index, attempt, lease_seconds=lease_seconds)

    folder = attempt_prefix(message.summary_uri, attempt)
    output = summary.details.get("output")
    output_prefix = (
        storage.join(str(output), job_id, "groups", f"{index:06d}", f"attempt-{attempt}") + "/"
        if output
        else folder
    )
    if heartbeat is not None:
        heartbeat.start(on_beat=beat)
    try:
        ctx = GroupContext(job_id, index, attempt, output_prefix, deadline)
        result = run_group(processor, reducer, manifest.table, ctx)
        result_uri = folder + "result.json"
        value_json = _value_json(result.value)  # once: a big value (30k words) is slow to encode
        details = _value_details(result.value, value_json, folder)
        write_manifest(
            result.outputs,
            result_uri,
            parent_fingerprint=summary.fingerprint,
            group_index=index,
            group_count=summary.group_count,
            details={"job_id": job_id, "attempt": attempt, **details},
        )
        committed = ledger.commit_group(
            job_id, index, attempt, result_uri, _summary_text(value_json)
        )
    except PermanentError as exc:
        ledger.fail_group(job_id, index, type(exc).__name__, str(exc))
        return Outcome("failed", job_id, index, attempt, error=type(exc).__name__, cause=str(exc))
    except Exception as exc:  # noqa: BLE001 -- retryable and unknown faults: retried, then dead-lettered
        return _retry(ledger, job_id, index, attempt, exc, retry_base_seconds)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    return Outcome(
        "succeeded" if committed else "lost", job_id, index, attempt, result_uri=result_uri
    )


def _retry(
    ledger: Ledger, job_id: str, index: int, attempt: int, exc: Exception, base: float
) -> Outcome:
    cause = str(exc) if isinstance(exc, ParcelerError) else f"{type(exc).__name__}: {exc}"
    log.warning("group %s/%d attempt %d failed, will retry: %s", job_id, index, attempt, cause)
    ledger.record_error(job_id, index, attempt, type(exc).__name__, cause)
    return Outcome(
        "retry", job_id, index, attempt, error=type(exc).__name__, cause=cause,
        retry_after=retry_delay(attempt, base),
    )  # fmt: skip


def _value_json(value: Any) -> str | None:
    """The group value as compact JSON with sorted keys, or None for no value."""
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _value_details(value: Any, text: str | None, folder: str) -> dict[str, Any]:
    body = (text or "null").encode()
    if len(body) <= INLINE_VALUE_BYTES:
        return {"value": value}
    uri = folder + "value.json"
    storage.write_bytes(uri, body, content_type="application/json")
    return {"value_uri": uri}


def _summary_text(text: str | None) -> str | None:
    if text is None:
        return None
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
) -> Outcome:
    """Handle one received message end to end: start or release, process, delete or back off.

    Args:
        queue_url: the queue the message came from.
        message: the received message.
        visibility_seconds: the queue's visibility timeout (the heartbeat's extension).
        time_left: seconds this worker has left (Lambda); None for no limit. With less than
            ``min_start_seconds`` left the message is released (visibility 0), not started.
        delete_when_done: delete finished messages here (the container runner); a Lambda
            leaves deletion to its event source mapping (partial batch response).
        heartbeat_interval: seconds between heartbeats (default a third of the visibility).

    Returns:
        The outcome; when the message is not done, its visibility was set to the outcome's
        ``retry_after`` (a backoff), and the caller reports it as a failure.
    """
    if time_left is not None and time_left() < min_start_seconds:
        queue.release(queue_url, message.receipt_handle)
        return Outcome("released", retry_after=0.0)
    deadline = None if time_left is None else time.monotonic() + max(0.0, time_left() - 5.0)
    heartbeat = queue.Heartbeat(
        queue_url,
        message.receipt_handle,
        visibility_seconds=visibility_seconds,
        interval=heartbeat_interval,
    )
    outcome = process_message(
        message.body,
        settings,
        worker_id=worker_id,
        heartbeat=heartbeat,
        lease_seconds=float(visibility_seconds),
        deadline=deadline,
        retry_base_seconds=retry_base_seconds,
    )
    if outcome.delete:
        if delete_when_done:
            queue.delete(queue_url, message.receipt_handle)
    elif outcome.retry_after is not None:
        try:
            queue.change_visibility(queue_url, message.receipt_handle, outcome.retry_after)
        except StaleReceiptError:
            log.warning(
                "could not set the backoff of message %s: stale receipt", message.message_id
            )
    return outcome


def handle_lambda_record(
    queue_arn: str,
    message: ReceivedMessage,
    settings: WorkerSettings,
    *,
    worker_id: str,
    time_left: Callable[[], float],
) -> Outcome:
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


def _group_from_path(summary_uri: str) -> tuple[str, int] | None:
    """``(job_id, g)`` from a work-area URI ``…/jobs/{job}/groups/{folder}/{g:06d}.json``."""
    parts = summary_uri.split("/")
    if len(parts) < 5 or parts[-5] != "jobs" or parts[-3] != "groups":
        return None
    stem = parts[-1].removesuffix(".json")
    return (parts[-4], int(stem)) if stem.isdigit() and stem != parts[-1] else None


def dead_letter(body: str, settings: LedgerSettings) -> Outcome:
    """Fail the group of a dead-lettered message with its last recorded error; count it done.

    The group is found through its manifest summary (``details.job_id``, ``group_index``),
    or, if the summary cannot be read, through the work-area layout of its URI. The error
    is the group's ``last_error``/``last_cause`` from the ledger, else
    ``MaxReceiveCountExceeded``. A group already SUCCEEDED or FAILED is left alone (a
    worker finished it after all).

    Returns:
        ``failed`` (marked now), ``duplicate`` (already terminal or unknown), or
        ``rejected`` (not a parceler group message: logged, nothing to mark).
    """
    try:
        message = GroupMessage.parse(body)
    except MessageError as exc:
        log.error("dead letter is not a group message, dropped: %r (%s)", body[:500], exc)
        return Outcome("rejected", error=type(exc).__name__, cause=str(exc))
    try:
        summary = read_summary(message.summary_uri)
        found: tuple[str, int] | None = (
            (str(summary.details["job_id"]), summary.group_index)
            if summary.group_index is not None and "job_id" in summary.details
            else None
        )
    except PermanentError:
        found = None
    found = found or _group_from_path(message.summary_uri)
    if found is None:
        log.error("dead letter names no group: %s, dropped", message.summary_uri)
        return Outcome("rejected", error="UnknownGroup", cause=message.summary_uri)
    job_id, index = found
    ledger = Ledger(settings.ledger_table)
    group = ledger.get_group(job_id, index)
    if group is None or group.terminal:
        return Outcome("duplicate", job_id, index)
    error = group.last_error or "MaxReceiveCountExceeded"
    cause = group.last_cause or (
        f"the message of group {index} exceeded the queue's maxReceiveCount "
        f"after {group.attempt} attempt(s) without recording an error (a crashed worker?)."
    )
    if not ledger.fail_group(job_id, index, error, cause):
        return Outcome("duplicate", job_id, index)
    return Outcome("failed", job_id, index, group.attempt, error=error, cause=cause)
