"""``run --local`` checks what it can before the emulator starts: typed error, exit 2, no traceback.

Each case runs the real command in a subprocess from its own folder. The emulator never
starting shows twice: the "local emulator … started" line (printed without a terminal)
is absent, and no run folder was made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parceler.cli.run import failure_kinds
from parceler.details import FailedGroup

ROOT = Path(__file__).resolve().parents[2]


def _run_local(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parceler", "run", *args, "--local"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A working folder with ``data/`` (a text file and a CSV) and two user modules."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("region,fare\neu,1\nus,2\n")
    (tmp_path / "broken.py").write_text("def count(file:\n    return 1\n")
    (tmp_path / "mine.py").write_text("def count(file):\n    return 1\n")
    (tmp_path / "bad-spec.json").write_text('{"source": "data", "processor": {')
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing", "--processor", "wordcount"], "does not exist"),
        (["data", "--processor", "wordcout"], "did you mean 'wordcount'?"),
        (["data", "--processor", "wordcount", "--reducer", "summ"], "did you mean 'sum'?"),
        (["data", "--processor", "nosuchmodule:run"], "'nosuchmodule' is not installed"),
        (["data", "--processor", "broken:count"], "SyntaxError"),
        (["data", "--processor", "mine:cuont"], "did you mean 'count'?"),
        (["data", "--processor", "csv-groupby"], "option 'column'"),
        (
            ["data", "--processor", "csv-groupby", "--option", "column=regoin"],
            "did you mean 'region'?",
        ),
        (["data", "--processor", "wordcount", "--exclude", "*.csv"], "data"),
        (["bad-spec.json"], "is not valid JSON"),
    ],
    ids=[
        "missing-source",
        "processor-typo",
        "reducer-typo",
        "no-module",
        "syntax-error",
        "function-typo",
        "csv-no-column",
        "csv-column-typo",
        "all-excluded",
        "bad-spec",
    ],
)
def test_a_planning_time_mistake_exits_2_with_its_message_before_the_emulator_starts(
    folder: Path, args: list[str], message: str
) -> None:
    done = _run_local(folder, *args)

    assert done.returncode == 2, done.stderr
    assert "parceler: bad input:" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "emulator" not in done.stderr
    assert not (folder / "parceler-runs").exists()


def test_version_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "parceler", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("parceler ") and done.stdout.split()[1][0].isdigit()


def _cause(name: str, line: int) -> str:
    return (
        f"f failed on /data/{name}: ValueError: bad {name}\nTraceback (most recent call last):\n"
        f'  File "/code/proc.py", line {line}, in f\n    raise ValueError(...)\n'
        f"ValueError: bad {name}"
    )


def test_failures_group_by_error_type_and_raising_line_not_by_file_name() -> None:
    failed = [
        FailedGroup(index=0, status="FAILED", error="ProcessorError", cause=_cause("a.txt", 7)),
        FailedGroup(index=3, status="FAILED", error="ProcessorError", cause=_cause("b.txt", 7)),
        FailedGroup(index=5, status="FAILED", error="ProcessorError", cause=_cause("c.txt", 9)),
        FailedGroup(index=6, status="FAILED", error="Timeout", cause="no heartbeat"),
        FailedGroup(index=8, status="FAILED", error="ProcessorError", cause=_cause("d.txt", 7)),
    ]

    kinds = failure_kinds(failed)

    assert [(k.error, k.groups) for k in kinds] == [
        ("ProcessorError", [0, 3, 8]),
        ("ProcessorError", [5]),
        ("Timeout", [6]),
    ]
    assert kinds[0].summary == "ValueError: bad a.txt"
    assert json.dumps([k.cause for k in kinds]).count("Traceback") == 2


def test_a_deployed_run_checks_built_in_names_before_it_asks_for_a_stack(folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARCELER_")}
    done = subprocess.run(
        [sys.executable, "-m", "parceler", "run", "data", "--processor", "wordcout"],
        cwd=folder,
        env={**env, "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert "did you mean 'wordcount'?" in done.stderr
    assert "Traceback" not in done.stderr
