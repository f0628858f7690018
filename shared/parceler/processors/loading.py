"""Load user code named ``module:function`` and wrap its failures as typed errors."""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from typing import Any

from parceler.errors import (
    ParcelerError,
    PermanentError,
    ProcessorError,
    SpecError,
    UserCodeError,
)

_TRACEBACK_TAIL_CHARS = 1500


def load_callable(reference: str, role: str = "processor") -> Callable[..., Any]:
    """Import ``module:function`` and return the callable.

    Args:
        reference: ``package.module:function``.
        role: ``"processor"`` or ``"reducer"``, for the error message.

    Raises:
        SpecError: the reference is malformed, the module (or a module it imports) is not
            installed, importing it fails, or it has no such callable. The message names the
            reference and the fix (PYTHONPATH, the Lambda layer, the container image).
    """
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise SpecError(
            f"{role} function {reference!r} is not 'module:function'.",
            "write it as package.module:function.",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise SpecError(
                f"{role} {reference}: module {missing!r} is not installed.",
                "put the module on PYTHONPATH locally, in the Lambda layer or the container "
                "image on AWS (or fix the name).",
            ) from exc
        raise SpecError(
            f"{role} {reference}: importing {module_name!r} needs {missing!r}, which is not "
            "installed.",
            f"add {missing!r} to the worker's dependencies (Lambda layer or container image).",
        ) from exc
    except Exception as exc:
        raise SpecError(
            f"{role} {reference}: importing {module_name!r} raised {type(exc).__name__}: {exc}."
            f"\n{traceback_tail(exc)}",
            "fix the module so it imports cleanly.",
        ) from exc
    function = getattr(module, attribute, None)
    if function is None or not callable(function):
        what = "is not callable" if function is not None else "does not exist"
        raise SpecError(
            f"{role} {reference}: {module_name}.{attribute} {what}.",
            f"name a function defined in {module_name!r}.",
        )
    return function  # type: ignore[no-any-return]


def traceback_tail(exc: BaseException, limit: int = _TRACEBACK_TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``exc``'s formatted traceback (for the ledger)."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    return text if len(text) <= limit else "..." + text[-limit:]


def user_error(exc: Exception, what: str, uri: str | None, *, user_code: bool) -> ParcelerError:
    """The error to raise for ``exc`` escaping user (or built-in) code on ``uri``.

    ``user_code`` says whose code it was: a python processor or reducer (True), or
    parceler's built-ins and shell plumbing (False), whose unexpected exceptions are input
    the code cannot read — the same file fails the same way again — so permanent.

    - parceler's generic :class:`PermanentError` (what a processor raises to say "do not
      retry") → :class:`ProcessorError` naming the processor, the file and the message:
      the group fails at once;
    - other parceler errors (``RetryableError``, ``SourceChangedError``, a user subclass
      of either) pass through unchanged: their type decides;
    - anything else from user code → :class:`UserCodeError`
      (retryable) naming the processor, the file, the exception type and message, and a
      traceback tail: the worker retries the group up to ``limits.max_attempts``; from
      parceler's own code → :class:`ProcessorError` with the same text.
    """
    where = f" on {uri}" if uri is not None else ""
    if type(exc) is PermanentError:
        return ProcessorError(
            f"{what} failed{where}: {exc.problem}\n{traceback_tail(exc)}",
            exc.fix or "fix the processor or the input file; other groups are unaffected.",
        )
    if isinstance(exc, ParcelerError):
        return exc
    described = f"{what} failed{where}: {type(exc).__name__}: {exc}\n{traceback_tail(exc)}"
    if not user_code:
        return ProcessorError(
            described, "fix the processor or the input file; other groups are unaffected."
        )
    return UserCodeError(
        described,
        "if it is transient the group is retried (limits.max_attempts); if it can never "
        "succeed, raise parceler.PermanentError to fail the group at once.",
    )
