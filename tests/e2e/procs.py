"""Python processors for the local end-to-end tests (``kind="python"``, ``per="file"``).

Worker processes import them as ``tests.e2e.procs:<name>``, so the repository root must
be on their ``PYTHONPATH``. Each returns ``{"lines": n, "files": {basename: 1}}``: with the
``sum`` reducer the job value counts every file it covered, so a file lost or counted
twice shows in ``files`` (a missing key, or a 2), not only in the line total.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from parceler.errors import PermanentError, RetryableError
from parceler.processors import FileRef

SLOW_SECONDS = 0.4
# A file whose name starts with one of these fails every time it is processed.
PERMANENT_POISON = "poison-permanent"
RETRYABLE_POISON = "poison-retryable"
# A file whose name starts with one of these ends the worker process that processes it.
EXIT_POISON = "poison-exit"
SEGFAULT_POISON = "poison-segfault"


def line_count_value(name: str, data: bytes) -> dict[str, Any]:
    """The value the processors below return for a file ``name`` holding ``data``."""
    return {"lines": data.count(b"\n"), "files": {name: 1}}


def slow_line_count(file: FileRef) -> dict[str, Any]:
    """Sleep :data:`SLOW_SECONDS` (so groups are caught RUNNING), then count lines."""
    time.sleep(SLOW_SECONDS)
    return line_count_value(file.basename, file.read_bytes())


def poison_line_count(file: FileRef) -> dict[str, Any]:
    """Count lines; fail on poison files: ``PermanentError`` (no retry) or retryably."""
    if file.basename.startswith(PERMANENT_POISON):
        raise PermanentError(f"cannot parse {file.basename}: simulated corrupt input")
    if file.basename.startswith(RETRYABLE_POISON):
        raise RetryableError(f"simulated transient fault reading {file.basename}")
    return line_count_value(file.basename, file.read_bytes())


def crashing_line_count(file: FileRef) -> dict[str, Any]:
    """Count lines; end the whole worker process on crash files: ``os._exit(3)`` or SIGSEGV."""
    if file.basename.startswith(EXIT_POISON):
        os._exit(3)
    if file.basename.startswith(SEGFAULT_POISON):
        os.kill(os.getpid(), signal.SIGSEGV)
    return line_count_value(file.basename, file.read_bytes())


def chatty_poison_line_count(file: FileRef) -> dict[str, Any]:
    """Print a line naming the file (a worker log line), then :func:`poison_line_count`."""
    print(f"chatty: reading {file.basename}")
    return poison_line_count(file)


def marked_poison_line_count(file: FileRef) -> dict[str, Any]:
    """Count lines; fail (permanently) while a marker ``<data folder>/../poison/<name>``
    exists, so a test can fix the poison without changing the file (then redrive)."""
    path = Path(file.uri.removeprefix("file://"))
    if (path.parent.parent / "poison" / path.name).exists():
        raise PermanentError(f"{path.name} is marked poison")  # fails at once, no retry
    return line_count_value(file.basename, file.read_bytes())


LONG_SECONDS = 3.0
# A file whose name starts with this takes LONG_SECONDS (a long group, several visibility
# timeouts of a test session).
LONG = "long"


def long_or_quick_line_count(file: FileRef) -> dict[str, Any]:
    """Sleep :data:`LONG_SECONDS` on a ``long*`` file, then count lines."""
    if file.basename.startswith(LONG):
        time.sleep(LONG_SECONDS)
    return line_count_value(file.basename, file.read_bytes())


def timed_line_count(file: FileRef) -> dict[str, Any]:
    """Record when this file was processed (``<data>/../intervals/<name>``: start and end,
    epoch seconds) around a :data:`SLOW_SECONDS` sleep, then count lines."""
    folder = Path(file.uri.removeprefix("file://")).parent.parent / "intervals"
    folder.mkdir(exist_ok=True)
    start = time.time()
    time.sleep(SLOW_SECONDS)
    (folder / file.basename).write_text(f"{start} {time.time()}")
    return line_count_value(file.basename, file.read_bytes())


# --------------------------------------------------------------------------- pipelines
# Lines look like "<name> <key> ...": map_to_n routes each line by its key, map_from_n
# counts lines per key, so a piece lost or read twice shows in the counts.


def upper_named(file: FileRef, ctx: Any) -> dict[str, int]:
    """A 1:1 map: writes the file upper-cased to an output named after it."""
    data = file.read_bytes()
    ctx.write_output(file.basename, data.upper())
    return {"files": 1}


def route_by_key(file: FileRef, ctx: Any) -> dict[str, int]:
    """map_to_n: each line to the partition of its second word."""
    lines = file.read_bytes().splitlines(keepends=True)
    for line in lines:
        ctx.emit(line.split()[1].decode(), line)
    return {"lines": len(lines)}


def slow_route_by_key(file: FileRef, ctx: Any) -> dict[str, int]:
    """:func:`route_by_key` after :data:`SLOW_SECONDS` (so a mapper is caught RUNNING)."""
    time.sleep(SLOW_SECONDS)
    return route_by_key(file, ctx)


def count_by_key(pieces: list[FileRef], ctx: Any) -> dict[str, int]:
    """map_from_n: lines per key over the partition's pieces; writes them as the output."""
    counts: dict[str, int] = {}
    for piece in pieces:
        for line in piece.read_bytes().splitlines():
            key = line.split()[1].decode()
            counts[key] = counts.get(key, 0) + 1
    text = "".join(f"{key} {n}\n" for key, n in sorted(counts.items()))
    ctx.write_output(f"part-{ctx.partition:05d}", text.encode())
    return counts


def timed_count_by_key(pieces: list[FileRef], ctx: Any) -> dict[str, int]:
    """:func:`count_by_key`, recording when it ran (start and end, epoch seconds) in
    ``$E2E_INTERVALS/<partition>`` around a short sleep (so overlaps would show)."""
    folder = Path(os.environ["E2E_INTERVALS"])
    start = time.time()
    time.sleep(SLOW_SECONDS / 2)
    counts = count_by_key(pieces, ctx)
    (folder / str(ctx.partition)).write_text(f"{start} {time.time()}")
    return counts


def blockable_count_by_key(pieces: list[FileRef], ctx: Any) -> dict[str, int]:
    """:func:`count_by_key`, failing for good while the file ``$E2E_BLOCK`` exists."""
    if Path(os.environ["E2E_BLOCK"]).exists():
        raise PermanentError(f"blocked by {os.environ['E2E_BLOCK']}")
    return count_by_key(pieces, ctx)
