"""The quota checker over hand-built execution histories (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parceler import quotas
from parceler.errors import PermanentError, QuotaExceededError


class History:
    """Builds a ``GetExecutionHistory`` event list; each event follows ``after`` (default: the last)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, after: int | None = None, **details: Any) -> int:
        event_id = len(self.events) + 1
        previous = self.events[-1]["id"] if after is None and self.events else (after or 0)
        event: dict[str, Any] = {"id": event_id, "previousEventId": previous, "type": kind}
        if details:
            key = kind[0].lower() + kind[1:] + "EventDetails"
            event[key] = details
        self.events.append(event)
        return event_id

    def state(self, name: str, payload: str = "{}", after: int | None = None) -> int:
        self.add("PassStateEntered", after, name=name, input=payload)
        return self.add("PassStateExited", name=name, output=payload)


def test_a_plain_history_counts_every_event_for_the_parent_per_type_and_state() -> None:
    h = History()
    h.add("ExecutionStarted", input="{}")
    h.state("Plan")
    h.state("Done")
    h.add("ExecutionSucceeded", output="{}")

    measure = quotas.measure_history(reversed(h.events))  # any order

    assert measure.history_events == 6
    assert measure.events_by_type == {
        "ExecutionStarted": 1, "PassStateEntered": 2, "PassStateExited": 2, "ExecutionSucceeded": 1,
    }  # fmt: skip
    assert measure.events_by_state == {"(execution)": 2, "Plan": 2, "Done": 2}
    assert (measure.largest_child_events, measure.child_executions, measure.map_runs) == (0, 0, 0)


def test_the_largest_payload_is_measured_in_utf8_bytes_and_located() -> None:
    h = History()
    h.add("ExecutionStarted", input="{}")
    h.add("TaskStateEntered", name="Plan", input="{}")
    h.add(
        "TaskSucceeded", output=json.dumps({"word": "é" * 100}, ensure_ascii=False)
    )  # 2 bytes per é
    h.add("TaskStateExited", name="Plan", output="{}")

    measure = quotas.measure_history(h.events)

    assert measure.largest_state_bytes == len('{"word": "') + 200 + len('"}')
    assert measure.largest_state == "Plan (TaskSucceeded.output)"


def test_inline_map_iterations_count_in_the_parent() -> None:
    h = History()
    h.add("ExecutionStarted", input="{}")
    h.add("MapStateEntered", name="Fan", input="{}")
    started = h.add("MapStateStarted", length=3)
    for index in range(3):
        h.add("MapIterationStarted", after=started, name="Fan", index=index)
        h.state("Inner")
        h.add("MapIterationSucceeded", name="Fan", index=index)
    h.add("MapStateSucceeded")
    h.add("MapStateExited", name="Fan", output="[]")
    h.add("ExecutionSucceeded", output="[]")

    measure = quotas.measure_history(h.events)

    assert measure.history_events == len(h.events) == 18
    assert measure.child_executions == 0


def test_distributed_map_children_chained_to_the_map_run_are_not_the_parents() -> None:
    h = History()
    h.add("ExecutionStarted", input="{}")
    h.add("MapStateEntered", name="Fan", input="{}")
    h.add("MapStateStarted", length=0)
    run = h.add("MapRunStarted", mapRunArn="arn:run")
    for n_states in (1, 3):  # two children: 2 and 6 events
        for s in range(n_states):
            h.state(f"Child{s}", after=run if s == 0 else None)
    h.add("MapRunSucceeded", after=run)
    h.add("MapStateSucceeded")
    h.add("MapStateExited", name="Fan", output="{}")
    h.add("ExecutionSucceeded", output="{}")

    measure = quotas.measure_history(h.events)

    assert measure.history_events == 8  # start, map entered/started, run started/ended, ..., end
    assert measure.map_runs == 1
    assert measure.child_executions == 2
    assert measure.largest_child_events == 6
    assert "Child0" not in measure.events_by_state


def _history_of(n_events: int, payload_bytes: int = 2) -> list[dict[str, Any]]:
    h = History()
    h.add("ExecutionStarted", input="x" * payload_bytes)
    while len(h.events) < n_events - 1:
        h.add("WaitStateEntered", name="Wait", input="{}")
    h.add("ExecutionSucceeded", output="{}")
    return h.events


def test_a_history_at_the_limit_passes_and_one_event_more_fails_naming_the_quota() -> None:
    at_limit = quotas.measure_history(_history_of(25_000))
    assert quotas.check(at_limit) is at_limit

    with pytest.raises(QuotaExceededError) as raised:
        quotas.check(quotas.measure_history(_history_of(25_001)), "execution job-1")

    assert isinstance(raised.value, PermanentError)
    assert raised.value.quota_names == (quotas.HISTORY_EVENTS.name,)
    message = str(raised.value)
    assert "execution job-1" in message
    assert "25,001 events" in message and "limit of 25,000" in message
    assert "task token" in message  # the fix
    assert "Wait 24,999" in message  # where the events went


def test_a_payload_of_256_kib_passes_and_one_byte_more_fails_naming_the_state() -> None:
    assert quotas.check(quotas.measure_history(_history_of(3, 262_144)))

    with pytest.raises(QuotaExceededError) as raised:
        quotas.check(quotas.measure_history(_history_of(3, 262_145)))

    assert raised.value.quota_names == (quotas.STATE_PAYLOAD.name,)
    assert "262,145 bytes at (execution) (ExecutionStarted.input)" in str(raised.value)
    assert "S3 URIs" in str(raised.value)


def test_an_oversized_child_history_fails_as_the_childs_not_the_parents() -> None:
    h = History()
    h.add("ExecutionStarted", input="{}")
    run = h.add("MapRunStarted", mapRunArn="arn:run")
    h.add("PassStateEntered", after=run, name="Child", input="{}")
    for _ in range(25_000):
        h.add("PassStateExited", name="Child", output="{}")
    h.add("MapRunSucceeded", after=run)
    h.add("ExecutionSucceeded", output="{}")

    measure = quotas.measure_history(h.events)
    assert measure.history_events == 4
    with pytest.raises(QuotaExceededError, match="largest Distributed Map child"):
        quotas.check(measure)


def test_the_summary_reports_the_fields_run_json_promises() -> None:
    summary = quotas.measure_history(_history_of(5, 10)).summary()

    assert summary["history_events"] == 5
    assert summary["largest_state_bytes"] == 10
    assert summary["quotas_exceeded"] == []


def test_every_quota_names_its_aws_source() -> None:
    for quota in quotas.ALL:
        assert quota.source.startswith("https://docs.aws.amazon.com/"), quota
        assert quota.limit > 0
