"""Read Step Functions execution histories (paged) and measure them against the AWS quotas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from parceler import aws, quotas
from parceler.quotas import ExecutionMeasure

_PAGE = 1000  # GetExecutionHistory's largest page


def read_history(execution_arn: str) -> list[dict[str, Any]]:
    """Every event of one execution, with its data (``includeExecutionData``), oldest first."""
    sfn = aws.client("stepfunctions")
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "executionArn": execution_arn,
        "maxResults": _PAGE,
        "includeExecutionData": True,
    }
    while True:
        page = sfn.get_execution_history(**request)
        events.extend(dict(event) for event in page["events"])
        token = page.get("nextToken")
        if not token:
            return events
        request["nextToken"] = token


def measure_execution(execution_arn: str) -> ExecutionMeasure:
    """Read and measure one execution's history (see :func:`parceler.quotas.measure_history`)."""
    return quotas.measure_history(read_history(execution_arn))


def check_execution(execution_arn: str) -> ExecutionMeasure:
    """Measure one execution and raise when it exceeds a quota.

    Raises:
        QuotaExceededError: naming the execution, the quota, the limit, the value and the fix.
    """
    return quotas.check(measure_execution(execution_arn), f"execution {execution_arn}")


def executions() -> Iterator[tuple[str, str]]:
    """``(execution ARN, start date)`` of every execution of every state machine in the account.

    Meant for an emulator (the tests' teardown check): on a real account this lists all.
    """
    sfn = aws.client("stepfunctions")
    for machines in sfn.get_paginator("list_state_machines").paginate():
        for machine in machines["stateMachines"]:
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            )
            for page in pages:
                for execution in page["executions"]:
                    yield str(execution["executionArn"]), str(execution["startDate"])


def check_executions(seen: set[tuple[str, str]] | None = None) -> list[ExecutionMeasure]:
    """Check every execution in the account that ``seen`` does not hold, and add it there.

    The tests' and the local mode's check at teardown: moto enforces no quota, so every
    execution it ran is measured as AWS would count it. An execution is known by its ARN and
    start date (an emulator reset reuses ARNs).

    Raises:
        QuotaExceededError: the first execution over a quota.
    """
    measures = []
    for key in list(executions()):
        if seen is not None and key in seen:
            continue
        if seen is not None:
            seen.add(key)  # before the check: one failure is reported once, not per test
        measures.append(check_execution(key[0]))
    return measures
