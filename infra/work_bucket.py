"""The work bucket (job specs, manifests, attempt outputs, results) and its access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

#: The work-area prefix (docs/INTERNALS.md "Work area layout").
JOBS_PREFIX = "jobs/"


class WorkBucket(Construct):
    """An encrypted, TLS-only, private bucket with EventBridge notifications on.

    Lifecycle decisions:

    * Everything parceler writes lives under ``jobs/{job_id}/``: specs, manifests, group
      manifests, *uncommitted attempt outputs* (a crashed or superseded attempt's files
      are never read again, but nothing deletes them eagerly) and job results. Objects
      under ``jobs/`` expire after ``scratch_expiration_days`` (default 30; 0 keeps them).
      That bounds the cost of abandoned attempts; a result you keep longer belongs in an
      output location outside ``jobs/`` (or raise the setting).
    * Incomplete multipart uploads (an interrupted worker writing a large output) are
      aborted after 1 day, bucket-wide: they are invisible, billed, and never resumed.
    * When versioned, noncurrent versions under ``jobs/`` expire on the same schedule.

    Server access logs go to ``log_bucket`` (also encrypted, TLS-only, private).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        scratch_expiration_days: int,
        versioned: bool,
        access_log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # Deliver access logs by bucket policy (not the legacy LogDeliveryWrite ACL) even
        # in an app that does not set this feature flag: the buckets enforce owner-only ACLs.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(access_log_retention_days),
                )
            ],
        )
        acknowledge(
            self.log_bucket,
            "AwsSolutions-S1",
            "This is the access-log destination itself; logging it would need another "
            "bucket (and so on) with no audit value.",
        )

        scratch_rules: list[s3.LifecycleRule] = []
        if scratch_expiration_days > 0:
            scratch_rules.append(
                s3.LifecycleRule(
                    id="expire-job-work-area",
                    prefix=JOBS_PREFIX,
                    expiration=Duration.days(scratch_expiration_days),
                    noncurrent_version_expiration=(
                        Duration.days(scratch_expiration_days) if versioned else None
                    ),
                )
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            event_bridge_enabled=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="work-bucket/",
            lifecycle_rules=[
                *scratch_rules,
                s3.LifecycleRule(
                    id="abort-incomplete-multipart-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
        )
        # event_bridge_enabled adds CDK's singleton notifications custom resource.
        for child in Stack.of(self).node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own bucket-notifications custom resource (it turns EventBridge "
                    "delivery on); it runs only during deployments.",
                )
