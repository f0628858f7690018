"""ECS task scale-in protection while a container worker runs a group (a no-op off ECS).

ECS scale-in stops tasks without regard to whether they are busy. A task that protects
itself through its agent's endpoint (``PUT $ECS_AGENT_URI/task-protection/v1/state`` with
``{"ProtectionEnabled": true, "ExpiresInMinutes": N}``; the task role needs
``ecs:UpdateTaskProtection``) is left alone until it clears the flag or N minutes pass.

:func:`protected` wraps one group: protect on entry, renew at half the expiry while the
group runs (groups may outlast any fixed expiry), clear on exit. A crashed process stops
renewing, so its protection lapses by itself. Failures are logged as
:class:`TaskProtectionError` and never fail the group: without protection a stopped task's
group is released and retried, as before. Without ``ECS_AGENT_URI`` (the local mode, tests)
nothing is sent.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from parceler.errors import TaskProtectionError

log = logging.getLogger(__name__)

AGENT_URI_ENV = "ECS_AGENT_URI"
STATE_PATH = "/task-protection/v1/state"
#: ECS accepts 1 to 2,880 minutes (48 hours).
MAX_EXPIRES_MINUTES = 2880
DEFAULT_EXPIRES_MINUTES = 60
_TIMEOUT_SECONDS = 5.0


def set_protection(agent_uri: str, enabled: bool, expires_minutes: int | None = None) -> None:
    """Set (or clear) this task's scale-in protection through the ECS agent.

    Raises:
        TaskProtectionError: the agent is unreachable, answers with an HTTP error, or
            reports a failure in its response body.
    """
    body: dict[str, object] = {"ProtectionEnabled": enabled}
    if enabled and expires_minutes is not None:
        body["ExpiresInMinutes"] = max(1, min(MAX_EXPIRES_MINUTES, expires_minutes))
    request = urllib.request.Request(
        agent_uri.rstrip("/") + STATE_PATH,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", errors="replace")
        raise TaskProtectionError(
            f"the ECS agent refused task protection ({exc.code}): {detail}",
            "grant the task role ecs:UpdateTaskProtection on its cluster's tasks.",
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TaskProtectionError(f"the ECS agent at {agent_uri} did not answer: {exc}") from exc
    failure = answer.get("failure") or answer.get("error") if isinstance(answer, dict) else None
    if failure:
        raise TaskProtectionError(
            f"the ECS agent reported a task protection failure: {failure}",
            "grant the task role ecs:UpdateTaskProtection on its cluster's tasks.",
        )


@contextmanager
def protected(
    expires_minutes: int = DEFAULT_EXPIRES_MINUTES,
    *,
    agent_uri: str | None = None,
    renew_seconds: float | None = None,
) -> Iterator[None]:
    """Keep this ECS task protected from scale-in while the ``with`` body runs.

    Args:
        expires_minutes: how long each protection lasts unless renewed.
        agent_uri: the agent endpoint (default ``$ECS_AGENT_URI``; unset: do nothing).
        renew_seconds: renewal period (default half of ``expires_minutes``).
    """
    uri = agent_uri if agent_uri is not None else os.environ.get(AGENT_URI_ENV)
    if not uri:
        yield
        return
    period = renew_seconds if renew_seconds is not None else expires_minutes * 30.0
    done = threading.Event()

    def renew() -> None:
        while not done.wait(period):
            _logged(uri, True, expires_minutes)

    _logged(uri, True, expires_minutes)
    renewer = threading.Thread(target=renew, name="parceler-task-protection", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        _logged(uri, False)


def _logged(uri: str, enabled: bool, expires_minutes: int | None = None) -> None:
    try:
        set_protection(uri, enabled, expires_minutes)
    except TaskProtectionError as exc:
        log.warning("task scale-in protection %s: %s", "on" if enabled else "off", exc)
