"""The job state machine, from the one ASL definition in ``shared/parceler/asl/job.asl.json``."""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.nag import acknowledge, arn_finding

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def definition_placeholders(definition_file: Path) -> frozenset[str]:
    """The ``${Name}`` placeholders a definition file uses."""
    return frozenset(_PLACEHOLDER.findall(definition_file.read_text(encoding="utf-8")))


class JobStateMachine(Construct):
    """A STANDARD state machine: plan → write groups (Distributed Map) → wait for the
    completion signal → reduce batches (Distributed Map) → final reduce (INTERNALS.md).

    The definition is loaded as written (the same file the local mode runs) and CDK
    substitutes ``${PlannerFunctionArn}``, ``${AggregatorFunctionArn}``,
    ``${WaiterFunctionArn}`` and ``${LedgerTableName}``. Because CDK cannot see the tasks
    inside a file definition, the rights are granted here explicitly: invoke on the three
    functions, UpdateItem on the ledger (``RecordFailure``), reading the Distributed Maps'
    item files under ``jobs/`` of the work bucket, and starting, describing and stopping
    its own child executions (a Distributed Map runs each item as one). The machine's name
    is derived from the stack's, so that this policy can name the machine without a
    dependency cycle. Execution history is logged at ``log_level`` (ERROR by default: ALL
    logs every state transition of a days-long job), with each state's data only when
    ``include_execution_data``; executions are traced with X-Ray.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition_file: Path,
        planner: lambda_.IFunction,
        aggregator: lambda_.IFunction,
        waiter: lambda_.IFunction,
        ledger: dynamodb.ITable,
        work_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        log_level: sfn.LogLevel = sfn.LogLevel.ERROR,
        include_execution_data: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if not definition_file.is_file():
            raise FileNotFoundError(
                f"{definition_file} is missing: the job state machine definition (ASL JSON)."
            )
        substitutions = {
            "PlannerFunctionArn": planner.function_arn,
            "AggregatorFunctionArn": aggregator.function_arn,
            "WaiterFunctionArn": waiter.function_arn,
            "LedgerTableName": ledger.table_name,
        }
        unknown = definition_placeholders(definition_file) - substitutions.keys()
        if unknown:
            raise ValueError(
                f"{definition_file} uses placeholders the stack does not fill: {sorted(unknown)}"
            )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention)
        stack = Stack.of(self)
        name = f"{stack.stack_name}-jobs"
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=log_level,
                include_execution_data=include_execution_data,
            ),
            tracing_enabled=True,
        )
        if log_level != sfn.LogLevel.ALL:
            acknowledge(
                self.state_machine,
                "AwsSolutions-SF1",
                "ALL logs every state transition of a job that waits for days (the whole state "
                "on each one with execution data); errors are logged, and the setting "
                "parceler:stateMachineLogLevel=ALL turns it up for debugging.",
            )
        for fn in (planner, aggregator, waiter):
            fn.grant_invoke(self.state_machine)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[ledger.table_arn])
        )
        item_files = work_bucket.arn_for_objects("jobs/*")
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[item_files])
        )
        machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.arn_by_name = machine_arn
        """The machine's ARN built from its name: for grants the machine itself depends on
        (the waiter it invokes signals it), which a ``Ref`` would turn into a cycle."""
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn])
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions],
            )
        )
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::{arn_finding(self, item_files)}]",
            "the Distributed Maps read their item files (plan slices, aggregation batches) "
            "from the work area's jobs/ folder.",
        )
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::{arn_finding(self, executions)}]",
            "a Distributed Map describes and stops the child executions it starts, which are "
            "executions of this machine only.",
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing and CloudWatch Logs delivery (logs:CreateLogDelivery and friends) "
            "support no resource-level permissions.",
        )
        for fn, role in ((planner, "Planner"), (aggregator, "Aggregator"), (waiter, "Waiter")):
            acknowledge(
                self.state_machine,
                f"AwsSolutions-IAM5[Resource::{arn_finding(self, fn.function_arn)}:*]",
                f"grant_invoke on the {role} function includes its versions and aliases "
                "(ARN:*); the state machine invokes nothing else.",
            )
