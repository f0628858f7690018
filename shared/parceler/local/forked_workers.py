"""Worker processes forked before the emulator starts: a local run's first workers for free.

A spawned ``parceler worker`` process pays a fresh interpreter and its imports (boto3,
pyarrow, parceler: ~1-1.5 s of CPU each on this project's 2-core machine, competing with
the emulator's own start-up; ``bench/results/local.md``). A process forked from the CLI
already has them. Forking is only safe while this process has no other threads, so
:func:`prefork` runs before the emulator's server thread starts; each child then blocks
on a pipe until :meth:`ForkedWorker.start` sends what it needs (its environment, queues
and log file) once the stack exists, or exits quietly if the pipe closes unused.

Workers started later (replacements of dead ones) are spawned as before
(:mod:`parceler.local.session`): by then the emulator's threads run in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ForkedWorker:
    """A forked child waiting for its orders, then a worker loop; ``subprocess.Popen``'s
    interface as the session's supervisor uses it (``pid``, ``poll``, ``returncode``,
    ``send_signal``, ``wait``, ``kill``)."""

    pid: int
    _orders: int  # the write end of the child's pipe; -1 once sent or closed
    returncode: int | None = field(default=None)

    def start(self, env: dict[str, str], queues: list[str], log_path: str, grace: float) -> None:
        """Send the child its environment, queues and log file: it starts serving them."""
        orders = json.dumps({"env": env, "queues": queues, "log": log_path, "grace": grace})
        with os.fdopen(self._orders, "w") as pipe:
            pipe.write(orders)
        self._orders = -1

    def discard(self) -> None:
        """Close the pipe unsent: the child exits without serving anything."""
        if self._orders >= 0:
            os.close(self._orders)
            self._orders = -1
        self.wait()

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.02)
        return code


def prefork(count: int) -> list[ForkedWorker]:
    """Fork ``count`` children that wait for :meth:`ForkedWorker.start`.

    Returns no children (the caller spawns instead) when this process already runs other
    threads, where a fork could copy a lock another thread holds.
    """
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        return []
    # What every worker loop imports, loaded once here so that each child has it.
    import parceler.container_worker
    import parceler.processors.builtins  # noqa: F401

    children: list[ForkedWorker] = []
    for _ in range(count):
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its behaviour is tested end to end
            os.close(write_end)
            for sibling in children:
                os.close(sibling._orders)
            _child(read_end)
        os.close(read_end)
        children.append(ForkedWorker(pid, write_end))
    return children


def _child(orders_fd: int) -> None:  # pragma: no cover - runs in the forked child
    code = 1
    try:
        from parceler import aws

        aws.preload_models(("s3", "sqs", "dynamodb"))  # while the stack is created
        with os.fdopen(orders_fd) as pipe:
            text = pipe.read()
        if not text:
            os._exit(0)  # the session ended (or spawned instead) before using this child
        code = _serve(json.loads(text))
    except BaseException:  # noqa: BLE001 -- a child must end here, never return to the CLI's code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve(orders: dict[str, Any]) -> int:  # pragma: no cover - runs in the forked child
    """Become a ``parceler worker`` process: its environment, its log, its loop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a spawned worker: Ctrl-C ends it
    os.environ.clear()
    os.environ.update(orders["env"])
    log = os.open(orders["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(devnull)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 -- the process's own
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    import logging

    from parceler import aws
    from parceler.container_worker import RunnerOptions, run
    from parceler.settings import WorkerSettings

    logging.basicConfig(level=logging.WARNING, force=True)
    aws.reset_clients()  # clients made before the fork point at no endpoint of ours
    queues = orders["queues"]
    options = RunnerOptions(
        queue_url=queues[0],
        more_queue_urls=tuple(queues[1:]),
        wait_seconds=1,
        grace_seconds=float(orders["grace"]),
    )
    stats = run(WorkerSettings.from_env(), options)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "none"
    print(
        f"parceler worker: {stats.handled} message(s) handled ({counts}); "
        f"{stats.released_on_stop} released on stop.",
        file=sys.stderr,
    )
    return 0
