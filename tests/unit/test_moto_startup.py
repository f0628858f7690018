"""The local mode's changes to moto's server keep moto's answers and remove its costs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models

from parceler.local import moto_startup


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # In-process moto: an endpoint a functional test of this process left set (the
    # session-scoped moto server's) would send boto3 to the network, which is off here.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_startup.install()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _queue(name: str) -> Any:
    return models.sqs_backends["123456789012"]["us-east-1"].get_queue(name)


def test_lazy_queue_attributes_equal_moto_s_own_for_every_kind_of_queue(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 3}
    sqs.create_queue(QueueName="plain")
    sqs.create_queue(QueueName="redriven", Attributes={"RedrivePolicy": json.dumps(redrive)})
    sqs.create_queue(
        QueueName="ordered.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )
    sqs.create_queue(QueueName="keyed", Attributes={"KmsMasterKeyId": "alias/x"})
    sqs.create_queue(QueueName="policed", Attributes={"Policy": json.dumps({"Statement": []})})
    url = sqs.get_queue_url(QueueName="plain")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    eager = moto_startup.EAGER_QUEUE_ATTRIBUTES

    for name in ("dlq", "plain", "redriven", "ordered.fifo", "keyed", "policed"):
        queue = _queue(name)
        assert dict(queue.attributes) == eager.fget(queue), name
    counts = _queue("plain").attributes
    assert [counts[f"ApproximateNumberOfMessages{s}"] for s in ("", "Delayed", "NotVisible")] == [
        0,
        1,
        1,
    ]


def test_sending_does_not_read_the_queue_s_messages(sqs: Any) -> None:
    """The O(n²) send: each message used to count every message three times."""
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    reads = 0
    original = models.Message.visible

    def counted(message: Any) -> bool:
        nonlocal reads
        reads += 1
        return bool(original.fget(message))  # type: ignore[misc]

    models.Message.visible = property(counted)  # type: ignore[method-assign,assignment]
    try:
        for batch in range(20):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)],
            )
    finally:
        models.Message.visible = original  # type: ignore[method-assign]
    assert reads == 0
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10


def test_visibility_follows_the_clock(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="vis")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    handle = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    assert handle["Body"] == "m"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    time.sleep(1.1)  # the visibility timeout runs out (behaviour, not a timing assertion)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "m"
