"""Lambda worker: SQS batch → the worker protocol per record → partial batch response.

A record whose group is done (committed, failed, duplicate) succeeds, and the event source
mapping deletes it. A record left for later (retryable failure, busy, not started for lack
of time) is reported in ``batchItemFailures``; its visibility was already set (a backoff,
or 0 for a released record), so it comes back without waiting the full timeout.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.errors import RecordNotDoneError
from parceler.messages import ReceivedMessage
from parceler.settings import WorkerSettings
from parceler.worker import handle_lambda_record

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
WORKER_ID = f"lambda:{uuid.uuid4().hex[:12]}"


@functools.cache
def settings() -> WorkerSettings:
    """Parsed once per execution environment, on first use (so tests can import this module)."""
    return WorkerSettings.from_env()


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    outcome = handle_lambda_record(
        record.event_source_arn,
        ReceivedMessage(
            message_id=record.message_id,
            body=record.body,
            receipt_handle=record.receipt_handle,
            receive_count=int(record.attributes.approximate_receive_count or 1),
        ),
        settings(),
        worker_id=WORKER_ID,
        time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )
    if not outcome.delete:
        raise RecordNotDoneError(f"{outcome.status}: {outcome.error or ''} {outcome.cause or ''}")
    return outcome.status


def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
