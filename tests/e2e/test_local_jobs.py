"""Whole jobs in the local mode: the real state machine, handlers, worker processes and DLQ.

Each test runs a job to its end and checks the job's value against a direct computation
over the same files, so a group lost, counted twice or mis-reduced fails the test. The
in-process tests drive the same calls ``parceler run`` makes (``start_job`` + ``follow``)
so they can act in the middle of a job (kill workers) and read the ledger.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.execution import JobResult, follow, start_job
from parceler.ledger import RUNNING, SUCCEEDED, GroupItem
from parceler.local.session import LocalSession
from parceler.manifest import read_summary
from parceler.messages import GroupMessage, encode
from parceler.spec import JobSpec, parse_spec
from tests.e2e import procs
from tests.e2e.conftest import JOB_TIMEOUT_SECONDS, ROOT

pytestmark = pytest.mark.e2e

Run = Callable[..., subprocess.CompletedProcess[str]]


def taxi_generate(out: Path, n_files: int, median_rows: int, seed: int) -> Counter[str]:
    """``examples/taxi/generate.py:generate`` (the examples folder is not a package)."""
    loaded = importlib.util.spec_from_file_location(
        "taxi_generate", ROOT / "examples" / "taxi" / "generate.py"
    )
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    truth: Counter[str] = module.generate(out, n_files, median_rows, seed)
    return truth


def write_text_files(folder: Path, lines_per_file: dict[str, int]) -> Path:
    """Write ``name`` with that many distinct lines for each entry; return the folder."""
    folder.mkdir(parents=True)
    for name, n_lines in lines_per_file.items():
        (folder / name).write_text("".join(f"{name} line {i}\n" for i in range(n_lines)))
    return folder


def direct_value(folder: Path, names: list[str]) -> dict[str, Any]:
    """What the ``tests.e2e.procs`` processors + ``sum`` give over ``names``, computed here."""
    lines = sum((folder / name).read_bytes().count(b"\n") for name in names)
    return {"lines": lines, "files": dict.fromkeys(names, 1)}


def python_job(folder: Path, function: str, **extra: Any) -> JobSpec:
    """A job spec running the python per-file ``function`` over ``folder``, reduced by sum."""
    return parse_spec(
        {
            "source": str(folder.resolve()),
            "processor": {"kind": "python", "function": function, "per": "file"},
            "reducer": {"kind": "builtin", "name": "sum"},
            **extra,
        }
    )


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something truthy; return that (fail after timeout)."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def run_job(session: LocalSession, spec: JobSpec, job_id: str) -> tuple[JobResult, Ledger]:
    ledger = Ledger(session.stack.ledger_table)
    arn = start_job(spec, job_id, session.stack.state_machine_arn)
    return follow(arn, job_id, ledger, timeout_seconds=JOB_TIMEOUT_SECONDS), ledger


def test_demo_job_result_equals_a_direct_count_over_the_same_files(
    tmp_path: Path, parceler_run: Run
) -> None:
    truth = taxi_generate(tmp_path / "taxi", n_files=60, median_rows=200, seed=11)
    report = tmp_path / "report" / "job.html"
    job_id = "e2e-taxi-demo"

    done = parceler_run(
        str(tmp_path / "taxi"), "--processor", "csv-groupby",
        "--option", "column=passenger_count", "--target-size", "200KB",
        "--local", "--workers", "2", "--json", "--job-id", job_id, "--report", str(report),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCEEDED"
    assert result["job_id"] == job_id
    assert result["n_groups"] > 1  # the job was really divided
    assert result["groups_failed"] == 0 and result["failed_groups"] == []
    assert result["groups_succeeded"] == result["n_groups"]
    assert result["result"] == dict(truth)
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert job_id in html


def test_workers_killed_mid_job_lose_no_group_and_count_none_twice(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    # 36 files in 12 groups of 3; a group sleeps 3 x SLOW_SECONDS, so it can be caught
    # RUNNING. A short visibility makes the killed workers' messages reappear quickly.
    data = write_text_files(tmp_path / "data", {f"part-{i:02d}.txt": 3 + 2 * i for i in range(36)})
    session = local_session(workers=2, visibility_seconds=5)
    spec = python_job(data, "tests.e2e.procs:slow_line_count", partitioning={"groups": 12})
    job_id = "e2e-kill-workers"
    ledger = Ledger(session.stack.ledger_table)
    arn = start_job(spec, job_id, session.stack.state_machine_arn)

    def some_done_and_one_just_started() -> list[GroupItem]:
        groups = list(ledger.list_groups(job_id))
        if not any(g.status == SUCCEEDED for g in groups):
            return []
        # Started less than one file's sleep ago: it still has at least 2 files to go, so
        # the SIGKILL below lands inside it (a group cannot commit in that time).
        return [
            g
            for g in groups
            if g.status == RUNNING and time.time() - (g.started_at or 0) < procs.SLOW_SECONDS
        ]

    interrupted = wait_for(some_done_and_one_just_started, "a group caught RUNNING mid-job")
    killed = session.worker_pids
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    session.start_workers(2)
    result = follow(arn, job_id, ledger, timeout_seconds=JOB_TIMEOUT_SECONDS)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.n_groups == 12
    assert result.groups_succeeded == 12 and result.groups_failed == 0
    assert result.result == direct_value(data, sorted(p.name for p in data.iterdir()))
    for group in interrupted:
        after = ledger.get_group(job_id, group.index)
        assert after is not None and after.status == SUCCEEDED
        # the killed attempt never committed; a new worker re-ran the group
        assert after.committed_attempt is not None and after.committed_attempt >= 2


def test_a_duplicate_message_of_a_long_group_neither_fails_nor_reruns_it(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    # One group per file: a long one (LONG_SECONDS, two visibility timeouts, kept by the
    # heartbeat) and quick ones. While the long one runs, a copy of its message is sent (SQS
    # delivers at least once); the idle worker receives it. With maxReceiveCount 1, a copy
    # whose refused receives counted would reach the DLQ, and the dead-letter path would
    # fail a healthy group.
    names = {f"{procs.LONG}.txt": 5, **{f"quick-{i}.txt": 2 + i for i in range(3)}}
    data = write_text_files(tmp_path / "data", names)
    session = local_session(workers=2, visibility_seconds=2, max_receive_count=1)
    spec = python_job(
        data, "tests.e2e.procs:long_or_quick_line_count", partitioning={"max_files": 1}
    )
    job_id = "e2e-duplicate-message"
    ledger = Ledger(session.stack.ledger_table)
    arn = start_job(spec, job_id, session.stack.state_machine_arn)

    long_size = (data / f"{procs.LONG}.txt").stat().st_size  # no quick file has this size

    def long_group_running() -> list[GroupItem]:
        return [
            g for g in ledger.list_groups(job_id) if g.status == RUNNING and g.size == long_size
        ]

    (running,) = wait_for(long_group_running, "the long group RUNNING")
    assert running.summary_uri is not None
    queue.send_batch(
        session.stack.lambda_queue_url, [encode(GroupMessage(summary_uri=running.summary_uri))]
    )
    result = follow(arn, job_id, ledger, timeout_seconds=JOB_TIMEOUT_SECONDS)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert (result.n_groups, result.groups_succeeded, result.groups_failed) == (4, 4, 0)
    assert result.result == direct_value(data, sorted(p.name for p in data.iterdir()))
    after = ledger.get_group(job_id, running.index)
    assert after is not None and (after.status, after.committed_attempt) == (SUCCEEDED, 1)
    assert after.attempt == 1  # the copy never started a second attempt


def test_max_concurrency_one_runs_one_group_at_a_time_on_two_workers(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    # Three one-file groups, two workers, limits.max_concurrency 1: the processors' own
    # records of when they ran never overlap, and every group still runs once.
    data = write_text_files(tmp_path / "data", {f"part-{i}.txt": 2 + i for i in range(3)})
    session = local_session(workers=2)
    spec = python_job(
        data,
        "tests.e2e.procs:timed_line_count",
        partitioning={"max_files": 1},
        limits={"max_concurrency": 1},
    )

    result, ledger = run_job(session, spec, "e2e-max-concurrency")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.result == direct_value(data, sorted(p.name for p in data.iterdir()))
    intervals = sorted(
        tuple(map(float, path.read_text().split())) for path in (tmp_path / "intervals").iterdir()
    )
    assert len(intervals) == 3
    for (_, end), (start, _) in pairwise(intervals):
        assert end <= start, f"two groups ran at once: {intervals}"
    assert {g.attempt for g in ledger.list_groups(result.job_id)} == {1}


def test_poison_files_fail_their_groups_and_the_tolerant_job_keeps_the_rest(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    # One group per file. A permanent failure (PermanentError) fails its group at once;
    # a retryable one is backed off, then redriven to the DLQ on the next receive
    # (maxReceiveCount 1) and the dead-letter drain fails the group with the last error.
    good = {f"good-{i}.txt": 4 + i for i in range(8)}
    poison = {f"{procs.PERMANENT_POISON}.txt": 5, f"{procs.RETRYABLE_POISON}.txt": 6}
    data = write_text_files(tmp_path / "data", {**good, **poison})
    session = local_session(workers=2, max_receive_count=1)
    spec = python_job(
        data,
        "tests.e2e.procs:poison_line_count",
        partitioning={"max_files": 1},
        limits={"tolerated_failure_percent": 25},  # 2 of 10 groups may fail
    )

    result, ledger = run_job(session, spec, "e2e-poison-tolerated")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.n_groups == 10
    assert result.groups_succeeded == 8 and result.groups_failed == 2
    assert result.result == direct_value(data, sorted(good))
    # The job result manifest lists the failed groups with their errors (the aggregator's
    # record; JobResult.failed_groups carries the same: see the test below).
    assert result.result_uri is not None
    listed = read_summary(result.result_uri).details["failed_groups"]
    by_error = {failure["error"]: failure for failure in listed}
    assert sorted(by_error) == ["ProcessorError", "RetryableError"]
    permanent, retryable = by_error["ProcessorError"], by_error["RetryableError"]
    assert f"{procs.PERMANENT_POISON}.txt" in permanent["cause"]
    assert "cannot parse" in permanent["cause"] and "Traceback" in permanent["cause"]
    assert f"simulated transient fault reading {procs.RETRYABLE_POISON}.txt" in retryable["cause"]
    for failure in (permanent, retryable):
        group = ledger.get_group(result.job_id, failure["index"])
        assert group is not None and group.status == "FAILED"
        assert group.committed_attempt is None
        assert group.attempt == 1  # permanent: no retry; retryable: maxReceiveCount 1
        assert group.cause == failure["cause"]


def test_a_processor_that_ends_its_worker_fails_only_its_group_with_the_cause(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    # One group per file; two files end the worker process processing them (os._exit(3),
    # SIGSEGV). Dead workers are replaced; each crashing group is tried max_attempts (2)
    # times and then FAILED with the exit code or signal name; the other groups succeed.
    good = {f"good-{i}.txt": 3 + i for i in range(4)}
    crash = {f"{procs.EXIT_POISON}.txt": 2, f"{procs.SEGFAULT_POISON}.txt": 2}
    data = write_text_files(tmp_path / "data", {**good, **crash})
    session = local_session(workers=2, visibility_seconds=4)
    spec = python_job(
        data,
        "tests.e2e.procs:crashing_line_count",
        partitioning={"max_files": 1},
        limits={"tolerated_failure_percent": 40, "max_attempts": 2},
    )

    result, ledger = run_job(session, spec, "e2e-worker-deaths")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.groups_succeeded == 4 and result.groups_failed == 2
    assert result.result == direct_value(data, sorted(good))
    failed = {
        group.cause.split(" while running")[0].split(" ", 2)[2]: group
        for group in ledger.list_groups(result.job_id)
        if group.status == "FAILED" and group.cause
    }
    assert sorted(failed) == ["exited with code 3", "was killed by SIGSEGV"]
    for group in failed.values():
        assert group.error == "WorkerDiedError"
        assert group.attempt == 2  # limits.max_attempts, below the queue's maxReceiveCount
        assert group.committed_attempt is None
    # Four deaths (two groups, two attempts each), four replacements, two still alive.
    assert len(session.worker_pids) == 6
    assert len([pid for pid in session.worker_pids if _alive(pid)]) == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_parceler_run_lists_the_failed_groups_of_a_tolerant_job(
    tmp_path: Path, parceler_run: Run
) -> None:
    good = {f"good-{i}.txt": 3 + i for i in range(3)}
    data = write_text_files(tmp_path / "data", {**good, f"{procs.PERMANENT_POISON}.txt": 2})

    done = parceler_run(
        str(data), "--processor", "tests.e2e.procs:poison_line_count", "--reducer", "sum",
        "--max-files", "1", "--tolerate", "50", "--local", "--workers", "2", "--json",
        "--job-id", "e2e-poison-listed",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert (result["status"], result["groups_failed"]) == ("SUCCEEDED", 1)
    assert result["result"] == direct_value(data, sorted(good))
    [failed] = result["failed_groups"]
    assert failed["error"] == "ProcessorError"
    assert f"{procs.PERMANENT_POISON}.txt" in failed["cause"]


def test_a_poison_file_fails_a_job_that_tolerates_no_failure(
    tmp_path: Path, parceler_run: Run
) -> None:
    data = write_text_files(
        tmp_path / "data",
        {**{f"good-{i}.txt": 3 + i for i in range(4)}, f"{procs.PERMANENT_POISON}.txt": 2},
    )
    job_id = "e2e-poison-intolerant"

    done = parceler_run(
        str(data), "--processor", "tests.e2e.procs:poison_line_count", "--reducer", "sum",
        "--max-files", "1", "--tolerate", "0", "--local", "--workers", "2", "--json",
        "--job-id", job_id,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["status"] == "FAILED"
    assert result["n_groups"] == 5
    assert result["groups_succeeded"] == 4 and result["groups_failed"] == 1
    assert result["error"] == "Parceler.ToleranceExceeded"
    assert "tolerated_failure_percent" in result["cause"]
