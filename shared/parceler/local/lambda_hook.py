"""Run the real ``functions/<role>/handler.py`` in-process when moto invokes a local Lambda.

moto runs Lambda code in Docker; there is no Docker engine here. :func:`install` replaces
moto's private ``LambdaFunction._invoke_lambda(self, event=None) -> (payload, errored,
logs)`` (moto 5.2.5, pinned in pyproject; ``tests/functional/test_moto_contract.py`` fails
loudly if it moves) with a wrapper that, for a function whose environment names a role in
:data:`ROLE_VARIABLE` (the local stack sets it), imports the role's handler and calls
``handler(event, context)`` in the server thread. Other functions go to moto's original.

Results travel the way moto's Docker path returns them: the JSON-encoded return value, or
on an exception ``{"errorType": <exception class name>, "errorMessage", "stackTrace"}``
with ``errored=True``. moto's ``invoke`` then sets ``X-Amz-Function-Error: Handled`` and
its Step Functions interpreter raises a task failure whose *error* is ``errorType`` and
whose *cause* is that JSON, so a ``Catch`` sees the same names as on AWS.

The function's environment variables are set in ``os.environ`` for the call and restored
after it; invocations hold one lock, so handlers run one at a time (moto's Step Functions
interpreter calls them from several threads, e.g. an inline Map).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROLE_VARIABLE = "PARCELER_LOCAL_HANDLER"
"""The Lambda environment variable naming the role whose handler runs in-process."""

PATCHED_METHOD = "moto.awslambda.models.LambdaFunction._invoke_lambda"

_LOG = logging.getLogger(__name__)
_TRACE_LINES = 12  # Step Functions caps a cause at 32,768 characters: keep the innermost frames
_invoke_lock = threading.RLock()
_state_lock = threading.Lock()
_original: Callable[..., tuple[str, bool, str]] | None = None
_functions_dir: Path | None = None
_modules: dict[Path, ModuleType] = {}


def default_functions_dir() -> Path:
    """``<repo>/functions``: the folder beside ``shared/`` in a source checkout."""
    return Path(__file__).resolve().parents[3] / "functions"


@dataclass(frozen=True)
class LocalLambdaContext:
    """The parts of the Lambda context object handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout (never negative)."""
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))


def install(functions_dir: Path | None = None) -> None:
    """Patch moto so local-mode functions run their handler in-process (idempotent).

    Args:
        functions_dir: where ``<role>/handler.py`` live (default :func:`default_functions_dir`).

    Raises:
        RuntimeError: moto no longer has the private method this hook replaces.
    """
    global _original, _functions_dir
    from moto.awslambda.models import LambdaFunction

    with _state_lock:
        _functions_dir = functions_dir or default_functions_dir()
        if _original is not None:
            return
        original = getattr(LambdaFunction, "_invoke_lambda", None)
        if original is None:
            raise RuntimeError(
                f"{PATCHED_METHOD} is gone: the local Lambda hook needs moto 5.2.5 "
                "(see tests/functional/test_moto_contract.py)."
            )
        _original = original

        def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
            role = (getattr(self, "environment_vars", None) or {}).get(ROLE_VARIABLE)
            if not role:
                assert _original is not None
                return _original(self, event=event)
            return invoke_in_process(self, role, event)

        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's own ``_invoke_lambda`` and forget the imported handlers (their
    settings are cached from this stack's environment; the next stack has its own)."""
    global _original
    from moto.awslambda.models import LambdaFunction

    with _state_lock:
        if _original is not None:
            LambdaFunction._invoke_lambda = _original  # type: ignore[method-assign]
            _original = None
    forget_handlers()


def installed() -> bool:
    """True while the hook is in place."""
    return _original is not None


def invoke_in_process(function: Any, role: str, event: Any) -> tuple[str, bool, str]:
    """Call ``functions/<role>/handler.py:handler(event, context)`` for a moto function.

    Returns:
        ``(payload, errored, logs)`` as moto's ``_invoke_lambda`` does.
    """
    env: Mapping[str, str] = dict(getattr(function, "environment_vars", None) or {})
    context = LocalLambdaContext(
        function_name=str(function.function_name),
        function_version=str(getattr(function, "version", "$LATEST")),
        invoked_function_arn=str(getattr(function, "function_arn", "")),
        memory_limit_in_mb=int(getattr(function, "memory_size", 128) or 128),
        timeout_seconds=float(getattr(function, "timeout", 3) or 3),
        log_group_name=str(getattr(function, "logs_group_name", "")),
    )
    with _invoke_lock, _environment({**env, "AWS_LAMBDA_FUNCTION_NAME": context.function_name}):
        try:
            handler = _load_handler(role)
            result = handler({} if event is None else event, context)
            return json.dumps(result, default=str), False, ""
        except Exception as exc:  # noqa: BLE001 -- any handler error is the function's error, as on AWS
            _LOG.info("local Lambda %s (%s) raised %s", context.function_name, role, exc)
            trace = traceback.format_exception(exc)[-_TRACE_LINES:]
            payload = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": trace,
            }
            return json.dumps(payload), True, "".join(trace)


def _load_handler(role: str) -> Callable[[Any, Any], Any]:
    base = _functions_dir or default_functions_dir()
    path = (base / role / "handler.py").resolve()
    if path.parent.parent != base.resolve():
        raise ValueError(f"local Lambda role {role!r} must name a folder directly under {base}")
    module = _modules.get(path)
    if module is None:
        if not path.is_file():
            raise FileNotFoundError(f"no handler for local Lambda role {role!r}: {path} is missing")
        spec = importlib.util.spec_from_file_location(
            f"parceler_local_functions.{role}.handler", path
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[path] = module
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise AttributeError(f"{path} defines no callable 'handler'")
    return handler  # type: ignore[no-any-return]


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update({key: str(value) for key, value in variables.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def forget_handlers() -> None:
    """Drop imported handler modules, so the next invocation re-imports them (tests)."""
    with _invoke_lock:
        _modules.clear()
