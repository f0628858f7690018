"""``linecount``: lines and bytes of each file, streamed.

Per-file value: ``{"lines": L, "bytes": B, "files": 1}``; ``sum`` merges it. A last line
without a trailing newline counts (unlike ``wc -l``); an empty file has 0 lines. ``bytes``
is what was read, not the manifest's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parceler.processors.builtins.options import reject_unknown
from parceler.processors.context import FileRef, GroupContext

NAME = "linecount"
_CHUNK = 1 << 20


def parse_options(options: Mapping[str, Any]) -> None:
    """``linecount`` takes no options."""
    reject_unknown(NAME, options, ())


def count_lines(file: FileRef, ctx: GroupContext, options: None) -> dict[str, int]:
    """Count the newlines and bytes of one file in 1 MiB chunks."""
    lines = 0
    size = 0
    last = b"\n"
    with file.open() as stream:
        while chunk := stream.read(_CHUNK):
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return {"lines": lines, "bytes": size, "files": 1}
