"""The local mode's session: emulator, the stack's resources, worker processes, DLQ drain.

What runs where (documented substitutions from the AWS flow, nothing else):

* moto's server on 127.0.0.1 in this process, serialised for many clients
  (:class:`~parceler.local.emulator.LocalAws`), executing the real state machine
  definition and calling the real planner and aggregator handlers in-process.
* ``workers`` processes running the container runner (``parceler worker``) against the
  emulated SQS. Each serves both the Lambda and the container queue: on AWS a Lambda
  event source mapping serves the first, here the same worker core does.
* A thread that drains both DLQs into the dead-letter handler's core, as the DLQ
  handler's event source mapping does on AWS (moto's own mapping never dead-letters).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from parceler import queue
from parceler.local.emulator import LocalAws
from parceler.local.resources import LocalStack, create_local_stack
from parceler.worker import dead_letter

log = logging.getLogger(__name__)


class LocalSession:
    """Everything a local job needs, started on enter and stopped on exit.

    Args:
        workers: worker processes (each reused for many groups).
        visibility_seconds: the work queues' visibility timeout (heartbeats extend it).
        max_receive_count: deliveries before a message moves to its DLQ.
        log_dir: where worker processes write their logs (default: a temporary folder,
            removed on exit).
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        visibility_seconds: int = 30,
        max_receive_count: int = 3,
        log_dir: Path | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a local session needs at least one worker")
        self.n_workers = workers
        self.visibility_seconds = visibility_seconds
        self.max_receive_count = max_receive_count
        # A folder made here is ours to remove; a caller's (the run folder) is kept.
        self._temporary_log_dir = log_dir is None
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="parceler-local-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.aws = LocalAws()
        self._stack: LocalStack | None = None
        self._workers: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._stop = threading.Event()
        self._drain: threading.Thread | None = None

    @property
    def stack(self) -> LocalStack:
        if self._stack is None:
            raise RuntimeError("the local session is not started")
        return self._stack

    def __enter__(self) -> Self:
        if not os.environ.get("PARCELER_DEBUG"):
            # moto logs every failed state (with object reprs) at ERROR: the job's own
            # result already says what failed, in parceler's words.
            logging.getLogger("moto").setLevel(logging.CRITICAL)
        self.aws.start()
        try:
            self._stack = create_local_stack(
                lambda_visibility_seconds=self.visibility_seconds,
                container_visibility_seconds=self.visibility_seconds,
                max_receive_count=self.max_receive_count,
                when_queues_ready=self._start_first_workers,
            )
            self._drain = threading.Thread(target=self._drain_dead_letters, daemon=True)
            self._drain.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start_first_workers(self, stack: LocalStack) -> None:
        self._start_workers(stack, self.n_workers)

    def start_workers(self, count: int) -> None:
        """Start ``count`` more worker processes (``parceler worker`` on both queues)."""
        self._start_workers(self.stack, count)

    def _start_workers(self, stack: LocalStack, count: int) -> None:
        # Unbuffered: a processor's prints land between its group's log markers.
        env = {**os.environ, **self.aws.env(), **stack.env("worker"), "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable, "-m", "parceler", "worker",
            "--queue", stack.lambda_queue_url, "--queue", stack.container_queue_url,
            "--wait-seconds", "1", "--grace", "10",
        ]  # fmt: skip
        for _ in range(count):
            index = len(self._workers)
            log_file = (self.log_dir / f"worker-{index}.log").open("wb")
            self._logs.append(log_file)
            self._workers.append(
                subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
            )

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes started so far (alive or not)."""
        return [process.pid for process in self._workers]

    def _drain_dead_letters(self) -> None:
        stack = self.stack
        settings = stack.dead_letter_settings()
        dlqs = (stack.lambda_dead_letter_queue_url, stack.container_dead_letter_queue_url)
        while not self._stop.is_set():
            for url in dlqs:
                try:
                    for message in queue.receive(url, max_messages=10, wait_seconds=0):
                        outcome = dead_letter(message.body, settings)
                        log.warning("dead letter %s: %s", message.message_id, outcome.status)
                        queue.delete(url, message.receipt_handle)
                except Exception:
                    log.exception("draining %s", url)
            self._stop.wait(0.5)

    def close(self) -> None:
        """Stop workers (SIGTERM, then SIGKILL after their grace), the drain and the server."""
        self._stop.set()
        for process in self._workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log_file in self._logs:
            log_file.close()
        if self._drain is not None:
            self._drain.join(timeout=5)
        self.aws.stop()
        if self._temporary_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)
