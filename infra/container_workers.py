"""Fargate workers for long groups: a queue-depth-scaled service that scales to zero."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, IgnoreMode
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge

#: Build context allow-list for ``Dockerfile.worker``: the image needs the package only.
#: (Docker ignore syntax: exclude everything, then re-include.)
WORKER_IMAGE_CONTEXT = [
    "*",
    "!Dockerfile.worker",
    "!pyproject.toml",
    "!README.md",
    "!shared",
    "shared/*.egg-info",
    "**/__pycache__",
]


def worker_image_from_source(root: Path) -> ecs.ContainerImage:
    """The container worker image built from ``Dockerfile.worker`` at deploy time.

    Synth only stages the build context into ``cdk.out`` (no Docker engine needed); the
    image is built for linux/amd64, the architecture of the task definition.
    """
    return ecs.ContainerImage.from_asset(
        str(root),
        file="Dockerfile.worker",
        platform=ecr_assets.Platform.LINUX_AMD64,
        exclude=WORKER_IMAGE_CONTEXT,
        ignore_mode=IgnoreMode.DOCKER,
    )


def backlog_steps(max_tasks: int) -> list[appscaling.ScalingInterval]:
    """Exact task counts by backlog (visible + in-flight messages).

    Backlog 0 → 0 tasks; otherwise the next power of two ≥ backlog, capped at
    ``max_tasks``. The capacity never drops below the number of in-flight messages, so
    scale-in mostly stops idle pollers; a busy task that is stopped anyway gets SIGTERM
    and ``stopTimeout`` seconds to finish or release its group.
    """
    steps = [appscaling.ScalingInterval(upper=0, change=0)]
    lower, capacity = 1, 1
    while True:
        steps.append(appscaling.ScalingInterval(lower=lower, change=min(capacity, max_tasks)))
        if capacity >= max_tasks:
            return steps
        lower, capacity = capacity + 1, capacity * 2


class ContainerWorkers(Construct):
    """Long-poll workers on Fargate reading the container queue.

    Networking: a two-AZ VPC with public subnets only and no NAT gateway (the costly part
    of a VPC); tasks get a public IP for egress to S3, SQS, DynamoDB and ECR, and their
    security group admits no inbound traffic. VPC flow logs go to the access-log bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue: sqs.IQueue,
        image: ecs.ContainerImage,
        environment: Mapping[str, str],
        cpu: int,
        memory_mb: int,
        max_tasks: int,
        stop_timeout: Duration,
        log_retention: logs.RetentionDays,
        flow_log_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                )
            ],
            # The default security group is unused; restricting it needs a custom-resource
            # Lambda that would add more to review than it removes.
            restrict_default_security_group=False,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc)
        acknowledge(
            self.cluster,
            "AwsSolutions-ECS4",
            "Container Insights is off to keep an idle, scale-to-zero batch service free; "
            "queue depth, DLQ and oldest-message alarms cover its health.",
        )

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=cpu,
            memory_limit_mib=memory_mb,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention)
        self.container = self.task_definition.add_container(
            "Worker",
            image=image,
            environment=dict(environment),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="worker", log_group=self.log_group),
            stop_timeout=stop_timeout,
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds resource names and the queue URL only (no secrets); "
            "they are the WorkerSettings the runner parses at start.",
        )
        if self.task_definition.execution_role is not None:
            acknowledge(
                self.task_definition.execution_role,
                "AwsSolutions-IAM5[Resource::*]",
                "ecr:GetAuthorizationToken has no resource-level permissions; the image "
                "pull itself is scoped to the asset repository.",
            )

        security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            description="parceler container workers: egress only",
            allow_all_outbound=True,
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            # Scale to zero: a deploy also resets to zero; the backlog alarm re-adds tasks
            # and a stopped task releases its group (SIGTERM) for another to take.
            desired_count=0,
            min_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            max_healthy_percent=200,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[security_group],
        )
        queue.grant_consume_messages(self.task_definition.task_role)

        backlog = cloudwatch.MathExpression(
            expression="visible + inflight",
            label="container queue backlog (visible + in flight)",
            using_metrics={
                "visible": queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                "inflight": queue.metric_approximate_number_of_messages_not_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
            },
            period=Duration.minutes(1),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=0, max_capacity=max_tasks)
        scaling.scale_on_metric(
            "ScaleOnBacklog",
            metric=backlog,
            scaling_steps=backlog_steps(max_tasks),
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            evaluation_periods=1,
            cooldown=Duration.minutes(1),
        )
