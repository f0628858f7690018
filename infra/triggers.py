"""Start a job when a job file lands: EventBridge "Object Created" → the starter function."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def key_wildcard(prefix: str, suffix: str) -> str:
    """An EventBridge wildcard matching keys that start with ``prefix`` and end with ``suffix``.

    EventBridge cannot AND a ``prefix`` and a ``suffix`` filter on one field; a single
    wildcard can. ``*`` and ``\\`` in the prefix or suffix are escaped to match literally.
    """

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("*", "\\*")

    return f"{escape(prefix)}*{escape(suffix)}"


class JobTrigger(Construct):
    """An EventBridge rule: S3 Object Created in ``bucket_names`` under prefix/suffix.

    S3 sends these events only for buckets with EventBridge notifications on. The work
    bucket has them on; an input bucket owned elsewhere must turn them on itself
    (``aws s3api put-bucket-notification-configuration --notification-configuration
    '{"EventBridgeConfiguration": {}}'``) — parceler never changes a bucket it does not own.
    Events the rule cannot deliver go to ``dead_letter_queue``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_names: Sequence[str],
        prefix: str,
        suffix: str,
        starter: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "ObjectCreated",
            description="parceler: a job file landed, start the job",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": list(bucket_names)},
                    "object": {"key": events.Match.wildcard(key_wildcard(prefix, suffix))},
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                starter,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=8,
                max_event_age=Duration.hours(2),
            )
        )
