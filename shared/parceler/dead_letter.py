"""The dead-letter core: fail the group of a message that exhausted its receives, once."""

from __future__ import annotations

import logging
import time

from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.errors import MessageError
from parceler.ledger import RUNNING
from parceler.messages import GroupMessage
from parceler.settings import DeadLetterSettings
from parceler.workarea import parse_group_uri
from parceler.worker import Delivery

log = logging.getLogger(__name__)


def dead_letter(body: str, settings: DeadLetterSettings) -> Delivery:
    """Fail the group of a dead-lettered message with its last recorded error; count it done.

    Never while an attempt holds a live lease: then the message is sent back to the group's
    work queue (``requeued``), due when the lease runs out, and the holder's commit (or,
    if the holder dies, the copy's next claim) decides the group.

    The group is found from the work-area layout of the message's summary URI
    (:func:`parceler.workarea.parse_group_uri`), so an unreadable manifest does not hide
    it. The error is the group's ``last_error``/``last_cause`` from the ledger, else
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
        return Delivery("rejected", error=type(exc).__name__, cause=str(exc))
    group_area = parse_group_uri(message.summary_uri)
    if group_area is None:
        log.error("dead letter names no group: %s, dropped", message.summary_uri)
        return Delivery("rejected", error="UnknownGroup", cause=message.summary_uri)
    job_id, index = group_area.job.job_id, group_area.index
    ledger = Ledger(settings.ledger_table)
    group = ledger.get_group(job_id, index)
    if group is None or group.terminal:
        return Delivery("duplicate", job_id, index)
    lease_left = (group.lease_until or 0.0) - time.time()
    if group.status == RUNNING and lease_left > 0:
        # A duplicate can exhaust its receives while an attempt still runs: never fail that
        # group, and never drop its message either (the holder may still die).
        url = (
            settings.container_queue_url
            if group.queue == "container"
            else settings.lambda_queue_url
        )
        queue.requeue(url, body, None, delay=lease_left)
        log.warning("dead letter of group %s/%d: its lease is live; sent back", job_id, index)
        return Delivery("busy", job_id, index, group.attempt, retry_after=lease_left, requeued=True)
    error = group.last_error or "MaxReceiveCountExceeded"
    cause = group.last_cause or (
        f"the message of group {index} exceeded the queue's maxReceiveCount "
        f"after {group.attempt} attempt(s) without recording an error (a crashed worker?)."
    )
    if not ledger.fail_group(job_id, index, error, cause):
        return Delivery("duplicate", job_id, index)
    return Delivery("failed", job_id, index, group.attempt, error=error, cause=cause)
