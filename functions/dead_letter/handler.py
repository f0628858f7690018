"""DLQ handler: each dead-lettered group message fails its group in the ledger, so the job ends."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.dead_letter import dead_letter
from parceler.settings import DeadLetterSettings

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@functools.cache
def settings() -> DeadLetterSettings:
    """Parsed once per execution environment, on first use."""
    return DeadLetterSettings.from_env()


def record_handler(record: SQSRecord) -> str:
    return dead_letter(record.body, settings()).status


def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
