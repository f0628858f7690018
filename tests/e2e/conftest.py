"""End-to-end fixtures: whole local jobs (emulator + stack + worker processes), no mocks.

Every test starts its own local mode (one :class:`LocalSession`, or ``parceler run --local``
in a subprocess), so tests are independent under ``pytest -n``. Worker processes inherit
this process's environment; ``PYTHONPATH`` gets the repository root so they can import
``tests.e2e.procs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from parceler import history
from parceler.local.session import LocalSession

ROOT = Path(__file__).resolve().parents[2]
# Generous limits against hangs only; no test asserts on time.
JOB_TIMEOUT_SECONDS = 180.0


@pytest.fixture
def worker_pythonpath(monkeypatch: pytest.MonkeyPatch) -> str:
    """Put the repository root first on ``PYTHONPATH`` (for child processes); return it."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    value = os.pathsep.join(paths)
    monkeypatch.setenv("PYTHONPATH", value)
    return value


@pytest.fixture
def local_session(worker_pythonpath: str, tmp_path: Path) -> Iterator[Callable[..., LocalSession]]:
    """A factory ``local_session(**LocalSession kwargs)``: started now, closed at teardown.

    Worker logs go to ``tmp_path/worker-logs`` (kept by pytest for a failing test).
    Each session starts from a reset moto and forgets the in-process handlers when it
    stops (``LocalAws``), so sessions on one xdist worker do not see each other. Before a
    session stops, every execution it ran is checked against the AWS quotas moto ignores
    (``QuotaExceededError`` at teardown names the quota).
    """
    with ExitStack() as stack:

        def start(**kwargs: object) -> LocalSession:
            kwargs.setdefault("log_dir", tmp_path / "worker-logs")
            Path(str(kwargs["log_dir"])).mkdir(parents=True, exist_ok=True)
            session = stack.enter_context(LocalSession(**kwargs))  # type: ignore[arg-type]
            stack.callback(history.check_executions)  # runs before the session closes
            return session

        yield start


@pytest.fixture
def parceler_run(
    worker_pythonpath: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m parceler run ARGS`` in ``tmp_path`` (a local run writes its run folder
    under the current directory); return the finished process."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return parceler(tmp_path, "run", *args)

    return run


def parceler(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m parceler ARGS`` in ``cwd``; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "parceler", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_SECONDS + 60,
        check=False,
    )
