"""Python processors: ``module:function`` called per file or once per group.

- ``per="file"``: ``fn(file: FileRef) -> value``, or ``fn(file, ctx) -> value`` (a function
  of two arguments gets the group context: to write outputs named after the file, or to
  ``ctx.emit`` pieces in a ``map_to_n`` job).
- ``per="group"``: ``fn(files: list[FileRef], ctx: GroupContext) -> value``. A group
  processor writes its outputs under ``ctx.output_prefix`` and reports them with
  ``ctx.add_output(uri, size, n_record=None, etag=None)`` or writes them with
  ``ctx.write_output(name, bytes_or_stream)``, which records them.

Values must be JSON-serialisable; each is normalised by a JSON round trip (tuples become
lists, dict keys strings), the form the ledger stores.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from parceler.processors.context import FileRef, GroupContext
from parceler.processors.reducers import checked_json


def per_file_caller(
    function: Callable[..., Any], reference: str, ctx: GroupContext
) -> Callable[[FileRef], Any]:
    """Wrap ``fn(file)`` — or ``fn(file, ctx)`` when it takes two arguments — so its value
    is checked (errors name the file)."""
    with_context = takes_context(function)

    def call(file: FileRef) -> Any:
        value = function(file, ctx) if with_context else function(file)
        return checked_json(value, f"processor {reference} on {file.uri}")

    return call


def takes_context(function: Callable[..., Any]) -> bool:
    """True when ``function`` accepts a second positional argument (the group context)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: one argument
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def call_group(
    function: Callable[..., Any], reference: str, files: list[FileRef], ctx: GroupContext
) -> Any:
    """Call ``fn(files, ctx)`` and check its value."""
    return checked_json(function(files, ctx), f"processor {reference} on group {ctx.group_index}")
