"""The local session names how a worker process ended (exit code, or the signal's name), and
forks its first workers only while it is safe to."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest

from parceler.local.forked_workers import prefork
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


_FORKS = """
import json, signal, sys
from parceler.local.forked_workers import prefork
from parceler.local.session import describe_exit
unused = prefork(2)
for child in unused:
    child.discard()
[killed] = prefork(1)
killed.kill()
killed.wait(timeout=10)
killed.discard()
print(json.dumps({"unused": [c.returncode for c in unused],
                  "killed": describe_exit(killed.returncode)}))
"""


def test_preforked_workers_exit_quietly_unused_and_report_the_signal_that_killed_them() -> None:
    """In a process of its own: a test runner's process has threads (pytest-xdist), where
    :func:`prefork` forks nothing."""
    done = subprocess.run(
        [sys.executable, "-c", _FORKS], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == {"unused": [0, 0], "killed": "was killed by SIGKILL"}


def test_no_fork_while_another_thread_runs() -> None:
    """A fork copies only the calling thread: a lock another thread holds would stay held."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert prefork(2) == []
    finally:
        stop.set()
        other.join()
