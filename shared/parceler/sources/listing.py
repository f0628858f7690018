"""Read a listing file (JSONL, CSV with a header row, or Parquet) of ``uri,size[,n_record][,etag]``.

Formats are chosen by extension: ``.jsonl``/``.ndjson``, ``.csv`` (each optionally ``.gz``)
and ``.parquet``. Columns other than the four known ones are ignored; URIs are taken
verbatim (not resolved against the listing's own location). Reading is columnar
with explicit types (pyarrow's CSV/JSON/Parquet readers, never type inference), so a
million-row listing loads in a fraction of a second; only when the fast read fails does a
slow pass look for the offending rows to name them in the error.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from parceler import storage
from parceler.errors import ObjectNotFoundError, SourceError, StorageError
from parceler.sources.rows import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Listed, normalise

LISTING_SUFFIXES = (
    ".jsonl",
    ".ndjson",
    ".csv",
    ".parquet",
    ".jsonl.gz",
    ".ndjson.gz",
    ".csv.gz",
)
_KNOWN = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
_TYPES: dict[str, pa.DataType] = {
    "uri": pa.string(),
    "size": pa.int64(),
    "n_record": pa.int64(),
    "etag": pa.string(),
}
_SHOW = 5


def is_listing(uri: str) -> bool:
    """True if ``uri`` names a listing file by its extension."""
    return uri.lower().endswith(LISTING_SUFFIXES)


def read_listing_bytes(uri: str) -> bytes:
    """Read ``uri`` whole, decompressing ``.gz``; unreadable → :class:`SourceError`."""
    try:
        data = storage.read_bytes(uri)
    except ObjectNotFoundError as exc:
        raise SourceError(
            f"Listing {uri} does not exist.", "Check the URI (bucket, key or path)."
        ) from exc
    except StorageError as exc:
        raise SourceError(f"Listing {uri} cannot be read: {exc.problem}", exc.fix) from exc
    if uri.lower().endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SourceError(
                f"Listing {uri} ends in .gz but is not valid gzip.",
                "Compress it with gzip, or drop the .gz suffix.",
            ) from exc
    return data


def read_listing(uri: str) -> Listed:
    """Read the listing at ``uri`` into rows (validated later by :func:`rows.finalise`).

    Raises:
        SourceError: the listing is missing, unreadable, not parseable, lacks ``uri`` or
            ``size``, or holds malformed values (the first offending rows are named).
    """
    data = read_listing_bytes(uri)
    name = uri.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet"):
            table = _read_parquet(data, uri)
        elif name.endswith(".csv"):
            table = _read_csv(data, uri)
        else:
            table = _read_jsonl(data, uri)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise SourceError(
            f"Listing {uri} cannot be parsed: {exc}",
            "Write one row per file with columns uri,size[,n_record][,etag].",
        ) from exc
    return Listed(table=table, subjects=table.column("uri"), noun="rows")


def _read_parquet(data: bytes, uri: str) -> pa.Table:
    parquet = pq.ParquetFile(pa.BufferReader(data))
    present = [c for c in _KNOWN if c in parquet.schema_arrow.names]
    _require(present, parquet.schema_arrow.names, uri)
    for name in ("size", "n_record"):
        # Parquet is typed, like JSONL: numbers stored as text are refused there too
        # (only CSV, which has no types, carries them as text).
        if name in present and _is_text(parquet.schema_arrow.field(name).type):
            raise SourceError(
                f"Listing {uri}: column {name!r} is stored as text "
                f"({parquet.schema_arrow.field(name).type}); Parquet listings store it as an "
                "integer.",
                f"Write {name} as an int64 column (e.g. df[{name!r}].astype('int64')).",
            )
    return parquet.read(columns=present)


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _require(present: list[str], found: list[str], uri: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SourceError(
            f"Listing {uri} has no column(s) {missing}; it has {found}.",
            "Give every row a uri and a size in bytes (n_record and etag are optional).",
        )


def _read_csv(data: bytes, uri: str) -> pa.Table:
    first_line = data[: data.find(b"\n") if b"\n" in data else len(data)]
    header = next(csv.reader([first_line.decode("utf-8-sig", errors="replace").strip()]), [])
    header = [h.strip() for h in header]
    present = [c for c in _KNOWN if c in header]
    _require(present, header, uri)
    read_options = pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=True)
    parse_options = pacsv.ParseOptions(newlines_in_values=False)
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM would otherwise glue onto the header
        data = data[3:]
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=pacsv.ConvertOptions(
                column_types={c: _TYPES[c] for c in present}, include_columns=present
            ),
        )
    except pa.ArrowInvalid:
        # Slow path, only on failure: read everything as text so normalise() can name the
        # offending rows; if it finds nothing to blame, the parse error itself is reported.
        text = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in present}, include_columns=present
            ),
        )
        normalise(text, uri)
        raise


def _read_jsonl(data: bytes, uri: str) -> pa.Table:
    stripped = data.lstrip()
    first = stripped[: stripped.find(b"\n")] if b"\n" in stripped else stripped
    try:
        first_row = json.loads(first) if first.strip() else {}
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"Listing {uri}: line 1 is not JSON ({exc.msg}).",
            "Write one JSON object per line (JSON Lines).",
        ) from exc
    if not isinstance(first_row, dict):
        raise SourceError(
            f"Listing {uri}: line 1 is not a JSON object.",
            'Write one object per line, e.g. {"uri": "s3://b/k", "size": 12}.',
        )
    _require([c for c in _KNOWN if c in first_row], list(first_row), uri)
    schema = pa.schema([pa.field(c, _TYPES[c]) for c in _KNOWN])
    try:
        return pajson.read_json(
            pa.BufferReader(data),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid:
        _diagnose_jsonl(data, uri)
        raise


def _diagnose_jsonl(data: bytes, uri: str) -> None:
    """Scan line by line (slow, error path only) and raise naming the first bad lines."""
    bad: list[str] = []
    count = 0
    for number, line in enumerate(io.BytesIO(data), start=1):
        if not line.strip():
            continue
        problem = _jsonl_problem(line)
        if problem is not None:
            count += 1
            if len(bad) < _SHOW:
                bad.append(f"line {number}: {problem}")
    if bad:
        more = f" and {count - _SHOW} more" if count > _SHOW else ""
        raise SourceError(
            f"Listing {uri} has {count} malformed line(s): {'; '.join(bad)}{more}.",
            'Write one object per line: {"uri": "s3://b/k", "size": 12} '
            "with integer size and n_record and string uri and etag.",
        )


def _jsonl_problem(line: bytes) -> str | None:
    try:
        row: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    if not isinstance(row, dict):
        return "not a JSON object"
    for name in ("size", "n_record"):
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{name}={value!r} is not an integer"
    for name in ("uri", "etag"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name}={value!r} is not a string"
    return None
