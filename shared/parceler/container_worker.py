"""The container worker: a long-poll loop over the worker protocol, SIGTERM-safe, N processes.

Each process receives one message at a time (``MaxNumberOfMessages=1``: a message waiting
behind a long group in the same process would burn its visibility for nothing), runs
:func:`parceler.worker.handle_delivery` in a worker thread, and loops. On SIGTERM (Fargate
scale-in, Ctrl-C) it stops receiving; the group in progress gets ``grace_seconds`` to finish
and commit, else its message is released (visibility 0) and the process exits. A released
group's ledger lease then lapses within one visibility timeout (the heartbeat stops with
the process), after which another worker claims it with a new attempt.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from parceler import task_protection
from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.messages import ReceivedMessage
from parceler.settings import WorkerSettings
from parceler.worker import DEFAULT_RETRY_BASE_SECONDS, Delivery, handle_delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How a runner polls and when it stops.

    Attributes:
        queue_url: the work queue.
        more_queue_urls: further queues served by the same loop, in turn (the local mode
            serves the Lambda and the container queue with one pool of workers).
        processes: worker processes (``spawn``-started; 1 runs in this process).
        max_groups: stop after this many messages per process (None: no limit).
        idle_exit: stop after this many seconds without a message (None: run until SIGTERM).
        wait_seconds: long-poll wait per ReceiveMessage (at most 20).
        grace_seconds: after SIGTERM, how long the group in progress may still run.
        retry_base_seconds: backoff base for retryable failures.
        heartbeat_interval: seconds between heartbeats (default a third of the visibility).
    """

    queue_url: str
    more_queue_urls: tuple[str, ...] = ()
    processes: int = 1
    max_groups: int | None = None
    idle_exit: float | None = None
    wait_seconds: int = 20
    grace_seconds: float = 25.0
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    heartbeat_interval: float | None = None

    @property
    def queue_urls(self) -> tuple[str, ...]:
        """Every queue this runner serves, the primary first."""
        return (self.queue_url, *self.more_queue_urls)


@dataclass
class RunStats:
    """What a runner did: messages handled, by outcome status."""

    outcomes: Counter[str] = field(default_factory=Counter)
    released_on_stop: int = 0

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())

    def merge(self, other: RunStats) -> None:
        self.outcomes.update(other.outcomes)
        self.released_on_stop += other.released_on_stop


def worker_id(index: int = 0, pid: int | None = None) -> str:
    """``host:pid:index`` — recorded on each claim (``pid``: another process's, default this)."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}:{index}"


def run_loop(
    settings: WorkerSettings,
    options: RunnerOptions,
    *,
    stop: threading.Event | None = None,
    index: int = 0,
) -> RunStats:
    """Poll ``options.queue_url`` and process messages until told to stop (one process).

    Args:
        settings: the worker settings (ledger table, work bucket).
        options: polling and stopping rules.
        stop: set it to stop (as SIGTERM does; the handler is installed when this runs in
            the main thread).
        index: this process's number, part of its worker id.

    Returns:
        Counts of outcomes.
    """
    stop = stop if stop is not None else threading.Event()
    polling = threading.Event()  # set while the loop only waits for a message
    restore = _install_sigterm(stop, polling)
    stats = RunStats()
    me = worker_id(index)
    urls = options.queue_urls
    visibility = {url: queue.visibility_timeout(url) for url in urls}
    idle_since = time.monotonic()
    turn = 0
    try:
        while not stop.is_set():
            if options.max_groups is not None and stats.handled >= options.max_groups:
                break
            url = urls[turn % len(urls)]
            # With several queues a long wait on one would starve the others: poll briefly.
            wait = max(0, min(20 if len(urls) == 1 else 1, options.wait_seconds))
            if options.idle_exit is not None:
                left = options.idle_exit - (time.monotonic() - idle_since)
                if left <= 0:
                    break
                wait = min(wait, max(1, int(left)))
            try:
                polling.set()
                # Serving several queues (the local mode), a send to any of them ends
                # this wait, so work on another queue is not left for the wait's length.
                wake_on = urls if len(urls) > 1 else ()
                messages = queue.receive(url, max_messages=1, wait_seconds=wait, wake_on=wake_on)
            finally:
                polling.clear()
            if not messages:
                turn += 1  # stay on a queue while it has work; move on when it is empty
                continue
            idle_since = time.monotonic()
            message = messages[0]
            if stop.is_set():
                queue.release(url, message.receipt_handle)
                stats.released_on_stop += 1
                break
            # On ECS, scale-in must not stop this task mid-group (a no-op elsewhere).
            with task_protection.protected():
                outcome = _run_one(settings, options, url, message, me, visibility[url], stop)
            if outcome is None:
                stats.released_on_stop += 1
                break
            stats.outcomes[outcome.status] += 1
            idle_since = time.monotonic()
    except _StopWhilePolling:
        # Stopped in a wait: no group in progress. (A message received in the instant
        # before the signal is not lost: it reappears after its visibility timeout.)
        pass
    finally:
        restore()
    return stats


def _run_one(
    settings: WorkerSettings,
    options: RunnerOptions,
    queue_url: str,
    message: ReceivedMessage,
    me: str,
    visibility: int,
    stop: threading.Event,
) -> Delivery | None:
    """Process one message in a thread; None if it was released because of a stop."""
    box: dict[str, Delivery | BaseException] = {}
    claimed: list[tuple[str, int, int]] = []

    def target() -> None:
        try:
            box["outcome"] = handle_delivery(
                queue_url,
                message,
                settings,
                worker_id=me,
                visibility_seconds=visibility,
                retry_base_seconds=options.retry_base_seconds,
                heartbeat_interval=options.heartbeat_interval,
                on_claim=lambda job_id, index, attempt: claimed.append((job_id, index, attempt)),
            )
        except BaseException as exc:  # noqa: BLE001 -- reported by the loop below
            box["error"] = exc

    # Markers let the local mode attribute this log's lines to groups (`parceler logs`).
    print(f"--- start message {message.message_id} ---", flush=True)
    thread = threading.Thread(target=target, name="parceler-group", daemon=True)
    thread.start()
    while thread.is_alive() and not stop.is_set():
        thread.join(timeout=0.5)
    if thread.is_alive():  # stopping: give the group its grace period
        thread.join(timeout=options.grace_seconds)
        if thread.is_alive():
            log.warning("stop: group of message %s did not finish in %.0f s; releasing it",
                        message.message_id, options.grace_seconds)  # fmt: skip
            with contextlib.suppress(Exception):
                queue.release(queue_url, message.receipt_handle)
            for job_id, index, attempt in claimed:  # hand the group back: no stale lease
                with contextlib.suppress(Exception):
                    Ledger(settings.ledger_table).record_error(
                        job_id, index, attempt, "Released", "the worker stopped mid-group (SIGTERM)"
                    )
            return None
    error = box.get("error")
    if error is not None:
        # The protocol could not record the outcome (e.g. the ledger throttled): the message
        # stays and comes back after its visibility timeout.
        log.error("message %s: %s: %s", message.message_id, type(error).__name__, error)
        return Delivery("retry", error=type(error).__name__, cause=str(error))
    result = box["outcome"]
    assert isinstance(result, Delivery)
    print(f"--- end group {result.group_index} attempt {result.attempt or '-'} "
          f"(job {result.job_id}): {result.status} ---", flush=True)  # fmt: skip
    return result


class _StopWhilePolling(BaseException):
    """SIGTERM arrived while the loop only waited for a message: nothing to finish or
    release, so the wait is cut short instead of running out (a BaseException, so that no
    retry handler in botocore swallows it)."""


def _install_sigterm(stop: threading.Event, polling: threading.Event) -> Callable[[], None]:
    """Make SIGTERM set ``stop`` (main thread only), and end a wait for a message at once;
    return a function restoring the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        if polling.is_set():
            raise _StopWhilePolling

    previous = signal.signal(signal.SIGTERM, on_signal)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _child(
    settings: WorkerSettings,
    options: RunnerOptions,
    index: int,
    results: multiprocessing.Queue[RunStats],
) -> None:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s worker-{index} %(levelname)s %(message)s"
    )
    results.put(run_loop(settings, options, index=index))


def run(
    settings: WorkerSettings, options: RunnerOptions, *, stop: threading.Event | None = None
) -> RunStats:
    """Run ``options.processes`` worker loops and return their merged counts.

    With one process the loop runs here. With more, each loop runs in a ``spawn``-started
    process (safe with threads and boto3 clients); SIGTERM to this process is forwarded to
    every child, each of which stops as :func:`run_loop` describes.
    """
    if options.processes <= 1:
        return run_loop(settings, options, stop=stop)
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[RunStats] = ctx.Queue()
    children = [
        ctx.Process(
            target=_child, args=(settings, options, i, results), name=f"parceler-worker-{i}"
        )
        for i in range(options.processes)
    ]
    for child in children:
        child.start()
    stop = stop if stop is not None else threading.Event()
    restore = _install_sigterm(stop, threading.Event())  # the parent never polls
    total = RunStats()
    try:
        collected = 0
        forwarded = False
        while collected < len(children):
            if stop.is_set() and not forwarded:
                for child in children:
                    if child.is_alive() and child.pid is not None:
                        os.kill(child.pid, signal.SIGTERM)
                forwarded = True
            try:
                total.merge(results.get(timeout=0.5))
                collected += 1
            except Exception:  # noqa: BLE001 -- queue.Empty: poll again unless every child is gone
                if not any(child.is_alive() for child in children) and results.empty():
                    break
    finally:
        restore()
        for child in children:
            child.join()
    return total
