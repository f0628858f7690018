"""Executions on moto measured as AWS counts them, and failing loudly over an AWS quota.

Tiny throwaway definitions, executed by moto's Step Functions interpreter: they pin down
what moto 5.2.5 records (inline Map iterations in the parent's history, Distributed Map
children nowhere) so that the checker counts what AWS would count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from parceler import aws, history, quotas
from parceler.aws import ledger
from parceler.errors import QuotaExceededError
from parceler.execution import follow
from parceler.local.emulator import LocalAws

pytestmark = pytest.mark.functional

ROLE = "arn:aws:iam::123456789012:role/parceler-test"
BUCKET = "parceler-quota-items"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws(lambda_hook=False, poll_interval=0.05) as emulator:
        yield emulator


@pytest.fixture
def clean(local: LocalAws) -> LocalAws:
    local.reset()
    return local


def run(name: str, definition: dict[str, Any], document: Any = None) -> str:
    """Create a state machine, run one execution to its end and return its ARN."""
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name=f"{name}-1", input=json.dumps(document)
    )["executionArn"]
    deadline = time.monotonic() + 60  # against hangs only
    while sfn.describe_execution(executionArn=arn)["status"] not in TERMINAL:
        assert time.monotonic() < deadline, f"{name} did not end"
        time.sleep(0.05)
    return str(arn)


def oversized_pass(payload_bytes: int) -> dict[str, Any]:
    # The Result is a JSON string: its quotes add 2 bytes to the state's output.
    return {
        "StartAt": "Big",
        "States": {"Big": {"Type": "Pass", "Result": "x" * (payload_bytes - 2), "End": True}},
    }


def test_inline_map_iterations_land_in_the_parents_history(clean: LocalAws) -> None:
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Inner",
                    "States": {"Inner": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }

    measure = history.measure_execution(run("inline", definition, {"items": [1, 2, 3]}))

    # start, map entered/started, 3 x (iteration started, pass entered/exited, succeeded),
    # map succeeded/exited, end: AWS records inline iterations in the parent too.
    assert measure.history_events == 18
    assert measure.events_by_type["MapIterationStarted"] == 3
    assert (measure.map_runs, measure.child_executions) == (0, 0)


def test_distributed_map_children_leave_only_map_run_events_in_the_parent(
    clean: LocalAws,
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    items = [{"batch": i} for i in range(5)]
    s3.put_object(Bucket=BUCKET, Key="batches.json", Body=json.dumps(items).encode())
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": BUCKET, "Key": "batches.json"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Inner",
                    "States": {
                        "Inner": {"Type": "Pass", "Next": "Inner2"},
                        "Inner2": {"Type": "Pass", "End": True},
                    },
                },
                "MaxConcurrency": 2,
                "ResultPath": "$.batches",
                "End": True,
            }
        },
    }

    arn = run("distributed", definition, {})
    measure = history.measure_execution(arn)

    # The children ran (their outputs are the Map's result) ...
    output = json.loads(aws.client("stepfunctions").describe_execution(executionArn=arn)["output"])
    assert output["batches"] == items
    # ... but moto 5.2.5 gives them a private event manager: the parent shows only the
    # MapRun events, as on AWS, and no child history is visible.
    assert measure.events_by_type == {
        "ExecutionStarted": 1, "MapStateEntered": 1, "MapStateStarted": 1, "MapRunStarted": 1,
        "MapRunSucceeded": 1, "MapStateSucceeded": 1, "MapStateExited": 1,
        "ExecutionSucceeded": 1,
    }  # fmt: skip
    assert (measure.map_runs, measure.child_executions, measure.largest_child_events) == (1, 0, 0)


def test_a_state_just_under_256_kib_passes_the_check(clean: LocalAws) -> None:
    arn = run("fits", oversized_pass(quotas.STATE_PAYLOAD.limit - 1024))

    measure = history.check_execution(arn)

    assert measure.largest_state_bytes == quotas.STATE_PAYLOAD.limit - 1024


@pytest.mark.exceeds_quotas
def test_a_state_over_256_kib_fails_the_check_naming_the_quota_and_the_state(
    clean: LocalAws,
) -> None:
    arn = run("oversized", oversized_pass(quotas.STATE_PAYLOAD.limit + 1))

    with pytest.raises(QuotaExceededError) as raised:
        history.check_execution(arn)

    assert raised.value.quota_names == (quotas.STATE_PAYLOAD.name,)
    assert "262,145 bytes at Big (PassStateExited.output)" in str(raised.value)
    assert arn in str(raised.value)


@pytest.mark.exceeds_quotas
def test_follow_raises_in_the_local_mode_and_reports_against_aws(clean: LocalAws) -> None:
    table = "parceler-quota-ledger"
    ledger.create_table(table)
    arn = run("oversized", oversized_pass(quotas.STATE_PAYLOAD.limit + 1))

    reported = follow(arn, "oversized-1", ledger.Ledger(table), poll_seconds=0.05)
    with pytest.raises(QuotaExceededError):
        follow(arn, "oversized-1", ledger.Ledger(table), poll_seconds=0.05, enforce_quotas=True)

    summary = reported.to_json()["state_machine"]
    assert summary["history_events"] == 4
    assert summary["largest_state_bytes"] == quotas.STATE_PAYLOAD.limit + 1
    assert summary["quotas_exceeded"] == [quotas.STATE_PAYLOAD.name]
