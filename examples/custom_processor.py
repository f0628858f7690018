"""A custom per-file processor, its reducer, and a group processor that writes an output.

Run it in a job spec (the module must be importable by the workers: on PYTHONPATH
locally, in the Lambda layer or container image on AWS)::

    "processor": {"kind": "python", "function": "custom_processor:line_stats"},
    "reducer": {"kind": "python", "function": "custom_processor:merge_line_stats"}
"""

from __future__ import annotations

from typing import Any

from parceler.processors import FileRef, GroupContext


def line_stats(file: FileRef) -> dict[str, int]:
    """Per file: how many lines, and the longest line's length in bytes (newline excluded)."""
    lines = longest = 0
    with file.open() as stream:
        for line in stream:
            lines += 1
            longest = max(longest, len(line.rstrip(b"\r\n")))
    return {"lines": lines, "longest": longest}


def merge_line_stats(values: list[dict[str, int]]) -> dict[str, int]:
    """Reducer: add the line counts, keep the longest line. Associative, as reducers must be."""
    return {
        "lines": sum(v["lines"] for v in values),
        "longest": max(v["longest"] for v in values),
    }


def shout(files: list[FileRef], ctx: GroupContext) -> dict[str, Any]:
    """Per group: write one upper-cased concatenation of the group's files as ``shout.txt``."""
    body = b"".join(file.read_bytes().upper() for file in files)
    uri = ctx.write_output("shout.txt", body)
    return {"files": len(files), "output": uri}
