"""The NYC-taxi pipeline's stages in Python: select columns → route by passenger count →
count per partition (the s4 seed's pipeline, written as map / map_to_n / map_from_n).

Every function works on bytes (a file, or a block of lines, at a time): the data is ASCII
CSV and a per-line ``str`` decode would cost more than the work itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from parceler.processors import FileRef, GroupContext

KEPT_COLUMNS = 5
"""``cut -d, -f1-5``: vendor_id … trip_distance; passenger_count is the 4th."""
PASSENGERS = 3
"""The passenger_count column (0-based) in the selected columns."""
HEADER_START = b"vendor_id,"
_LINES_PER_READ = 1 << 20  # bytes of whole lines read at a time (readlines' hint)


def select_columns(file: FileRef, ctx: GroupContext) -> dict[str, int]:
    """map (1:1): keep the first five columns of every line, header included, as
    ``cut -d, -f1-5`` does; the output keeps the input's base name."""
    lines = file.read_bytes().splitlines()
    kept = b"".join(
        b",".join(line.split(b",", KEPT_COLUMNS)[:KEPT_COLUMNS]) + b"\n" for line in lines
    )
    ctx.write_output(file.basename, kept)
    return {"rows": max(len(lines) - 1, 0)}


def route_by_passengers(file: FileRef, ctx: GroupContext) -> dict[str, int]:
    """map_to_n: each trip goes to the partition of its passenger count, s4-style: the key
    ``"00N_passengers"`` names partition N, so the stage needs ``partitions`` above the
    largest count (7 for the demo data). The header line is dropped."""
    by_count: defaultdict[int, list[bytes]] = defaultdict(list)
    rows = 0
    with file.open() as stream:
        first = stream.readline()
        if first and not first.startswith(HEADER_START):  # no header: a trip like any other
            by_count[_passengers(first)].append(first)
            rows += 1
        while lines := stream.readlines(_LINES_PER_READ):
            for line in lines:
                by_count[_passengers(line)].append(line)
            rows += len(lines)
    for count, trips in sorted(by_count.items()):
        ctx.emit(f"{count:03d}_passengers", b"".join(trips))
    return {"rows": rows}


def count_trips(pieces: list[FileRef], ctx: GroupContext) -> dict[str, int]:
    """map_from_n: one partition's pieces → ``{passenger_count: trips}``. Counted from each
    line's own column, so a partition holding several counts is still right."""
    counts: Counter[bytes] = Counter()
    for piece in pieces:
        with piece.open() as stream:
            while lines := stream.readlines(_LINES_PER_READ):
                counts.update(line.split(b",", PASSENGERS + 1)[PASSENGERS] for line in lines)
    return {key.decode(): n for key, n in counts.items()}


def _passengers(line: bytes) -> int:
    return int(line.split(b",", PASSENGERS + 1)[PASSENGERS])
