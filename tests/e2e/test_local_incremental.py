"""Incremental runs and redrive in the local mode, as a user runs them: separate commands.

Each ``parceler`` command is its own process with its own emulator; what a later command
needs (the result cache, a job's work area) comes back from ``parceler-runs/.workarea``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import parceler
from tests.e2e.test_local_jobs import direct_value, write_text_files

pytestmark = pytest.mark.e2e

PROCESSOR = "tests.e2e.procs:marked_poison_line_count"


def _run(cwd: Path, data: Path, job_id: str, *extra: str) -> dict[str, Any]:
    done = parceler(
        cwd, "run", str(data), "--processor", PROCESSOR, "--reducer", "sum", "--max-files", "2",
        "--local", "--json", "--job-id", job_id, *extra,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-4000:]
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _messages_started(cwd: Path, job_id: str) -> int:
    logs = (cwd / "parceler-runs" / job_id / "logs").glob("worker-*.log")
    return sum(log.read_text().count("--- start message") for log in logs)


def test_separate_local_runs_reuse_unchanged_groups_and_rerun_changed_ones(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    names = [f"f{i:02d}.txt" for i in range(8)]
    data = write_text_files(tmp_path / "data", {name: i + 1 for i, name in enumerate(names)})

    first = _run(tmp_path, data, "inc-first")
    again = _run(tmp_path, data, "inc-again")

    assert (first["n_groups"], first["groups_skipped"]) == (4, 0)
    assert (again["status"], again["groups_skipped"], again["groups_succeeded"]) == (
        "SUCCEEDED", 4, 4,
    )  # fmt: skip
    assert _messages_started(tmp_path, "inc-again") == 0  # no worker received a message
    assert again["result"] == first["result"] == direct_value(data, names)
    workarea = tmp_path / "parceler-runs" / ".workarea"
    assert (workarea / "cache.jsonl").read_text().count("cache#") == 4

    (data / "f05.txt").write_text("changed\n")
    changed = _run(tmp_path, data, "inc-changed")
    assert (changed["groups_skipped"], _messages_started(tmp_path, "inc-changed")) == (3, 1)
    assert changed["result"] == direct_value(data, names)

    fresh = _run(tmp_path, data, "inc-no-cache", "--no-cache")
    assert (fresh["groups_skipped"], _messages_started(tmp_path, "inc-no-cache")) == (0, 4)
    # A run without the cache neither reads nor forgets it: 4 groups, then f05's new one.
    assert (workarea / "cache.jsonl").read_text().count("cache#") == 5

    status = parceler(tmp_path, "status", "inc-again", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["groups_skipped"] == 4
    report = parceler(tmp_path, "report", "inc-again", "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    assert "4 skipped: results reused" in (tmp_path / "report.html").read_text()


def test_a_local_job_redriven_after_its_poison_is_fixed_reruns_only_the_failed_groups(
    tmp_path: Path, worker_pythonpath: str
) -> None:
    names = [f"f{i:02d}.txt" for i in range(8)]
    data = write_text_files(tmp_path / "data", {name: i + 1 for i, name in enumerate(names)})
    (tmp_path / "poison").mkdir()
    (tmp_path / "poison" / "f03.txt").write_text("")
    job_id = "redrive-local"
    failed = _run(tmp_path, data, job_id)
    assert (failed["status"], failed["groups_failed"]) == ("FAILED", 1)
    before = json.loads((tmp_path / "parceler-runs" / job_id / "ledger.json").read_text())

    (tmp_path / "poison" / "f03.txt").unlink()
    done = parceler(tmp_path, "redrive", job_id, "--local", "--json")

    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads(done.stdout)
    assert (document["status"], document["groups_succeeded"]) == ("SUCCEEDED", 4)
    assert document["result"] == direct_value(data, names)
    after = json.loads((tmp_path / "parceler-runs" / job_id / "ledger.json").read_text())
    changed = [
        g["index"] for g, old in zip(after["groups"], before["groups"], strict=True) if g != old
    ]
    assert changed == [1]  # f02, f03: the one failed group
    assert (after["groups"][1]["attempt"], after["groups"][1]["status"]) == (2, "SUCCEEDED")

    again = parceler(tmp_path, "redrive", job_id, "--local")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "nothing to redrive" in again.stdout
