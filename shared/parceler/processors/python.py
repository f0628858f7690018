"""Python processors: ``module:function`` called per file or once per group.

- ``per="file"``: ``fn(file: FileRef) -> value``.
- ``per="group"``: ``fn(files: list[FileRef], ctx: GroupContext) -> value``. A group
  processor writes its outputs under ``ctx.output_prefix`` and reports them with
  ``ctx.add_output(uri, size, n_record=None, etag=None)`` or writes them with
  ``ctx.write_output(name, bytes_or_stream)``, which records them.

Values must be JSON-serialisable; each is normalised by a JSON round trip (tuples become
lists, dict keys strings), the form the ledger stores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parceler.processors.context import FileRef, GroupContext
from parceler.processors.reducers import checked_json


def per_file_caller(function: Callable[..., Any], reference: str) -> Callable[[FileRef], Any]:
    """Wrap ``fn(file)`` so its value is checked (errors name the file)."""

    def call(file: FileRef) -> Any:
        return checked_json(function(file), f"processor {reference} on {file.uri}")

    return call


def call_group(
    function: Callable[..., Any], reference: str, files: list[FileRef], ctx: GroupContext
) -> Any:
    """Call ``fn(files, ctx)`` and check its value."""
    return checked_json(function(files, ctx), f"processor {reference} on group {ctx.group_index}")
