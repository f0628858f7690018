"""The warm local stack: ``parceler local up`` / ``status`` / ``down``, and its state file.

``up`` starts a daemon process (``parceler local serve``, in a session of its own) that
holds one :class:`~parceler.local.session.LocalSession` — moto's server on loopback, the
stack's resources, the worker processes, the DLQ drain — plus a
:class:`~parceler.local.spec_watcher.SpecWatcher` (the S3-event path), and writes the
state file once all of that answers. ``parceler run --local``, ``status``, ``report`` and
``logs`` find the stack through that file and use it instead of starting an emulator;
any AWS client pointed at :attr:`StackState.endpoint_url` (the AWS CLI, boto3) drives it.

Where: ``$PARCELER_LOCAL_STATE_DIR`` if set, else ``$XDG_RUNTIME_DIR/parceler``, else
``~/.parceler/local``. That folder holds ``stack.json`` (the state, :class:`StackState`)
and ``stack.log`` (the daemon's own log). Worker logs live in a temporary folder the
session removes when it stops. ``down`` stops the daemon (SIGTERM: workers get their
grace, the server stops), then kills whatever is left of its process group, and removes
both files (and the folder, when that leaves it empty).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from parceler.errors import LocalStackError

STATE_DIR_VARIABLE = "PARCELER_LOCAL_STATE_DIR"
STATE_FILE = "stack.json"
DAEMON_LOG = "stack.log"
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 40.0  # the session gives its workers a 10 s grace, then 15 s to exit
PROBE_TIMEOUT_SECONDS = 3.0

log = logging.getLogger(__name__)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the warm stack's state lives (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get(STATE_DIR_VARIABLE):
        return Path(env[STATE_DIR_VARIABLE])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "parceler"
    return Path.home() / ".parceler" / "local"


class StackState(BaseModel):
    """What ``local up`` writes and every other command reads: how to reach the stack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    pid: int
    endpoint_url: str
    region: str
    work_bucket: str
    ledger_table: str
    lambda_queue_url: str
    container_queue_url: str
    lambda_dead_letter_queue_url: str
    container_dead_letter_queue_url: str
    state_machine_arn: str
    starter_function_arn: str
    spec_prefix: str
    spec_suffix: str
    workers: int
    worker_log_dir: str
    started_at: float

    def env(self) -> dict[str, str]:
        """Environment that points a process (boto3, the AWS CLI) at the stack."""
        from parceler.local.emulator import fake_credentials

        return fake_credentials(self.endpoint_url, self.region)

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class Health:
    """A probe of the stack named by a state file: ``up`` or ``dead`` (with the reason)."""

    status: Literal["up", "dead"]
    reason: str | None = None

    @property
    def up(self) -> bool:
        return self.status == "up"


def read_state(directory: Path | None = None) -> StackState | None:
    """The state file's stack, or None when no stack is up (no file).

    Raises:
        LocalStackError: the file exists but is not a state file this version writes.
    """
    path = (directory or state_dir()) / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return StackState.model_validate_json(text)
    except ValidationError as exc:
        raise LocalStackError(
            f"{path} is not a local stack state file: {exc.errors()[0]['msg']}.",
            f"run `parceler local down` (it removes {path}), then `parceler local up`.",
        ) from None


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of this process is reaped and counts as gone)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def probe(state: StackState) -> Health:
    """Is the stack alive: its daemon runs and its emulator answers (bounded: never hangs)."""
    if not _alive(state.pid):
        return Health("dead", f"its process (pid {state.pid}) is gone")
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(
        connect_timeout=PROBE_TIMEOUT_SECONDS,
        read_timeout=PROBE_TIMEOUT_SECONDS,
        retries={"max_attempts": 1},
    )
    env = state.env()
    client = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=state.region,
    ).client("sqs", endpoint_url=state.endpoint_url, config=config)
    try:
        client.get_queue_attributes(
            QueueUrl=state.lambda_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
    except (ClientError, BotoCoreError) as exc:  # any failure of the one call is the answer
        return Health("dead", f"its emulator at {state.endpoint_url} does not answer ({exc})")
    return Health("up")


def running_stack(directory: Path | None = None) -> StackState | None:
    """The stack ``local up`` started, if one is up; None when none was started.

    Raises:
        LocalStackError: a state file names a stack that has died (never a hang).
    """
    state = read_state(directory)
    if state is None:
        return None
    health = probe(state)
    if not health.up:
        raise LocalStackError(
            f"the local stack started by `parceler local up` is dead: {health.reason}.",
            "run `parceler local down` (it cleans up), then `parceler local up` again; its "
            f"log is {(directory or state_dir()) / DAEMON_LOG}.",
        )
    return state


def check_alive(state: StackState) -> None:
    """Raise when the stack's daemon is gone (cheap: one signal-0; for polling loops).

    Raises:
        LocalStackError: the daemon process has ended.
    """
    if not _alive(state.pid):
        raise LocalStackError(
            f"the local stack (pid {state.pid}) died while a job was running on it.",
            f"see {state_dir() / DAEMON_LOG}; run `parceler local down`, then "
            "`parceler local up`, and run the job again.",
        )


# ---- up / down -------------------------------------------------------------------------


def start(
    *,
    workers: int,
    port: int = 0,
    directory: Path | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> StackState:
    """Start the daemon and return its state once the stack answers.

    Raises:
        LocalStackError: a stack is already up, or the daemon died or did not come up in
            ``timeout`` seconds (its log's last lines are in the message).
    """
    directory = directory or state_dir()
    existing = read_state(directory)
    if existing is not None:
        if probe(existing).up:
            raise LocalStackError(
                f"a local stack is already up at {existing.endpoint_url} (pid {existing.pid}).",
                "use it, or stop it first with `parceler local down`.",
            )
        stop(directory)  # a dead one's leftovers
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / DAEMON_LOG
    command = [
        sys.executable, "-m", "parceler", "local", "serve",
        "--workers", str(workers), "--port", str(port), "--state-dir", str(directory),
    ]  # fmt: skip
    with log_path.open("wb") as daemon_log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` can end every worker
        )
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(directory)
        if state is not None and state.pid == process.pid:
            return state
        if process.poll() is not None:
            raise LocalStackError(
                f"the local stack did not start: its process exited with code "
                f"{process.returncode}. Its log ends with:\n{_tail(log_path)}",
                "fix the cause above (a port in use: pass another --port), then run "
                "`parceler local up` again.",
            )
        if time.monotonic() > deadline:
            _kill_group(process.pid)
            process.wait()
            raise LocalStackError(
                f"the local stack did not come up within {timeout:.0f} s. Its log ends "
                f"with:\n{_tail(log_path)}",
                "run `parceler local up` again; set PARCELER_DEBUG=1 for moto's own logs.",
            )
        time.sleep(0.1)


def stop(directory: Path | None = None, *, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the stack and remove its state and log; True if a stack was stopped.

    SIGTERM to the daemon (it stops its workers, then the server, and removes its state
    file); after ``timeout`` seconds, or when the daemon is already gone, SIGKILL to every
    process left in its process group.
    """
    directory = directory or state_dir()
    try:
        state = read_state(directory)
    except LocalStackError:
        state = None
    if state is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _kill_group(state.pid)
    for name in (STATE_FILE, DAEMON_LOG):
        (directory / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only when empty: the folder may be the user's
    return state is not None


def _kill_group(pgid: int) -> None:
    """SIGKILL every process still in the group and wait until none is left."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)
        time.sleep(0.05)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# ---- the daemon ------------------------------------------------------------------------


def serve(*, workers: int, port: int, directory: Path) -> None:
    """The daemon's body (``parceler local serve``): run the stack until SIGTERM or SIGINT.

    Writes the state file (atomically) once the session, the workers and the spec watcher
    run; removes it before it returns.
    """
    from parceler.local.session import LocalSession
    from parceler.local.spec_watcher import SpecWatcher

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    path = directory / STATE_FILE
    with LocalSession(workers=workers, port=port) as session:
        stack = session.stack
        starter = stack.starter_settings()
        watcher = SpecWatcher(
            bucket=stack.work_bucket,
            prefix=starter.trigger_prefix,
            suffix=starter.trigger_suffix,
            starter_function=stack.function_arns["starter"],
            region=session.aws.region,
        )
        watcher.start()
        state = StackState(
            pid=os.getpid(),
            endpoint_url=session.aws.endpoint_url,
            region=session.aws.region,
            work_bucket=stack.work_bucket,
            ledger_table=stack.ledger_table,
            lambda_queue_url=stack.lambda_queue_url,
            container_queue_url=stack.container_queue_url,
            lambda_dead_letter_queue_url=stack.lambda_dead_letter_queue_url,
            container_dead_letter_queue_url=stack.container_dead_letter_queue_url,
            state_machine_arn=stack.state_machine_arn,
            starter_function_arn=stack.function_arns["starter"],
            spec_prefix=starter.trigger_prefix,
            spec_suffix=starter.trigger_suffix,
            workers=workers,
            worker_log_dir=str(session.log_dir),
            started_at=time.time(),
        )
        try:
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(state.to_json(), indent=2), encoding="utf-8")
            partial.replace(path)
            log.info("local stack up at %s (pid %d)", state.endpoint_url, state.pid)
            while not stop_requested.wait(0.5):
                pass
            log.info("stopping the local stack")
        finally:
            watcher.stop()
            path.unlink(missing_ok=True)
