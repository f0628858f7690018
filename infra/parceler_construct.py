"""``Parceler``: the whole deployment as one construct, to embed in your own CDK app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.container_workers import ContainerWorkers, worker_image_from_source
from infra.functions import RoleFunction
from infra.job_state_machine import JobStateMachine
from infra.layer import LibraryLayer
from infra.ledger_table import LedgerTable
from infra.monitoring import Monitoring
from infra.nag import acknowledge, acknowledge_bucket_grant
from infra.settings import ParcelerSettings
from infra.triggers import JobTrigger
from infra.work_bucket import JOBS_PREFIX, WorkBucket
from infra.work_queue import WorkQueue

#: Environment variable names, as read by ``parceler.settings`` (tests/infra checks that
#: each function gets exactly its model's names; infra itself imports no runtime code).
ENV_LEDGER_TABLE = "PARCELER_LEDGER_TABLE"
ENV_WORK_BUCKET = "PARCELER_WORK_BUCKET"
ENV_LAMBDA_QUEUE_URL = "PARCELER_LAMBDA_QUEUE_URL"
ENV_CONTAINER_QUEUE_URL = "PARCELER_CONTAINER_QUEUE_URL"
ENV_STATE_MACHINE_ARN = "PARCELER_STATE_MACHINE_ARN"
ENV_LEDGER_RETENTION_DAYS = "PARCELER_LEDGER_RETENTION_DAYS"

#: Lambda's guidance for SQS event sources: queue visibility ≥ 6 x function timeout, so
#: a message is not redelivered while throttled retries of one invocation still run.
VISIBILITY_PER_TIMEOUT = 6

#: The dead-letter and starter functions do one small ledger or Step Functions call.
SMALL_FUNCTION_TIMEOUT_SECONDS = 60

ROLES = ("planner", "worker", "aggregator", "dead_letter", "starter")


@dataclass(frozen=True, slots=True)
class SourceLayout:
    """Where the deployable sources live (default: this repository's layout)."""

    root: Path
    definition_file_override: Path | None = None

    @classmethod
    def of_repository(cls) -> SourceLayout:
        """The layout of the checkout this module sits in."""
        return cls(root=Path(__file__).resolve().parent.parent)

    @property
    def shared_dir(self) -> Path:
        return self.root / "shared"

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def definition_file(self) -> Path:
        return self.definition_file_override or (
            self.shared_dir / "parceler" / "asl" / "job.asl.json"
        )

    def function_dir(self, role: str) -> Path:
        return self.root / "functions" / role

    def missing(self) -> list[Path]:
        """Required source paths that do not exist (empty when synth can proceed)."""
        required = [self.function_dir(role) / "handler.py" for role in ROLES]
        required += [self.shared_dir / "parceler", self.definition_file, self.pyproject]
        return [path for path in required if not path.exists()]


class Parceler(Construct):
    """Work bucket, ledger, queues, functions, Fargate workers, job state machine, trigger.

    Args:
        settings: the deployment knobs (``ParcelerSettings.from_context(self.node)`` reads
            them from CDK context).
        layout: where ``functions/``, ``shared/`` and ``Dockerfile.worker`` are.
        processor_layers: layers with *your* processor/reducer code, added to the worker
            and aggregator functions (``module:function`` in a job spec resolves there).
        worker_image: the Fargate worker image; default ``Dockerfile.worker`` at
            ``layout.root``. Build yours ``FROM`` it to add your processors.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ParcelerSettings,
        layout: SourceLayout | None = None,
        processor_layers: Sequence[lambda_.ILayerVersion] = (),
        worker_image: ecs.ContainerImage | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        layout = layout or SourceLayout.of_repository()
        self.settings = settings
        retention = _retention(settings.log_retention_days)

        # Storage and state.
        self.work_bucket = WorkBucket(
            self,
            "WorkBucket",
            scratch_expiration_days=settings.scratch_expiration_days,
            versioned=settings.versioned,
            access_log_retention_days=settings.access_log_retention_days,
        )
        bucket = self.work_bucket.bucket
        self.ledger = LedgerTable(self, "Ledger")
        table = self.ledger.table
        self.input_buckets: list[s3.IBucket] = [
            s3.Bucket.from_bucket_name(self, f"Input{index}", name)
            for index, name in enumerate(settings.input_buckets)
        ]

        # Queues: Lambda visibility follows the worker timeout (>= 6x, per AWS guidance).
        dead_letter_visibility = Duration.seconds(
            VISIBILITY_PER_TIMEOUT * SMALL_FUNCTION_TIMEOUT_SECONDS
        )
        self.lambda_queue = WorkQueue(
            self,
            "LambdaQueue",
            visibility_timeout=Duration.seconds(
                VISIBILITY_PER_TIMEOUT * settings.worker_timeout_seconds
            ),
            dead_letter_visibility_timeout=dead_letter_visibility,
            max_receive_count=settings.max_receive_count,
            dlq_retention_days=settings.dlq_retention_days,
        )
        self.container_queue = WorkQueue(
            self,
            "ContainerQueue",
            visibility_timeout=Duration.seconds(settings.container_visibility_seconds),
            dead_letter_visibility_timeout=dead_letter_visibility,
            max_receive_count=settings.max_receive_count,
            dlq_retention_days=settings.dlq_retention_days,
        )
        self.trigger_dead_letter_queue = sqs.Queue(
            self,
            "TriggerDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.trigger_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the trigger rule and the "
            "starter's async invocations; it is alarmed, not re-driven automatically.",
        )

        # Functions.
        self.layer = LibraryLayer(
            self,
            "Library",
            shared_dir=layout.shared_dir,
            pyproject=layout.pyproject,
            bundle=settings.bundle,
        ).layer
        ledger_env = {ENV_LEDGER_TABLE: table.table_name}
        work_env = {**ledger_env, ENV_WORK_BUCKET: bucket.bucket_name}

        def role_function(
            role: str,
            environment: dict[str, str],
            memory_mb: int,
            timeout_seconds: int,
            extra_layers: Sequence[lambda_.ILayerVersion] = (),
            dead_letter_queue: sqs.IQueue | None = None,
        ) -> lambda_.Function:
            return RoleFunction(
                self,
                _pascal(role),
                role_name=role,
                code_dir=layout.function_dir(role),
                layers=[self.layer, *extra_layers],
                environment=environment,
                memory_mb=memory_mb,
                timeout=Duration.seconds(timeout_seconds),
                log_retention=retention,
                dead_letter_queue=dead_letter_queue,
            ).function

        self.planner = role_function(
            "planner",
            {
                **work_env,
                ENV_LAMBDA_QUEUE_URL: self.lambda_queue.queue.queue_url,
                ENV_CONTAINER_QUEUE_URL: self.container_queue.queue.queue_url,
                ENV_LEDGER_RETENTION_DAYS: str(settings.ledger_retention_days),
            },
            settings.planner_memory_mb,
            settings.planner_timeout_seconds,
        )
        self.worker = role_function(
            "worker",
            work_env,
            settings.worker_memory_mb,
            settings.worker_timeout_seconds,
            extra_layers=processor_layers,
        )
        self.aggregator = role_function(
            "aggregator",
            work_env,
            settings.aggregator_memory_mb,
            settings.aggregator_timeout_seconds,
            extra_layers=processor_layers,
        )
        self.dead_letter = role_function(
            "dead_letter",
            ledger_env,
            settings.small_function_memory_mb,
            SMALL_FUNCTION_TIMEOUT_SECONDS,
        )

        # Grants: each role gets what its code touches, nothing wider.
        work_roles = (self.planner, self.worker, self.aggregator)
        for fn in (*work_roles, self.dead_letter):
            table.grant_read_write_data(fn)
        for fn in work_roles:
            _grant_bucket(bucket, fn, write=True, why="the work area: manifests, outputs, results")
        # The DLQ handler reads the group summary the dead message names (job id, index).
        _grant_bucket(
            bucket,
            self.dead_letter,
            write=False,
            key_pattern=f"{JOBS_PREFIX}*",
            why="the group summary a dead message names",
        )
        for input_bucket in self.input_buckets:
            for fn in (self.planner, self.worker):
                _grant_bucket(input_bucket, fn, write=False, why="a configured input bucket")
        self.lambda_queue.queue.grant_send_messages(self.planner)
        self.container_queue.queue.grant_send_messages(self.planner)

        # Event sources: partial batch responses everywhere, bounded worker concurrency.
        self.worker.add_event_source(
            sources.SqsEventSource(
                self.lambda_queue.queue,
                batch_size=settings.worker_batch_size,
                max_concurrency=settings.worker_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        for work_queue in (self.lambda_queue, self.container_queue):
            self.dead_letter.add_event_source(
                sources.SqsEventSource(
                    work_queue.dead_letter_queue,
                    batch_size=10,
                    report_batch_item_failures=True,
                )
            )

        # Fargate workers for groups longer than Lambda's 15 minutes.
        self.container_workers = ContainerWorkers(
            self,
            "ContainerWorkers",
            queue=self.container_queue.queue,
            image=worker_image or worker_image_from_source(layout.root),
            environment={
                **work_env,
                ENV_CONTAINER_QUEUE_URL: self.container_queue.queue.queue_url,
            },
            cpu=settings.container_cpu,
            memory_mb=settings.container_memory_mb,
            max_tasks=settings.container_max_tasks,
            stop_timeout=Duration.seconds(settings.container_stop_timeout_seconds),
            log_retention=retention,
            flow_log_bucket=self.work_bucket.log_bucket,
        )
        task_role = self.container_workers.task_definition.task_role
        table.grant_read_write_data(task_role)
        _grant_bucket(bucket, task_role, write=True, why="the work area: manifests, outputs")
        for input_bucket in self.input_buckets:
            _grant_bucket(input_bucket, task_role, write=False, why="a configured input bucket")

        # The job state machine and what starts it.
        self.job_state_machine = JobStateMachine(
            self,
            "JobStateMachine",
            definition_file=layout.definition_file,
            planner=self.planner,
            aggregator=self.aggregator,
            ledger=table,
            log_retention=retention,
        )
        state_machine = self.job_state_machine.state_machine
        self.starter = role_function(
            "starter",
            {ENV_STATE_MACHINE_ARN: state_machine.state_machine_arn},
            settings.small_function_memory_mb,
            SMALL_FUNCTION_TIMEOUT_SECONDS,
            dead_letter_queue=self.trigger_dead_letter_queue,
        )
        state_machine.grant_start_execution(self.starter)
        # The starter reads the job file that triggered it (the spec), nothing else.
        trigger_pattern = f"{settings.trigger_prefix}*"
        for watched in (bucket, *self.input_buckets):
            _grant_bucket(
                watched,
                self.starter,
                write=False,
                key_pattern=trigger_pattern,
                why="the job file that triggered the start",
            )
        self.trigger = JobTrigger(
            self,
            "Trigger",
            bucket_names=[bucket.bucket_name, *settings.input_buckets],
            prefix=settings.trigger_prefix,
            suffix=settings.trigger_suffix,
            starter=self.starter,
            dead_letter_queue=self.trigger_dead_letter_queue,
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            work_queues={
                "LambdaQueue": self.lambda_queue.queue,
                "ContainerQueue": self.container_queue.queue,
            },
            dead_letter_queues={
                "LambdaDeadLetterQueue": self.lambda_queue.dead_letter_queue,
                "ContainerDeadLetterQueue": self.container_queue.dead_letter_queue,
                "TriggerDeadLetterQueue": self.trigger_dead_letter_queue,
            },
            functions={
                "planner": self.planner,
                "worker": self.worker,
                "aggregator": self.aggregator,
                "dead_letter": self.dead_letter,
                "starter": self.starter,
            },
            state_machine=state_machine,
            oldest_message_seconds=settings.oldest_message_alarm_seconds,
        )


def _grant_bucket(
    bucket: s3.IBucket,
    grantee: lambda_.Function | iam.IRole,
    *,
    write: bool,
    why: str,
    key_pattern: str = "*",
) -> None:
    """A CDK bucket grant (never ``s3:*``) plus the acknowledgement of its IAM5 findings."""
    if write:
        bucket.grant_read_write(grantee, key_pattern)
    else:
        bucket.grant_read(grantee, key_pattern)
    role = grantee.role if isinstance(grantee, lambda_.Function) else grantee
    assert role is not None, "parceler functions always have a role"
    acknowledge_bucket_grant(
        role, bucket_arn=bucket.bucket_arn, key_pattern=key_pattern, write=write, why=why
    )


def _pascal(role: str) -> str:
    return "".join(part.capitalize() for part in role.split("_"))


_RETENTION = (
    (1, logs.RetentionDays.ONE_DAY),
    (3, logs.RetentionDays.THREE_DAYS),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
)


def _retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention for ``days``: the nearest listed value up (≤ 5 years)."""
    for allowed, member in _RETENTION:
        if allowed >= days:
            return member
    return _RETENTION[-1][1]
