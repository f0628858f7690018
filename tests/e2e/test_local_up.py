"""`parceler local up`: a warm stack in the background, driven by the CLI and by the AWS CLI.

Everything runs for real: the daemon (`parceler local serve`), moto's server, the stack's
resources, the worker processes, the state machine, the starter; the AWS CLI (`aws`, from
the dev extras) talks to the endpoint as a user would. Each test points the state file at
its own folder (`PARCELER_LOCAL_STATE_DIR`) and stops its stack at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import JOB_TIMEOUT_SECONDS, ROOT

AWS_CLI = Path(sys.executable).parent / "aws"
COMMAND_TIMEOUT = 180  # against hangs only


def words_of(texts: list[str]) -> Counter[str]:
    """The exact counts wordcount must give for these texts (words are plain ASCII here)."""
    return Counter(word for text in texts for word in text.lower().split())


@pytest.fixture
def texts(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "texts"
    folder.mkdir()
    texts = [f"Alpha beta gamma{i % 3} delta\nbeta alpha word{i}\n" * (i + 1) for i in range(9)]
    for i, text in enumerate(texts):
        (folder / f"part-{i:02d}.txt").write_text(text)
    return folder, texts


class Stack:
    """A `parceler local up` stack of one test: commands run with its state folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.state_dir = tmp_path / "state"
        self.cwd = tmp_path
        paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "PARCELER_LOCAL_STATE_DIR": str(self.state_dir),
            "PYTHONPATH": os.pathsep.join(paths),
        }
        self.state: dict[str, Any] = {}

    def parceler(
        self, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parceler", *args],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def aws(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The AWS CLI, as a user types it: only the endpoint and fake credentials given."""
        env = {
            **self.env,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.state["region"],
        }
        return subprocess.run(
            [str(AWS_CLI), "--endpoint-url", self.state["endpoint_url"], *args],
            cwd=self.cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        )  # fmt: skip

    def up(self, workers: int = 2) -> dict[str, Any]:
        done = self.parceler("local", "up", "--workers", str(workers))
        assert done.returncode == 0, done.stderr + done.stdout
        status = self.parceler("local", "status", "--json")
        assert status.returncode == 0, status.stderr
        self.state = json.loads(status.stdout)
        assert self.state["status"] == "up"
        assert self.state["endpoint_url"] in done.stdout
        assert self.state["work_bucket"] in done.stdout
        assert self.state["state_machine_arn"] in done.stdout
        return self.state

    def processes(self) -> list[int]:
        """Every live process in the daemon's process group (the daemon and its workers)."""
        return processes_in_group(int(self.state["pid"]))

    def wait_for_execution(self, name: str) -> dict[str, Any]:
        arn = self.state["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{name}"
        deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
        while True:
            done = self.aws("stepfunctions", "describe-execution", "--execution-arn", arn)
            if done.returncode == 0:
                described: dict[str, Any] = json.loads(done.stdout)
                if described["status"] != "RUNNING":
                    return described
            assert time.monotonic() < deadline, f"{name} still not done: {done.stdout}{done.stderr}"
            time.sleep(0.5)

    def value_of(self, described: dict[str, Any]) -> Any:
        """The job's value, read the way a console user would: the output's value_uri."""
        output = json.loads(described["output"])
        fetched = self.aws("s3", "cp", output["value_uri"], "-")
        assert fetched.returncode == 0, fetched.stderr
        return json.loads(fetched.stdout)


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    the_stack = Stack(tmp_path)
    try:
        yield the_stack
    finally:
        the_stack.parceler("local", "down")


def test_up_status_down_leave_no_process_and_no_folder(stack: Stack) -> None:
    state = stack.up(workers=2)
    running = stack.processes()
    assert state["pid"] in running
    assert len(running) >= 3, "the daemon and two workers"
    worker_logs = Path(state["worker_log_dir"])
    assert worker_logs.is_dir()
    assert (stack.state_dir / "stack.json").is_file()

    again = stack.parceler("local", "up")
    assert again.returncode == 1
    assert "already up" in again.stderr

    down = stack.parceler("local", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert processes_in_group(state["pid"]) == []
    assert all(not Path(f"/proc/{pid}").exists() for pid in running)
    assert not worker_logs.exists()
    assert not stack.state_dir.exists()
    status = stack.parceler("local", "status", "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout) == {"status": "down"}


def test_a_dead_stack_is_reported_never_waited_on(
    stack: Stack, texts: tuple[Path, list[str]]
) -> None:
    state = stack.up(workers=1)
    os.kill(state["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{state['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    status = stack.parceler("local", "status", "--json", timeout=30)
    assert status.returncode == 1
    document = json.loads(status.stdout)
    assert document["status"] == "dead"
    assert str(state["pid"]) in document["reason"]

    run = stack.parceler("run", str(texts[0]), "--local", "--processor", "wordcount", timeout=60)
    assert run.returncode == 1
    assert "dead" in run.stderr and "parceler local down" in run.stderr

    down = stack.parceler("local", "down")
    assert down.returncode == 0
    assert processes_in_group(state["pid"]) == [], "orphaned workers are ended too"
    assert not stack.state_dir.exists()


def test_local_runs_use_the_stack_and_queue_behind_each_other(
    stack: Stack, texts: tuple[Path, list[str]]
) -> None:
    folder, contents = texts
    state = stack.up(workers=2)

    def run(job_id: str) -> subprocess.Popen[str]:
        command = ["run", str(folder), "--local", "--processor", "wordcount", "--json"]
        return subprocess.Popen(
            [sys.executable, "-m", "parceler", *command, "--job-id", job_id],
            cwd=stack.cwd,
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    runs = [run("first"), run("second")]
    for job_id, process in zip(("first", "second"), runs, strict=True):
        out, err = process.communicate(timeout=JOB_TIMEOUT_SECONDS)
        assert process.returncode == 0, err
        document = json.loads(out)
        assert document["status"] == "SUCCEEDED"
        assert document["result"]["words"] == dict(words_of(contents))
        run_folder = stack.cwd / "parceler-runs" / job_id
        assert (run_folder / "ledger.json").is_file()
        # the run folder keeps this job's sections of the shared workers' logs, no other's
        logs = "".join(p.read_text() for p in (run_folder / "logs").glob("worker-*.log"))
        assert f"(job {job_id})" in logs
        other = "second" if job_id == "first" else "first"
        assert f"(job {other})" not in logs

    listed = stack.aws("stepfunctions", "list-executions", "--state-machine-arn",
                       state["state_machine_arn"])  # fmt: skip
    names = {e["name"] for e in json.loads(listed.stdout)["executions"]}
    assert names == {"first", "second"}, "both ran on the warm stack, not on new emulators"
    status = stack.parceler("status", "first", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["succeeded"] == json.loads(status.stdout)["n_groups"]
    assert stack.processes(), "the stack outlives its jobs"


def test_aws_cli_start_execution_runs_a_job_to_the_exact_result(
    stack: Stack, texts: tuple[Path, list[str]]
) -> None:
    folder, contents = texts
    state = stack.up(workers=2)
    job = stack.cwd / "job.json"
    job.write_text(json.dumps({"source": str(folder), "processor": {"kind": "builtin", "name": "wordcount"},
                               "partitioning": {"groups": 3}}))  # fmt: skip
    started = stack.aws(
        "stepfunctions", "start-execution", "--state-machine-arn", state["state_machine_arn"],
        "--name", "from-the-console", "--input", f"file://{job}",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    described = stack.wait_for_execution("from-the-console")
    assert described["status"] == "SUCCEEDED", described
    value = stack.value_of(described)
    assert value["words"] == dict(words_of(contents))
    assert value["total_words"] == sum(words_of(contents).values())
    # no run folder for a job an AWS client started: `logs` reads the stack's worker logs
    logs = stack.parceler("logs", "from-the-console")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.count("=== group ") == 3, logs.stdout
    assert stack.parceler("logs", "from-the-console", "--group", "7").returncode == 2


def test_aws_cli_s3_upload_of_a_spec_starts_a_job_through_the_starter(
    stack: Stack, texts: tuple[Path, list[str]]
) -> None:
    folder, contents = texts
    state = stack.up(workers=2)
    job = stack.cwd / "job.json"
    job.write_text(json.dumps({"job_id": "from-an-upload", "source": str(folder),
                               "processor": {"kind": "builtin", "name": "wordcount"}}))  # fmt: skip
    where = f"s3://{state['work_bucket']}/{state['spec_prefix']}nightly{state['spec_suffix']}"
    copied = stack.aws("s3", "cp", str(job), where)
    assert copied.returncode == 0, copied.stderr
    described = stack.wait_for_execution("from-an-upload")
    assert described["status"] == "SUCCEEDED", described
    assert stack.value_of(described)["words"] == dict(words_of(contents))
    listed = stack.aws("stepfunctions", "list-executions", "--state-machine-arn",
                       state["state_machine_arn"])  # fmt: skip
    assert [e["name"] for e in json.loads(listed.stdout)["executions"]] == ["from-an-upload"]


def test_an_upload_outside_the_spec_prefix_starts_nothing(stack: Stack) -> None:
    state = stack.up(workers=1)
    job = stack.cwd / "job.json"
    job.write_text(
        json.dumps({"source": "/nowhere", "processor": {"kind": "builtin", "name": "wordcount"}})
    )
    for key in ("elsewhere/nightly.job.json", f"{state['spec_prefix']}notes.txt"):
        copied = stack.aws("s3", "cp", str(job), f"s3://{state['work_bucket']}/{key}")
        assert copied.returncode == 0, copied.stderr
    time.sleep(1.5)  # several watcher ticks; nothing may start
    listed = stack.aws("stepfunctions", "list-executions", "--state-machine-arn",
                       state["state_machine_arn"])  # fmt: skip
    assert json.loads(listed.stdout)["executions"] == []
