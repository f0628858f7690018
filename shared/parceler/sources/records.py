"""Count records per data file (``--count-records``), in parallel, reading as little as possible.

How a file is counted is chosen by its extension (case-insensitive):

* ``.parquet`` / ``.parq`` / ``.pq``: the row count from the footer only. One ranged read
  of the last 64 KiB (the 8-byte tail says how long the footer is; the footer is almost
  always inside that read), plus a second ranged read only for a longer footer. The object
  is never downloaded whole.
* ``.csv`` / ``.tsv``: lines minus one header line (the header does not count; an empty
  file has 0 records).
* ``.jsonl`` / ``.ndjson`` / ``.json`` / ``.txt`` / ``.log``: lines.
* each of these text types also with ``.gz``: streamed through gzip.

Lines are newline bytes counted on a stream (1 MiB chunks), plus one for a last line with
no trailing newline. Blank lines count as records; a CSV field with an embedded newline is
counted twice (counting quoted CSV properly needs a full parse; use a listing with
``n_record`` if that matters). Rows that already have an ``n_record`` are not counted
again. Files of any other type keep a null ``n_record`` and one warning names how many.
"""

from __future__ import annotations

import gzip
import logging
import struct
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parceler import storage
from parceler.errors import ObjectNotFoundError, SourceError, StorageError

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
HEADER_SUFFIXES = (".csv", ".tsv")
LINE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".txt", ".log", *HEADER_SUFFIXES)
TAIL_BYTES = 64 * 1024  # one ranged read that holds the footer of nearly every Parquet file
_CHUNK = 1 << 20
_MAGIC = b"PAR1"


def counter_for(uri: str) -> Callable[[str, int], int] | None:
    """Return the function that counts ``uri``'s records, or None for an unknown type."""
    name = uri.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return parquet_rows
    gz = name.endswith(".gz")
    base = name.removesuffix(".gz")
    if base.endswith(LINE_SUFFIXES):
        header = base.endswith(HEADER_SUFFIXES)

        def count(uri: str, _size: int) -> int:
            lines = count_lines(uri, gzipped=gz)
            return max(lines - 1, 0) if header else lines

        return count
    return None


def parquet_rows(uri: str, size: int) -> int:
    """Row count of the Parquet object at ``uri`` (``size`` bytes) from its footer alone.

    Raises:
        SourceError: not a Parquet file (no ``PAR1`` magic) or a corrupt footer.
    """
    if size < 12:
        raise SourceError(f"{uri} is {size} bytes: too small to be Parquet.", _PARQUET_FIX)
    tail_start = max(size - TAIL_BYTES, 0)
    tail = storage.read_range(uri, tail_start, size - tail_start)
    if len(tail) < 8 or tail[-4:] != _MAGIC:
        raise SourceError(f"{uri} does not end in the Parquet magic bytes.", _PARQUET_FIX)
    (footer_length,) = struct.unpack("<I", tail[-8:-4])
    if footer_length + 8 > size:
        raise SourceError(f"{uri} has a corrupt Parquet footer length.", _PARQUET_FIX)
    if footer_length + 8 <= len(tail):
        footer = tail[-8 - footer_length : -8]
    else:
        footer = storage.read_range(uri, size - 8 - footer_length, footer_length)
    # Parse the footer as if it were a file holding nothing else: the metadata parser only
    # reads the tail, so the column data it points to never has to exist.
    fake = _MAGIC + footer + struct.pack("<I", footer_length) + _MAGIC
    try:
        return int(pq.read_metadata(pa.BufferReader(fake)).num_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(
            f"{uri} has a Parquet footer that cannot be parsed.", _PARQUET_FIX
        ) from exc


_PARQUET_FIX = "Check the file (is it complete?), or give its n_record in a listing file."


def count_lines(uri: str, *, gzipped: bool = False) -> int:
    """Count the lines of ``uri``, streamed (a final line without a newline counts too)."""
    with storage.open_input(uri) as raw:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw  # type: ignore[assignment]
        try:
            lines = 0
            last = b"\n"
            while chunk := stream.read(_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        except (OSError, EOFError) as exc:
            if isinstance(exc, StorageError | ObjectNotFoundError):
                raise
            raise SourceError(
                f"{uri} ends in .gz but is not valid gzip.", "Compress it with gzip."
            ) from exc
        finally:
            if gzipped:
                stream.close()
    return lines + (0 if last == b"\n" else 1)


def count_records(table: pa.Table, *, workers: int = 16) -> pa.Table:
    """Fill the null ``n_record`` values of ``table`` by counting, ``workers`` files at a time.

    Args:
        table: a data-file table (:data:`DATA_FILE_SCHEMA`).
        workers: threads; reads are I/O bound, so more threads than cores pays off on S3.

    Returns:
        The same rows in the same order, with ``n_record`` filled where it could be counted.

    Raises:
        SourceError: a file is missing, unreadable or not what its extension says (the
            first failure, naming the URI).
    """
    n_record = table.column("n_record")
    todo = pc.indices_nonzero(pc.is_null(n_record)).to_pylist()
    if not todo:
        return table
    uris = table.column("uri").to_pylist()
    sizes = table.column("size").to_pylist()
    jobs: list[tuple[int, str, int, Callable[[str, int], int]]] = []
    unknown: list[str] = []
    for index in todo:
        uri = uris[index]
        counter = counter_for(uri)
        if counter is None:
            unknown.append(uri)
        else:
            jobs.append((index, uri, sizes[index], counter))
    if unknown:
        message = (
            f"count_records: {len(unknown)} file(s) of unknown type keep n_record null "
            f"(e.g. {unknown[0]}); counted types: Parquet, CSV/TSV, JSONL, text, and .gz text."
        )
        logger.warning(message)
        warnings.warn(message, stacklevel=2)
    counts = n_record.to_pylist()

    def run(job: tuple[int, str, int, Callable[[str, int], int]]) -> tuple[int, int]:
        index, uri, size, counter = job
        try:
            return index, counter(uri, size)
        except ObjectNotFoundError as exc:
            raise SourceError(
                f"count_records: {uri} does not exist.",
                "List the source again; the file was removed after it was listed.",
            ) from exc
        except StorageError as exc:
            raise SourceError(
                f"count_records: {uri} cannot be read: {exc.problem}", exc.fix
            ) from exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for index, count in pool.map(run, jobs):
            counts[index] = count
    return table.set_column(
        table.schema.get_field_index("n_record"),
        table.schema.field("n_record"),
        pa.array(counts, pa.int64()),
    )
