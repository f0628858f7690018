"""What a processor sees of its group: the context, one file, and the outcome it hands back."""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa

from parceler import storage
from parceler.errors import (
    DeadlineExceededError,
    OutputNameError,
    ProcessorError,
    SourceChangedError,
)
from parceler.models import DATA_FILE_SCHEMA
from parceler.processors.outputs import put_stream
from parceler.shuffle import ShuffleWriter, parse_piece


@dataclass(frozen=True, slots=True)
class GroupContext:
    """The one group attempt a processor runs in.

    Attributes:
        job_id: the job.
        group_index: the group's index in the job (0-based).
        attempt: the attempt number; outputs of different attempts never mix.
        output_prefix: the attempt's output folder URI (``workarea.AttemptArea.folder``,
            or ``workarea.output_folder`` when the spec names an ``output``), or a local
            folder. Processors write their outputs under it.
        deadline: a :func:`time.monotonic` instant the group must finish by, or None.
        shuffle: in a ``map_to_n`` job, where :meth:`emit` sends pieces (None otherwise).
        partition: in a ``map_from_n`` job, the partition this group merges.

    Group processors report the files they write with :meth:`add_output` (or write them
    with :meth:`write_output`, which records them); :func:`parceler.processors.run_group`
    returns them as ``GroupRun.outputs``. The context is immutable; only its output
    register grows, and ``run_group`` gives every run a fresh register.
    """

    job_id: str
    group_index: int
    attempt: int
    output_prefix: str
    deadline: float | None = None
    shuffle: ShuffleWriter | None = field(default=None, repr=False, compare=False)
    partition: int | None = None
    _outputs: list[dict[str, Any]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def time_left(self) -> float | None:
        """Seconds until the deadline (negative once past), or None without a deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self, where: str) -> None:
        """Raise :class:`DeadlineExceededError` if the deadline has passed.

        Args:
            where: what was about to start (a file URI), named in the error.
        """
        left = self.time_left()
        if left is not None and left <= 0:
            raise DeadlineExceededError(
                f"group {self.group_index} of job {self.job_id} (attempt {self.attempt}) ran "
                f"out of time before {where}.",
                "route long groups to the container queue (lower the routing throughput "
                "estimate) or make groups smaller.",
            )

    def output_uri(self, name: str) -> str:
        """The URI of output ``name`` (a relative key, ``/`` allowed) under the output prefix.

        Raises:
            OutputNameError: ``name`` would leave the attempt folder (see :func:`output_key`).
        """
        return storage.join(self.output_prefix, output_key(name))

    def add_output(
        self,
        uri: str,
        size: int,
        n_record: int | None = None,
        etag: str | None = None,
        *,
        anywhere: bool = False,
    ) -> None:
        """Record a file this attempt wrote, so it is listed in ``GroupRun.outputs``.

        Args:
            uri: where the file was written; must be under ``output_prefix`` unless
                ``anywhere`` (built-ins with a documented destination option use it).
            size: its size in bytes.
            n_record: its record count, if known.
            etag: its ETag (without quotes), if known.

        Raises:
            ProcessorError: ``uri`` is outside the attempt's output folder, or size < 0.
        """
        folder = self.output_prefix.rstrip("/") + "/"
        if not anywhere:
            if not uri.startswith(folder):
                raise OutputNameError(
                    f"output {uri} is outside this attempt's output folder {folder}.",
                    "write outputs under ctx.output_prefix (use ctx.output_uri(name)).",
                )
            output_key(uri.removeprefix(folder))  # "folder/../x" starts with folder too
        if size < 0 or (n_record is not None and n_record < 0):
            raise ProcessorError(f"output {uri}: size and n_record must be >= 0.")
        self._outputs.append({"uri": uri, "size": size, "n_record": n_record, "etag": etag})

    def write_output(
        self, name: str, data: bytes | BinaryIO, *, n_record: int | None = None
    ) -> str:
        """Write ``data`` (bytes or a readable binary stream) to output ``name`` and record it.

        Streams are uploaded in parts (never read whole). Returns the output's URI.
        """
        uri = self.output_uri(name)
        result = put_stream(uri, data)
        self.add_output(uri, result.size, n_record, result.etag)
        return uri

    def emit(self, key: str, data: bytes | str) -> int:
        """In a ``map_to_n`` job: route ``data`` to the partition of ``key``; return it.

        Pieces of one key keep their order; ``"<n>_name"`` places a piece in partition
        ``n`` (:func:`parceler.shuffle.partition_of`).

        Raises:
            ProcessorError: not a ``map_to_n`` job, or a bad key.
        """
        if self.shuffle is None:
            raise ProcessorError(
                f"ctx.emit() called in job {self.job_id}, which is not a map_to_n job.",
                "set the job's (or stage's) kind to 'map_to_n' with 'partitions', or write "
                "outputs with ctx.write_output().",
            )
        return self.shuffle.emit(key, data)

    def outputs_table(self) -> pa.Table:
        """The recorded outputs as a data-file table (``models.DATA_FILE_SCHEMA``)."""
        return pa.Table.from_pylist(list(self._outputs), schema=DATA_FILE_SCHEMA)


@dataclass(frozen=True, slots=True)
class GroupRun:
    """What running a processor on one group produced.

    Attributes:
        value: the group's reduced value (JSON-serialisable), or None.
        outputs: data-file rows (``models.DATA_FILE_SCHEMA``) of the files the attempt wrote.
    """

    value: Any
    outputs: pa.Table


@dataclass(frozen=True, slots=True)
class FileRef:
    """One data file as a per-file processor receives it.

    ``index`` is the file's position in its group (stable across attempts: the group
    manifest's row order), used to name outputs uniquely.
    """

    uri: str
    size: int
    n_record: int | None = None
    etag: str | None = None
    index: int = 0

    def open(self) -> BinaryIO:
        """Open the file for streamed binary reading; use it as a context manager.

        What is opened is checked against the group manifest first: its size always, its
        ETag when the manifest has one and the store gives one to compare (S3 always; a
        local file when the manifest holds the folder source's change token). Both come
        with the open itself (the GetObject response, an ``fstat``): no extra request.

        Raises:
            SourceChangedError: the file changed after planning (naming planned and found
                size/ETag); the group fails, and re-planning is the fix.
            ObjectNotFoundError, RetryableError, StorageError: as for
                :func:`parceler.storage.open_input`.
        """
        piece = parse_piece(self.uri)
        if piece is None:
            opened = storage.open_input_as_found(self.uri)
        else:  # a shuffle piece: a range of a map_to_n attempt's data object
            opened = storage.open_input_as_found(piece.uri, (piece.start, piece.length))
        try:
            self._check(opened.size, opened.etag)
        except SourceChangedError:
            opened.stream.close()
            raise
        return opened.stream

    def read_bytes(self) -> bytes:
        """The whole file (for small files; prefer :meth:`open` for big ones), checked as
        :meth:`open` checks it."""
        with self.open() as stream:
            return stream.read()

    def _check(self, size: int, etag: str | None) -> None:
        changes = []
        if size != self.size:
            changes.append(f"size {self.size} planned, {size} found")
        comparable = self.etag is not None and etag is not None
        if comparable and not storage.parse_uri(self.uri).is_s3:
            # A listing may carry its own etags for local files (an MD5, say), which no
            # open can recompute: only the folder source's change token is compared.
            comparable = storage.is_local_etag(str(self.etag))
        if comparable and etag != self.etag:
            changes.append(f"ETag {self.etag} planned, {etag} found")
        if changes:
            raise SourceChangedError(
                f"input {self.uri} changed after the job was planned: {'; '.join(changes)}.",
                "re-plan the job (run it again) so its manifest lists the files as they are "
                "now, and leave a job's inputs unchanged while it runs.",
            )

    @property
    def basename(self) -> str:
        """The last path segment of the URI (``"file"`` if the URI ends with ``/``)."""
        return posixpath.basename(self.uri.rstrip("/")) or "file"


def file_refs(files: pa.Table) -> list[FileRef]:
    """The rows of a data-file table as :class:`FileRef` objects, in row order."""
    columns = files.select(["uri", "size", "n_record", "etag"]).to_pydict()
    return [
        FileRef(uri, size, n_record, etag, index)
        for index, (uri, size, n_record, etag) in enumerate(
            zip(columns["uri"], columns["size"], columns["n_record"], columns["etag"], strict=True)
        )
    ]


def output_key(name: str) -> str:
    """``name`` normalised to a key inside an attempt folder, or :class:`OutputNameError`.

    Empty and ``.`` segments are dropped (``a//./b`` is ``a/b``); a ``..`` segment, a
    leading ``/`` (an absolute path), a NUL, a trailing ``/`` (a folder, not a file) or a
    name with nothing left is refused. Refusing ``..`` outright, rather than resolving it,
    keeps one spelling per output: ``a/../b`` is a processor bug worth naming.
    """
    problem = None
    if not isinstance(name, str):
        problem = f"is a {type(name).__name__}, not a string"
    elif name.startswith("/"):
        problem = "is an absolute path"
    elif "\x00" in name:
        problem = "holds a NUL character"
    elif ".." in name.split("/"):
        problem = "has a '..' segment"
    elif name.endswith("/"):
        problem = "ends in '/' (a folder, not a file)"
    kept = [] if problem else [part for part in name.split("/") if part not in ("", ".")]
    if problem is None and not kept:
        problem = "is empty"
    if problem is not None:
        raise OutputNameError(
            f"output name {name!r} {problem}; outputs must stay inside the attempt folder.",
            "name outputs with relative keys such as 'part-0001.csv' or 'by-day/2024-01-01.csv'.",
        )
    return "/".join(kept)


def output_name(file: FileRef) -> str:
    """The output name of a 1:1 map: ``<index:06d>-<basename>``, unique within the group."""
    return f"{file.index:06d}-{file.basename}"
