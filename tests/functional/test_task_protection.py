"""ECS task scale-in protection against a stand-in agent endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from parceler import task_protection
from parceler.container_worker import RunnerOptions, run_loop
from parceler.errors import TaskProtectionError
from parceler.planner import plan_and_send

from .conftest import Resources, group_spec, seed_source

pytestmark = pytest.mark.functional


class Agent:
    """Records each PUT to the protection endpoint; answers with ``status`` and ``body``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.status = 200
        self.body: dict[str, Any] = {"protection": {"ProtectionEnabled": True}}
        self.seen = threading.Condition()

    def puts_of(self, enabled: bool) -> list[dict[str, Any]]:
        return [body for _, _, body in self.requests if body["ProtectionEnabled"] is enabled]


@pytest.fixture
def agent() -> Iterator[tuple[Agent, str]]:
    state = Agent()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            with state.seen:
                state.requests.append((self.command, self.path, body))
                state.seen.notify_all()
            payload = json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_group_runs_protected_and_protection_is_cleared_after(
    agent: tuple[Agent, str],
) -> None:
    state, uri = agent
    with task_protection.protected(30, agent_uri=uri):
        assert [(m, p) for m, p, _ in state.requests] == [("PUT", "/task-protection/v1/state")]
        assert state.requests[0][2] == {"ProtectionEnabled": True, "ExpiresInMinutes": 30}
    assert state.requests[-1][2] == {"ProtectionEnabled": False}
    assert len(state.requests) == 2


def test_protection_is_renewed_while_a_long_group_runs(agent: tuple[Agent, str]) -> None:
    state, uri = agent
    with task_protection.protected(1, agent_uri=uri, renew_seconds=0.01), state.seen:
        assert state.seen.wait_for(lambda: len(state.puts_of(True)) >= 3, timeout=30)
    assert state.requests[-1][2] == {"ProtectionEnabled": False}


def test_an_exception_in_the_group_still_clears_protection(agent: tuple[Agent, str]) -> None:
    state, uri = agent
    with pytest.raises(ZeroDivisionError), task_protection.protected(agent_uri=uri):
        _ = 1 / 0
    assert [body["ProtectionEnabled"] for _, _, body in state.requests] == [True, False]


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (400, {"error": {"Code": "InvalidParameterException"}}, "refused task protection"),
        (200, {"failure": {"Reason": "TASK_NOT_VALID"}}, "reported a task protection failure"),
    ],
)
def test_agent_refusals_are_typed_errors_and_never_fail_the_group(
    agent: tuple[Agent, str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: dict[str, Any],
    match: str,
) -> None:
    state, uri = agent
    state.status, state.body = status, body
    with pytest.raises(TaskProtectionError, match=match):
        task_protection.set_protection(uri, True, 5)
    ran = False
    with (
        caplog.at_level(logging.WARNING, logger="parceler.task_protection"),
        task_protection.protected(agent_uri=uri),
    ):
        ran = True
    assert ran
    assert len([r for r in caplog.records if match in r.getMessage()]) == 2  # on and off


def test_an_unreachable_agent_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="parceler.task_protection"),
        task_protection.protected(agent_uri="http://127.0.0.1:9"),
    ):
        pass
    assert any("did not answer" in r.getMessage() for r in caplog.records)


def test_without_an_agent_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(task_protection.AGENT_URI_ENV, raising=False)

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("no request may be sent outside ECS")

    monkeypatch.setattr(task_protection, "set_protection", refuse)
    with task_protection.protected():
        pass


def test_expiry_is_clamped_to_what_ecs_accepts(agent: tuple[Agent, str]) -> None:
    state, uri = agent
    task_protection.set_protection(uri, True, 10_000)
    task_protection.set_protection(uri, True, 0)
    assert [b["ExpiresInMinutes"] for _, _, b in state.requests] == [2880, 1]


def test_the_container_runner_protects_each_group_while_it_runs(
    agent: tuple[Agent, str], resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, uri = agent
    monkeypatch.setenv(task_protection.AGENT_URI_ENV, uri)
    seed_source(2)
    plan_and_send(group_spec(), "job-protected", resources.planner)

    stats = run_loop(
        resources.worker, RunnerOptions(resources.lambda_queue_url, idle_exit=1, wait_seconds=1)
    )

    assert dict(stats.outcomes) == {"succeeded": 2}
    # On for each group, off after it; nothing while the runner only waits for messages.
    assert [body["ProtectionEnabled"] for _, _, body in state.requests] == [
        True,
        False,
        True,
        False,
    ]
