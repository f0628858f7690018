"""Least-privilege policy statements per role: what its code touches, and what it may never do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.work_bucket import JOBS_PREFIX

#: Where one attempt's outputs go, under a job root (the work area or an output location):
#: ``<root><job>/groups/[<g//1000>/]<g>/<run>/attempt-<a>/...`` (docs/INTERNALS.md). IAM's ``*``
#: spans ``/``, so one pattern covers both the work area's and an output location's form.
ATTEMPT_FOLDERS = "*/groups/*/attempt-*"

#: Writes of one object (``s3:PutObject`` also covers the multipart upload calls).
OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload")

#: Denied under the trigger prefix: ``s3:PutObject`` authorises every way of creating or
#: replacing an object (PUT, a copy's destination, multipart uploads).
TRIGGER_DENIED_ACTIONS = ("s3:PutObject",)

#: The ledger calls of a role that claims, heartbeats, commits or fails one group.
#: ``TransactWriteItems`` is authorised per item by its parts (``UpdateItem``,
#: ``ConditionCheckItem``); DynamoDB has no IAM action of that name.
GROUP_LEDGER_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")

#: The waiter stores the task token on the job item and reads every shard counter at once.
WAITER_LEDGER_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem")

#: What a worker or dead-letter role does with the job state machine: signal the end of a
#: job it finished (the completion signal replaces polling).
TASK_SIGNAL_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure")


@dataclass(frozen=True, slots=True)
class OutputLocation:
    """A configured ``s3://bucket/prefix/`` output location."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> OutputLocation:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return cls(bucket=bucket, prefix=prefix)


def objects(bucket: s3.IBucket, pattern: str) -> str:
    """The object ARN pattern ``<bucket>/<pattern>``."""
    return bucket.arn_for_objects(pattern)


def read_objects(resources: Sequence[str]) -> iam.PolicyStatement:
    """Read (GET/HEAD, incl. ranged) the objects matching ``resources``."""
    return iam.PolicyStatement(actions=["s3:GetObject"], resources=list(resources))


def list_buckets(buckets: Sequence[s3.IBucket]) -> iam.PolicyStatement:
    """List the keys of ``buckets`` (sources are prefixes; the listing is bucket-level)."""
    return iam.PolicyStatement(
        actions=["s3:ListBucket"], resources=[bucket.bucket_arn for bucket in buckets]
    )


def write_objects(resources: Sequence[str]) -> iam.PolicyStatement:
    """Create objects matching ``resources`` (never delete them)."""
    return iam.PolicyStatement(actions=list(OBJECT_WRITE_ACTIONS), resources=list(resources))


def deny_trigger_writes(trigger_objects: Sequence[str]) -> iam.PolicyStatement:
    """An explicit Deny: no object may be created under the trigger prefix by this role.

    An explicit Deny wins over any Allow, including one a user adds later to the role
    (for a processor's own needs), so a processor's output can never start a job.
    """
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=list(TRIGGER_DENIED_ACTIONS),
        resources=list(trigger_objects),
    )


def group_ledger(table_arn: str) -> iam.PolicyStatement:
    """Item-level calls on the ledger: no Scan, Query, PutItem, DeleteItem or batch calls."""
    return iam.PolicyStatement(actions=list(GROUP_LEDGER_ACTIONS), resources=[table_arn])


#: The only partitions a worker may Query: a job's in-flight slots (``limits.max_concurrency``;
#: ``parceler.aws.ledger.slots_pk``), never a job's groups or counters.
SLOT_PARTITIONS = "job#*#slots"


def slot_query(table_arn: str) -> iam.PolicyStatement:
    """Query the in-flight slot partitions of the ledger, and nothing else (no Scan)."""
    return iam.PolicyStatement(
        actions=["dynamodb:Query"],
        resources=[table_arn],
        conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [SLOT_PARTITIONS]}},
    )


def waiter_ledger(table_arn: str) -> iam.PolicyStatement:
    """The waiter's item-level ledger calls (no Scan, Query or writes of groups)."""
    return iam.PolicyStatement(actions=list(WAITER_LEDGER_ACTIONS), resources=[table_arn])


def signal_tasks(state_machine_arn: str) -> iam.PolicyStatement:
    """``SendTaskSuccess``/``SendTaskFailure`` for executions of one state machine."""
    return iam.PolicyStatement(actions=list(TASK_SIGNAL_ACTIONS), resources=[state_machine_arn])


def attempt_resources(
    work_bucket: s3.IBucket, outputs: Sequence[OutputLocation], partition_arn: str
) -> list[str]:
    """The object ARNs of attempt folders: the work area's and each output location's."""
    resources = [objects(work_bucket, JOBS_PREFIX + ATTEMPT_FOLDERS)]
    resources += [
        f"{partition_arn}:s3:::{out.bucket}/{out.prefix}{ATTEMPT_FOLDERS}" for out in outputs
    ]
    return resources
