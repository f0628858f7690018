"""Manifest read, write and verify: Parquet data first, the JSON summary last (the commit point).

A manifest is two objects (``docs/INTERNALS.md``): the **data** object, Parquet with the
explicit :data:`~parceler.models.DATA_FILE_SCHEMA` (zstd; snappy when small), and the **summary**, a
:class:`~parceler.models.ManifestSummary` as JSON. :func:`write_manifest` writes the data,
then the summary, so a reader that finds a summary finds its data. :func:`read_manifest`
verifies the summary's counts, totals and fingerprint against the data.

s3manifesto interop: a summary written by s3manifesto 1.0 (keys ``manifest``, ``size``,
``n_record``, ``fingerprint``, ``details``; Parquet columns ``uri, etag, size, n_record``)
is read too and returned as a parceler :class:`Manifest`. Its fingerprint uses another
algorithm and is kept, unverified, in ``details["s3manifesto"]``; the returned summary
carries the parceler fingerprint computed from the data, and its totals are verified.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from parceler import storage
from parceler.errors import (
    ManifestError,
    ManifestNotFoundError,
    ObjectNotFoundError,
)
from parceler.fingerprint import fingerprints
from parceler.models import DATA_FILE_SCHEMA, SCHEMA_VERSION, ManifestSummary, validation_problems

S3MANIFESTO_FORMAT = "s3manifesto-1.0"
_S3MANIFESTO_KEYS = frozenset({"manifest", "size", "n_record", "fingerprint", "details"})
_PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
_JSON_CONTENT_TYPE = "application/json"
# Measured on 1M files (bench/bench_manifest.py): delta encodings for sorted-ish uris and
# integers, no dictionaries for columns of unique strings, zstd over the pages.
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": False,
    "column_encoding": {
        "uri": "DELTA_BYTE_ARRAY",
        "size": "DELTA_BINARY_PACKED",
        "n_record": "DELTA_BINARY_PACKED",
        "etag": "PLAIN",
    },
    "write_statistics": ["size", "n_record"],
    "row_group_size": 1 << 20,
}
# Below this many rows (a plan's group manifests: tens of rows each), setting up zstd and
# statistics costs more than they save: snappy and no statistics write in ~55% of the time
# for ~4% more bytes (measured on 17-row groups: 165 µs and 1,735 B against 294 µs and
# 1,668 B). Readers detect the codec.
_SMALL_TABLE_ROWS = 4096
_SMALL_PARQUET_OPTIONS: dict[str, Any] = {
    **_PARQUET_OPTIONS,
    "compression": "snappy",
    "compression_level": None,
    "write_statistics": False,
}


@dataclass(frozen=True, slots=True)
class Manifest:
    """A verified manifest in memory: its summary and its data-file rows."""

    summary: ManifestSummary
    table: pa.Table


def default_data_uri(summary_uri: str) -> str:
    """``.../manifest.json`` → ``.../manifest.parquet``.

    Raises:
        ManifestError: ``summary_uri`` does not end in ``.json``.
    """
    if not summary_uri.endswith(".json"):
        raise ManifestError(
            f"Manifest summary URI {summary_uri!r} does not end in '.json'.",
            "Name the summary '<name>.json', or pass data_uri explicitly.",
        )
    return summary_uri[: -len(".json")] + ".parquet"


def conform(table: pa.Table, where: str) -> pa.Table:
    """Return ``table`` with exactly :data:`DATA_FILE_SCHEMA` (column order, types, nullability).

    Only lossless casts happen: any integer type to int64, any string type to string, and an
    all-null column to a nullable field. ``n_record`` and ``etag`` may be absent (all null).
    Nothing is inferred: a string ``size`` or a float ``n_record`` is an error.

    Raises:
        ManifestError: naming ``where`` and the problem (missing/unknown column, wrong type,
            nulls in ``uri``/``size``, negative sizes or counts, empty uris).
    """
    unknown = sorted(set(table.column_names) - set(DATA_FILE_SCHEMA.names))
    if unknown:
        raise ManifestError(
            f"{where}: unknown column(s) {unknown}; a manifest holds {DATA_FILE_SCHEMA.names}.",
            "Drop or rename the extra columns.",
        )
    if len(set(table.column_names)) != len(table.column_names):
        raise ManifestError(f"{where}: duplicate column names {table.column_names}.")
    n = table.num_rows
    columns: list[pa.ChunkedArray | pa.Array] = []
    for field in DATA_FILE_SCHEMA:
        if field.name not in table.column_names:
            if not field.nullable:
                raise ManifestError(
                    f"{where}: required column {field.name!r} ({field.type}) is missing."
                )
            columns.append(pa.nulls(n, field.type))
            continue
        column = table.column(field.name)
        if not _castable(column.type, field):
            raise ManifestError(
                f"{where}: column {field.name!r} has type {column.type}, expected {field.type}."
            )
        try:
            column = column.cast(field.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ManifestError(
                f"{where}: column {field.name!r} does not fit {field.type}: {exc}"
            ) from exc
        if not field.nullable and column.null_count:
            raise ManifestError(
                f"{where}: column {field.name!r} has {column.null_count} null value(s)."
            )
        columns.append(column)
    result = pa.Table.from_arrays(columns, schema=DATA_FILE_SCHEMA)
    _check_values(result, where)
    return result


def _castable(actual: pa.DataType, field: pa.Field) -> bool:
    if pa.types.is_null(actual):
        return bool(field.nullable)
    if pa.types.is_integer(field.type):
        return bool(pa.types.is_integer(actual))
    return bool(
        pa.types.is_string(actual)
        or pa.types.is_large_string(actual)
        or pa.types.is_string_view(actual)
    )


def _check_values(table: pa.Table, where: str) -> None:
    for name in ("size", "n_record"):
        negative = pc.sum(pc.less(table.column(name), 0)).as_py() or 0
        if negative:
            raise ManifestError(f"{where}: {negative} row(s) have a negative {name!r}.")
    empty = pc.sum(pc.equal(pc.utf8_length(table.column("uri")), 0)).as_py() or 0
    if empty:
        raise ManifestError(f"{where}: {empty} row(s) have an empty 'uri'.")


def summarize(table: pa.Table) -> tuple[int, int, int | None, str]:
    """Return ``(n_files, total_size, total_records, fingerprint)`` of a conformed table.

    ``total_records`` is None unless every file has an ``n_record`` (0 for no files).
    """
    return summarize_ranges(table, [0, table.num_rows])[0]


def summarize_ranges(
    table: pa.Table, offsets: Sequence[int] | npt.NDArray[np.int64]
) -> list[tuple[int, int, int | None, str]]:
    """:func:`summarize` of each row range ``offsets[i]:offsets[i + 1]`` of a conformed
    table, with one pass over each column (see :func:`~parceler.fingerprint.fingerprints`).

    Raises:
        ValueError: ``offsets`` do not rise within the table.
    """
    bounds = np.asarray(offsets, dtype=np.int64)
    prints = fingerprints(table, bounds)
    n_record = table.column("n_record")
    sizes = _range_sums(table.column("size"), bounds)
    records = _range_sums(n_record.fill_null(0), bounds)
    missing = _range_sums(n_record.is_null(), bounds)
    return [
        (int(n), int(size), None if gaps else int(count), fp)
        for n, size, count, gaps, fp in zip(
            np.diff(bounds).tolist(), sizes, records, missing, prints, strict=True
        )
    ]


def _range_sums(column: pa.ChunkedArray, bounds: npt.NDArray[np.int64]) -> list[int]:
    """The sum of ``column`` (integers or booleans, no nulls) over each range of ``bounds``."""
    running = np.zeros(len(column) + 1, dtype=np.int64)
    np.cumsum(column.to_numpy(), out=running[1:])
    sums: list[int] = np.diff(running[bounds]).tolist()
    return sums


def write_manifest(
    table: pa.Table,
    summary_uri: str,
    *,
    data_uri: str | None = None,
    parent_fingerprint: str | None = None,
    group_index: int | None = None,
    group_count: int | None = None,
    details: dict[str, Any] | None = None,
    conformed: bool = False,
) -> ManifestSummary:
    """Write ``table`` as a manifest: the Parquet data object, then the JSON summary.

    Args:
        table: data-file rows; conformed to :data:`DATA_FILE_SCHEMA` (see :func:`conform`).
        summary_uri: where the summary goes (``s3://`` or local); must end in ``.json``
            unless ``data_uri`` is given.
        data_uri: where the Parquet data goes; default ``summary_uri`` with ``.parquet``.
        parent_fingerprint, group_index, group_count, details: recorded in the summary.
        conformed: the caller guarantees ``table`` already passed :func:`conform` and skips
            re-checking it.

    Returns:
        The summary as written. Row order is kept as given.

    Raises:
        ManifestError: the table does not conform, or the summary fields are invalid.
        RetryableError, StorageError: from :mod:`parceler.storage`.
    """
    where = f"manifest {summary_uri}"
    table = _checked(table, where, conformed=conformed)
    return _write(
        table,
        summary_uri,
        summarize(table),
        data_uri=data_uri if data_uri is not None else default_data_uri(summary_uri),
        parent_fingerprint=parent_fingerprint,
        group_index=group_index,
        group_count=group_count,
        details=details,
    )


def write_manifests(
    table: pa.Table,
    offsets: Sequence[int] | npt.NDArray[np.int64],
    summary_uris: Sequence[str],
    *,
    first_group_index: int | None = None,
    group_count: int | None = None,
    parent_fingerprint: str | None = None,
    details: dict[str, Any] | None = None,
    in_place: bool = False,
) -> list[ManifestSummary]:
    """Write each row range ``offsets[i]:offsets[i + 1]`` of a conformed table as its own
    manifest at ``summary_uris[i]`` (data beside it), in order.

    The same objects as :func:`write_manifest` on each slice, with the totals and
    fingerprints computed in one pass (:func:`summarize_ranges`): the planner writes tens of
    thousands of group manifests cut from one validated table this way.

    Args:
        table: rows with exactly :data:`DATA_FILE_SCHEMA` (already :func:`conform`-ed).
        offsets: ``len(summary_uris) + 1`` rising row positions.
        summary_uris: where each summary goes (``.json``).
        first_group_index: if given, manifest ``i`` records ``group_index = first + i``.
        group_count, parent_fingerprint, details: recorded in every summary.
        in_place: write local files directly, not through a temp file and rename (see
            :func:`parceler.storage.write_bytes`); the caller commits them all later.

    Raises:
        ManifestError: the table does not have the schema, or ``offsets`` do not match.
        RetryableError, StorageError: from :mod:`parceler.storage`.
    """
    if not table.schema.equals(DATA_FILE_SCHEMA):
        raise ManifestError(
            f"write_manifests: the table's schema is {table.schema}, not conformed."
        )
    if len(offsets) != len(summary_uris) + 1:
        raise ManifestError(
            f"write_manifests: {len(offsets)} offsets for {len(summary_uris)} manifests; "
            "give one more offset than manifests."
        )
    try:
        totals = summarize_ranges(table, offsets)
    except ValueError as exc:
        raise ManifestError(f"write_manifests: {exc}") from exc
    written = []
    for i, (summary_uri, facts) in enumerate(zip(summary_uris, totals, strict=True)):
        start = int(offsets[i])
        written.append(
            _write(
                table.slice(start, facts[0]),
                summary_uri,
                facts,
                data_uri=default_data_uri(summary_uri),
                parent_fingerprint=parent_fingerprint,
                group_index=None if first_group_index is None else first_group_index + i,
                group_count=group_count,
                details=details,
                in_place=in_place,
            )
        )
    return written


def encode_data(table: pa.Table) -> bytes:
    """A conformed table as the bytes of a manifest's Parquet data object."""
    options = _SMALL_PARQUET_OPTIONS if table.num_rows < _SMALL_TABLE_ROWS else _PARQUET_OPTIONS
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return bytes(sink.getvalue())


def _checked(table: pa.Table, where: str, *, conformed: bool) -> pa.Table:
    if not conformed:
        return conform(table, where)
    if not table.schema.equals(DATA_FILE_SCHEMA):
        raise ManifestError(f"{where}: conformed=True but the schema is {table.schema}.")
    return table


def _write(
    table: pa.Table,
    summary_uri: str,
    facts: tuple[int, int, int | None, str],
    *,
    data_uri: str,
    parent_fingerprint: str | None,
    group_index: int | None,
    group_count: int | None,
    details: dict[str, Any] | None,
    in_place: bool = False,
) -> ManifestSummary:
    """Write the data of a conformed ``table``, then its summary (the commit point)."""
    where = f"manifest {summary_uri}"
    n_files, total_size, total_records, fp = facts
    try:
        summary = ManifestSummary(
            fingerprint=fp,
            n_files=n_files,
            total_size=total_size,
            total_records=total_records,
            data_uri=data_uri,
            parent_fingerprint=parent_fingerprint,
            group_index=group_index,
            group_count=group_count,
            details=details or {},
        )
    except ValidationError as exc:
        raise ManifestError(f"{where}: invalid summary fields: {exc}") from exc
    storage.write_bytes(
        data_uri, encode_data(table), content_type=_PARQUET_CONTENT_TYPE, in_place=in_place
    )
    storage.write_bytes(
        summary_uri,
        summary.model_dump_json(indent=2).encode(),
        content_type=_JSON_CONTENT_TYPE,
        in_place=in_place,
    )
    return summary


def read_summary(summary_uri: str) -> ManifestSummary:
    """Read and validate the summary at ``summary_uri`` (without verifying its data).

    An s3manifesto 1.0 summary does not hold the file count or a parceler fingerprint, so
    for one the data is read and verified too (see :func:`read_manifest`).

    Raises:
        ManifestNotFoundError: no object at ``summary_uri``.
        ManifestError: not JSON, not a summary, or a newer schema version.
    """
    raw = _load_summary_json(summary_uri)
    if _is_s3manifesto(raw):
        return _read_s3manifesto(summary_uri, raw, verify=True).summary
    return _parse_summary(summary_uri, raw)


def read_manifest(summary_uri: str, *, verify: bool = True) -> Manifest:
    """Read the manifest committed at ``summary_uri`` and (by default) verify it.

    Verification compares ``n_files``, ``total_size``, ``total_records`` and ``fingerprint``
    of the summary with the data; ``verify=False`` skips it (the schema is checked always).

    Raises:
        ManifestNotFoundError: no summary at ``summary_uri``.
        ManifestError: a malformed summary or data object, a missing data object, or a
            verification mismatch (the message lists every field that differs).
        RetryableError, StorageError: from :mod:`parceler.storage`.
    """
    raw = _load_summary_json(summary_uri)
    if _is_s3manifesto(raw):
        return _read_s3manifesto(summary_uri, raw, verify=verify)
    summary = _parse_summary(summary_uri, raw)
    table = _read_data(summary_uri, summary.data_uri)
    if verify:
        n_files, total_size, total_records, fp = summarize(table)
        _verify(
            summary_uri,
            [
                ("n_files", summary.n_files, n_files),
                ("total_size", summary.total_size, total_size),
                ("total_records", summary.total_records, total_records),
                ("fingerprint", summary.fingerprint, fp),
            ],
        )
    return Manifest(summary=summary, table=table)


# -- internals -------------------------------------------------------------------------------


def _load_summary_json(summary_uri: str) -> dict[str, Any]:
    try:
        body = storage.read_bytes(summary_uri)
    except ObjectNotFoundError as exc:
        raise ManifestNotFoundError(
            f"No manifest summary at {summary_uri} (not committed yet, or a wrong URI).",
            "Check the URI; a manifest exists only once its summary is written.",
        ) from exc
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(
            f"Manifest summary {summary_uri} is not JSON: {exc}",
            "Point at the summary .json object, not the Parquet data.",
        ) from exc
    if not isinstance(raw, dict):
        raise ManifestError(
            f"Manifest summary {summary_uri} is JSON {type(raw).__name__}, not an object."
        )
    return raw


def _is_s3manifesto(raw: dict[str, Any]) -> bool:
    return "manifest" in raw and "schema_version" not in raw and set(raw) <= _S3MANIFESTO_KEYS


def _parse_summary(summary_uri: str, raw: dict[str, Any]) -> ManifestSummary:
    version = raw.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ManifestError(
            f"Manifest summary {summary_uri} has schema_version {version}; this parceler "
            f"reads up to {SCHEMA_VERSION}.",
            "Upgrade parceler.",
        )
    try:
        return ManifestSummary.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, "<root>")
        raise ManifestError(
            f"{summary_uri} is not a parceler manifest summary: {problems}",
            "Point at a summary written by parceler (or by s3manifesto 1.0).",
        ) from exc


def _read_data(summary_uri: str, data_uri: str) -> pa.Table:
    try:
        body = storage.read_bytes(data_uri)
    except ObjectNotFoundError as exc:
        raise ManifestError(
            f"Manifest {summary_uri} points at data {data_uri}, which does not exist.",
            "The data object was deleted or never written; re-create the manifest.",
        ) from exc
    try:
        table = pq.read_table(pa.BufferReader(body))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(
            f"Manifest data {data_uri} (of {summary_uri}) is not readable Parquet: {exc}"
        ) from exc
    return conform(table, f"manifest data {data_uri}")


def _verify(summary_uri: str, checks: list[tuple[str, object, object]]) -> None:
    differences = [
        f"{name}: summary says {expected!r}, data has {actual!r}"
        for name, expected, actual in checks
        if expected != actual
    ]
    if differences:
        raise ManifestError(
            f"Manifest {summary_uri} does not match its data: {'; '.join(differences)}.",
            "The data object was replaced or truncated; re-create the manifest.",
        )


def _read_s3manifesto(summary_uri: str, raw: dict[str, Any], *, verify: bool) -> Manifest:
    data_uri = raw["manifest"]
    if not isinstance(data_uri, str) or not data_uri:
        raise ManifestError(f"s3manifesto summary {summary_uri}: 'manifest' is not a URI.")
    details = raw.get("details") or {}
    if not isinstance(details, dict):
        raise ManifestError(f"s3manifesto summary {summary_uri}: 'details' is not an object.")
    table = _read_data(summary_uri, data_uri)
    n_files, total_size, total_records, fp = summarize(table)
    if verify:
        checks: list[tuple[str, object, object]] = []
        if raw.get("size") is not None:
            checks.append(("size", raw["size"], total_size))
        if raw.get("n_record") is not None:
            checks.append(("n_record", raw["n_record"], total_records))
        _verify(summary_uri, checks)
    summary = ManifestSummary(
        fingerprint=fp,
        n_files=n_files,
        total_size=total_size,
        total_records=total_records,
        data_uri=data_uri,
        details={
            **details,
            "source_format": S3MANIFESTO_FORMAT,
            "s3manifesto": {"fingerprint": raw.get("fingerprint")},
        },
    )
    return Manifest(summary=summary, table=table)
