"""Small python processors for the functional tests (``kind="python"``, ``per="group"``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from parceler.errors import PermanentError, RetryableError
from parceler.processors import FileRef, GroupContext

# Concurrency choreography for test_worker_concurrency: each attempt announces it started
# and waits for its gate; both keyed by attempt number.
STARTED: dict[int, threading.Event] = {}
GATES: dict[int, threading.Event] = {}
SLEEP_SECONDS = 5.0


def _copy(files: list[FileRef], ctx: GroupContext) -> int:
    for file in files:
        ctx.write_output(f"{file.index:06d}.out", file.read_bytes().upper())
    return len(files)


def copy_files(files: list[FileRef], ctx: GroupContext) -> int:
    """Write each file upper-cased under the attempt's output folder; value: the file count."""
    return _copy(files, ctx)


def poison_or_copy(files: list[FileRef], ctx: GroupContext) -> int:
    """Like :func:`copy_files`, but a group with a file named ``poison`` always fails retryably."""
    if any("poison" in f.uri for f in files):
        raise RetryableError("the worker ran out of memory on this group (simulated).")
    return _copy(files, ctx)


def sleepy(files: list[FileRef], ctx: GroupContext) -> int:
    """Sleep :data:`SLEEP_SECONDS`, then copy (longer than a short visibility timeout)."""
    time.sleep(SLEEP_SECONDS)
    return _copy(files, ctx)


def gated(files: list[FileRef], ctx: GroupContext) -> Any:
    """Write outputs, announce the start of this attempt, then wait for its gate to open."""
    written = _copy(files, ctx)
    STARTED.setdefault(ctx.attempt, threading.Event()).set()
    if not GATES.setdefault(ctx.attempt, threading.Event()).wait(timeout=60):
        raise RuntimeError(f"gate of attempt {ctx.attempt} never opened")
    return {"attempt": ctx.attempt, "files": written}


def flaky_first_attempt(files: list[FileRef], ctx: GroupContext) -> int:
    """A plain exception on attempt 1 (a dropped connection), then :func:`copy_files`."""
    if ctx.attempt == 1:
        raise ConnectionError("connection reset by peer (simulated, attempt 1 only)")
    return _copy(files, ctx)


def always_connection_error(files: list[FileRef], ctx: GroupContext) -> int:
    """A plain exception on every attempt."""
    raise ConnectionError(f"connection reset by peer (simulated, attempt {ctx.attempt})")


def refuses_for_good(files: list[FileRef], ctx: GroupContext) -> int:
    """Raise ``parceler.PermanentError``: the processor says no retry can help."""
    raise PermanentError("the input is encrypted with a key this job does not have.")


# Choreography for the max_concurrency test, keyed by group index.
GROUP_STARTED: dict[int, threading.Event] = {}
GROUP_GATES: dict[int, threading.Event] = {}


def gated_by_group(files: list[FileRef], ctx: GroupContext) -> int:
    """Announce this group started, wait for its gate, then :func:`copy_files`."""
    GROUP_STARTED.setdefault(ctx.group_index, threading.Event()).set()
    if not GROUP_GATES.setdefault(ctx.group_index, threading.Event()).wait(timeout=60):
        raise RuntimeError(f"gate of group {ctx.group_index} never opened")
    return _copy(files, ctx)
