"""The local session names how a worker process ended (exit code, or the signal's name), and
forks its first workers only while it is safe to."""

from __future__ import annotations

import signal
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


def test_preforked_workers_exit_quietly_when_never_started() -> None:
    children = prefork(2)

    assert len(children) == 2
    for child in children:
        child.discard()
        assert child.returncode == 0


def test_a_preforked_worker_reports_the_signal_that_killed_it() -> None:
    [child] = prefork(1)

    child.kill()

    assert child.wait(timeout=10) == -signal.SIGKILL
    assert describe_exit(child.returncode or 0) == "was killed by SIGKILL"
    child.discard()  # its pipe, closed unsent


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
