"""``Parceler``: the whole deployment as one construct, to embed in your own CDK app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.access import (
    OutputLocation,
    attempt_resources,
    deny_trigger_writes,
    group_ledger,
    list_buckets,
    objects,
    read_objects,
    signal_tasks,
    slot_query,
    waiter_ledger,
    write_objects,
)
from infra.container_workers import ContainerWorkers, worker_image_from_source
from infra.functions import POWERTOOLS_METRICS_NAMESPACE, RoleFunction
from infra.job_state_machine import JobStateMachine
from infra.layer import LibraryLayer
from infra.ledger_table import LedgerTable
from infra.monitoring import Monitoring
from infra.nag import acknowledge, acknowledge_bucket_grant, arn_finding
from infra.settings import ParcelerSettings
from infra.triggers import JobTrigger
from infra.work_bucket import JOBS_PREFIX, WorkBucket
from infra.work_queue import RETENTION_MAX, WorkQueue

#: Environment variable names, as read by ``parceler.settings`` (tests/infra checks that
#: each function gets exactly its model's names; infra itself imports no runtime code).
ENV_LEDGER_TABLE = "PARCELER_LEDGER_TABLE"
ENV_WORK_BUCKET = "PARCELER_WORK_BUCKET"
ENV_LAMBDA_QUEUE_URL = "PARCELER_LAMBDA_QUEUE_URL"
ENV_CONTAINER_QUEUE_URL = "PARCELER_CONTAINER_QUEUE_URL"
ENV_STATE_MACHINE_ARN = "PARCELER_STATE_MACHINE_ARN"
ENV_TRIGGER_BUCKETS = "PARCELER_TRIGGER_BUCKETS"
ENV_TRIGGER_PREFIX = "PARCELER_TRIGGER_PREFIX"
ENV_TRIGGER_SUFFIX = "PARCELER_TRIGGER_SUFFIX"

#: The word the starter logs (at WARNING) on every start it refuses; a metric filter on
#: its log group counts them (``parceler.starter.REFUSAL_MARKER``; tests/infra checks both).
STARTER_REFUSAL_MARKER = "parceler-start-refused"
REFUSED_STARTS_METRIC = "RefusedStarts"

#: The ECS agent's task scale-in protection endpoint calls these for the task role.
TASK_PROTECTION_ACTIONS = ("ecs:UpdateTaskProtection", "ecs:GetTaskProtection")
ENV_LEDGER_RETENTION_DAYS = "PARCELER_LEDGER_RETENTION_DAYS"

#: Lambda's guidance for SQS event sources: queue visibility ≥ 6 x function timeout, so
#: a message is not redelivered while throttled retries of one invocation still run.
VISIBILITY_PER_TIMEOUT = 6

#: The dead-letter and starter functions do one small ledger or Step Functions call.
SMALL_FUNCTION_TIMEOUT_SECONDS = 60

ROLES = ("planner", "worker", "aggregator", "waiter", "dead_letter", "starter")


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

    Each ``_add_*`` part below builds one capability and reads only what earlier parts
    made; the order is the dependency order. Each role's rights are granted by the part
    that knows what its code touches (``_add_access``), with the statements of
    ``infra.access``: nothing table-wide or bucket-wide for the roles that run user code.

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
        self.settings = settings
        self._layout = layout or SourceLayout.of_repository()
        self._retention = _retention(settings.log_retention_days)
        self._add_bucket()
        self._add_ledger()
        self._add_queues()
        self._add_functions(processor_layers)
        self._add_containers(worker_image)
        self._add_state_machine()
        self._add_triggers()
        self._add_access()
        self._add_monitoring()

    # --- storage and state ---------------------------------------------------------

    def _add_bucket(self) -> None:
        """The work bucket, and the input and output buckets the settings name."""
        settings = self.settings
        self.work_bucket = WorkBucket(
            self,
            "WorkBucket",
            scratch_expiration_days=settings.scratch_expiration_days,
            versioned=settings.versioned,
            access_log_retention_days=settings.access_log_retention_days,
        )
        self.input_buckets: list[s3.IBucket] = [
            s3.Bucket.from_bucket_name(self, f"Input{index}", name)
            for index, name in enumerate(settings.input_buckets)
        ]
        self.output_locations = [OutputLocation.parse(uri) for uri in settings.output_locations]

    def _add_ledger(self) -> None:
        self.ledger = LedgerTable(self, "Ledger")

    # --- queues ----------------------------------------------------------------------

    def _add_queues(self) -> None:
        """Both work queues with their DLQs, and the trigger's dead-letter queue."""
        settings = self.settings
        # Lambda visibility follows the worker timeout (>= 6x, per AWS guidance).
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
        )
        self.container_queue = WorkQueue(
            self,
            "ContainerQueue",
            visibility_timeout=Duration.seconds(settings.container_visibility_seconds),
            dead_letter_visibility_timeout=dead_letter_visibility,
            max_receive_count=settings.max_receive_count,
        )
        self.trigger_dead_letter_queue = sqs.Queue(
            self,
            "TriggerDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION_MAX,
        )
        acknowledge(
            self.trigger_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the trigger rule and the "
            "starter's async invocations; it is alarmed, not re-driven automatically.",
        )

    # --- functions -------------------------------------------------------------------

    def _role_function(
        self,
        role: str,
        environment: dict[str, str],
        memory_mb: int,
        timeout_seconds: int,
        extra_layers: Sequence[lambda_.ILayerVersion] = (),
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> RoleFunction:
        return RoleFunction(
            self,
            _pascal(role),
            role_name=role,
            code_dir=self._layout.function_dir(role),
            layers=[self.layer, *extra_layers],
            environment=environment,
            memory_mb=memory_mb,
            timeout=Duration.seconds(timeout_seconds),
            log_retention=self._retention,
            dead_letter_queue=dead_letter_queue,
        )

    def _add_functions(self, processor_layers: Sequence[lambda_.ILayerVersion]) -> None:
        """The library layer, the planner, worker, aggregator and dead-letter functions, and
        their event sources (partial batch responses everywhere, bounded concurrency)."""
        settings = self.settings
        self.layer = LibraryLayer(
            self,
            "Library",
            shared_dir=self._layout.shared_dir,
            pyproject=self._layout.pyproject,
            bundle=settings.bundle,
        ).layer
        ledger_env = {ENV_LEDGER_TABLE: self.ledger.table.table_name}
        self._work_env = {**ledger_env, ENV_WORK_BUCKET: self.work_bucket.bucket.bucket_name}
        self.planner = self._role_function(
            "planner",
            {
                **self._work_env,
                ENV_LAMBDA_QUEUE_URL: self.lambda_queue.queue.queue_url,
                ENV_CONTAINER_QUEUE_URL: self.container_queue.queue.queue_url,
                ENV_LEDGER_RETENTION_DAYS: str(settings.ledger_retention_days),
            },
            settings.planner_memory_mb,
            settings.planner_timeout_seconds,
        ).function
        self.worker = self._role_function(
            "worker",
            self._work_env,
            settings.worker_memory_mb,
            settings.worker_timeout_seconds,
            extra_layers=processor_layers,
        ).function
        self.aggregator = self._role_function(
            "aggregator",
            self._work_env,
            settings.aggregator_memory_mb,
            settings.aggregator_timeout_seconds,
            extra_layers=processor_layers,
        ).function
        self.waiter = self._role_function(
            "waiter",
            ledger_env,
            settings.small_function_memory_mb,
            SMALL_FUNCTION_TIMEOUT_SECONDS,
        ).function
        self.dead_letter = self._role_function(
            "dead_letter",
            {
                **ledger_env,
                ENV_LAMBDA_QUEUE_URL: self.lambda_queue.queue.queue_url,
                ENV_CONTAINER_QUEUE_URL: self.container_queue.queue.queue_url,
            },
            settings.small_function_memory_mb,
            SMALL_FUNCTION_TIMEOUT_SECONDS,
        ).function
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
        # The planner sends every group; the dead-letter handler sends back a group whose
        # lease is live; a worker replaces a delivery it did not use with a fresh copy.
        for sender in (self.planner, self.dead_letter):
            self.lambda_queue.queue.grant_send_messages(sender)
            self.container_queue.queue.grant_send_messages(sender)
        self.lambda_queue.queue.grant_send_messages(self.worker)

    # --- Fargate workers -------------------------------------------------------------

    def _add_containers(self, worker_image: ecs.ContainerImage | None) -> None:
        """Fargate workers for groups longer than Lambda's 15 minutes."""
        settings = self.settings
        self.container_workers = ContainerWorkers(
            self,
            "ContainerWorkers",
            queue=self.container_queue.queue,
            image=worker_image or worker_image_from_source(self._layout.root),
            environment={
                **self._work_env,
                ENV_CONTAINER_QUEUE_URL: self.container_queue.queue.queue_url,
            },
            cpu=settings.container_cpu,
            memory_mb=settings.container_memory_mb,
            max_tasks=settings.container_max_tasks,
            stop_timeout=Duration.seconds(settings.container_stop_timeout_seconds),
            log_retention=self._retention,
            flow_log_bucket=self.work_bucket.log_bucket,
        )

    # --- the job state machine -------------------------------------------------------

    def _add_state_machine(self) -> None:
        self.job_state_machine = JobStateMachine(
            self,
            "JobStateMachine",
            definition_file=self._layout.definition_file,
            planner=self.planner,
            aggregator=self.aggregator,
            waiter=self.waiter,
            ledger=self.ledger.table,
            work_bucket=self.work_bucket.bucket,
            log_retention=self._retention,
            log_level=sfn.LogLevel(self.settings.state_machine_log_level),
            include_execution_data=self.settings.log_execution_data,
        )

    # --- what starts a job -----------------------------------------------------------

    def _add_triggers(self) -> None:
        """The starter function and the EventBridge rule on the trigger prefix/suffix, and a
        metric counting the starts it refuses (a duplicate job id, an unconfigured key)."""
        settings = self.settings
        state_machine = self.job_state_machine.state_machine
        watched = [self.work_bucket.bucket.bucket_name, *settings.input_buckets]
        starter = self._role_function(
            "starter",
            {
                ENV_STATE_MACHINE_ARN: state_machine.state_machine_arn,
                ENV_TRIGGER_BUCKETS: ",".join(watched),
                ENV_TRIGGER_PREFIX: settings.trigger_prefix,
                ENV_TRIGGER_SUFFIX: settings.trigger_suffix,
            },
            settings.small_function_memory_mb,
            SMALL_FUNCTION_TIMEOUT_SECONDS,
            dead_letter_queue=self.trigger_dead_letter_queue,
        )
        self.starter = starter.function
        self.trigger = JobTrigger(
            self,
            "Trigger",
            bucket_names=watched,
            prefix=settings.trigger_prefix,
            suffix=settings.trigger_suffix,
            starter=self.starter,
            dead_letter_queue=self.trigger_dead_letter_queue,
        )
        self.refused_starts = logs.MetricFilter(
            self,
            "RefusedStarts",
            log_group=starter.log_group,
            filter_pattern=logs.FilterPattern.literal(f'"{STARTER_REFUSAL_MARKER}"'),
            metric_namespace=POWERTOOLS_METRICS_NAMESPACE,
            metric_name=REFUSED_STARTS_METRIC,
            metric_value="1",
            default_value=0,
        )

    # --- who may do what ---------------------------------------------------------------

    def _add_access(self) -> None:
        """Each role's rights (see the class docstring); user code never writes triggers."""
        bucket = self.work_bucket.bucket
        table = self.ledger.table
        state_machine_arn = self.job_state_machine.state_machine.state_machine_arn
        watched = [bucket, *self.input_buckets]
        trigger_objects = [objects(b, f"{self.settings.trigger_prefix}*") for b in watched]
        attempts = attempt_resources(bucket, self.output_locations, f"arn:{Aws.PARTITION}")
        work_area = objects(bucket, f"{JOBS_PREFIX}*")
        inputs = [objects(b, "*") for b in self.input_buckets]
        task_role = self.container_workers.task_definition.task_role

        # Planner and aggregator: the work area, read and write; never delete, never a
        # trigger key (the planner imports user code to check it).
        table.grant_read_write_data(self.planner)
        table.grant_read_write_data(self.aggregator)
        for fn in (self.planner, self.aggregator):
            _grant_bucket(bucket, fn, write=False, why="sources and the work area")
            self._allow(fn, write_objects([work_area]), "the work area: manifests, results")
            _role_of(fn).add_to_principal_policy(deny_trigger_writes(trigger_objects))
        for input_bucket in self.input_buckets:
            _grant_bucket(input_bucket, self.planner, write=False, why="an input bucket")
        outputs = [
            f"arn:{Aws.PARTITION}:s3:::{out.bucket}/{out.prefix}*" for out in self.output_locations
        ]
        if outputs:
            self._allow(self.aggregator, read_objects(outputs), "group results in outputs")

        # Workers (Lambda and Fargate) run user code: read inputs and the work area, write
        # only attempt folders, item-level ledger calls, signal the end of their job.
        for grantee in (self.worker, task_role):
            self._allow(grantee, list_buckets(watched), "listing the work and input buckets")
            self._allow(grantee, read_objects([work_area, *inputs]), "inputs and manifests")
            self._allow(grantee, write_objects(attempts), "one attempt's outputs")
            self._allow(grantee, group_ledger(table.table_arn), "claims and commits")
            self._allow(grantee, slot_query(table.table_arn), "a job's in-flight slots")
            self._allow(grantee, signal_tasks(state_machine_arn), "completion signals")
            _role_of(grantee).add_to_principal_policy(deny_trigger_writes(trigger_objects))
        self.container_queue.queue.grant_send_messages(task_role)
        cluster = self.container_workers.cluster
        protection = Stack.of(self).format_arn(
            service="ecs",
            resource="task",
            resource_name=f"{cluster.cluster_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self._allow(
            task_role,
            iam.PolicyStatement(actions=list(TASK_PROTECTION_ACTIONS), resources=[protection]),
            "scale-in protection of this cluster's tasks while a group runs",
        )

        # Dead letters: the group summary a dead message names, then one group's item.
        self._allow(self.dead_letter, list_buckets([bucket]), "missing summaries are 404s")
        self._allow(self.dead_letter, read_objects([work_area]), "a dead message's summary")
        self._allow(self.dead_letter, group_ledger(table.table_arn), "marking a group FAILED")
        self._allow(self.dead_letter, signal_tasks(state_machine_arn), "completion signals")

        # The waiter stores the task token and recounts the job's shard counters.
        self._allow(self.waiter, waiter_ledger(table.table_arn), "token and shard counters")
        self._allow(
            self.waiter, signal_tasks(self.job_state_machine.arn_by_name), "completion signals"
        )

        # The starter reads the job file that triggered it, and starts one execution.
        self.job_state_machine.state_machine.grant_start_execution(self.starter)
        self._allow(self.starter, read_objects(trigger_objects), "the job file that landed")

    def _allow(
        self, grantee: lambda_.Function | iam.IRole, statement: iam.PolicyStatement, why: str
    ) -> None:
        """Add an Allow statement and acknowledge cdk-nag's finding on each wildcard in it."""
        role = _role_of(grantee)
        role.add_to_principal_policy(statement)
        for resource in statement.resources:
            finding = arn_finding(self, resource)
            if "*" in finding:
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Resource::{finding}]",
                    f"objects of one pattern, no wider than the code needs: {why}",
                )

    # --- monitoring --------------------------------------------------------------------

    def _add_monitoring(self) -> None:
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
            state_machine=self.job_state_machine.state_machine,
            oldest_message_seconds=self.settings.oldest_message_alarm_seconds,
            refused_starts=self.refused_starts.metric(statistic="Sum"),
        )


def _role_of(grantee: lambda_.Function | iam.IRole) -> iam.IRole:
    role = grantee.role if isinstance(grantee, lambda_.Function) else grantee
    assert role is not None, "parceler functions always have a role"
    return role


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
    role = _role_of(grantee)
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
