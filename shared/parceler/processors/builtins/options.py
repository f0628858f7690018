"""Validation of built-in processor options: unknown keys and wrong types are SpecErrors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from parceler.errors import SpecError


def reject_unknown(builtin: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise :class:`SpecError` naming any option ``builtin`` does not take."""
    allowed = sorted(known)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise SpecError(
            f"built-in {builtin!r} has no option(s) {', '.join(map(repr, unknown))}.",
            f"use only {', '.join(allowed) or '(no options)'}.",
        )


def bad_option(builtin: str, name: str, value: Any, expected: str) -> SpecError:
    """The error for option ``name`` of ``builtin`` holding ``value`` instead of ``expected``."""
    return SpecError(
        f"built-in {builtin!r}: option {name!r} is {value!r}; it must be {expected}.",
        f"fix processor.options.{name}.",
    )
