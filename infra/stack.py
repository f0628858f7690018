"""``ParcelerStack``: the ``Parceler`` construct with its settings from context, and outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.parceler_construct import Parceler, SourceLayout
from infra.settings import ParcelerSettings


class ParcelerStack(Stack):
    """An environment-agnostic stack (no account/region lookups: synth needs no credentials)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layout: SourceLayout | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = ParcelerSettings.from_context(self.node)
        self.parceler = Parceler(self, "Parceler", settings=settings, layout=layout)
        p = self.parceler
        outputs = {
            "WorkBucketName": p.work_bucket.bucket.bucket_name,
            "LedgerTableName": p.ledger.table.table_name,
            "LambdaQueueUrl": p.lambda_queue.queue.queue_url,
            "ContainerQueueUrl": p.container_queue.queue.queue_url,
            "JobStateMachineArn": p.job_state_machine.state_machine.state_machine_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
