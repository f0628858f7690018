"""A work queue and its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

#: SQS's maximum; a dead letter waits as long as possible for someone to look at it.
DLQ_RETENTION_MAX_DAYS = 14


class WorkQueue(Construct):
    """An encrypted, TLS-only SQS queue whose poison messages move to a DLQ.

    A message moves to the DLQ after ``max_receive_count`` receives without a delete.
    For standard queues a message's retention counts from its *original* enqueue time,
    also in the DLQ, so the DLQ keeps messages longer (14 days) than the work queue
    (4 days, the SQS default). The DLQ has its own consumer (the dead-letter function),
    so its visibility timeout follows that function's timeout.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
        dead_letter_visibility_timeout: Duration,
        max_receive_count: int,
        dlq_retention_days: int = DLQ_RETENTION_MAX_DAYS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(dlq_retention_days),
            visibility_timeout=dead_letter_visibility_timeout,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
