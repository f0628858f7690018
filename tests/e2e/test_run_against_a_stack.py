"""``parceler run`` without ``--local``: the deployed-stack path, against an emulated stack.

The stack here is the local session's (moto on loopback, found through
``AWS_ENDPOINT_URL``), but the command only gets what a user of a deployed stack has:
the state machine ARN and the ledger table name (the stack's outputs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parceler.cli import _register_commands, app
from parceler.local.session import LocalSession
from tests.e2e.test_local_jobs import write_text_files

_register_commands()


@pytest.mark.e2e
def test_run_starts_and_follows_a_job_on_a_stack_named_by_its_outputs(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    lines = {f"f{i}.txt": 5 + i for i in range(6)}
    data = write_text_files(tmp_path / "data", lines)
    session = local_session(workers=2)
    stack = session.stack
    argv = ["run", str(data), "--processor", "linecount", "--groups", "3", "--job-id", "on-a-stack",
            "--state-machine", stack.state_machine_arn, "--ledger-table", stack.ledger_table,
            "--json"]  # fmt: skip

    done = CliRunner().invoke(app, argv)

    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert (result["status"], result["job_id"], result["n_groups"]) == (
        "SUCCEEDED",
        "on-a-stack",
        3,
    )
    assert result["result"]["lines"] == sum(lines.values())
    assert result["result"]["files"] == len(lines)

    again = CliRunner().invoke(app, argv)  # the same job id: refused, not run twice
    assert again.exit_code == 1
    assert "already exists" in again.stderr


@pytest.mark.e2e
def test_run_without_a_stack_says_which_settings_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARCELER_STATE_MACHINE_ARN", raising=False)
    data = write_text_files(tmp_path / "data", {"a.txt": 1})
    done = CliRunner().invoke(app, ["run", str(data), "--processor", "linecount"])
    assert done.exit_code == 2
    assert "PARCELER_STATE_MACHINE_ARN" in done.stderr and "--local" in done.stderr
