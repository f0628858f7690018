"""The local emulator is safe for several client processes (the races docs/local-aws-facts.md measured).

Each test runs real client processes against one serialised moto server. Client retries
are off, so an HTTP 500 from moto surfaces as a failure instead of being retried away.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from parceler.aws import ledger
from parceler.local.emulator import LocalAws

pytestmark = pytest.mark.functional

_CLIENT_PRELUDE = """
import json, sys, time
import boto3
from botocore.config import Config
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=60)
args = json.loads(sys.argv[1])
"""

_RECEIVER = (
    _CLIENT_PRELUDE
    + """
sqs = boto3.client("sqs", config=NO_RETRY)
seen, empty = [], 0
print("ready", flush=True)
if args.get("gate"):
    sys.stdin.readline()  # start together: a receiver started first must not drain the queue
while empty < args["empty_polls"] and len(seen) < args.get("stop_after", 10**9):
    got = sqs.receive_message(
        QueueUrl=args["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=args["wait"]
    ).get("Messages", [])
    empty = 0 if got else empty + 1
    seen.extend(m["Body"] for m in got)
    if got and args["delete"]:
        sqs.delete_message_batch(
            QueueUrl=args["queue_url"],
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )
print(json.dumps(seen))
"""
)

_SENDER = (
    _CLIENT_PRELUDE
    + """
sqs = boto3.client("sqs", config=NO_RETRY)
for b in range(args["batches"]):
    entries = [{"Id": str(j), "MessageBody": f'{args["name"]}-{b}-{j}'} for j in range(10)]
    response = sqs.send_message_batch(QueueUrl=args["queue_url"], Entries=entries)
    assert not response.get("Failed"), response["Failed"]
print(json.dumps([]))
"""
)

_ADDER = (
    _CLIENT_PRELUDE
    + """
ddb = boto3.client("dynamodb", config=NO_RETRY)
for _ in range(args["n"]):
    ddb.update_item(
        TableName=args["table"],
        Key={"pk": {"S": "counter"}, "sk": {"S": "counter"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
print(json.dumps([]))
"""
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws(lambda_hook=False) as emulator:
        yield emulator


@pytest.fixture
def fresh(local: LocalAws) -> LocalAws:
    local.reset()
    return local


def _spawn(local: LocalAws, script: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), json.dumps(args)],
        env={**os.environ, **local.env()},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(process: subprocess.Popen[str]) -> list[str]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"client process failed:\n{err}"
    result: list[str] = json.loads(out.splitlines()[-1])
    return result


def test_two_receivers_never_share_a_message_inside_its_visibility_window(fresh: LocalAws) -> None:
    sqs = boto3.client("sqs")
    # Visibility far longer than the test: a second delivery is a race, not a redelivery.
    url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    # 200 messages: enough for three receivers started together to each get some.
    bodies = [f"m-{b}-{j}" for b in range(20) for j in range(10)]
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )
    args = {"queue_url": url, "wait": 0, "empty_polls": 3, "delete": False, "gate": True}
    receivers = [_spawn(fresh, _RECEIVER, args) for _ in range(3)]
    for process in receivers:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    for process in receivers:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    seen = [_collect(p) for p in receivers]

    everything = [body for got in seen for body in got]
    assert sorted(everything) == sorted(bodies), "a message was delivered twice, or lost"
    assert all(seen), "every receiver should have got some messages (the test must race)"


def test_concurrent_dynamodb_add_updates_lose_none(fresh: LocalAws) -> None:
    ddb = boto3.client("dynamodb")
    ledger.create_table("ledger")
    adders = [_spawn(fresh, _ADDER, {"table": "ledger", "n": 100}) for _ in range(4)]
    for process in adders:
        _collect(process)

    item = ddb.get_item(TableName="ledger", Key={"pk": {"S": "counter"}, "sk": {"S": "counter"}})[
        "Item"
    ]
    assert item["n"]["N"] == "400"


# moto spends ~50 ms per SQS call here even on a shallow queue, so the full 2,000-message
# run (docs/local-aws-facts.md's HTTP 500 reproducer) takes about a minute: opt in with
# PARCELER_STRESS=1. The default run has the same shape with 200 messages.
_STRESS_BATCHES = 100 if os.environ.get("PARCELER_STRESS") == "1" else 10


def test_thousands_of_messages_through_concurrent_senders_and_receivers_without_http_500(
    fresh: LocalAws,
) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="busy", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    # Receivers start first and long-poll (waits outside the lock), so the queue stays shallow:
    # moto's send and receive cost grows with queue depth.
    receive_args = {"queue_url": url, "wait": 1, "empty_polls": 2, "delete": True}
    receivers = [_spawn(fresh, _RECEIVER, receive_args) for _ in range(2)]
    senders = [
        _spawn(fresh, _SENDER, {"queue_url": url, "batches": _STRESS_BATCHES, "name": name})
        for name in ("a", "b")
    ]
    for process in senders:
        _collect(process)
    received = [body for process in receivers for body in _collect(process)]

    expected = {
        f"{name}-{b}-{j}" for name in ("a", "b") for b in range(_STRESS_BATCHES) for j in range(10)
    }
    assert len(received) == len(expected), "a message was delivered twice or lost"
    assert set(received) == expected


def test_a_long_poll_waits_outside_the_lock(fresh: LocalAws) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="idle")["QueueUrl"]
    poller = _spawn(
        fresh,
        _RECEIVER,
        {"queue_url": url, "wait": 10, "empty_polls": 1, "delete": True, "stop_after": 1},
    )
    assert poller.stdout is not None
    assert poller.stdout.readline().strip() == "ready"
    # If the poll held the server lock for its wait, this send would block until the poll
    # came back empty, and the poller would see nothing.
    sqs.send_message(QueueUrl=url, MessageBody="wake up")

    assert _collect(poller) == ["wake up"]


def test_a_send_ends_the_queue_s_long_poll_before_the_next_poll_interval(
    fresh: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on SQS, a long poll returns when a message arrives, not when it next looks:
    with the emulator's re-poll interval longer than the wait, only the send can end it."""
    assert fresh.app is not None
    monkeypatch.setattr(fresh.app, "_poll_interval", 3600.0)
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="woken")["QueueUrl"]
    other = sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    got: list[tuple[list[str], float]] = []

    def poll() -> None:
        started = time.monotonic()
        response = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        got.append(([m["Body"] for m in response.get("Messages", [])], time.monotonic() - started))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting (had it not started yet, it would find the message)
    sqs.send_message(QueueUrl=other, MessageBody="not for this queue")
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    poller.join(timeout=60)

    [(bodies, seconds)] = got
    assert bodies == ["wake up"]
    assert seconds < 15  # the wait (20 s) did not run out: the send ended it


def test_a_send_to_a_queue_named_in_wake_on_ends_another_queue_s_long_poll_empty(
    fresh: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker serving two queues (the local mode) long-polls one at a time: a send to
    the other ends its wait at once, with no message, so it turns to that queue."""
    from parceler import aws
    from parceler.aws import queue

    assert fresh.app is not None
    monkeypatch.setattr(fresh.app, "_poll_interval", 3600.0)
    sqs = aws.client("sqs")
    polled = sqs.create_queue(QueueName="polled")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    unwatched = sqs.create_queue(QueueName="unwatched")["QueueUrl"]
    got: list[tuple[int, float]] = []

    def poll() -> None:
        started = time.monotonic()
        messages = queue.receive(polled, wait_seconds=8, wake_on=(polled, other))
        got.append((len(messages), time.monotonic() - started))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    sqs.send_message(QueueUrl=unwatched, MessageBody="not watched: the wait goes on")
    time.sleep(0.5)
    assert poller.is_alive()
    sqs.send_message(QueueUrl=other, MessageBody="work elsewhere")
    poller.join(timeout=30)

    [(count, seconds)] = got
    assert count == 0
    assert seconds < 6  # ended by the send, not by the 8 s wait
    assert queue.receive(other, wait_seconds=0)  # the message waits where it was sent


_STARTUP_SCRIPT = """
import sys
import boto3
from parceler.local.emulator import LocalAws
from parceler.local.resources import create_local_stack

with LocalAws():
    create_local_stack()  # the state machine too: moto's interpreter is loaded
    loaded_early = "moto.ec2" in sys.modules
    environments = boto3.client("batch").describe_compute_environments()["computeEnvironments"]
    print(loaded_early, environments, "moto.ec2" in sys.modules)
"""


def test_the_emulator_skips_batch_and_ec2_models_until_something_asks_for_batch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _STARTUP_SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "[]", "True"]
