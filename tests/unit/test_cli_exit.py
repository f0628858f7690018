"""The console entry point exits without interpreter teardown: output and exit codes intact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _parceler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parceler", *args], capture_output=True, text=True, check=False
    )


def test_piped_output_is_flushed_whole_and_success_exits_0() -> None:
    done = _parceler("spec-schema")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["title"] == "JobSpec"  # all of it, not a cut buffer


def test_bad_input_still_exits_2_with_its_message(tmp_path: Path) -> None:
    done = _parceler("plan", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "bad input" in done.stderr and "missing" in done.stderr
