"""The shuffle between a ``map_to_n`` stage and a ``map_from_n`` stage (docs/pipelines.md).

A ``map_to_n`` attempt routes pieces of data to **partition keys**; each key goes to one of
the stage's ``partitions`` by :func:`partition_of` (a key ``"<digits>_<name>"`` names its
partition, s4-style; any other key is hashed). The attempt writes **one** data object,
its pieces laid out partition by partition, plus **one** index object
(:data:`INDEX_NAME`) giving each partition's byte range: two intermediate objects per
mapper whatever the partition count (s4 and Lithops' TeraSort write mappers x partitions).

A ``map_from_n`` stage's source is the ``map_to_n`` stage's result manifest, which lists the
files of **committed** attempts only, so a retried or duplicated mapper never contributes
twice. :func:`pieces` reads the indexes and returns one row per (mapper, partition) range,
named by a **piece URI** (:func:`piece_uri`: the data object's URI with
``#parceler-piece=<partition>:<start>:<length>``); opening a piece URI is a ranged GET
(``storage.open_input_as_found``). Each partition becomes one group.

Memory while writing: each partition's pending bytes are buffered up to
:data:`FLUSH_BYTES` in all, then spilled to a local spool file; the data object is then
streamed from the spool in partition order. A worker holds at most a few megabytes
whatever the group's size.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

import numpy as np
import pyarrow as pa

from parceler import storage
from parceler.errors import ManifestError, ProcessorError, SourceError
from parceler.models import DATA_FILE_SCHEMA

DATA_NAME = "shuffle.data"
"""The one data object a ``map_to_n`` attempt writes (in its output folder)."""
INDEX_NAME = "shuffle.index.json"
"""The one index object beside it: each partition's byte range in the data object."""
INDEX_FORMAT = "parceler-shuffle/1"
MAX_PARTITIONS = 10_000
FLUSH_BYTES = 8 << 20
"""Buffered bytes (all partitions) above which the buffers are spilled to the spool."""
PIECE_MARK = "#parceler-piece="
_EXPLICIT = re.compile(r"^(\d+)_")
_PIECE = re.compile(r"^(?P<uri>.+)#parceler-piece=(?P<p>\d+):(?P<start>\d+):(?P<length>\d+)$")
_READERS = 16


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``: stable across runs, machines and
    Python versions.

    - ``"<digits>_<rest>"`` (s4's explicit placement, e.g. ``"003_passengers"``): partition
      ``int(digits)``, which must be below ``partitions``;
    - any other key: the first 8 bytes of its BLAKE2b digest (UTF-8), big-endian, modulo
      ``partitions``.

    Raises:
        ProcessorError: an empty key, or an explicit partition out of range.
    """
    if not key:
        raise ProcessorError(
            "a map_to_n processor emitted an empty partition key.",
            "give every piece a non-empty key (a name, or '<n>_name' to place it).",
        )
    explicit = _EXPLICIT.match(key)
    if explicit is not None:
        index = int(explicit.group(1))
        if index >= partitions:
            raise ProcessorError(
                f"partition key {key!r} names partition {index}, but the stage has "
                f"{partitions} partitions (0-{partitions - 1}).",
                "raise the stage's 'partitions' or fix the key's numeric prefix.",
            )
        return index
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True, slots=True)
class ShuffleFiles:
    """What :meth:`ShuffleWriter.write` stored."""

    data_uri: str
    data_size: int
    data_etag: str | None
    index_uri: str
    index_size: int
    n_pieces: int


class ShuffleWriter:
    """Collect one ``map_to_n`` attempt's pieces; write its data object and index.

    Not thread-safe: one writer per attempt, used by the processor's thread.
    """

    def __init__(self, partitions: int) -> None:
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1-{MAX_PARTITIONS}, got {partitions}")
        self.partitions = partitions
        self._spool: IO[bytes] = tempfile.TemporaryFile(prefix="parceler-shuffle-")  # noqa: SIM115 - closed in write/close
        self._buffers: dict[int, bytearray] = {}
        self._buffered = 0
        self._chunks: list[tuple[int, int, int]] = []  # (partition, spool offset, length)
        self._emits = np.zeros(partitions, dtype=np.int64)

    def emit(self, key: str, data: bytes | str) -> int:
        """Add ``data`` to the partition of ``key``; return the partition.

        Raises:
            ProcessorError: a bad key (see :func:`partition_of`) or data not bytes/str.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProcessorError(
                f"emit({key!r}, ...) got a {type(data).__name__}; pieces are bytes or str.",
                "encode the piece (e.g. json.dumps(record) + '\\n').",
            )
        partition = partition_of(str(key), self.partitions)
        self._emits[partition] += 1
        if not data:
            return partition
        self._buffers.setdefault(partition, bytearray()).extend(data)
        self._buffered += len(data)
        if self._buffered >= FLUSH_BYTES:
            self._flush()
        return partition

    def emit_stream(self, key: str, stream: BinaryIO) -> int:
        """Add everything ``stream`` yields to the partition of ``key`` (a file's content)."""
        partition = partition_of(str(key), self.partitions)
        self._emits[partition] += 1
        self._flush_one(partition)
        while chunk := stream.read(1 << 20):
            self._chunks.append((partition, self._spool.tell(), len(chunk)))
            self._spool.write(chunk)
        return partition

    def _flush_one(self, partition: int) -> None:
        buffer = self._buffers.pop(partition, None)
        if buffer:
            self._chunks.append((partition, self._spool.tell(), len(buffer)))
            self._spool.write(buffer)
            self._buffered -= len(buffer)

    def _flush(self) -> None:
        for partition in list(self._buffers):
            self._flush_one(partition)
        self._buffered = 0

    def write(self, folder: str) -> ShuffleFiles:
        """Write the data object and then the index under ``folder``; close the writer.

        The data object holds every partition's bytes contiguously, partitions in order;
        the index is written after it, so an index always describes a complete object.
        """
        self._flush()
        order = sorted(range(len(self._chunks)), key=lambda i: self._chunks[i][0])
        ranges: dict[int, list[int]] = {}
        position = 0
        for i in order:
            partition, _, length = self._chunks[i]
            span = ranges.setdefault(partition, [position, 0])
            span[1] += length
            position += length
        data_uri = storage.join(folder, DATA_NAME)
        stream = _SpoolReader(self._spool, [self._chunks[i] for i in order])
        stored = storage.put_stream(data_uri, cast(BinaryIO, io.BufferedReader(stream)))
        self._spool.close()
        index = {
            "format": INDEX_FORMAT,
            "data": data_uri,
            "size": stored.size,
            "etag": stored.etag,
            "partitions": self.partitions,
            "ranges": [
                [p, start, length, int(self._emits[p])]
                for p, (start, length) in sorted(ranges.items())
            ],
        }
        body = json.dumps(index, separators=(",", ":")).encode()
        index_uri = storage.join(folder, INDEX_NAME)
        storage.write_bytes(index_uri, body, content_type="application/json")
        return ShuffleFiles(data_uri, stored.size, stored.etag, index_uri, len(body), len(ranges))

    def close(self) -> None:
        """Drop the spool (an attempt that failed before :meth:`write`)."""
        self._spool.close()


class _SpoolReader(io.RawIOBase):
    """The spool's chunks, read in the given order, as one stream."""

    def __init__(self, spool: IO[bytes], chunks: list[tuple[int, int, int]]) -> None:
        self._spool = spool
        self._pending: Iterator[tuple[int, int, int]] = iter(chunks)
        self._left = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._left == 0:
            chunk = next(self._pending, None)
            if chunk is None:
                return 0
            _, offset, self._left = chunk
            self._spool.seek(offset)
        view = memoryview(buffer)
        got = int(self._spool.readinto(view[: min(len(view), self._left)]))  # type: ignore[attr-defined]
        if not got:
            raise ManifestError("the shuffle spool ended early (the local disk failed?).")
        self._left -= got
        return got


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Piece:
    """A byte range of a shuffle data object: one mapper's share of one partition."""

    uri: str  # the data object
    partition: int
    start: int
    length: int


def piece_uri(data_uri: str, partition: int, start: int, length: int) -> str:
    """The URI naming a piece (see the module doc)."""
    return f"{data_uri}{PIECE_MARK}{partition}:{start}:{length}"


def parse_piece(uri: str) -> Piece | None:
    """The piece a piece URI names, or None for any other URI."""
    if PIECE_MARK not in uri:
        return None
    match = _PIECE.match(uri)
    if match is None:
        return None
    return Piece(match["uri"], int(match["p"]), int(match["start"]), int(match["length"]))


@dataclass(frozen=True, slots=True)
class ShufflePieces:
    """The pieces of a shuffle, one row per (mapper, partition), and their partitions."""

    table: pa.Table  # DATA_FILE_SCHEMA: piece URI, length, emits, the data object's ETag
    partition: np.ndarray  # int64, one per row
    partitions: int  # the map_to_n stage's partition count
    n_mappers: int

    def sizes(self) -> np.ndarray:
        """Bytes per partition (``partitions`` long; empty partitions are 0)."""
        return np.bincount(
            self.partition,
            weights=self.table.column("size").to_numpy(),
            minlength=self.partitions,
        ).astype(np.int64)


def pieces(source: pa.Table, where: str) -> ShufflePieces:
    """Read the shuffle indexes listed in ``source`` (a ``map_to_n`` result manifest's
    files) and return the pieces.

    Raises:
        SourceError: the source lists no shuffle index, an index is malformed, or the
            indexes disagree on the partition count.
    """
    uris = source.column("uri").to_pylist()
    indexes = [uri for uri in uris if uri.rsplit("/", 1)[-1] == INDEX_NAME]
    if not indexes:
        raise SourceError(
            f"{where} lists no shuffle index ({INDEX_NAME}): a map_from_n stage reads the "
            "result of a map_to_n stage.",
            "make the stage's input a map_to_n stage (or its result manifest).",
        )
    with ThreadPoolExecutor(max_workers=_READERS) as threads:
        documents = list(threads.map(lambda uri: _read_index(uri), indexes))
    counts = {int(doc["partitions"]) for doc in documents}
    if len(counts) != 1:
        raise SourceError(
            f"{where}: the shuffle indexes disagree on the partition count ({sorted(counts)}).",
            "run the map_to_n stage again as one job.",
        )
    rows: dict[str, list[Any]] = {"uri": [], "size": [], "n_record": [], "etag": []}
    partition: list[int] = []
    for doc in documents:
        for p, start, length, emits in doc["ranges"]:
            rows["uri"].append(piece_uri(doc["data"], p, start, length))
            rows["size"].append(length)
            rows["n_record"].append(emits)
            rows["etag"].append(doc.get("etag"))
            partition.append(p)
    table = pa.table(rows, schema=DATA_FILE_SCHEMA)
    return ShufflePieces(table, np.asarray(partition, np.int64), counts.pop(), len(indexes))


def _read_index(uri: str) -> dict[str, Any]:
    try:
        document = json.loads(storage.read_bytes(uri))
        if document.get("format") != INDEX_FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
        for p, start, length, emits in document["ranges"]:
            if min(p, start, length, emits) < 0 or p >= document["partitions"]:
                raise ValueError(f"range {[p, start, length, emits]}")
        str(document["data"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(
            f"shuffle index {uri} is malformed ({exc}).",
            "run the map_to_n stage again; its indexes are written by parceler only.",
        ) from exc
    return cast(dict[str, Any], document)


@dataclass(frozen=True, slots=True)
class PartitionSizes:
    """Partition sizes of a shuffle (non-empty partitions), for the summary."""

    n_partitions: int
    n_empty: int
    min: int
    median: int
    max: int
    skewed: list[int]  # partitions over SKEW_FACTOR x the median

    def to_json(self) -> dict[str, Any]:
        return {
            "partitions": self.n_partitions,
            "empty": self.n_empty,
            "min": self.min,
            "median": self.median,
            "max": self.max,
            "skewed": self.skewed,
        }


SKEW_FACTOR = 4


def partition_sizes(sizes: np.ndarray) -> PartitionSizes:
    """Min/median/max of the non-empty partitions, and those over 4x the median."""
    used = sizes[sizes > 0]
    if used.size == 0:
        return PartitionSizes(len(sizes), len(sizes), 0, 0, 0, [])
    median = int(np.median(used))
    skewed = [int(p) for p in np.flatnonzero(sizes > SKEW_FACTOR * median)] if median else []
    return PartitionSizes(
        len(sizes), int((sizes == 0).sum()), int(used.min()), median, int(used.max()), skewed
    )
