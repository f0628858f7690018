"""Shell processors, s4-style: each file on the command's stdin, its stdout is the output.

``ProcessorSpec(kind="shell", command="cut -d, -f1-5")`` runs ``/bin/sh -c <command>``
once per file: the spec author owns the command (a shell pipeline is the point), so it
is run with a shell, never built from data. For each file:

- stdin: the file, streamed (a command that stops reading early, like ``head``, is fine);
- stdout: streamed to ``<output_prefix>/<index:06d>-<basename>`` and listed in outputs;
- stderr: the last 2 KB are kept for the error message;
- cwd: a fresh temporary folder (scratch space, removed afterwards);
- env: the worker's environment *without its AWS credentials* (the command reads stdin and
  writes stdout; it must not act as the worker's role) plus ``PARCELER_INPUT_URI``,
  ``PARCELER_OUTPUT_URI``, ``PARCELER_JOB_ID``, ``PARCELER_GROUP_INDEX``,
  ``PARCELER_ATTEMPT``, ``PARCELER_FILE_INDEX`` and s4's ``filename`` (the input's base
  name);
- time: ``timeout_seconds`` per file (and never past the group's deadline); on expiry the
  whole process group is killed (SIGKILL).

In pipelines (docs/pipelines.md) a ``map_to_n`` command (:func:`run_shuffle_command`) writes
files in its folder and prints their names, the partition keys; a ``map_from_n`` command
(:func:`run_merge_command`) runs once per partition with its pieces' paths on stdin.

A non-zero exit status, a kill or a timeout is a :class:`ProcessorError` with the
command, the status and the stderr tail (a partial output may remain in the attempt's
folder; attempts that fail are never committed). Per-file value:
``{"files": 1, "bytes_in": n, "bytes_out": m}``; ``sum`` merges it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Generic, TypeVar, cast

from parceler.errors import DeadlineExceededError, ProcessorError
from parceler.processors.context import (
    FileRef,
    GroupContext,
    output_name,
)
from parceler.processors.loading import user_error
from parceler.processors.outputs import put_stream

STDERR_TAIL_BYTES = 2048
_CHUNK = 1 << 20
_JOIN_SECONDS = 10.0
T = TypeVar("T")
#: Where an AWS SDK finds the worker role's credentials (Lambda sets the keys; ECS the
#: container endpoint) and the ECS agent endpoint (task protection); none reaches a command.
CREDENTIAL_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "ECS_AGENT_URI",
    }
)


class _StderrTail:
    """Drains a pipe, keeping only its last ``STDERR_TAIL_BYTES``."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self.data = bytearray()

    def run(self) -> None:
        # os.read returns what is there (a buffered read would wait to fill its buffer).
        while chunk := os.read(self._pipe.fileno(), 65536):
            self.data += chunk
            if len(self.data) > STDERR_TAIL_BYTES:
                del self.data[: len(self.data) - STDERR_TAIL_BYTES]

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace").strip()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_command(
    command: str, file: FileRef, ctx: GroupContext, timeout_seconds: float
) -> dict[str, int]:
    """Run ``command`` on one file (a ``map``); see the module doc.

    Raises:
        ProcessorError: non-zero exit, killed, or timed out (with the stderr tail).
        DeadlineExceededError: the group's deadline came first.
        parceler errors from reading the input or writing the output, unchanged.
    """
    uri = ctx.output_uri(output_name(file))
    with tempfile.TemporaryDirectory(prefix="parceler-shell-") as scratch:
        ran = _execute(
            command, ctx, timeout_seconds, scratch, file.uri,
            feed=_file_feeder(file),
            drain=lambda stdout: put_stream(uri, stdout),
            env=_file_env(file, uri),
        )  # fmt: skip
    ctx.add_output(uri, ran.output.size, None, ran.output.etag)
    return {"files": 1, "bytes_in": ran.bytes_in, "bytes_out": ran.output.size}


def run_shuffle_command(
    command: str, file: FileRef, ctx: GroupContext, timeout_seconds: float
) -> dict[str, int]:
    """Run ``command`` on one file of a ``map_to_n`` job, s4-style: the file on stdin; the
    command writes files in its working folder and prints their names, one per line; each
    file is a piece and its name the piece's partition key (``ctx.emit``).

    Raises:
        ProcessorError: as for :func:`run_command`, or a printed name that is not a file
            the command wrote in its folder.
    """
    assert ctx.shuffle is not None
    with tempfile.TemporaryDirectory(prefix="parceler-shell-") as scratch:
        ran = _execute(
            command, ctx, timeout_seconds, scratch, file.uri,
            feed=_file_feeder(file),
            drain=lambda stdout: stdout.read(),
            env=_file_env(file, ctx.output_prefix),
        )  # fmt: skip
        names = [line.strip() for line in ran.output.decode("utf-8", "replace").splitlines()]
        bytes_out = 0
        folder = Path(scratch).resolve()
        for name in filter(None, names):
            path = (folder / name).resolve()
            if path.parent != folder or not path.is_file():
                raise ProcessorError(
                    f"shell command {command!r} on {file.uri} printed {name!r}, which is not "
                    "a file it wrote in its working folder.",
                    "a map_to_n command writes its pieces as files in its working folder and "
                    "prints their names (the partition keys), one per line, nothing else.",
                )
            with path.open("rb") as piece:
                ctx.shuffle.emit_stream(name, piece)
            bytes_out += path.stat().st_size
    return {"files": 1, "bytes_in": ran.bytes_in, "bytes_out": bytes_out}


def run_merge_command(
    command: str, pieces: list[FileRef], ctx: GroupContext, timeout_seconds: float
) -> dict[str, int]:
    """Run ``command`` once on a ``map_from_n`` group: every piece of the partition copied to
    the command's working folder, their paths on stdin (one per line), its stdout the
    partition's output ``part-<partition:05d>``.

    Raises:
        ProcessorError: as for :func:`run_command`.
    """
    name = f"part-{ctx.partition if ctx.partition is not None else ctx.group_index:05d}"
    uri = ctx.output_uri(name)
    with tempfile.TemporaryDirectory(prefix="parceler-shell-") as scratch:
        paths, bytes_in = [], 0
        for piece in pieces:
            ctx.check_deadline(piece.uri)
            path = Path(scratch) / f"piece-{piece.index:06d}"
            with piece.open() as source, path.open("wb") as target:
                while chunk := source.read(_CHUNK):
                    target.write(chunk)
                    bytes_in += len(chunk)
            paths.append(path)
        listing = "".join(f"{path}\n" for path in paths).encode()
        where = f"partition {ctx.partition} ({len(pieces)} pieces)"
        ran = _execute(
            command, ctx, timeout_seconds, scratch, where,
            feed=lambda stdin: stdin.write(listing) or len(listing),
            drain=lambda stdout: put_stream(uri, stdout),
            env={
                "PARCELER_OUTPUT_URI": uri,
                "PARCELER_PARTITION": str(ctx.partition),
                "filename": name,
            },
        )  # fmt: skip
    ctx.add_output(uri, ran.output.size, None, ran.output.etag)
    return {"files": len(pieces), "bytes_in": bytes_in, "bytes_out": ran.output.size}


def _file_env(file: FileRef, output: str) -> dict[str, str]:
    return {
        "PARCELER_INPUT_URI": file.uri,
        "PARCELER_OUTPUT_URI": output,
        "PARCELER_FILE_INDEX": str(file.index),
        "filename": file.basename,  # s4's name for it
    }


def _file_feeder(file: FileRef) -> Callable[[IO[bytes]], int]:
    def feed(stdin: IO[bytes]) -> int:
        fed = 0
        with file.open() as source:
            while chunk := source.read(_CHUNK):
                stdin.write(chunk)
                fed += len(chunk)
        return fed

    return feed


@dataclass(frozen=True, slots=True)
class _Ran(Generic[T]):
    output: T
    bytes_in: int


def _execute(
    command: str,
    ctx: GroupContext,
    timeout_seconds: float,
    scratch: str,
    where: str,
    *,
    feed: Callable[[IO[bytes]], int],
    drain: Callable[[BinaryIO], T],
    env: dict[str, str],
) -> _Ran[T]:
    """Run ``command`` in ``scratch``: ``feed`` writes its stdin (in a thread), ``drain``
    consumes its stdout; check the exit status (``where`` names the input in errors)."""
    left = ctx.time_left()
    by_deadline = left is not None and left < timeout_seconds
    limit = max(left, 0.0) if left is not None and by_deadline else timeout_seconds
    environment = {
        **{name: value for name, value in os.environ.items() if name not in CREDENTIAL_VARIABLES},
        "PARCELER_JOB_ID": ctx.job_id,
        "PARCELER_GROUP_INDEX": str(ctx.group_index),
        "PARCELER_ATTEMPT": str(ctx.attempt),
        **env,
    }
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=scratch,
        env=environment,
        start_new_session=True,  # its own process group, so a kill reaches children too
    )
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    timed_out = threading.Event()
    feed_errors: list[Exception] = []
    bytes_in = [0]

    def on_timeout() -> None:
        timed_out.set()
        _kill_group(process)

    def feed_stdin(stdin: IO[bytes]) -> None:
        try:
            bytes_in[0] = feed(stdin)
        except BrokenPipeError:
            pass  # the command stopped reading; its exit status says if that was fine
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
            feed_errors.append(exc)
            _kill_group(process)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    tail = _StderrTail(process.stderr)
    threads = [
        threading.Thread(target=feed_stdin, args=(process.stdin,), daemon=True),
        threading.Thread(target=tail.run, daemon=True),
    ]
    timer = threading.Timer(limit, on_timeout)
    timer.daemon = True
    timer.start()
    for thread in threads:
        thread.start()
    try:
        output = drain(cast(BinaryIO, process.stdout))
    except BaseException:
        _kill_group(process)
        raise
    finally:
        with contextlib.suppress(OSError):
            process.stdout.close()
        returncode = process.wait()
        timer.cancel()
        for thread in threads:
            thread.join(_JOIN_SECONDS)
        with contextlib.suppress(OSError):
            process.stderr.close()
    if feed_errors:
        error = feed_errors[0]
        raise user_error(
            error, "reading the input for the shell command", where, user_code=False
        ) from error
    _check_status(command, where, returncode, timed_out.is_set(), by_deadline, limit, tail, ctx)
    return _Ran(output, bytes_in[0])


def _check_status(
    command: str,
    where: str,
    returncode: int,
    timed_out: bool,
    by_deadline: bool,
    limit: float,
    tail: _StderrTail,
    ctx: GroupContext,
) -> None:
    stderr = tail.text()
    stderr_note = f"\nstderr (last {STDERR_TAIL_BYTES} bytes):\n{stderr}" if stderr else ""
    if returncode < 0 and timed_out:
        if by_deadline:
            raise DeadlineExceededError(
                f"shell command {command!r} on {where} was killed at the group's deadline "
                f"({limit:.3g}s left).{stderr_note}",
                "route long groups to the container queue or make groups smaller.",
            )
        raise ProcessorError(
            f"shell command {command!r} timed out after {limit:g}s on {where} and was "
            f"killed.{stderr_note}",
            "raise processor.timeout_seconds or speed the command up.",
        )
    if returncode < 0:
        name = _signal_name(-returncode)
        raise ProcessorError(
            f"shell command {command!r} was killed by {name} on {where}.{stderr_note}",
            "check the worker's memory (an OOM kill) and the command.",
        )
    if returncode != 0:
        raise ProcessorError(
            f"shell command {command!r} exited with status {returncode} on {where}.{stderr_note}",
            "run the command locally on that file to reproduce: "
            f"parceler's input is stdin, output stdout (group {ctx.group_index}).",
        )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
