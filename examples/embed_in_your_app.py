"""Embed parceler in your own CDK app, with your processor code shipped as a Lambda layer.

Synthesize it (no AWS credentials, no Docker) from the repository root::

    .venv/bin/python examples/embed_in_your_app.py        # writes build/example-cdk.out/

Deploy it as you deploy any CDK app (``cdk deploy --app "python examples/embed_in_your_app.py"``).
A job spec then names your code as ``"function": "custom_processor:line_stats"``.

What the example shows:

* ``Parceler`` is one construct: work bucket, ledger, queues, functions, Fargate workers,
  the job state machine, the S3 trigger, alarms. Settings are a typed model; read them
  from your own context with ``ParcelerSettings.from_context(node)`` if you prefer.
* ``ProcessorLayer`` copies your modules into a layer that the worker and aggregator
  functions import from (their third-party needs must be in the parceler layer already).
* The Fargate workers run ``Dockerfile.worker``; for your processors there, build your
  own image ``FROM`` it with your modules copied in, and pass ``worker_image=``.
* ``bundle=False`` keeps this example offline; a real deployment leaves it ``True`` so the
  parceler layer carries its dependencies (see ``infra/layer.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the infra package lives next to this folder

from infra.app import register_checks  # noqa: E402
from infra.layer import ProcessorLayer  # noqa: E402
from infra.parceler_construct import Parceler  # noqa: E402
from infra.settings import ParcelerSettings  # noqa: E402


class AnalyticsStack(cdk.Stack):
    """Your stack: parceler plus whatever else your team deploys around it."""

    def __init__(self, scope: Construct, construct_id: str, *, bundle: bool) -> None:
        super().__init__(scope, construct_id)
        processors = ProcessorLayer(
            self, "Processors", sources=[REPO_ROOT / "examples" / "custom_processor.py"]
        )
        batch = Parceler(
            self,
            "Batch",
            settings=ParcelerSettings(
                input_buckets=("my-raw-data-bucket",),  # must have EventBridge turned on
                trigger_prefix="incoming/",
                trigger_suffix=".job.json",
                worker_max_concurrency=20,  # protect whatever the processors call
                container_max_tasks=4,
                bundle=bundle,
            ),
            processor_layers=[processors.layer],
        )
        cdk.CfnOutput(self, "DropJobSpecsInto", value=batch.work_bucket.bucket.bucket_name)
        cdk.CfnOutput(
            self,
            "JobStateMachine",
            value=batch.job_state_machine.state_machine.state_machine_arn,
        )


def main() -> None:
    app = cdk.App(outdir=str(REPO_ROOT / "build" / "example-cdk.out"))
    AnalyticsStack(app, "Analytics", bundle=False)
    register_checks(app)  # the same cdk-nag checks the parceler stack passes
    app.synth()


if __name__ == "__main__":
    main()
