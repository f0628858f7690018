"""The container worker loop and the CLI edges: N processes, SIGTERM (finish or release), status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from parceler.aws.ledger import Ledger
from parceler.aws.queue import receive
from parceler.cli import status as status_cli
from parceler.cli import worker as worker_cli
from parceler.planner import plan_and_send

from .conftest import Resources, group_spec, seed_source

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = """
import sys, typer
from parceler.cli import worker
app = typer.Typer()
worker.register(app)
@app.callback()
def _root() -> None: ...
app(sys.argv[1:])
"""


def _cli(*modules: object) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    for module in modules:
        module.register(app)  # type: ignore[attr-defined]
    return app


def _env(resources: Resources) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, **resources.env, "PYTHONPATH": path}


def test_worker_command_with_two_processes_finishes_every_group(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_source(6)
    plan_and_send(group_spec(), "job-mp", resources.planner)
    for name, value in resources.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    args = ["worker", "--queue", resources.lambda_queue_url, "--processes", "2",
            "--idle-exit", "2", "--wait-seconds", "1"]  # fmt: skip
    result = CliRunner().invoke(_cli(worker_cli), args)
    assert result.exit_code == 0, result.output
    job = Ledger(resources.worker.ledger_table).get_job("job-mp")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (0, 6, 0)
    workers = {g.worker for g in Ledger(resources.worker.ledger_table).list_groups("job-mp")}
    assert all(w.endswith((":0", ":1")) for w in workers)


def _start_and_sigterm(resources: Resources, grace: float) -> subprocess.Popen[bytes]:
    seed_source(1)
    plan_and_send(group_spec("sleepy"), "job-sig", resources.planner)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, "worker", "--queue", resources.lambda_queue_url,
         "--wait-seconds", "1", "--grace", str(grace)],
        env=_env(resources),
    )  # fmt: skip
    ledger = Ledger(resources.worker.ledger_table)
    for _ in range(600):  # until the group is claimed (no timing is asserted)
        group = ledger.get_group("job-sig", 0)
        if group is not None and group.status == "RUNNING":
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return proc


def test_sigterm_releases_a_group_that_cannot_finish_in_the_grace_period(
    resources: Resources,
) -> None:
    proc = _start_and_sigterm(resources, grace=0.2)
    assert proc.returncode == 0
    group = Ledger(resources.worker.ledger_table).get_group("job-sig", 0)
    assert group is not None and group.committed_attempt is None
    # released: visible again at once, not after the 30 s visibility timeout
    assert len(receive(resources.lambda_queue_url, wait_seconds=0)) == 1


def test_sigterm_lets_a_group_finish_within_the_grace_period(resources: Resources) -> None:
    proc = _start_and_sigterm(resources, grace=60)
    assert proc.returncode == 0
    group = Ledger(resources.worker.ledger_table).get_group("job-sig", 0)
    assert group is not None and (group.status, group.committed_attempt) == ("SUCCEEDED", 1)
    assert receive(resources.lambda_queue_url, wait_seconds=0) == []


def test_sigterm_stops_an_idle_worker_without_waiting_out_its_long_poll(
    resources: Resources,
) -> None:
    seed_source(1)
    plan_and_send(group_spec(), "job-idle", resources.planner)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, "worker", "--queue", resources.lambda_queue_url,
         "--wait-seconds", "20"],
        env=_env(resources),
    )  # fmt: skip
    ledger = Ledger(resources.worker.ledger_table)
    for _ in range(1200):  # its one group done, the worker is back in a 20 s receive
        group = ledger.get_group("job-idle", 0)
        if group is not None and group.status == "SUCCEEDED":
            break
        time.sleep(0.05)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    # Waiting out the poll would take up to 20 s: it must stop well before that.
    assert proc.wait(timeout=10) == 0


def test_status_shows_counts_and_failed_groups(
    make_resources: Callable[..., Resources],
) -> None:
    resources = make_resources()
    seed_source(3)
    plan_and_send(group_spec(), "job-st", resources.planner)
    ledger = Ledger(resources.worker.ledger_table)
    ledger.claim_group("job-st", 0, "w", lease_seconds=60)
    ledger.commit_group("job-st", 0, 1, "s3://parceler-work/r.json")
    ledger.claim_group("job-st", 1, "w", lease_seconds=60)
    ledger.fail_group("job-st", 1, "ProcessorError", "bad row in f0001.txt")
    app = _cli(status_cli)
    table = ["--ledger-table", resources.worker.ledger_table]

    as_json = CliRunner().invoke(app, ["status", "job-st", "--json", *table])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert (data["pending"], data["running"], data["succeeded"], data["failed"]) == (1, 0, 1, 1)
    assert data["remaining"] == 1 and data["n_groups"] == 3
    assert data["failures"] == [
        {
            "index": 1,
            "status": "FAILED",
            "error": "ProcessorError",
            "cause": "bad row in f0001.txt",
            "attempt": 1,
        }
    ]

    shown = CliRunner().invoke(app, ["status", "job-st", *table])
    assert shown.exit_code == 0
    assert "failed groups" in shown.output and "bad row in f0001.txt" in shown.output

    missing = CliRunner().invoke(app, ["status", "no-such-job", *table])
    assert missing.exit_code == 1 and "no-such-job" in missing.output
