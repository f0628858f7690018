"""moto's server on loopback, made safe for many client processes (the local mode's AWS).

moto's backends are plain Python objects with no locking. Served to several processes at
once they race (docs/local-aws-facts.md): two receivers get the same SQS message inside its
visibility window, a 2,000-message run hits HTTP 500 "Set changed size during iteration",
a DynamoDB ``ADD`` counter loses updates. :class:`SerializedApp` removes these races by
running moto's WSGI application under one lock, with two exceptions that must not hold it:

- an SQS ``ReceiveMessage`` with ``WaitTimeSeconds > 0`` (a long poll) is turned into
  non-waiting receives under the lock, with the waits between them outside it, until a
  message arrives or the wait expires; otherwise one idle worker would stall every client.
  A send to the queue (or a visibility change) ends the wait at once, as on SQS; the
  poll interval only bounds how late a message whose delay or visibility timeout runs
  out is seen. A send to a queue the request names in ``X-Parceler-Wake-On`` ends the
  wait too, with no messages: a worker serving several queues learns of work on
  another at once (the local mode's one extension of SQS);
- a Lambda ``Invoke``: the in-process hook (:mod:`parceler.local.lambda_hook`) runs the
  real handler in the server thread, and the handler calls back into this server (S3,
  DynamoDB, SQS); holding the lock there would deadlock.

Step Functions executions run in moto's own threads and reach the backends through this
server over HTTP, so their service calls are serialised too.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

from parceler import aws

DEFAULT_REGION = "us-east-1"
_LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")
_SQS_RECEIVE_TARGET = "AmazonSQS.ReceiveMessage"
_WAKE_ON_ENVIRON = "HTTP_X_PARCELER_WAKE_ON"  # parceler.aws.queue.WAKE_ON_HEADER, as WSGI names it
_SQS_WAKING_ACTIONS = frozenset(
    {"SendMessage", "SendMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}
)
"""SQS calls that can make a message receivable now: they end the queue's long polls."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_LOG = logging.getLogger(__name__)


class SerializedApp:
    """WSGI middleware: one moto request at a time; long polls and Lambda invokes excepted.

    Args:
        app: moto's WSGI application (``DomainDispatcherApplication``).
        poll_interval: seconds slept (outside the lock) between the non-waiting receives
            that emulate one long poll. Smaller is snappier and costs more lock time.

    A ``ReceiveMessage`` without ``WaitTimeSeconds`` is a short poll here even when the
    queue's ``ReceiveMessageWaitTimeSeconds`` attribute is set (the local stack never
    sets it; parceler always passes ``WaitTimeSeconds``).
    """

    def __init__(self, app: WsgiApp, *, poll_interval: float = 0.1) -> None:
        self._app = app
        self._poll_interval = poll_interval
        self.lock = threading.Lock()
        self._arrivals = threading.Condition()
        self._sends: dict[str, int] = {}  # per queue URL: waking calls so far

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "POST" and _LAMBDA_INVOKE.match(path):
            return self._app(environ, start_response)
        body = _read_body(environ)
        long_poll = _long_poll_request(environ, body)
        if long_poll is not None:
            wait_seconds, short_body = long_poll
            queue = _sqs_queue_url(environ, body, "ReceiveMessage") or ""
            watched = {queue, *str(environ.get(_WAKE_ON_ENVIRON, "")).split()}
            status, headers, out = self._long_poll(environ, short_body, wait_seconds, watched)
        else:
            status, headers, out = self._call_locked(environ, body)
            woken = _sqs_queue_url(environ, body, _SQS_WAKING_ACTIONS)
            if woken is not None and status.startswith("200"):
                with self._arrivals:
                    self._sends[woken] = self._sends.get(woken, 0) + 1
                    self._arrivals.notify_all()
        start_response(status, headers)
        return [out]

    def _call_locked(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[Any], bytes]:
        """Run moto on one request under the lock and return its whole response."""
        request_env = dict(environ)
        request_env["wsgi.input"] = io.BytesIO(body)
        request_env["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(
            status: str, headers: list[Any], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"] = status
            captured["headers"] = headers
            return chunks.append

        with self.lock:
            result = self._app(request_env, capture)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return captured["status"], captured["headers"], b"".join(chunks)

    def _long_poll(
        self, environ: dict[str, Any], short_body: bytes, wait_seconds: float, watched: set[str]
    ) -> tuple[str, list[Any], bytes]:
        """Receive until a message comes or the wait ends; a send to another ``watched``
        queue (``X-Parceler-Wake-On``) ends it early with the empty answer."""
        deadline = time.monotonic() + wait_seconds
        with self._arrivals:
            start = self._watched_sends(watched)
        while True:
            with self._arrivals:
                seen = self._watched_sends(watched)
            status, headers, out = self._call_locked(environ, short_body)
            remaining = deadline - time.monotonic()
            if not status.startswith("200") or _has_messages(out) or remaining <= 0:
                return status, headers, out
            with self._arrivals:  # a send since the receive above: receive again at once
                if self._watched_sends(watched) == seen:
                    self._arrivals.wait(min(self._poll_interval, remaining))
                if len(watched) > 1 and self._watched_sends(watched) != start:
                    # a send somewhere watched: one more receive here, then let the
                    # client turn to the queue that has the message
                    deadline = min(deadline, time.monotonic())

    def _watched_sends(self, watched: set[str]) -> int:
        return sum(self._sends.get(queue, 0) for queue in watched)


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length > 0:
        return bytes(stream.read(length))
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return bytes(stream.read())
    return b""


def _long_poll_request(environ: Mapping[str, Any], body: bytes) -> tuple[float, bytes] | None:
    """For an SQS long poll, return (wait seconds, the same request with no wait); else None.

    Handles both SQS wire protocols: JSON (``X-Amz-Target: AmazonSQS.ReceiveMessage``) and
    query (``Action=ReceiveMessage`` form body). Out-of-range waits pass through unchanged,
    so moto still rejects them with its own error.
    """
    if environ.get("HTTP_X_AMZ_TARGET") == _SQS_RECEIVE_TARGET:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        wait = _wait_seconds(request.get("WaitTimeSeconds") if isinstance(request, dict) else None)
        if wait is None:
            return None
        request["WaitTimeSeconds"] = 0
        return wait, json.dumps(request).encode()
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = dict(pairs)
        if params.get("Action") != "ReceiveMessage":
            return None
        wait = _wait_seconds(params.get("WaitTimeSeconds"))
        if wait is None:
            return None
        rewritten = [(k, "0" if k == "WaitTimeSeconds" else v) for k, v in pairs]
        return wait, urlencode(rewritten).encode()
    return None


def _sqs_queue_url(
    environ: Mapping[str, Any], body: bytes, actions: str | frozenset[str]
) -> str | None:
    """The ``QueueUrl`` of an SQS request whose action is (one of) ``actions``, else None.

    Both wire protocols, as :func:`_long_poll_request`; a URL is compared as sent (the
    local mode's clients all name a queue by the URL ``CreateQueue`` returned)."""
    wanted = frozenset({actions}) if isinstance(actions, str) else actions
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target.startswith("AmazonSQS."):
        if target.removeprefix("AmazonSQS.") not in wanted:
            return None
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        url = request.get("QueueUrl") if isinstance(request, dict) else None
        return str(url) if url else None
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if params.get("Action") in wanted and params.get("QueueUrl"):
            return params["QueueUrl"]
    return None


def _wait_seconds(value: Any) -> float | None:
    try:
        wait = int(value)
    except (TypeError, ValueError):
        return None
    return float(wait) if 0 < wait <= 20 else None


def _has_messages(out: bytes) -> bool:
    """True when a ReceiveMessage response (JSON or XML) carries at least one message."""
    if out.lstrip().startswith(b"{"):
        try:
            return bool(json.loads(out).get("Messages"))
        except ValueError:
            return True  # not ours to judge: hand it back
    return b"<ReceiptHandle>" in out


def fake_credentials(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """The environment that points boto3 (in any process) at an emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


class LocalAws:
    """moto's server on ``127.0.0.1`` (a free port), serialised, with Step Functions executing.

    Use as a context manager in the parent process::

        with LocalAws() as local:
            subprocess.run(cmd, env={**os.environ, **local.env()})

    On enter it starts the server, points this process at it (``AWS_ENDPOINT_URL``, fake
    credentials, region, ``MOTO_PORT`` — moto's Step Functions interpreter calls back to
    ``localhost:$MOTO_PORT``), turns Step Functions execution on and, unless
    ``lambda_hook=False``, installs the in-process Lambda hook. On exit it stops the
    server and restores the environment. moto's backends are process-global: each start
    resets them, so one ``LocalAws`` after another in a process starts from nothing.

    Attributes:
        endpoint_url: ``http://127.0.0.1:<port>`` once entered.
        region: the emulated region.
    """

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        host: str = "127.0.0.1",
        port: int = 0,
        lambda_hook: bool = True,
        poll_interval: float = 0.1,
    ) -> None:
        self.region = region
        self._host = host
        self._port = port
        self._lambda_hook = lambda_hook
        self._poll_interval = poll_interval
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self._hook_installed = False
        self.endpoint_url = ""
        self.app: SerializedApp | None = None

    def env(self) -> dict[str, str]:
        """Environment variables for child processes: endpoint, fake credentials, region."""
        if not self.endpoint_url:
            raise RuntimeError("LocalAws is not started: use it as a context manager first")
        return fake_credentials(self.endpoint_url, self.region)

    def start(self) -> Self:
        """Start the server and point this process at it (what ``__enter__`` does)."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from parceler.local import moto_startup

        moto_startup.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.app = SerializedApp(
            DomainDispatcherApplication(create_backend_app), poll_interval=self._poll_interval
        )
        self._server = make_server(
            self._host, self._port, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        port = int(self._server.server_port)
        self.endpoint_url = f"http://{self._host}:{port}"
        self._thread = threading.Thread(
            # A short poll: shutdown() waits for the loop to notice (default 0.5 s).
            target=lambda: self._server.serve_forever(poll_interval=0.05),
            name="parceler-local-aws",
            daemon=True,
        )
        self._thread.start()
        overrides = {**self.env(), "MOTO_PORT": str(port)}
        self._saved_env = {key: os.environ.get(key) for key in overrides}
        os.environ.update(overrides)
        aws.reset_clients()
        # moto's backends are process-global and outlive a server: start from nothing, so a
        # second LocalAws in this process does not find the first one's resources.
        self.reset()
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        if self._lambda_hook:
            from parceler.local import lambda_hook

            lambda_hook.install()
            self._hook_installed = True
        return self

    def stop(self) -> None:
        """Stop the server, remove the hook and restore the environment."""
        if self._hook_installed:
            from parceler.local import lambda_hook

            lambda_hook.uninstall()
            self._hook_installed = False
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        aws.reset_clients()

    def reset(self) -> None:
        """Forget every resource (``POST /moto-api/reset``); Step Functions stays executing."""
        self._post("/moto-api/reset", None)

    def _post(self, path: str, payload: Mapping[str, Any] | None) -> None:
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(f"{self.endpoint_url}{path}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
