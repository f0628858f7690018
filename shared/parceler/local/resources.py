"""Create in the emulator the resources the CDK stack has, for the local mode.

Work bucket; ledger table (``pk``/``sk``, TTL ``expires_at``); a Lambda queue and a container
queue, each with a DLQ and a ``RedrivePolicy`` (``maxReceiveCount``); the functions planner,
worker, aggregator, waiter, dead_letter and starter with the environment their settings models read
(plus :data:`parceler.local.lambda_hook.ROLE_VARIABLE`, so the hook runs them in-process);
and the job state machine from the one ASL definition with local ARNs substituted.

No SQS → Lambda event source mappings: moto runs those inside ``SendMessage``, never retries
and never dead-letters (docs/local-aws-facts.md). The local mode polls the queues with the
container worker loop instead, so visibility timeouts and DLQ redrive are real.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parceler import aws, state_machine
from parceler.aws.ledger import create_table
from parceler.local.lambda_hook import ROLE_VARIABLE
from parceler.settings import (
    AggregatorSettings,
    DeadLetterSettings,
    PlannerSettings,
    StarterSettings,
    WorkerSettings,
)

ROLES = ("planner", "worker", "aggregator", "waiter", "dead_letter", "starter")
_RUNTIME = "python3.12"
_ASSUME_LAMBDA = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass(frozen=True)
class LocalStack:
    """The emulated stack: names, URLs, ARNs and each role's environment."""

    prefix: str
    work_bucket: str
    ledger_table: str
    lambda_queue_url: str
    container_queue_url: str
    lambda_dead_letter_queue_url: str
    container_dead_letter_queue_url: str
    state_machine_arn: str
    function_arns: dict[str, str] = field(default_factory=dict)

    def env(self, role: str) -> dict[str, str]:
        """The environment variables the stack gives ``role`` (as the CDK stack does)."""
        ledger = {"PARCELER_LEDGER_TABLE": self.ledger_table}
        work = {**ledger, "PARCELER_WORK_BUCKET": self.work_bucket}
        by_role = {
            "planner": {
                **work,
                "PARCELER_LAMBDA_QUEUE_URL": self.lambda_queue_url,
                "PARCELER_CONTAINER_QUEUE_URL": self.container_queue_url,
            },
            "worker": work,
            "aggregator": work,
            "waiter": ledger,
            "dead_letter": {
                **ledger,
                "PARCELER_LAMBDA_QUEUE_URL": self.lambda_queue_url,
                "PARCELER_CONTAINER_QUEUE_URL": self.container_queue_url,
            },
            "starter": {
                "PARCELER_STATE_MACHINE_ARN": self.state_machine_arn,
                "PARCELER_TRIGGER_BUCKETS": self.work_bucket,
                "PARCELER_TRIGGER_PREFIX": "specs/",
                "PARCELER_TRIGGER_SUFFIX": ".job.json",
            },
        }
        if role not in by_role:
            raise KeyError(f"unknown role {role!r}; roles are {ROLES}")
        return dict(by_role[role])

    def planner_settings(self) -> PlannerSettings:
        return PlannerSettings.from_env(self.env("planner"))

    def worker_settings(self) -> WorkerSettings:
        return WorkerSettings.from_env(self.env("worker"))

    def aggregator_settings(self) -> AggregatorSettings:
        return AggregatorSettings.from_env(self.env("aggregator"))

    def dead_letter_settings(self) -> DeadLetterSettings:
        return DeadLetterSettings.from_env(self.env("dead_letter"))

    def starter_settings(self) -> StarterSettings:
        return StarterSettings.from_env(self.env("starter"))


def create_local_stack(
    *,
    prefix: str = "parceler",
    lambda_visibility_seconds: int = 60,
    container_visibility_seconds: int = 300,
    max_receive_count: int = 3,
    function_timeout_seconds: int = 900,
    when_queues_ready: Callable[[LocalStack], None] | None = None,
) -> LocalStack:
    """Create the stack's resources in the emulator ``AWS_ENDPOINT_URL`` points at.

    Call inside :class:`parceler.local.emulator.LocalAws` (or with a reset moto server).

    Args:
        prefix: prefixes every physical name (bucket ``{prefix}-work``, table
            ``{prefix}-ledger``, queues ``{prefix}-lambda[-dlq]``/``{prefix}-container[-dlq]``,
            functions ``{prefix}-{role}``, state machine ``{prefix}-job``).
        lambda_visibility_seconds, container_visibility_seconds: the work queues'
            visibility timeouts (the container worker heartbeats long groups).
        max_receive_count: receives before a message moves to its DLQ.
        function_timeout_seconds: what the functions' contexts report as their timeout.
        when_queues_ready: called with the stack (state machine ARN not yet set) once the
            bucket, table and queues exist, before the functions and the state machine:
            the local mode starts its worker processes here, so their start-up overlaps
            moto's slow first CreateStateMachine (seconds of imports and parser set-up).

    Returns:
        The names, URLs and ARNs.
    """
    s3, sqs = aws.client("s3"), aws.client("sqs")
    work_bucket = f"{prefix}-work"
    s3.create_bucket(Bucket=work_bucket)
    ledger_table = f"{prefix}-ledger"
    create_table(ledger_table)

    def queue_pair(name: str, visibility: int) -> tuple[str, str]:
        dlq_url = sqs.create_queue(
            QueueName=f"{prefix}-{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        url = sqs.create_queue(
            QueueName=f"{prefix}-{name}",
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        return url, dlq_url

    lambda_url, lambda_dlq = queue_pair("lambda", lambda_visibility_seconds)
    container_url, container_dlq = queue_pair("container", container_visibility_seconds)

    draft = LocalStack(
        prefix=prefix,
        work_bucket=work_bucket,
        ledger_table=ledger_table,
        lambda_queue_url=lambda_url,
        container_queue_url=container_url,
        lambda_dead_letter_queue_url=lambda_dlq,
        container_dead_letter_queue_url=container_dlq,
        state_machine_arn="(created below)",
    )
    if when_queues_ready is not None:
        when_queues_ready(draft)
    role_arn = _role(prefix)
    lambdas = aws.client("lambda")
    arns = {
        role: _function(lambdas, prefix, role, draft.env(role), role_arn, function_timeout_seconds)
        for role in ROLES
        if role != "starter"  # it needs the state machine's ARN
    }
    definition = state_machine.definition(
        {
            "PlannerFunctionArn": arns["planner"],
            "AggregatorFunctionArn": arns["aggregator"],
            "WaiterFunctionArn": arns["waiter"],
            "LedgerTableName": ledger_table,
        }
    )
    machine_arn = aws.client("stepfunctions").create_state_machine(
        name=f"{prefix}-job", definition=definition, roleArn=role_arn, type="STANDARD"
    )["stateMachineArn"]
    draft = dataclasses.replace(draft, state_machine_arn=machine_arn)
    arns["starter"] = _function(
        lambdas, prefix, "starter", draft.env("starter"), role_arn, function_timeout_seconds
    )
    return dataclasses.replace(draft, function_arns=arns)


def _role(prefix: str) -> str:
    role = aws.client("iam").create_role(
        RoleName=f"{prefix}-local", AssumeRolePolicyDocument=_ASSUME_LAMBDA
    )
    return str(role["Role"]["Arn"])


def _function(
    lambdas: Any, prefix: str, role: str, env: dict[str, str], role_arn: str, timeout: int
) -> str:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr(
            "README.txt", "The local mode runs functions/<role>/handler.py in-process.\n"
        )
    response = lambdas.create_function(
        FunctionName=f"{prefix}-{role.replace('_', '-')}",
        Runtime=_RUNTIME,
        Role=role_arn,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=timeout,
        MemorySize=1769,
        Environment={"Variables": {**env, ROLE_VARIABLE: role}},
    )
    return str(response["FunctionArn"])
