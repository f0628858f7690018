"""The local mode as a user lives in it: results on disk, state after the run, failures.

Each test runs ``parceler run --local`` (and the commands that follow it) in a subprocess
in its own folder, as a user would from a shell, and checks what ends up on disk and on
the terminal.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from parceler.aws.ledger import Ledger
from parceler.errors import JobNotFoundError
from parceler.execution import follow, start_job
from parceler.local.session import LocalSession
from parceler.manifest import read_manifest
from parceler.spec import parse_spec
from tests.e2e import procs
from tests.e2e.conftest import parceler
from tests.e2e.test_local_jobs import python_job, wait_for, write_text_files

pytestmark = pytest.mark.e2e


def test_a_shell_jobs_outputs_and_result_manifest_are_on_disk_and_feed_the_next_run(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    data = write_text_files(tmp_path / "data", {"a.txt": 2, "b.txt": 3, "c.txt": 1})

    first = parceler(
        tmp_path, "run", str(data), "--shell", "tr a-z A-Z", "--local", "--json",
        "--job-id", "e2e-shell-first", "--save-result", str(tmp_path / "saved.json"),
    )  # fmt: skip

    assert first.returncode == 0, first.stderr[-4000:]
    document = json.loads(first.stdout)
    folder = tmp_path / "parceler-runs" / "e2e-shell-first"  # the documented default
    assert document["run_folder"] == str(folder)
    assert document["result_uri"] == str(folder / "result.json")
    assert json.loads((folder / "value.json").read_text()) == document["result"]
    assert json.loads((folder / "run.json").read_text()) == document  # one document
    assert json.loads((tmp_path / "saved.json").read_text()) == document
    rows = read_manifest(str(folder / "result.json")).table.to_pylist()
    outputs = {Path(row["uri"]).name.split("-", 1)[1]: Path(row["uri"]) for row in rows}
    assert sorted(outputs) == ["a.txt", "b.txt", "c.txt"]
    for name, path in outputs.items():
        assert path.is_relative_to(folder / "outputs")
        assert path.read_text() == (data / name).read_text().upper()

    second = parceler(
        tmp_path, "run", str(folder / "result.json"), "--processor", "linecount", "--local",
        "--json", "--output", str(tmp_path / "second"),
    )  # fmt: skip

    assert second.returncode == 0, second.stderr[-4000:]
    value = json.loads(second.stdout)["result"]
    assert (value["files"], value["lines"]) == (3, 6)
    assert (tmp_path / "second" / "result.json").is_file()


def test_status_report_and_logs_read_a_local_run_after_its_emulator_stopped(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    data = write_text_files(tmp_path / "data", {"one.txt": 2, "two.txt": 3})
    job_id = "e2e-after-the-run"
    done = parceler(
        tmp_path, "run", str(data), "--processor", "tests.e2e.procs:chatty_poison_line_count",
        "--reducer", "sum", "--max-files", "1", "--local", "--job-id", job_id,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]

    status = parceler(tmp_path, "status", job_id, "--json")
    report = parceler(tmp_path, "report", job_id, "--out", str(tmp_path / "report.html"))
    logs = parceler(tmp_path, "logs", job_id)

    assert status.returncode == 0, status.stderr
    snapshot = json.loads(status.stdout)
    assert (snapshot["status"], snapshot["succeeded"], snapshot["failed"]) == ("SUCCEEDED", 2, 0)
    assert report.returncode == 0, report.stderr
    assert "<html" in (tmp_path / "report.html").read_text().lower()
    assert logs.returncode == 0, logs.stderr
    assert "chatty: reading one.txt" in logs.stdout
    assert "chatty: reading two.txt" in logs.stdout
    by_group = [parceler(tmp_path, "logs", job_id, "--group", str(i)).stdout for i in (0, 1)]
    names = [{n for n in ("one.txt", "two.txt") if f"reading {n}" in out} for out in by_group]
    assert sorted(map(sorted, names)) == [["one.txt"], ["two.txt"]]  # each its own lines


def test_a_failed_job_prints_each_distinct_error_once_with_counts_and_its_log(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    poison = {f"{procs.PERMANENT_POISON}-{i}.txt": 2 for i in range(3)}
    data = write_text_files(tmp_path / "data", {"good.txt": 4, **poison})

    done = parceler(
        tmp_path, "run", str(data), "--processor", "tests.e2e.procs:chatty_poison_line_count",
        "--reducer", "sum", "--max-files", "1", "--local", "--job-id", "e2e-grouped-failures",
    )  # fmt: skip

    assert done.returncode == 1, done.stderr[-4000:]
    assert done.stdout.count("Traceback") == 1  # three failures, one distinct error
    assert "3 groups failed with ProcessorError" in done.stdout
    assert "simulated corrupt input" in done.stdout
    assert f"chatty: reading {procs.PERMANENT_POISON}-" in done.stdout  # the log's tail
    assert "parceler logs e2e-grouped-failures --group" in done.stdout
    assert "good.txt" not in done.stdout  # no per-file values of the groups that succeeded
    for noise in ("Traceback", "FailureEventException", "ContinueWithNext"):
        assert noise not in done.stderr


def test_without_a_terminal_progress_is_plain_lines_ending_with_the_elapsed_time(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    data = write_text_files(tmp_path / "data", {"a.txt": 1})

    done = parceler(tmp_path, "run", str(data), "--processor", "linecount", "--local")

    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stderr.strip().splitlines()
    assert "local emulator and 2 worker(s) started" in lines[0]
    assert lines[-1].endswith("s elapsed")
    assert ": done: 1/1 groups done, 0 failed" in lines[-1]
    assert "ETA" not in done.stderr


def test_a_session_without_a_log_folder_removes_its_temporary_one(
    worker_pythonpath: str,
) -> None:
    with LocalSession(workers=1) as session:
        log_dir = session.log_dir
        assert log_dir.is_dir()
    assert not log_dir.exists()


def test_cancel_stops_a_running_job_and_marks_it_in_the_ledger(
    tmp_path: Path, local_session: Callable[..., LocalSession], worker_pythonpath: str
) -> None:
    session = local_session(workers=1)
    data = write_text_files(tmp_path / "data", {f"f{i}.txt": 2 for i in range(8)})
    spec = python_job(data, "tests.e2e.procs:slow_line_count", partitioning={"max_files": 1})
    job_id = "e2e-cancelled"
    arn = start_job(spec, job_id, session.stack.state_machine_arn)
    ledger = Ledger(session.stack.ledger_table)
    wait_for(lambda: _succeeded(ledger, job_id) >= 1, "a first group to finish")

    # The session points this process's environment (inherited below) at the emulator.
    done = parceler(
        tmp_path, "cancel", job_id, "--state-machine", session.stack.state_machine_arn,
        "--ledger-table", session.stack.ledger_table,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "cancelled" in done.stderr
    job = ledger.get_job(job_id)
    assert (job.status, job.cause) == ("FAILED", "cancelled by user")
    sfn_status = wait_for(lambda: _aborted(arn), "the execution to stop")
    assert sfn_status == "ABORTED"


def _succeeded(ledger: Ledger, job_id: str) -> int:
    try:
        return ledger.get_job(job_id).n_succeeded
    except JobNotFoundError:
        return 0


def _aborted(arn: str) -> str | None:
    from parceler import aws

    status = str(aws.client("stepfunctions").describe_execution(executionArn=arn)["status"])
    return status if status != "RUNNING" else None


def test_an_error_inside_the_execution_reaches_the_user_as_the_typed_errors_message(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    session = local_session(workers=1)
    data = write_text_files(tmp_path / "data", {"a.txt": 1})
    spec = parse_spec({"source": str(data), "processor": {"name": "wordcout"}})
    arn = start_job(spec, "e2e-planner-error", session.stack.state_machine_arn)

    result = follow(arn, "e2e-planner-error", Ledger(session.stack.ledger_table), poll_seconds=0.1)

    assert (result.status, result.error) == ("FAILED", "SpecError")
    assert result.cause is not None
    assert result.cause.startswith("there is no built-in processor 'wordcout'")
    assert "stackTrace" not in result.cause and "Traceback" not in result.cause


def test_ctrl_c_abandons_a_local_job_says_so_and_exits_130(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    data = write_text_files(tmp_path / "data", {f"f{i}.txt": 2 for i in range(8)})
    command = [
        sys.executable, "-m", "parceler", "run", str(data), "--processor",
        "tests.e2e.procs:slow_line_count", "--reducer", "sum", "--max-files", "1", "--local",
        "--workers", "1", "--job-id", "e2e-interrupted",
    ]  # fmt: skip
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        first = process.stderr.readline()  # printed once the emulator and workers are up
        assert "started" in first, first
        # The next line is the follower's first ("planning: 0.0 s elapsed"): the job runs
        # and the user presses Ctrl-C while it is being followed.
        following = process.stderr.readline()
        assert "elapsed" in following, following
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)

    assert process.returncode == 130, (
        first,
        following,
        rest,
    )  # what was seen, should it ever differ
    assert "job e2e-interrupted abandoned" in rest
    assert "Traceback" not in rest
