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
    # A functional test earlier in this process may have pointed boto3 at its moto server:
    # with AWS_ENDPOINT_URL set, this client would bypass mock_aws and reach the network.
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


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # as for ``sqs`` above
    moto_startup.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="ledger",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "job#a"}, "sk": {"S": sk}}


def test_a_cancelled_transaction_still_rolls_every_write_back(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="ledger", Item={**_key("job"), "n": {"N": "1"}})
    dynamodb.put_item(TableName="ledger", Item={**_key("g1"), "s": {"S": "RUNNING"}})
    before = dynamodb.scan(TableName="ledger")["Items"]

    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "ledger",
                        "Key": _key("job"),
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": "ledger", "Item": {**_key("g2"), "s": {"S": "NEW"}}}},
                {"Delete": {"TableName": "ledger", "Key": _key("g1")}},
                {
                    "ConditionCheck": {
                        "TableName": "ledger",
                        "Key": _key("absent"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    assert dynamodb.scan(TableName="ledger")["Items"] == before


def test_a_transaction_copies_only_the_items_it_names(dynamodb: Any) -> None:
    """The O(n²) commit: each transaction deep-copied every item of the table."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    for i in range(200):
        dynamodb.put_item(TableName="ledger", Item={**_key(f"g{i:03d}"), "s": {"S": "RUNNING"}})
    copies = 0
    original = Item.__deepcopy__

    def counted(item: Any, memo: dict[int, Any]) -> Any:
        nonlocal copies
        copies += 1
        return original(item, memo)

    Item.__deepcopy__ = counted  # type: ignore[method-assign]
    tables_made = len(Table.instances_tracked)  # type: ignore[attr-defined]
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "ledger",
                        "Key": _key("g007"),
                        "UpdateExpression": "SET s = :done",
                        "ExpressionAttributeValues": {":done": {"S": "SUCCEEDED"}},
                    }
                }
            ]
        )
    finally:
        Item.__deepcopy__ = original  # type: ignore[method-assign]
    assert copies <= 2  # the backup of g007, and moto's own copy of an updated item
    assert len(Table.instances_tracked) == tables_made  # type: ignore[attr-defined]
    item = dynamodb.get_item(TableName="ledger", Key=_key("g007"))["Item"]
    assert item["s"] == {"S": "SUCCEEDED"}


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # as for ``sqs`` above
    moto_startup.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


_RETRIED = {
    "StartAt": "Read",
    "States": {
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": "missing", "Key": {"pk": {"S.$": "$.key"}}},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "GaveUp"}],
            "End": True,
        },
        "GaveUp": {"Type": "Pass", "End": True},
    },
}


def _finished(sfn: Any, arn: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return list(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])


def test_executions_share_one_parse_and_still_count_their_own_retries(sfn: Any) -> None:
    """The parsed program is shared by every execution of a definition: a retry count kept
    in the program instead of the execution would let the second execution retry less."""
    machine = sfn.create_state_machine(
        name="retried",
        definition=json.dumps(_RETRIED),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    parses = moto_startup.parsed_program.cache_info()

    attempts = []
    for name in ("first", "second"):
        arn = sfn.start_execution(
            stateMachineArn=machine, name=name, input=json.dumps({"key": name})
        )["executionArn"]
        events = _finished(sfn, arn)
        assert events[-1]["type"] == "ExecutionSucceeded"  # caught, after its retry
        attempts.append(sum(e["type"] == "TaskScheduled" for e in events))

    assert attempts == [2, 2]
    after = moto_startup.parsed_program.cache_info()
    assert after.hits - parses.hits >= 1  # the second execution did not parse again


def test_creating_a_machine_and_running_it_parse_its_definition_once(sfn: Any) -> None:
    definition = json.dumps({**_RETRIED, "Comment": "parsed once"})  # a text no test parsed
    before = moto_startup.parsed_program.cache_info()
    machine = sfn.create_state_machine(
        name="once", definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    events = _finished(sfn, sfn.start_execution(stateMachineArn=machine)["executionArn"])

    assert events[-1]["type"] == "ExecutionSucceeded"
    assert moto_startup.parsed_program.cache_info().misses - before.misses == 1


def test_an_invalid_definition_is_still_rejected_at_creation(sfn: Any) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match=r"ASLParserException.*Nope"):  # as moto says it
        sfn.create_state_machine(
            name="broken",
            definition=json.dumps({"StartAt": "Here", "States": {"Here": {"Type": "Nope"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )


def test_a_shared_program_has_every_heap_key_drawn_before_it_is_shared() -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    moto_startup.install()
    program = moto_startup.parsed_program(json.dumps(_RETRIED))
    components = [c for c in moto_startup._components(program) if isinstance(c, EvalComponent)]

    assert len(components) > 5
    assert all(c.__dict__.get("_EvalComponent__heap_key") for c in components)
    assert moto_startup.parsed_program(json.dumps(_RETRIED)) is program


def test_the_interpreter_s_clients_and_paths_are_made_once(sfn: Any) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import json_path

    machine = sfn.create_state_machine(
        name="pass",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    _finished(sfn, sfn.start_execution(stateMachineArn=machine, name="p")["executionArn"])

    assert lambda_eval_utils.boto_client_for is moto_startup.shared_boto_client
    one = moto_startup.shared_boto_client("us-east-1", "lambda")
    assert moto_startup.shared_boto_client(region="us-east-1", service="lambda") is one
    assert moto_startup.shared_boto_client("eu-west-1", "lambda") is not one
    assert json_path.parse("$.a.b") is json_path.parse("$.a.b")
    assert json_path.extract_json("$.a.b", {"a": {"b": 7}}) == 7


def test_every_session_in_the_process_shares_one_model_loader_per_search_path() -> None:
    import botocore.session
    from moto.core import utils

    moto_startup.install()
    first = botocore.session.get_session().get_component("data_loader")
    assert botocore.session.get_session().get_component("data_loader") is first
    assert utils.create_loader() is utils.create_loader()  # moto's own (with its extras)
    assert utils.create_loader() is not first  # a different search path: its own loader
