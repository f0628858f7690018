"""The fingerprint of a set of data files: order-independent, injective, one pass of SHA-256.

A fingerprint identifies *which files* a manifest holds: the multiset of ``(uri, size, etag)``
rows, whatever their order. Two tables have the same fingerprint exactly when they hold the
same rows (up to SHA-256 collisions). ``n_record`` is deliberately not covered: it is a derived
count that may be filled in later (``--count-records``) without changing what the files are.

Canonical encoding (version 1), hashed with SHA-256::

    b"parceler-fingerprint-v1\\0"
    n                                   uint64 LE, the number of rows
    uri lengths        n x int64 LE     then the uri bytes (UTF-8), concatenated
    sizes              n x int64 LE
    etag present       n x uint8        1 = an etag (maybe ""), 0 = null
    etag lengths       n x int64 LE     0 for a null etag, then the etag bytes, concatenated

with rows sorted by uri (byte order), ties broken by size then etag (null first). Every field
is fixed width or preceded by its length, so the encoding decodes back to the rows: no two
different row multisets share it (``["ab", "c"]`` and ``["a", "bc"]`` differ in the lengths).
A missing etag (null) and an empty etag (``""``) differ in the "present" byte.

The result reads ``"fp1-sha256:<64 hex digits>"``; the ``fp1`` marker changes if the encoding
ever does, so old and new fingerprints never compare equal by accident.

Cost: a linear check whether the uris are already strictly increasing (listings from S3 are),
otherwise an Arrow sort (O(n log n)); then one SHA-256 pass over ~(40 + len(uri) +
len(etag)) bytes per row. For a million files (``bench/results/manifest.md``): ~0.1 s in
uri order, ~1.8 s shuffled (the Arrow string sort and the re-ordering dominate). Imports no boto3.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VERSION = 1
PREFIX = f"fp{VERSION}-sha256:"
_HEADER = f"parceler-fingerprint-v{VERSION}\0".encode()
_COLUMNS = ("uri", "size", "etag")


def fingerprint(table: pa.Table) -> str:
    """Return the fingerprint of the data-file rows in ``table``.

    Args:
        table: a table with at least the columns ``uri`` (string), ``size`` (integer) and
            ``etag`` (string, nullable); other columns are ignored. Usually
            :data:`parceler.models.DATA_FILE_SCHEMA`.

    Returns:
        ``"fp1-sha256:<hex>"``, equal for equal row multisets in any order.

    Raises:
        ValueError: a column is missing, has the wrong type, or ``uri``/``size`` hold nulls.
    """
    uri, size, etag = _canonical_columns(table)
    order = _canonical_order(uri, size, etag)
    if order is not None:
        uri, size, etag = uri.take(order), size.take(order), etag.take(order)
    digest = hashlib.sha256(_HEADER)
    digest.update(np.uint64(len(uri)).astype("<u8").tobytes())
    _update_strings(digest, uri, nullable=False)
    digest.update(_int64_bytes(size))
    _update_strings(digest, etag, nullable=True)
    return PREFIX + digest.hexdigest()


def _canonical_columns(table: pa.Table) -> tuple[pa.Array, pa.Array, pa.Array]:
    missing = [name for name in _COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(f"fingerprint needs columns {list(_COLUMNS)}; missing {missing}")
    targets = {"uri": pa.large_string(), "size": pa.int64(), "etag": pa.large_string()}
    arrays = []
    for name in _COLUMNS:
        column = table.column(name)
        try:
            column = column.cast(targets[name])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(
                f"fingerprint: column {name!r} has type {column.type}, not {targets[name]}"
            ) from exc
        if name != "etag" and column.null_count:
            raise ValueError(f"fingerprint: column {name!r} holds {column.null_count} null(s)")
        arrays.append(column.combine_chunks())
    return arrays[0], arrays[1], arrays[2]


def _canonical_order(uri: pa.Array, size: pa.Array, etag: pa.Array) -> pa.Array | None:
    """Indices that sort the rows canonically, or None if they already are in that order."""
    n = len(uri)
    if n < 2:
        return None
    if _strictly_increasing(uri):
        return None
    order = pc.sort_indices(uri)
    sorted_uri = uri.take(order)
    if _strictly_increasing(sorted_uri):
        return order
    # Duplicate uris: break ties on the whole row so equal multisets get equal order.
    rows = pa.table({"uri": uri, "size": size, "etag": etag})
    return pc.sort_indices(
        rows,
        sort_keys=[
            ("uri", "ascending", "at_start"),
            ("size", "ascending", "at_start"),
            ("etag", "ascending", "at_start"),
        ],
    )


def _strictly_increasing(values: pa.Array) -> bool:
    later = values.slice(1)
    earlier = values.slice(0, len(values) - 1)
    return bool(pc.all(pc.greater(later, earlier)).as_py())


def _int64_bytes(values: pa.Array) -> bytes | memoryview:
    _validity, data = values.buffers()
    assert data is not None
    start = values.offset * 8
    return memoryview(data)[start : start + len(values) * 8]


def _update_strings(digest: hashlib._Hash, values: pa.Array, *, nullable: bool) -> None:
    """Hash a large_string array: [present bytes], lengths as int64 LE, then the bytes."""
    _validity, offsets_buf, data_buf = values.buffers()
    assert offsets_buf is not None
    n = len(values)
    offsets = np.frombuffer(offsets_buf, dtype="<i8")[values.offset : values.offset + n + 1]
    lengths = np.diff(offsets)
    if nullable:
        present = values.is_valid().to_numpy(zero_copy_only=False).astype(np.uint8)
        digest.update(present.tobytes())
        if values.null_count:
            # A null slot may carry bytes in Arrow; it counts as length 0 and hashes nothing.
            lengths = np.where(present.astype(bool), lengths, 0)
            values = pc.fill_null(values, "")
            _validity, offsets_buf, data_buf = values.buffers()
            assert offsets_buf is not None
            offsets = np.frombuffer(offsets_buf, dtype="<i8")[values.offset : values.offset + n + 1]
    digest.update(lengths.astype("<i8", copy=False).tobytes())
    if n and data_buf is not None:
        digest.update(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
