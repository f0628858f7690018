"""The local mode's session: emulator, the stack's resources, worker processes, DLQ drain.

What runs where (documented substitutions from the AWS flow, nothing else):

* moto's server on 127.0.0.1 in this process, serialised for many clients
  (:class:`~parceler.local.emulator.LocalAws`), executing the real state machine
  definition and calling the real planner and aggregator handlers in-process.
* ``workers`` processes running the container worker loop (``parceler worker``) against the
  emulated SQS. Each serves both the Lambda and the container queue: on AWS a Lambda
  event source mapping serves the first, here the same worker core does.
* A thread that drains both DLQs into the dead-letter handler's core, as the DLQ
  handler's event source mapping does on AWS (moto's own mapping never dead-letters).
* A thread that supervises the worker processes, as Lambda and ECS replace dead ones: a
  worker that dies (a processor calling ``os._exit``, a segfault, the OOM killer) is
  replaced, and the group it held gets the cause (exit code or signal name) as its last
  error, so the DLQ path fails it with that cause; at the group's last allowed attempt
  (``limits.max_attempts``, at most ``max_receive_count``) it is failed at once.
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

from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.container_worker import worker_id
from parceler.dead_letter import dead_letter
from parceler.errors import ParcelerError, WorkerDiedError
from parceler.ledger import GroupItem
from parceler.local.emulator import LocalAws
from parceler.local.forked_workers import ForkedWorker, prefork
from parceler.local.resources import LocalStack, create_local_stack
from parceler.spec_store import read_spec
from parceler.workarea import JobArea

log = logging.getLogger(__name__)

IDLE_DEATHS_REPLACED = 10


def describe_exit(returncode: int) -> str:
    """How a process ended, for logs and the ledger: ``exited with code 3`` or
    ``was killed by SIGSEGV`` (a negative return code is the signal's number)."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


class LocalSession:
    """Everything a local job needs, started on enter and stopped on exit.

    Args:
        workers: worker processes (each reused for many groups).
        visibility_seconds: the work queues' visibility timeout (heartbeats extend it).
        max_receive_count: deliveries before a message moves to its DLQ.
        log_dir: where worker processes write their logs (default: a temporary folder,
            removed on exit).
        port: the emulator's loopback port (default 0: a free one).
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        visibility_seconds: int = 30,
        max_receive_count: int = 3,
        log_dir: Path | None = None,
        port: int = 0,
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
        self.aws = LocalAws(port=port)
        self._stack: LocalStack | None = None
        self._workers: list[subprocess.Popen[bytes] | ForkedWorker] = []
        self._preforked: list[ForkedWorker] = []
        self._logs: list[IO[bytes]] = []
        self._stop = threading.Event()
        self._drain: threading.Thread | None = None
        self._workers_lock = threading.Lock()  # the supervisor and start_workers both append
        self._supervisor: threading.Thread | None = None

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
        if not self._preforked:
            self.fork_workers()
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
            self._supervisor = threading.Thread(target=self._supervise_workers, daemon=True)
            self._supervisor.start()
        except BaseException:
            self.close()
            raise
        return self

    def fork_workers(self) -> None:
        """Fork the first workers now, while this process has no other thread (before the
        server's, or a progress display's); they start serving once the stack exists. A
        process that already runs threads spawns its workers instead."""
        self._preforked = prefork(self.n_workers)

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
        queues = [stack.lambda_queue_url, stack.container_queue_url]
        for _ in range(count):
            with self._workers_lock:
                index = len(self._workers)
                log_path = self.log_dir / f"worker-{index}.log"
                if self._preforked:
                    forked = self._preforked.pop()
                    forked.start(env, queues, str(log_path), grace=10.0)
                    self._workers.append(forked)
                    continue
                # Appended: a replacement worker, or a later redrive, keeps earlier lines.
                log_file = log_path.open("ab")
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

    # ---- worker supervision ------------------------------------------------------------

    def _supervise_workers(self) -> None:
        """Replace each worker that dies, after recording why on the group it held.

        Deaths of workers that held no group (a worker that cannot even start) are
        replaced at most :data:`IDLE_DEATHS_REPLACED` times, so a broken environment does
        not respawn forever; deaths while running a group are bounded by the group's
        attempts.
        """
        stack = self.stack
        ledger = Ledger(stack.ledger_table)
        handled: set[int] = set()
        idle_deaths = 0
        while not self._stop.wait(0.5):
            with self._workers_lock:
                dead = [p for p in self._workers if p.pid not in handled and p.poll() is not None]
            for process in dead:
                if self._stop.is_set():
                    return
                handled.add(process.pid)
                how = describe_exit(process.poll() or 0)
                try:
                    held = self._record_worker_death(ledger, process.pid, how)
                except ParcelerError:
                    log.exception("recording the death of worker pid %d", process.pid)
                    held = []
                idle_deaths += 0 if held else 1
                if idle_deaths > IDLE_DEATHS_REPLACED:
                    log.error("worker pid %d %s holding no group; not replaced (%d such deaths)",
                              process.pid, how, idle_deaths)  # fmt: skip
                    continue
                groups = ", ".join(f"{g.job_id}/{g.index} attempt {g.attempt}" for g in held)
                log.warning("worker pid %d %s%s; starting a replacement", process.pid, how,
                            f" while running group {groups}" if groups else "")  # fmt: skip
                self._start_workers(stack, 1)

    def _record_worker_death(self, ledger: Ledger, pid: int, how: str) -> list[GroupItem]:
        """Record ``how`` the worker ``pid`` died on each group it held; return those groups.

        The cause becomes the group's last error (and the group is handed back), so when
        its message exhausts the queue's receives the DLQ path fails it with this cause;
        at its last allowed attempt it is failed now, without waiting for the redelivery.
        """
        worker = worker_id(0, pid=pid)  # a session worker runs one loop: index 0
        held = ledger.groups_held_by(worker)
        for group in held:
            cause = (
                f"worker {worker} {how} while running group {group.index} of job "
                f"{group.job_id} (attempt {group.attempt}): the processor (or a library it "
                "calls) ended the worker process."
            )
            error = WorkerDiedError.__name__
            ledger.record_error(group.job_id, group.index, group.attempt, error, cause)
            ledger.release_slots_held_by(group.job_id, worker)  # max_concurrency slots
            allowed = self._attempts_allowed(ledger, group.job_id)
            if group.attempt - group.attempt_base >= allowed:  # a redrive's fresh budget
                ledger.fail_group(
                    group.job_id,
                    group.index,
                    error,
                    f"{cause} Failed after {group.attempt} attempt(s), the most allowed "
                    f"({allowed}). Fix: make the processor handle this input without ending "
                    "the process, or exclude the file.",
                )
        return held

    def _attempts_allowed(self, ledger: Ledger, job_id: str) -> int:
        """``limits.max_attempts`` of the job's spec, at most the queue's receives."""
        try:
            spec = read_spec(JobArea(self.stack.work_bucket, job_id))
        except ParcelerError:
            return self.max_receive_count
        return min(spec.limits.max_attempts, self.max_receive_count)

    def close(self) -> None:
        """Stop workers (SIGTERM, then SIGKILL after their grace), the drain and the server."""
        self._stop.set()
        for unused in self._preforked:
            unused.discard()
        self._preforked = []
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)  # no replacement starts once workers stop
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
