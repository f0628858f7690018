"""A distributed sort in three stages: sort each file → route records to key ranges →
merge each range (TeraSort's shape, written as map / map_to_n / map_from_n).

Records are lines whose key is their first 16 characters, lowercase hex (see
``generate.py``); lines are compared whole, so equal keys still sort one way. Range
``p`` holds the keys whose first two hex digits ``d`` satisfy
``d * PARTITIONS // 256 == p``: ranges are numbered in key order and each key falls in
exactly one, so the outputs ``part-00000``, ``part-00001``, … concatenated in that order
are globally sorted.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO

from parceler.processors import FileRef, GroupContext

PARTITIONS = 8
"""Key ranges; the map_to_n stage's ``partitions`` must be at least this."""
EMIT_BYTES = 1 << 20
"""A range's lines are handed to ``ctx.emit`` in pieces of about this size."""


def range_of(line: bytes) -> int:
    """The key range (partition) of a record: monotone in the key."""
    return int(line[:2], 16) * PARTITIONS // 256


def sort_file(file: FileRef, ctx: GroupContext) -> dict[str, int]:
    """map (1:1): the file's records, sorted; the output keeps the input's base name."""
    lines = file.read_bytes().splitlines(keepends=True)
    lines.sort()
    ctx.write_output(file.basename, b"".join(lines))
    return {"records": len(lines)}


def route_ranges(files: list[FileRef], ctx: GroupContext) -> dict[str, int]:
    """map_to_n (per group): merge the group's sorted files and send each record to its
    key range, as the explicit key ``"00P_range"`` (partition P).

    The files are merged first so that this mapper's piece of every range is itself
    sorted: a piece is everything one group emitted to a partition, and the merge stage
    only merges pieces, it does not sort them.
    """
    records = 0
    with ExitStack() as stack:
        streams = [stack.enter_context(file.open()) for file in files]
        merged = heapq.merge(*(_lines(stream) for stream in streams))
        for partition, lines in itertools.groupby(merged, key=range_of):
            buffer: list[bytes] = []
            size = 0
            for line in lines:
                buffer.append(line)
                size += len(line)
                if size >= EMIT_BYTES:
                    ctx.emit(f"{partition:03d}_range", b"".join(buffer))
                    records += len(buffer)
                    buffer, size = [], 0
            ctx.emit(f"{partition:03d}_range", b"".join(buffer))
            records += len(buffer)
    return {"records": records}


def merge_range(pieces: list[FileRef], ctx: GroupContext) -> dict[str, int]:
    """map_from_n: merge one range's sorted pieces (one per mapper) into ``part-NNNNN``."""
    with ExitStack() as stack:
        streams = [stack.enter_context(piece.open()) for piece in pieces]
        merged = list(heapq.merge(*(_lines(stream) for stream in streams)))
    ctx.write_output(f"part-{ctx.partition:05d}", b"".join(merged), n_record=len(merged))
    return {"records": len(merged), "partitions": 1}


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's lines, a block at a time (each ends with a newline: the generator's
    files do, and so does every output above)."""
    while block := stream.readlines(EMIT_BYTES):
        yield from block
