"""One parceler Lambda function: code from ``functions/<role>/``, the layer, observability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.layer import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME
from infra.nag import acknowledge

POWERTOOLS_METRICS_NAMESPACE = "Parceler"


class RoleFunction(Construct):
    """A Lambda function for one parceler role (``planner``, ``worker``, ...).

    Handler ``handler.handler`` in ``code_dir``; the ``parceler`` layer plus any extra
    layers; Powertools logger/metrics/tracer configured by environment; X-Ray active
    tracing; its own log group with a retention; and its own role whose only built-in
    rights are writing to that log group and to X-Ray. Every other right is a grant made
    by the caller, so each role's policy is exactly what it uses.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        code_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        memory_mb: int,
        timeout: Duration,
        log_retention: logs.RetentionDays,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (code_dir / "handler.py").is_file():
            raise FileNotFoundError(
                f"{code_dir / 'handler.py'} is missing: every role needs functions/{code_dir.name}/"
                "handler.py with a `handler(event, context)` function."
            )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"parceler {role_name} function",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy (any log group):
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(code_dir), exclude=["**/__pycache__", "*.pyc"]),
            layers=list(layers),
            role=self.role,
            memory_size=memory_mb,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            dead_letter_queue=dead_letter_queue,
            description=f"parceler {role_name}",
            environment={
                "POWERTOOLS_SERVICE_NAME": f"parceler-{role_name}",
                "POWERTOOLS_METRICS_NAMESPACE": POWERTOOLS_METRICS_NAMESPACE,
                **environment,
            },
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions "
            "(added by active tracing).",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is pinned on purpose: the layer's compiled wheels (pyarrow, "
            "pydantic-core) are resolved for cp312, and the runtime is supported until 2028.",
        )
