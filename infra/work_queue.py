"""A work queue and its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

#: SQS's maximum retention (1,209,600 s). A long job's last groups wait in the queue for
#: as long as the job runs; a message that expires is lost without a trace (the job's
#: ``remaining`` never reaches 0), so both queues keep messages as long as SQS allows.
RETENTION_MAX = Duration.days(14)


class WorkQueue(Construct):
    """An encrypted, TLS-only SQS queue whose poison messages move to a DLQ.

    A message moves to the DLQ after ``max_receive_count`` receives without a delete.
    For standard queues a message's retention counts from its *original* enqueue time,
    also in the DLQ, so the DLQ's retention must not be shorter than the queue's: both
    keep messages 14 days, the SQS maximum. The DLQ has its own consumer (the dead-letter
    function), so its visibility timeout follows that function's timeout.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
        dead_letter_visibility_timeout: Duration,
        max_receive_count: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION_MAX,
            visibility_timeout=dead_letter_visibility_timeout,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            retention_period=RETENTION_MAX,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
