"""The worker protocol against moto: commit, orphans of a dead attempt, poison groups, heartbeat."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.aws.queue import Heartbeat, receive, requeue
from parceler.container_worker import RunnerOptions, run_loop
from parceler.dead_letter import dead_letter
from parceler.details import GroupDetails
from parceler.manifest import read_manifest, write_manifest
from parceler.planner import plan_and_send
from parceler.spec_store import read_spec, write_spec
from parceler.workarea import JobArea
from parceler.worker import Delivery, handle_delivery, process_message

from . import procs
from .conftest import Resources, drain, group_spec, seed_source


class WorkerDiedError(BaseException):
    """Stands in for a worker killed (OOM, SIGKILL) between its outputs and its commit."""


def _result_uris(result_uri: str) -> list[str]:
    return [str(u) for u in read_manifest(result_uri).table.column("uri").to_pylist()]


def test_runner_processes_every_group_and_commits_attempt_1(resources: Resources) -> None:
    seed_source(3)
    plan_and_send(group_spec(), "job-ok", resources.planner)
    stats = run_loop(
        resources.worker,
        RunnerOptions(resources.lambda_queue_url, idle_exit=1, wait_seconds=1),
    )
    assert dict(stats.outcomes) == {"succeeded": 3}
    ledger = Ledger(resources.worker.ledger_table)
    job = ledger.get_job("job-ok")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (0, 3, 0)
    for group in ledger.list_groups("job-ok"):
        assert (group.status, group.committed_attempt) == ("SUCCEEDED", 1)
        assert group.result_uri and group.result_uri.endswith(
            f"{group.index:06d}/{job.run_id}/attempt-1/result.json"
        )
        result = read_manifest(group.result_uri)
        assert result.summary.details["value"] == [1]  # python processor: values collected
        assert result.summary.details["attempt"] == 1
        (uri,) = _result_uris(group.result_uri)
        assert uri.startswith(group.result_uri.rsplit("/", 1)[0] + "/")
        assert storage.read_bytes(uri).startswith(b"LINE ")
    assert drain(resources.lambda_queue_url) == []


def test_worker_dies_before_commit_then_retry_commits_a_new_attempt_without_orphans(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_source(1)
    plan_and_send(group_spec(), "job-d", resources.planner)
    (message,) = receive(resources.lambda_queue_url, wait_seconds=0)

    def die(*_args: Any, **_kwargs: Any) -> bool:
        raise WorkerDiedError

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "commit_group", die)
        with pytest.raises(WorkerDiedError):
            # lease 0: as if the dead worker's lease had already run out
            process_message(message.body, resources.worker, worker_id="doomed", lease_seconds=0)

    run = Ledger(resources.worker.ledger_table).get_job("job-d").run_id
    folder = f"s3://parceler-work/jobs/job-d/groups/000/000000/{run}"
    orphan = f"{folder}/attempt-1/000000.out"
    assert storage.exists(orphan)  # the dead attempt wrote its output (and its result manifest)
    assert storage.exists(f"{folder}/attempt-1/result.json")

    outcome = process_message(message.body, resources.worker, worker_id="second")
    assert (outcome.status, outcome.attempt) == ("succeeded", 2)
    group = Ledger(resources.worker.ledger_table).get_group("job-d", 0)
    assert group is not None and group.committed_attempt == 2
    assert group.result_uri == f"{folder}/attempt-2/result.json"
    assert _result_uris(group.result_uri) == [orphan.replace("attempt-1", "attempt-2")]
    job = Ledger(resources.worker.ledger_table).get_job("job-d")
    assert (job.remaining, job.n_succeeded) == (0, 1)


def test_poison_group_goes_to_the_dlq_and_is_failed_while_the_rest_succeed(
    make_resources: Callable[..., Resources],
) -> None:
    resources = make_resources(visibility=30, max_receive=2)
    seed_source(5, names={2: "poison.txt"})
    plan_and_send(group_spec("poison_or_copy"), "job-p", resources.planner)
    stats = run_loop(
        resources.worker,
        RunnerOptions(
            resources.lambda_queue_url, idle_exit=2, wait_seconds=1, retry_base_seconds=0
        ),
    )
    assert dict(stats.outcomes) == {"succeeded": 4, "retry": 2}
    ledger = Ledger(resources.worker.ledger_table)
    assert ledger.get_job("job-p").remaining == 1  # the poison group is not done yet

    dead = drain(resources.lambda_dlq_url)
    assert len(dead) == 1
    outcome = dead_letter(dead[0].body, resources.dead_letter)
    assert outcome.status == "failed"
    again = dead_letter(dead[0].body, resources.dead_letter)  # a redelivered dead letter
    assert again.status == "duplicate"

    job = ledger.get_job("job-p")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (0, 4, 1)
    poison = [g for g in ledger.list_groups("job-p") if g.status == "FAILED"]
    assert len(poison) == 1 and poison[0].attempt == 2
    assert poison[0].error == "RetryableError"
    assert "ran out of memory" in (poison[0].cause or "")


def test_processor_error_fails_the_group_at_once_without_burning_retries(
    resources: Resources,
) -> None:
    seed_source(1)
    plan_and_send(group_spec(), "job-e", resources.planner)
    (message,) = receive(resources.lambda_queue_url, wait_seconds=0)
    # Replan with a processor the worker cannot import (a permanent error): a new spec
    # stored, and the group manifest citing it.
    summary_uri = json.loads(message.body)["summary_uri"]
    manifest = read_manifest(summary_uri)
    area = JobArea(resources.planner.work_bucket, "job-e")
    spec = read_spec(area)
    broken = spec.model_copy(
        update={
            "processor": spec.processor.model_copy(
                update={"function": "tests.functional.procs:nope"}
            )
        }
    )
    details = GroupDetails(
        job_id="job-e",
        spec_sha256=write_spec(area, broken),
        run_id=manifest.summary.details["run_id"],
    ).to_details()
    write_manifest(
        manifest.table,
        summary_uri,
        group_index=0,
        group_count=1,
        parent_fingerprint=manifest.summary.parent_fingerprint,
        details=details,
    )
    outcome = handle_delivery(
        resources.lambda_queue_url, message, resources.worker, worker_id="w", visibility_seconds=30
    )
    assert outcome.status == "failed" and outcome.delete
    group = Ledger(resources.worker.ledger_table).get_group("job-e", 0)
    assert group is not None and (group.status, group.attempt) == ("FAILED", 1)
    assert group.error == "SpecError"
    assert drain(resources.lambda_queue_url) == []  # deleted, not retried


def _run_with_watch(resources: Resources, heartbeat_interval: float | None) -> tuple[Any, int]:
    """Run one sleepy group with a 2 s visibility; count deliveries seen meanwhile."""
    seed_source(1)
    plan_and_send(group_spec("sleepy"), "job-h", resources.planner)
    (message,) = receive(resources.lambda_queue_url, wait_seconds=0)
    box: dict[str, Delivery] = {}

    def work() -> None:
        box["outcome"] = handle_delivery(
            resources.lambda_queue_url,
            message,
            resources.worker,
            worker_id="slow",
            visibility_seconds=2,
            heartbeat_interval=heartbeat_interval,
        )

    thread = threading.Thread(target=work)
    thread.start()
    seen = 0
    while thread.is_alive():
        seen += len(receive(resources.lambda_queue_url, wait_seconds=1, visibility_timeout=30))
    thread.join()
    return box["outcome"], seen


def test_heartbeat_keeps_a_long_group_invisible(make_resources: Callable[..., Resources]) -> None:
    resources = make_resources(visibility=2)
    assert procs.SLEEP_SECONDS >= 2 * 2  # the group outlives two visibility timeouts
    outcome, seen = _run_with_watch(resources, heartbeat_interval=None)  # beats every 2/3 s
    assert seen == 0
    assert outcome.status == "succeeded"
    assert drain(resources.lambda_queue_url) == []


def test_without_heartbeats_the_same_group_is_redelivered(
    make_resources: Callable[..., Resources],
) -> None:
    """The control for the test above: it can fail, because a 5 s group outlives 2 s."""
    resources = make_resources(visibility=2)
    outcome, seen = _run_with_watch(resources, heartbeat_interval=3600)  # never beats in time
    assert seen == 1
    assert outcome.status == "succeeded"


def _deliver_until_done(resources: Resources, job_id: str) -> list[Delivery]:
    """Deliver the job's one message again and again (no backoff wait) until it is deleted."""
    outcomes: list[Delivery] = []
    while True:
        (message,) = receive(resources.lambda_queue_url, wait_seconds=0, visibility_timeout=30)
        outcome = handle_delivery(
            resources.lambda_queue_url, message, resources.worker, worker_id="w",
            visibility_seconds=30, retry_base_seconds=0,
        )  # fmt: skip
        outcomes.append(outcome)
        if outcome.delete:
            return outcomes
        assert len(outcomes) < 10, outcomes


def test_a_plain_exception_on_the_first_attempt_only_succeeds_on_retry(
    resources: Resources,
) -> None:
    seed_source(1)
    plan_and_send(group_spec("flaky_first_attempt"), "job-flaky", resources.planner)

    outcomes = _deliver_until_done(resources, "job-flaky")

    assert [(o.status, o.attempt) for o in outcomes] == [("retry", 1), ("succeeded", 2)]
    assert outcomes[0].error == "UserCodeError"
    assert "ConnectionError: connection reset by peer" in (outcomes[0].cause or "")
    group = Ledger(resources.worker.ledger_table).get_group("job-flaky", 0)
    assert group is not None and (group.status, group.committed_attempt) == ("SUCCEEDED", 2)
    assert group.last_error == "UserCodeError" and group.last_attempt == 1


def test_a_plain_exception_every_time_fails_the_group_at_max_attempts(
    resources: Resources,
) -> None:
    seed_source(1)
    spec = group_spec("always_connection_error", limits={"max_attempts": 2})
    plan_and_send(spec, "job-down", resources.planner)

    outcomes = _deliver_until_done(resources, "job-down")

    assert [(o.status, o.attempt) for o in outcomes] == [("retry", 1), ("failed", 2)]
    group = Ledger(resources.worker.ledger_table).get_group("job-down", 0)
    assert group is not None and (group.status, group.attempt) == ("FAILED", 2)
    assert group.error == "UserCodeError"
    assert "attempt 2 of limits.max_attempts 2" in (group.cause or "")


def test_max_attempts_one_runs_one_attempt(resources: Resources) -> None:
    seed_source(1)
    spec = group_spec("always_connection_error", limits={"max_attempts": 1})
    plan_and_send(spec, "job-once", resources.planner)

    outcomes = _deliver_until_done(resources, "job-once")

    assert [(o.status, o.attempt) for o in outcomes] == [("failed", 1)]


def test_a_processor_raising_permanent_error_fails_its_group_at_once(
    resources: Resources,
) -> None:
    seed_source(1)
    plan_and_send(group_spec("refuses_for_good"), "job-perm", resources.planner)

    outcomes = _deliver_until_done(resources, "job-perm")

    assert [(o.status, o.attempt) for o in outcomes] == [("failed", 1)]
    group = Ledger(resources.worker.ledger_table).get_group("job-perm", 0)
    assert group is not None and (group.status, group.attempt) == ("FAILED", 1)
    assert group.error == "ProcessorError"
    assert "encrypted with a key" in (group.cause or "")


def test_a_heartbeat_whose_receipt_went_stale_keeps_the_ledger_lease(
    resources: Resources,
) -> None:
    # While the group runs, its message is replaced by a copy (as a busy or dead-letter
    # requeue does): the worker's receipt is stale, so SQS refuses its visibility changes.
    # The attempt is alive, so its ledger lease must outlive its first 2 s, and the copy
    # must find the group busy, not start attempt 2.
    seed_source(1)
    plan_and_send(group_spec("sleepy"), "job-stale", resources.planner)
    url = resources.lambda_queue_url
    (message,) = receive(url, wait_seconds=0, visibility_timeout=60)
    claimed = threading.Event()
    heartbeat = Heartbeat(url, message.receipt_handle, visibility_seconds=2, interval=0.2)

    def work() -> None:
        process_message(
            message.body, resources.worker, worker_id="slow", heartbeat=heartbeat,
            lease_seconds=2, on_claim=lambda *_: claimed.set(),
        )  # fmt: skip

    thread = threading.Thread(target=work)
    thread.start()
    assert claimed.wait(30)
    requeue(url, message.body, message.receipt_handle)  # the copy; the receipt is stale now
    threading.Event().wait(3.0)  # past the lease's last extension before the receipt went stale
    (again,) = receive(url, wait_seconds=1, visibility_timeout=60)
    copy = process_message(again.body, resources.worker, worker_id="copy")
    thread.join()

    assert (copy.status, copy.attempt) == ("busy", None)
    assert heartbeat.stale
    group = Ledger(resources.worker.ledger_table).get_group("job-stale", 0)
    assert group is not None and (group.status, group.attempt) == ("SUCCEEDED", 1)
