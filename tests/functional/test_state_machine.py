"""The real job definition, executed by moto's Step Functions with the real handlers in-process.

The planner and the aggregator run through the in-process Lambda hook; groups are processed
by the container worker loop in threads (both queues) and dead letters by the DLQ core, as
in the local mode. Each job waits at least one ledger poll (5 s), so each test takes seconds.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from parceler import aws, container_worker, storage
from parceler.aws.ledger import Ledger
from parceler.dead_letter import dead_letter
from parceler.errors import PermanentError
from parceler.execution import follow, start_job
from parceler.history import measure_execution
from parceler.local.emulator import LocalAws
from parceler.local.resources import LocalStack, create_local_stack
from parceler.messages import GroupMessage, encode
from parceler.quotas import ExecutionMeasure
from parceler.settings import DeadLetterSettings
from parceler.spec import parse_spec
from parceler.workarea import JobArea

pytestmark = pytest.mark.functional

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def lines_or_poison(file: Any) -> dict[str, int]:
    """A per-file python processor: counts lines, fails permanently on a file saying POISON."""
    with file.open() as stream:
        data = stream.read()
    if b"POISON" in data:
        raise PermanentError(f"poisoned input {file.uri}")
    return {"lines": data.count(b"\n")}


def sum_lines(values: list[dict[str, int]]) -> dict[str, int]:
    """The matching reducer (a python reducer gets every value at once)."""
    return {"lines": sum(v["lines"] for v in values)}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws(poll_interval=0.05) as emulator:
        yield emulator


class Workers:
    """Container worker loops on both work queues plus a dead-letter drain, in threads."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Workers:
        settings = self.stack.worker_settings()
        for url in (self.stack.lambda_queue_url, self.stack.container_queue_url):
            options = container_worker.RunnerOptions(
                queue_url=url, wait_seconds=1, retry_base_seconds=0.1
            )
            thread = threading.Thread(
                target=container_worker.run_loop,
                args=(settings, options),
                kwargs={"stop": self.stop},
                daemon=True,
            )
            self.threads.append(thread)
        self.threads.append(threading.Thread(target=self._drain_dead_letters, daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def _drain_dead_letters(self) -> None:
        sqs = boto3.client("sqs")
        settings = self.stack.dead_letter_settings()
        urls = (self.stack.lambda_dead_letter_queue_url, self.stack.container_dead_letter_queue_url)
        while not self.stop.is_set():
            for url in urls:
                for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get(
                    "Messages", []
                ):
                    dead_letter(message["Body"], settings)
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            self.stop.wait(0.2)

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


@pytest.fixture
def stack(local: LocalAws) -> Iterator[LocalStack]:
    local.reset()
    created = create_local_stack(prefix="t", lambda_visibility_seconds=30)
    with Workers(created):
        yield created


def _files(folder: Path, contents: list[str]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(contents):
        (folder / f"part-{i:03d}.txt").write_text(text)
    return str(folder)


def _spec(source: str, *, tolerated: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {
        "source": source,
        "partitioning": {"max_files": 1},
        "processor": {"kind": "python", "function": f"{__name__}:lines_or_poison"},
        "reducer": {"kind": "python", "function": f"{__name__}:sum_lines"},
        "limits": {"tolerated_failure_percent": tolerated},
        **extra,
    }


def _run(stack: LocalStack, name: str, document: dict[str, Any] | str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    text = document if isinstance(document, str) else json.dumps(document)
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name, input=text)[
        "executionArn"
    ]
    return _wait(arn)


def _wait(execution_arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        described = dict(sfn.describe_execution(executionArn=execution_arn))
        if described["status"] in TERMINAL:
            return described
        time.sleep(0.2)
    pytest.fail(f"execution {execution_arn} did not finish")


def _job_item(stack: LocalStack, job_id: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=stack.ledger_table, Key={"pk": {"S": f"job#{job_id}"}, "sk": {"S": "job"}}
    )["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def _result(stack: LocalStack, job_id: str) -> dict[str, Any]:
    uri = f"s3://{stack.work_bucket}/jobs/{job_id}/result.json"
    summary: dict[str, Any] = json.loads(storage.read_bytes(uri))
    return summary


def test_a_happy_job_succeeds_with_the_reduced_value(stack: LocalStack, tmp_path: Path) -> None:
    source = _files(tmp_path / "in", ["a\nb\n", "c\n", "d\ne\nf\n"])

    execution = _run(stack, "happy", _spec(source))

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert (output["n_groups"], output["groups_succeeded"], output["groups_failed"]) == (3, 3, 0)
    value = json.loads(storage.read_bytes(output["value_uri"]))
    assert value == {"lines": 6}
    result = _result(stack, "happy")
    assert result["details"]["value"] == {"lines": 6}
    master = json.loads(storage.read_bytes(f"s3://{stack.work_bucket}/jobs/happy/manifest.json"))
    assert result["parent_fingerprint"] == master["fingerprint"]
    job = _job_item(stack, "happy")
    assert (job["status"], job["n_groups"]) == ("SUCCEEDED", "3")
    assert Ledger(stack.ledger_table).get_job("happy").remaining == 0


def test_a_failing_group_within_tolerance_succeeds_and_is_listed(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = _files(tmp_path / "in", ["a\n", "POISON\n", "b\n", "c\n"])

    execution = _run(stack, "tolerated", _spec(source, tolerated=25.0))

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert (output["groups_succeeded"], output["groups_failed"]) == (3, 1)
    assert "failed_groups" not in output  # lists live in S3, never in the state
    [failed] = json.loads(storage.read_bytes(output["failures_uri"]))
    assert failed["status"] == "FAILED" and "poisoned input" in (failed["cause"] or "")
    assert json.loads(storage.read_bytes(output["value_uri"])) == {"lines": 3}
    assert _job_item(stack, "tolerated")["status"] == "SUCCEEDED"


def test_failures_over_tolerance_fail_the_job(stack: LocalStack, tmp_path: Path) -> None:
    source = _files(tmp_path / "in", ["a\n", "POISON\n", "b\n", "c\n"])

    execution = _run(stack, "intolerant", _spec(source, tolerated=10.0))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "Parceler.ToleranceExceeded"
    job = _job_item(stack, "intolerant")
    assert job["status"] == "FAILED"
    assert "1 of 4 groups failed" in job["cause"]
    assert _result(stack, "intolerant")["details"]["groups_failed"] == 1


def test_a_bad_console_input_fails_at_once_naming_the_field(
    stack: LocalStack, tmp_path: Path
) -> None:
    spec = _spec(str(tmp_path), partitioning={"max_files": 1})
    spec["limits"] = {"tolerated_failure_percnt": 5}  # a typo

    execution = _run(stack, "typo", spec)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "SpecError"
    assert "tolerated_failure_percnt" in execution["cause"]
    job = _job_item(stack, "typo")
    assert (job["status"], job["error"]) == ("FAILED", "SpecError")
    assert "tolerated_failure_percnt" in job["cause"]


def test_a_planner_error_fails_the_job_with_its_cause_in_the_ledger(
    stack: LocalStack, tmp_path: Path
) -> None:
    execution = _run(stack, "nosource", _spec(str(tmp_path / "does-not-exist")))

    assert execution["status"] == "FAILED"
    job = _job_item(stack, "nosource")
    assert job["status"] == "FAILED"
    assert job["error"] == execution["error"]
    assert "does-not-exist" in job["cause"]


def test_a_duplicate_start_is_refused_and_the_job_runs_once(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = _files(tmp_path / "in", ["a\n", "b\n"])
    sfn = boto3.client("stepfunctions")
    assert _run(stack, "once", _spec(source))["status"] == "SUCCEEDED"

    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name="once", input=json.dumps(_spec(source))
        )

    executions = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == ["once"]
    groups = list(Ledger(stack.ledger_table).list_groups("once"))
    assert [g.attempt for g in groups] == [1, 1]


def test_the_starter_turns_a_spec_upload_into_one_execution(
    stack: LocalStack, tmp_path: Path
) -> None:
    from parceler.starter import start

    source = _files(tmp_path / "in", ["a\n"])
    s3 = boto3.client("s3")
    put = s3.put_object(
        Bucket=stack.work_bucket,
        Key="specs/nightly.job.json",
        Body=json.dumps(_spec(source)).encode(),
    )
    event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": stack.work_bucket},
            "object": {
                "key": "specs/nightly.job.json",
                "etag": put["ETag"].strip('"'),
                "sequencer": "01",
            },
        },
    }

    first = start(event, stack.starter_settings())
    assert first.status == "started" and first.execution_arn
    assert _wait(first.execution_arn)["status"] == "SUCCEEDED"
    again = start(event, stack.starter_settings())

    assert (again.status, again.job_id) == ("duplicate", first.job_id)
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=stack.state_machine_arn
    )
    assert [e["name"] for e in executions["executions"]] == [first.job_id]


# --- scale: nothing in the history or the state grows with groups, failures or time -------


def sleep_lines(file: Any) -> dict[str, int]:
    """Count lines after sleeping the seconds the file's name says (``sleep-3-….txt``)."""
    time.sleep(float(file.basename.split("-")[1]))
    return {"lines": file.read_bytes().count(b"\n")}


def _measure(stack: LocalStack, name: str) -> ExecutionMeasure:
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    return measure_execution(arn)


def test_history_and_state_stay_flat_as_groups_slices_and_shards_grow(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 groups in 2 slices, 2 shards and 2 aggregation batches against 30 groups in 8
    slices, 10 shards and 6 batches: the parent's history and its largest state are the
    same size (the fan-outs are Distributed Maps over S3 item files, whose children AWS
    counts in their own histories)."""
    monkeypatch.setattr("parceler.planner.SLICE_GROUPS", 4)
    monkeypatch.setattr("parceler.aws.ledger.GROUPS_PER_SHARD", 3)
    monkeypatch.setattr("parceler.aggregator.AGGREGATION_BATCH", 5)
    small = _files(tmp_path / "small", ["a\n"] * 6)
    large = _files(tmp_path / "large", ["a\n"] * 30)

    assert _run(stack, "six-groups", _spec(small))["status"] == "SUCCEEDED"
    assert _run(stack, "thirty-groups", _spec(large))["status"] == "SUCCEEDED"

    few, many = _measure(stack, "six-groups"), _measure(stack, "thirty-groups")
    assert Ledger(stack.ledger_table).get_job("thirty-groups").n_shards == 10
    assert abs(many.history_events - few.history_events) <= 2, (few, many)
    assert many.map_runs == few.map_runs == 2
    assert max(few.largest_state_bytes, many.largest_state_bytes) <= 16 * 1024
    # The job names (3 characters apart, in several URIs) and the counts' digits, not lists:
    assert abs(many.largest_state_bytes - few.largest_state_bytes) <= 32


def test_a_job_of_one_slice_and_one_batch_runs_no_fan_out(
    stack: LocalStack, tmp_path: Path
) -> None:
    """The Plan task writes a one-slice plan itself and PrepareAggregation reduces a lone
    batch: no Distributed Map runs (a child execution is latency on AWS too), and the job
    ends as the fanned-out one would."""
    source = _files(tmp_path / "in", ["a\n", "b\nc\n", "POISON\n"])

    execution = _run(stack, "small", _spec(source, tolerated=50.0))

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert (output["n_groups"], output["groups_succeeded"], output["groups_failed"]) == (3, 2, 1)
    assert _result(stack, "small")["details"]["value"] == {"lines": 3}
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":small"
    assert _entered(arn, "WaitForGroups") and _entered(arn, "FinalReduce")
    assert not _entered(arn, "WriteGroups") and not _entered(arn, "ReduceBatches")
    assert _measure(stack, "small").map_runs == 0


def test_one_slice_with_several_batches_fans_out_the_reduce_only(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("parceler.aggregator.AGGREGATION_BATCH", 2)
    source = _files(tmp_path / "in", ["a\n", "b\nc\n", "d\n"])

    execution = _run(stack, "two-batches", _spec(source))

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert _result(stack, "two-batches")["details"]["value"] == {"lines": 4}
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":two-batches"
    assert not _entered(arn, "WriteGroups") and _entered(arn, "ReduceBatches")
    assert _measure(stack, "two-batches").map_runs == 1


def test_following_a_job_reads_its_ledger_item_once_without_a_progress_display(
    stack: LocalStack, tmp_path: Path
) -> None:
    """A follower polls the execution; the job item (two ledger reads) is for a progress
    display, and is read once at the end when there is none."""
    source = _files(tmp_path / "in", ["a\n", "b\n"])
    reads: list[str] = []

    def count(**_: Any) -> None:
        if threading.current_thread() is threading.main_thread():  # not the handlers'
            reads.append("GetItem")

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb.GetItem", count, unique_id="count-reads")
    try:
        arn = start_job(parse_spec(_spec(source)), "followed", stack.state_machine_arn)
        result = follow(arn, "followed", Ledger(stack.ledger_table), poll_seconds=0.01)
    finally:
        events.unregister("before-call.dynamodb.GetItem", unique_id="count-reads")

    assert result.status == "SUCCEEDED" and result.groups_succeeded == 2
    assert reads == ["GetItem"]


def test_a_long_wait_adds_no_history(stack: LocalStack, tmp_path: Path) -> None:
    """The wait is a callback, not a poll: a job whose groups take 12 s records no more
    events than one whose groups take 0 s."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "sleep-0-a.txt").write_text("a\n")
    (folder / "sleep-0-b.txt").write_text("b\n")
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sleep-12-a.txt").write_text("a\n")
    (slow / "sleep-12-b.txt").write_text("b\n")
    spec = {
        **_spec(str(folder)),
        "processor": {"kind": "python", "function": f"{__name__}:sleep_lines"},
    }
    quick = _run(stack, "quick", spec)
    assert quick["status"] == "SUCCEEDED"
    assert _run(stack, "slow", {**spec, "source": str(slow)})["status"] == "SUCCEEDED"

    assert _measure(stack, "slow").history_events - _measure(stack, "quick").history_events <= 2


def test_a_lost_completion_signal_still_ends_the_job(stack: LocalStack, tmp_path: Path) -> None:
    """The first SendTaskSuccess (from the last commit) is dropped on its way: the wait's
    re-check period runs out, the waiter recounts the ledger and ends the wait itself."""
    dropped: list[str] = []

    def drop_first(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if dropped:
            return None
        dropped.append(json.loads(params["body"])["taskToken"])
        return _Accepted(), {}

    events = aws.client("stepfunctions").meta.events
    events.register("before-call.sfn.SendTaskSuccess", drop_first, unique_id="drop")
    try:
        spec = _spec(_files(tmp_path / "in", ["a\n", "b\n"]), limits={"recheck_seconds": 3})
        execution = _run(stack, "lost-signal", spec)
    finally:
        events.unregister("before-call.sfn.SendTaskSuccess", unique_id="drop")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert len(dropped) == 1
    measure = _measure(stack, "lost-signal")
    assert measure.events_by_type.get("TaskTimedOut", 0) >= 1
    assert json.loads(execution["output"])["groups_succeeded"] == 2


@dataclass
class _Accepted:
    status_code: int = 200


def _entered(execution_arn: str, state: str) -> bool:
    events = boto3.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000, reverseOrder=True
    )["events"]
    return any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events)


def _dead_letter_groups(
    settings: DeadLetterSettings, bucket: str, job_id: str, indexes: range
) -> list[str]:
    """End groups ``indexes`` of a job through the dead-letter core (in a pool process)."""
    job = JobArea(bucket, job_id)
    return [
        dead_letter(encode(GroupMessage(summary_uri=job.group(i).manifest)), settings).status
        for i in indexes
    ]


@pytest.mark.scale
def test_a_ten_thousand_group_job_keeps_its_history_and_state_small(
    local: LocalAws, tmp_path: Path
) -> None:
    """10,000 groups through the real definition, planner, waiter and aggregator: 10 plan
    slices, 40 ledger shards, 100 aggregation batches. The groups end through the dead-letter
    core (as if every message had exhausted its receives), from two processes, instead of
    10,000 worker deliveries (8 calls each on moto); what is measured here, the parent's
    history and states, does not depend on how a group ends.
    """
    local.reset()
    stack = create_local_stack(prefix="t", lambda_visibility_seconds=30)
    n_groups = 10_000
    listing = tmp_path / "listing.csv"
    listing.write_text(
        "uri,size\n" + "".join(f"s3://data/part-{i:05d}.txt,{100 + i}\n" for i in range(n_groups))
    )
    # No re-check during the minutes this takes: the re-check loop's events grow with the
    # wait, not the groups (test_a_wait_longer_than_several_rechecks_...).
    spec = _spec(str(listing), limits={"tolerated_failure_percent": 100.0, "recheck_seconds": 3600})
    sfn = boto3.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name="ten-thousand", input=json.dumps(spec)
    )["executionArn"]

    deadline = time.monotonic() + 1200  # a hang guard: planning writes 20,000 objects on moto
    while not _entered(arn, "WaitForGroups"):
        assert time.monotonic() < deadline, "the plan was not written"
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        time.sleep(1)
    settings = stack.dead_letter_settings()
    halves = (range(0, n_groups, 2), range(1, n_groups, 2))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        ended = pool.map(
            _dead_letter_groups, [settings] * 2, [stack.work_bucket] * 2, ["ten-thousand"] * 2,
            halves,
        )  # fmt: skip
        assert [status for half in ended for status in half] == ["failed"] * n_groups
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.5)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert (output["n_groups"], output["groups_failed"]) == (n_groups, n_groups)
    assert Ledger(stack.ledger_table).get_job("ten-thousand").n_shards == 40
    measure = _measure(stack, "ten-thousand")
    assert measure.largest_state_bytes <= 16 * 1024, measure.largest_state
    assert measure.history_events <= 60, measure.events_by_state
    assert measure.map_runs == 2
    failures = json.loads(storage.read_bytes(output["failures_uri"]))
    assert len(failures) == n_groups


def slow_lines(file: Any) -> dict[str, int]:
    """Counts lines after sleeping the seconds the file's first line says."""
    data = file.read_bytes()
    time.sleep(float(data.split(b"\n", 1)[0]))
    return {"lines": data.count(b"\n")}


def test_a_wait_longer_than_several_rechecks_ends_only_when_the_groups_do(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Each re-check timeout recounts the ledger and waits again, twice as long; none ends
    the wait early."""
    spec = _spec(
        _files(tmp_path / "in", ["7\n", "7\n"]),
        processor={"kind": "python", "function": f"{__name__}:slow_lines"},
        limits={"recheck_seconds": 2},
    )

    execution = _run(stack, "long-wait", spec)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"])["groups_succeeded"] == 2
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":long-wait"
    events = boto3.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)[
        "events"
    ]
    periods = [
        (timed_out["timestamp"] - submitted["timestamp"]).total_seconds()
        for submitted, timed_out in itertools.pairwise(events)
        if (submitted["type"], timed_out["type"]) == ("TaskSubmitted", "TaskTimedOut")
    ]
    assert len(periods) >= 2  # each period doubles: 2 s, 4 s, ...
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(periods))
