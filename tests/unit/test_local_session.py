"""The local session names how a worker process ended: exit code, or the signal's name."""

from __future__ import annotations

import signal

import pytest

from parceler.local.session import describe_exit


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        (3, "exited with code 3"),
        (0, "exited with code 0"),
        (-signal.SIGSEGV, "was killed by SIGSEGV"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-200, "was killed by signal 200"),
    ],
)
def test_describe_exit(returncode: int, expected: str) -> None:
    assert describe_exit(returncode) == expected
