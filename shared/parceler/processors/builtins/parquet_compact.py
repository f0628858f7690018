"""``parquet-compact``: concatenate a group's Parquet row groups into files of a target size.

Small files (and small row groups) make every later query slow. This built-in reads the
group's files row group by row group, buffers them into big output row groups and writes
them with one ``ParquetWriter`` per output file, rolling to a new file once the current
one reaches ``target_size``. Memory is about one input row group plus ``row_group_size``.

Options:
    target_size: bytes (or "128MB", "1GiB") per output file; default 128 MB. Files end at
        the first row-group boundary past it, so they are close to, not exactly, the target.
    row_group_size: in-memory (Arrow) bytes buffered per output row group; default 128 MiB.
    compression: the Parquet codec of the outputs; default ``zstd``.

All files must have the same Arrow schema (key-value metadata aside): a mismatch is a
ProcessorError naming the file. Input files on S3 are downloaded to a temp file first
(Parquet needs random access); local files are read in place. Outputs are
``part-00000.parquet``, ... under the attempt's output folder, listed with size and
``n_record``. Value: ``{"files_in": n, "files_out": m, "rows": r}`` (``sum`` merges it).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parceler import storage
from parceler.errors import ProcessorError, SpecError
from parceler.processors.builtins.options import bad_option, reject_unknown
from parceler.processors.context import FileRef, GroupContext
from parceler.processors.loading import user_error
from parceler.processors.outputs import put_stream
from parceler.units import parse_size

NAME = "parquet-compact"
_CODECS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")


@dataclass(frozen=True, slots=True)
class CompactOptions:
    """Validated options (sizes in bytes)."""

    target_size: int = 128_000_000
    row_group_size: int = 128 * 1024 * 1024
    compression: str = "zstd"


def _size_option(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        size = parse_size(value)
    except SpecError as exc:
        raise bad_option(NAME, name, value, "a size like 134217728 or '128MB'") from exc
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise bad_option(NAME, name, value, "a positive size")
    return size


def parse_options(options: Mapping[str, Any]) -> CompactOptions:
    """Validate the options (SpecError on unknown keys, bad sizes, unknown codecs)."""
    reject_unknown(NAME, options, ("target_size", "row_group_size", "compression"))
    defaults = CompactOptions()
    compression = options.get("compression", defaults.compression)
    if compression not in _CODECS:
        raise bad_option(NAME, "compression", compression, f"one of {', '.join(_CODECS)}")
    return CompactOptions(
        target_size=_size_option(options, "target_size", defaults.target_size),
        row_group_size=_size_option(options, "row_group_size", defaults.row_group_size),
        compression=compression,
    )


@contextlib.contextmanager
def _local_path(file: FileRef, workdir: Path) -> Iterator[Path]:
    """A local path holding ``file``: itself if local, else a streamed download."""
    parsed = storage.parse_uri(file.uri)
    if not parsed.is_s3:
        with file.open():  # only for its check against the manifest: pyarrow reads the path
            pass
        yield Path(parsed.path)
        return
    target = workdir / f"input-{file.index:06d}.parquet"
    try:
        with file.open() as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        yield target
    finally:
        target.unlink(missing_ok=True)


class _Compactor:
    """Buffers row groups and writes them to rolling output files."""

    def __init__(self, ctx: GroupContext, options: CompactOptions, workdir: Path) -> None:
        self._ctx = ctx
        self._options = options
        self._workdir = workdir
        self._schema: pa.Schema | None = None
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._file_rows = 0
        self._file_memory_bytes = 0
        self._disk_per_memory_byte = 1.0  # learnt from each flush; 1.0 is conservative
        self.files_out = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        written = self._sink.tell() if self._sink is not None else 0
        projected = written + self._pending_bytes * self._disk_per_memory_byte
        if (
            self._pending_bytes >= self._options.row_group_size
            or projected >= self._options.target_size
        ):
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_bytes = [], 0
        if self._writer is None:
            assert self._schema is not None
            self._sink = pa.OSFile(str(self._part_path()), "wb")
            compression = self._options.compression
            self._writer = pq.ParquetWriter(
                self._sink, self._schema, compression=None if compression == "none" else compression
            )
        assert self._sink is not None
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._file_rows += table.num_rows
        self._file_memory_bytes += table.nbytes
        if self._file_memory_bytes:
            self._disk_per_memory_byte = max(self._sink.tell() / self._file_memory_bytes, 0.01)
        if self._sink.tell() >= self._options.target_size:
            self._close_file()

    def _part_path(self) -> Path:
        return self._workdir / f"part-{self.files_out:05d}.parquet"

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._sink is not None
        self._sink.close()
        path = self._part_path()
        name = path.name
        with path.open("rb") as body:
            uri = self._ctx.output_uri(name)
            result = put_stream(uri, body)
        path.unlink()
        self._ctx.add_output(uri, result.size, self._file_rows, result.etag)
        self.rows += self._file_rows
        self.files_out += 1
        self._writer, self._sink = None, None
        self._file_rows = self._file_memory_bytes = 0

    def check_schema(self, schema: pa.Schema, file: FileRef, first_uri: str) -> None:
        if self._schema is None:
            self._schema = schema
            return
        if not schema.equals(self._schema, check_metadata=False):
            raise ProcessorError(
                f"parquet-compact: {file.uri} has schema [{_brief(schema)}] but the group's "
                f"first file {first_uri} has [{_brief(self._schema)}].",
                "compact only files with one schema (filter the source with include/exclude).",
            )

    def finish(self) -> None:
        self._flush()
        self._close_file()


def _brief(schema: pa.Schema, limit: int = 400) -> str:
    text = ", ".join(f"{field.name}: {field.type}" for field in schema)
    return text if len(text) <= limit else text[:limit] + "..."


def compact(files: list[FileRef], ctx: GroupContext, options: CompactOptions) -> dict[str, int]:
    """Compact the group's files into outputs of about ``target_size``; see the module doc."""
    with tempfile.TemporaryDirectory(prefix="parceler-compact-") as tmp:
        workdir = Path(tmp)
        compactor = _Compactor(ctx, options, workdir)
        first_uri = files[0].uri if files else ""
        for file in files:
            ctx.check_deadline(file.uri)
            try:
                with _local_path(file, workdir) as path, pq.ParquetFile(path) as parquet:
                    compactor.check_schema(parquet.schema_arrow, file, first_uri)
                    for index in range(parquet.num_row_groups):
                        compactor.add(parquet.read_row_group(index))
            except Exception as exc:
                raise user_error(exc, NAME, file.uri, user_code=False) from exc
        compactor.finish()
    return {"files_in": len(files), "files_out": compactor.files_out, "rows": compactor.rows}
