"""Functional fixtures: the resources a deployed stack has, created in moto per test."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from parceler import aws, history
from parceler.aws import ledger
from parceler.aws.queue import receive
from parceler.messages import ReceivedMessage
from parceler.settings import DeadLetterSettings, PlannerSettings, WorkerSettings
from parceler.spec import JobSpec

WORK_BUCKET = "parceler-work"
LEDGER_TABLE = "parceler-ledger"


@dataclass(frozen=True)
class Resources:
    """Names and settings of one emulated deployment."""

    planner: PlannerSettings
    worker: WorkerSettings
    dead_letter: DeadLetterSettings
    lambda_queue_url: str
    container_queue_url: str
    lambda_dlq_url: str
    container_dlq_url: str
    env: dict[str, str]


def _queue(name: str, *, visibility: int, dlq_arn: str | None, max_receive: int) -> str:
    sqs = aws.client("sqs")
    attrs = {"VisibilityTimeout": str(visibility)}
    if dlq_arn is not None:
        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
        )
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


def _arn(url: str) -> str:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def create_resources(*, visibility: int = 30, max_receive: int = 3) -> Resources:
    """Create the work bucket, the ledger table and both work queues with their DLQs."""
    aws.client("s3").create_bucket(Bucket=WORK_BUCKET)
    ledger.create_table(LEDGER_TABLE)
    urls: dict[str, str] = {}
    for role in ("lambda", "container"):
        dlq = _queue(f"parceler-{role}-dlq", visibility=visibility, dlq_arn=None, max_receive=0)
        urls[f"{role}_dlq"] = dlq
        urls[role] = _queue(
            f"parceler-{role}", visibility=visibility, dlq_arn=_arn(dlq), max_receive=max_receive
        )
    env = {
        "PARCELER_LEDGER_TABLE": LEDGER_TABLE,
        "PARCELER_WORK_BUCKET": WORK_BUCKET,
        "PARCELER_LAMBDA_QUEUE_URL": urls["lambda"],
        "PARCELER_CONTAINER_QUEUE_URL": urls["container"],
    }
    return Resources(
        planner=PlannerSettings.from_env(env),
        worker=WorkerSettings.from_env(env),
        dead_letter=DeadLetterSettings.from_env(env),
        lambda_queue_url=urls["lambda"],
        container_queue_url=urls["container"],
        lambda_dlq_url=urls["lambda_dlq"],
        container_dlq_url=urls["container_dlq"],
        env=env,
    )


@pytest.fixture
def make_resources(moto: str) -> Callable[..., Resources]:
    """A factory: ``make_resources(visibility=2, max_receive=2)`` for short timeouts."""
    return create_resources


@pytest.fixture
def resources(make_resources: Callable[..., Resources]) -> Resources:
    """The default deployment: 30 s visibility, maxReceiveCount 3."""
    return make_resources()


SOURCE_BUCKET = "parceler-src"


def seed_source(n_files: int, *, names: dict[int, str] | None = None) -> str:
    """Put ``n_files`` small text objects under ``s3://parceler-src/data/``; return the prefix.

    ``names`` renames chosen files (e.g. ``{3: "poison.txt"}``).
    """
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    for i in range(n_files):
        name = (names or {}).get(i, f"f{i:04d}.txt")
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"data/{name}", Body=f"line {i}\nsecond\n".encode())
    return f"s3://{SOURCE_BUCKET}/data/"


def group_spec(
    function: str = "copy_files", *, files_per_group: int = 1, **extra: object
) -> JobSpec:
    """A job spec running ``tests.functional.procs:<function>`` once per group."""
    return JobSpec.model_validate(
        {
            "source": f"s3://{SOURCE_BUCKET}/data/",
            "partitioning": {"max_files": files_per_group},
            "processor": {
                "kind": "python",
                "function": f"tests.functional.procs:{function}",
                "per": "group",
            },
            **extra,
        }
    )


def drain(queue_url: str, *, visibility: int = 120) -> list[ReceivedMessage]:
    """Receive every visible message of a queue (hiding them for ``visibility`` seconds)."""
    got: list[ReceivedMessage] = []
    while True:
        batch = receive(queue_url, max_messages=10, wait_seconds=0, visibility_timeout=visibility)
        if not batch:
            return got
        got.extend(batch)


# Every execution a functional test ran on the emulator is checked at its teardown against
# the AWS quotas moto ignores (25,000 history events, 256 KiB per state). A test that
# exceeds one on purpose says so with @pytest.mark.exceeds_quotas.
_CHECKED_EXECUTIONS: set[tuple[str, str]] = set()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "exceeds_quotas: the test's executions exceed an AWS quota on purpose"
    )


@pytest.fixture(autouse=True)
def _executions_fit_aws_quotas(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint.startswith("http://127.0.0.1:"):
        return  # no emulator started in this process yet: nothing ran an execution
    seen = _CHECKED_EXECUTIONS
    if request.node.get_closest_marker("exceeds_quotas") is not None:
        seen.update(history.executions())
        return
    history.check_executions(seen)
