"""Load user code named ``module:function`` and wrap its failures as typed errors."""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from typing import Any

from parceler.errors import ParcelerError, ProcessorError, SpecError

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


def user_error(exc: Exception, what: str, uri: str | None) -> ParcelerError:
    """The error to raise for ``exc`` escaping user (or built-in) code on ``uri``.

    parceler's own errors pass through unchanged, so their type (retryable or not) still
    decides what the worker does; anything else becomes a :class:`ProcessorError` naming
    the processor, the file, the exception type and message, and a traceback tail.
    """
    if isinstance(exc, ParcelerError):
        return exc
    where = f" on {uri}" if uri is not None else ""
    return ProcessorError(
        f"{what} failed{where}: {type(exc).__name__}: {exc}\n{traceback_tail(exc)}",
        "fix the processor or the input file; other groups are unaffected.",
    )
