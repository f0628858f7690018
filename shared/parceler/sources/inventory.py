"""Read an S3 Inventory report (its ``manifest.json`` and data files) into data-file rows.

* The report's ``manifest.json`` (S3 or local) names the ``fileFormat`` (``CSV``,
  ``Parquet`` or ``ORC``), the ``fileSchema`` and the data ``files``; the data files are
  always read from the report's destination bucket (``destinationBucket``), in parallel.
* CSV data files are gzip, without a header; their columns are named by ``fileSchema``.
  Their keys are URL-encoded with ``+`` for a space and are decoded (``unquote_plus``);
  Parquet and ORC keys are plain.
* When the report has the columns, only current versions (``IsLatest``) that are not
  delete markers (``IsDeleteMarker``) are kept; keys ending in ``/`` (folder markers) are
  skipped. ``uri`` is ``s3://{Bucket}/{Key}``; ``etag`` is ``ETag`` when reported.
* The glob subject is the object key.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.orc as paorc
import pyarrow.parquet as pq

from parceler import storage
from parceler.errors import ObjectNotFoundError, SourceError, StorageError
from parceler.sources.rows import Listed

INVENTORY_KEYS = ("fileSchema", "files", "fileFormat")
_WANTED = ("bucket", "key", "size", "e_tag", "is_latest", "is_delete_marker")
_TYPES: dict[str, pa.DataType] = {
    "bucket": pa.string(),
    "key": pa.string(),
    "size": pa.int64(),
    "e_tag": pa.string(),
    "is_latest": pa.bool_(),
    "is_delete_marker": pa.bool_(),
}
_FIX = "Point at the manifest.json of a complete S3 Inventory report."


def is_inventory(document: Any) -> bool:
    """True if a parsed JSON document looks like an S3 Inventory ``manifest.json``."""
    return isinstance(document, dict) and all(k in document for k in INVENTORY_KEYS)


def snake_case(name: str) -> str:
    """``IsDeleteMarker`` → ``is_delete_marker``, ``ETag`` → ``e_tag`` (Parquet's names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip()).lower()


def _csv_columns(file_schema: str) -> list[str]:
    return [snake_case(part) for part in file_schema.split(",") if part.strip()]


def _destination_bucket(manifest: dict[str, Any], uri: str) -> str:
    destination = str(manifest.get("destinationBucket", ""))
    bucket = destination.rsplit(":", 1)[-1] if destination else ""
    if not bucket:
        parsed = storage.parse_uri(uri)
        if not parsed.is_s3:
            raise SourceError(f"Inventory manifest {uri} names no destinationBucket.", _FIX)
        bucket = parsed.bucket
    return bucket


def read_inventory(uri: str, manifest: dict[str, Any], *, workers: int = 16) -> Listed:
    """Read the report whose parsed ``manifest.json`` (at ``uri``) is ``manifest``.

    Raises:
        SourceError: an unsupported format, a missing or unreadable data file, or a data
            file that does not match ``fileSchema``.
    """
    file_format = str(manifest.get("fileFormat", "")).upper()
    if file_format not in {"CSV", "PARQUET", "ORC"}:
        raise SourceError(
            f"Inventory {uri} has fileFormat {manifest.get('fileFormat')!r}; "
            "parceler reads CSV, Parquet and ORC.",
            _FIX,
        )
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and "key" in f for f in files):
        raise SourceError(f"Inventory {uri}: 'files' is not a list of {{key: ...}}.", _FIX)
    bucket = _destination_bucket(manifest, uri)
    columns = _csv_columns(str(manifest.get("fileSchema", ""))) if file_format == "CSV" else []
    if file_format == "CSV" and not {"bucket", "key"} <= set(columns):
        raise SourceError(f"Inventory {uri}: fileSchema names no Bucket and Key.", _FIX)
    data_uris = [f"s3://{bucket}/{f['key']}" for f in files]

    def read(data_uri: str) -> pa.Table:
        return _read_data_file(data_uri, file_format, columns)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        tables = list(pool.map(read, data_uris))
    return _to_listed(tables, uri, decode_keys=file_format == "CSV")


def _read_data_file(data_uri: str, file_format: str, columns: Sequence[str]) -> pa.Table:
    try:
        data = storage.read_bytes(data_uri)
    except ObjectNotFoundError as exc:
        raise SourceError(f"Inventory data file {data_uri} does not exist.", _FIX) from exc
    except StorageError as exc:
        raise SourceError(
            f"Inventory data file {data_uri} cannot be read: {exc.problem}", exc.fix
        ) from exc
    try:
        if file_format == "CSV":
            if data_uri.endswith(".gz") or data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            wanted = [c for c in columns if c in _WANTED]
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(column_names=list(columns)),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: _TYPES[c] for c in wanted},
                    include_columns=wanted,
                    strings_can_be_null=False,
                ),
            )
        elif file_format == "PARQUET":
            parquet = pq.ParquetFile(pa.BufferReader(data))
            table = parquet.read(columns=[c for c in _WANTED if c in parquet.schema_arrow.names])
        else:
            orc = paorc.ORCFile(pa.BufferReader(data))
            table = orc.read(columns=[c for c in _WANTED if c in orc.schema.names])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError) as exc:
        raise SourceError(
            f"Inventory data file {data_uri} cannot be parsed as {file_format}: {exc}", _FIX
        ) from exc
    return table


def _to_listed(tables: list[pa.Table], uri: str, *, decode_keys: bool) -> Listed:
    names = set.intersection(*(set(t.column_names) for t in tables)) if tables else set()
    if tables and not {"bucket", "key"} <= names:
        raise SourceError(f"Inventory {uri}: data files have no bucket and key columns.", _FIX)
    keep_cols = [c for c in _WANTED if c in names]
    table = (
        pa.concat_tables([t.select(keep_cols) for t in tables], promote_options="permissive")
        if tables
        else pa.table({"bucket": pa.array([], pa.string()), "key": pa.array([], pa.string())})
    )
    notes: list[str] = []
    mask = pc.is_valid(table.column("key"))
    if "is_latest" in names:
        latest = pc.cast(table.column("is_latest"), pa.bool_()).fill_null(True)
        dropped = len(latest) - pc.sum(pc.cast(latest, pa.int64())).as_py() if len(latest) else 0
        if dropped:
            notes.append(f"{dropped} noncurrent version(s) skipped")
        mask = pc.and_(mask, latest)
    if "is_delete_marker" in names:
        marker = pc.cast(table.column("is_delete_marker"), pa.bool_()).fill_null(False)
        mask = pc.and_(mask, pc.invert(marker))
    table = table.filter(mask)
    keys = table.column("key")
    if decode_keys and len(keys):
        keys = _unquote_plus(keys)
    folder = pc.ends_with(keys, "/")
    markers = pc.sum(pc.cast(folder, pa.int64())).as_py() or 0
    if markers:
        notes.append(f"{markers} folder marker(s) skipped")
        table = table.filter(pc.invert(folder))
        keys = keys.filter(pc.invert(folder))
    uris = pc.binary_join_element_wise(
        pc.binary_join_element_wise("s3://", table.column("bucket"), ""), keys, "/"
    )
    columns: dict[str, Any] = {"uri": uris}
    columns["size"] = table.column("size") if "size" in names else pa.nulls(len(keys), pa.int64())
    if "e_tag" in names:
        columns["etag"] = table.column("e_tag")
    return Listed(table=pa.table(columns), subjects=keys, noun="keys", notes=tuple(notes))


def _unquote_plus(keys: pa.ChunkedArray) -> pa.ChunkedArray:
    """Decode URL-encoded keys, touching only those that hold ``%`` or ``+``."""
    needs = pc.or_(pc.match_substring(keys, "%"), pc.match_substring(keys, "+"))
    if not pc.any(needs).as_py():
        return keys
    values = keys.to_pylist()
    for index in pc.indices_nonzero(needs).to_pylist():
        values[index] = unquote_plus(values[index])
    return pa.chunked_array([pa.array(values, pa.string())])


def parse_manifest_json(data: bytes, uri: str) -> Any:
    """Parse a ``.json`` source, naming the URI if it is not JSON."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"Source {uri} is not valid JSON.",
            "Name an S3 Inventory manifest.json or a parceler manifest summary.",
        ) from exc
