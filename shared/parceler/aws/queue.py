"""The SQS calls: batched sends with retries, receive, delete, visibility, heartbeat, queue URLs.

Every call goes through :func:`parceler.aws.client`; failures through
:func:`parceler.aws.errors.raise_mapped` (throttling and server errors →
:class:`RetryableError`, a stale receipt handle → :class:`StaleReceiptError`, anything else
a permanent :class:`QueueError`). The payload, :class:`~parceler.messages.GroupMessage`, is
pure and lives in :mod:`parceler.messages`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws
from parceler.aws.errors import raise_mapped
from parceler.errors import EnqueueError, QueueError, RetryableError, StaleReceiptError
from parceler.messages import ReceivedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

log = logging.getLogger(__name__)

SEND_BATCH = 10  # the SendMessageBatch maximum
MAX_VISIBILITY_SECONDS = 43_200  # SQS's 12-hour cap


def send_batch(
    queue_url: str,
    bodies: Sequence[str],
    *,
    attempts: int = 5,
    base_delay: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send up to 10 bodies in one ``SendMessageBatch``; resend failed entries with backoff.

    Args:
        queue_url: the target queue.
        bodies: at most :data:`SEND_BATCH` message bodies.
        attempts: calls before giving up (the first try included).
        base_delay: the first backoff; doubled after each partial failure.
        sleep: injectable for tests.

    Raises:
        EnqueueError: entries still failed after ``attempts`` calls (or by the sender's fault).
        QueueError: the queue refused the whole request (missing queue, access denied).
    """
    if len(bodies) > SEND_BATCH:
        raise ValueError(f"send_batch takes at most {SEND_BATCH} bodies, got {len(bodies)}")
    pending: dict[str, str] = {str(i): body for i, body in enumerate(bodies)}
    sqs = aws.client("sqs")
    last_failures: list[str] = []
    for attempt in range(attempts):
        if not pending:
            return
        if attempt:
            sleep(base_delay * 2 ** (attempt - 1))
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": key, "MessageBody": body} for key, body in pending.items()
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            try:
                raise_mapped(exc, "sqs", "SendMessageBatch")
            except RetryableError:
                last_failures = [type(exc).__name__]
                continue
        for ok in response.get("Successful", []):
            pending.pop(ok["Id"], None)
        failed = response.get("Failed", [])
        last_failures = [f"{f.get('Code', '?')}" for f in failed]
        if any(f.get("SenderFault") for f in failed):
            break  # the sender's fault (too big, bad characters): retrying cannot help
    if pending:
        raise EnqueueError(
            f"{len(pending)} of {len(bodies)} message(s) to {queue_url} not sent after "
            f"{attempts} attempt(s) (last errors: {sorted(set(last_failures))}).",
            "run the planner again: it resends only what was not recorded as sent.",
        )


WAKE_ON_HEADER = "X-Parceler-Wake-On"
"""The local emulator's one extension of ``ReceiveMessage`` (:mod:`parceler.local.emulator`):
the space-separated queue URLs a send to which ends this long poll early (with no
messages), so one worker serving several queues learns of work on the others at once."""
_wake_on = threading.local()


def _add_wake_on_header(request: Any, **_: Any) -> None:
    urls = getattr(_wake_on, "urls", ())
    if urls:
        request.headers[WAKE_ON_HEADER] = " ".join(urls)


def receive(
    queue_url: str,
    *,
    max_messages: int = 1,
    wait_seconds: int = 20,
    visibility_timeout: int | None = None,
    wake_on: Sequence[str] = (),
) -> list[ReceivedMessage]:
    """Long-poll ``queue_url`` for up to ``max_messages`` messages (with their receive counts).

    ``wake_on``: other queues whose sends end the wait early, with no messages (only the
    local emulator honours it: a worker serves several queues only there; SQS ignores the
    header).
    """
    kwargs: dict[str, object] = {}
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    client = aws.client("sqs")
    if wake_on:
        client.meta.events.register(
            "before-sign.sqs.ReceiveMessage", _add_wake_on_header, unique_id=WAKE_ON_HEADER
        )
    _wake_on.urls = tuple(wake_on)
    try:
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=max(0, min(20, wait_seconds)),
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            **kwargs,  # type: ignore[arg-type]
        )
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "ReceiveMessage")
    finally:
        _wake_on.urls = ()
    return [
        ReceivedMessage(
            message_id=m["MessageId"],
            body=m["Body"],
            receipt_handle=m["ReceiptHandle"],
            receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        for m in response.get("Messages", [])
    ]


def delete(queue_url: str, receipt_handle: str) -> None:
    """Delete a message (done: committed, failed permanently, or a duplicate)."""
    try:
        aws.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "DeleteMessage")


def change_visibility(queue_url: str, receipt_handle: str, seconds: float) -> None:
    """Make a message invisible for ``seconds`` from now (0 releases it at once)."""
    value = int(max(0, min(MAX_VISIBILITY_SECONDS, round(seconds))))
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=value
        )
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "ChangeMessageVisibility")


MAX_DELAY_SECONDS = 900
"""SQS's largest ``DelaySeconds``."""


def requeue(queue_url: str, body: str, receipt_handle: str | None, delay: float = 0.0) -> None:
    """Put a fresh copy of a message back (visible after ``delay`` seconds, at most 15 min)
    and delete the received one, so that a delivery the worker did not use (the group was
    busy, or there was no time to start it) does not count toward the queue's
    ``maxReceiveCount``. A crash between the two leaves both: a duplicate, which the
    worker protocol drops. ``receipt_handle=None`` sends the copy only (the caller's event
    source mapping deletes the received one)."""
    seconds = int(max(0, min(MAX_DELAY_SECONDS, round(delay))))
    try:
        aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=seconds)
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "SendMessage")
    if receipt_handle is not None:
        delete(queue_url, receipt_handle)


def release(queue_url: str, receipt_handle: str) -> None:
    """Hand a message back to the queue at once (a worker that cannot start or finish it)."""
    change_visibility(queue_url, receipt_handle, 0)


@functools.cache
def visibility_timeout(queue_url: str) -> int:
    """The queue's default visibility timeout in seconds (cached per process)."""
    try:
        attrs = aws.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
        )
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "GetQueueAttributes")
    return int(attrs.get("Attributes", {}).get("VisibilityTimeout", "30"))


@functools.cache
def queue_url_from_arn(arn: str) -> str:
    """The queue URL of a queue ARN (``arn:aws:sqs:region:account:name``), cached per process."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise QueueError(f"not an SQS queue ARN: {arn!r}.")
    try:
        response = aws.client("sqs").get_queue_url(
            QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
        )
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "GetQueueUrl")
    return response["QueueUrl"]


def approximate_depth(queue_url: str) -> tuple[int, int]:
    """``(visible, in_flight)`` message counts of a queue (approximate, as SQS reports them)."""
    try:
        attrs = aws.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "sqs", "GetQueueAttributes")
    return int(attrs.get("ApproximateNumberOfMessages", "0")), int(
        attrs.get("ApproximateNumberOfMessagesNotVisible", "0")
    )


class Heartbeat:
    """Keep one in-flight message invisible while its group runs.

    A daemon thread calls ``ChangeMessageVisibility(visibility_seconds)`` every
    ``interval`` seconds (default a third of ``visibility_seconds``, so two beats can be
    lost before the message reappears), then ``on_beat()`` — the worker extends its
    ledger lease there. A failing beat is logged and retried at the next interval. A stale
    receipt handle (the message's visibility ran out before a beat — a stalled process, a
    loaded machine — or it was deleted) ends the visibility changes but not the beats:
    ``on_beat()`` keeps the group's ledger lease, which is what keeps a copy of the message
    from starting a second attempt (the copy finds the group busy and is requeued).

    Use as a context manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        queue_url: str,
        receipt_handle: str,
        *,
        visibility_seconds: int,
        interval: float | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.receipt_handle = receipt_handle
        self.visibility_seconds = max(1, int(visibility_seconds))
        self.interval = interval if interval is not None else max(0.2, self.visibility_seconds / 3)
        self.beats = 0
        self.failures = 0
        self.stale = False  # the receipt handle stopped working: no more visibility changes
        self._on_beat: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_beat: Callable[[], None] | None = None) -> None:
        """Start beating (idempotent)."""
        if self._thread is not None:
            return
        self._on_beat = on_beat
        self._thread = threading.Thread(target=self._run, name="parceler-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and wait for the thread (a beat in progress completes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.stale:
                    try:
                        change_visibility(
                            self.queue_url, self.receipt_handle, self.visibility_seconds
                        )
                    except StaleReceiptError:
                        self.stale = True
                        log.warning(
                            "heartbeat: receipt handle is stale (the message reappeared or was"
                            " deleted); beating for the ledger lease only"
                        )
                if self._on_beat is not None:
                    self._on_beat()
                self.beats += 1
            except Exception as exc:  # noqa: BLE001 -- a lost beat must not kill the group
                self.failures += 1
                log.warning("heartbeat failed (%s): %s", type(exc).__name__, exc)
