"""Build the master data-file table (:data:`~parceler.models.DATA_FILE_SCHEMA`) from any source.

:func:`load_source` decides what ``source`` is, in this order:

1. A URI with a scheme other than ``s3://`` or ``file://`` → :class:`UnsupportedUriError`.
2. A name ending in ``.jsonl``, ``.ndjson``, ``.csv`` (each optionally ``.gz``) or
   ``.parquet`` → a **listing file** of ``uri,size[,n_record][,etag]``
   (:mod:`~parceler.sources.listing`).
3. A name ending in ``.json`` → read as JSON: with the S3 Inventory keys ``fileSchema``,
   ``files`` and ``fileFormat`` it is an **S3 Inventory report**'s ``manifest.json``
   (:mod:`~parceler.sources.inventory`); otherwise a **manifest summary** (parceler's, or
   s3manifesto's as :mod:`parceler.manifest` reads it) whose table is the source.
4. Any other ``s3://`` URI → an **S3 prefix**, listed recursively
   (:mod:`~parceler.sources.prefix`; the prefix is literal, end it in ``/`` for a folder).
5. Any other local path or ``file://`` URI that is a folder → a **local folder**, walked
   recursively (:mod:`~parceler.sources.local`). Anything else local → :class:`SourceError`.

Then, for every source: the ``include``/``exclude`` globs (:mod:`~parceler.sources.filters`
says what they match), validation, duplicates and sorting (:mod:`~parceler.sources.rows`:
exact duplicates are kept once with a warning, conflicting ones raise
:class:`DuplicateUriError`), an :class:`EmptySourceError` that says what was filtered out
if nothing is left, and with ``count_records=True`` the null ``n_record`` values are
counted (:mod:`~parceler.sources.records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from parceler import storage
from parceler.errors import (
    ManifestError,
    ObjectNotFoundError,
    SourceError,
    StorageError,
)
from parceler.sources.inventory import is_inventory, parse_manifest_json, read_inventory
from parceler.sources.listing import is_listing, read_listing
from parceler.sources.local import list_folder
from parceler.sources.prefix import list_prefix
from parceler.sources.records import count_records as fill_record_counts
from parceler.sources.rows import Listed, finalise, select

__all__ = ["load_source"]


def load_source(
    source: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    count_records: bool = False,
    workers: int = 16,
) -> pa.Table:
    """Build the data-file table of ``source`` (see the module docstring for the dispatch).

    Args:
        source: an S3 prefix, an S3 Inventory ``manifest.json``, a listing file, a manifest
            summary ``.json``, or a local folder (plain path or ``file://``).
        include: keep only files matching one of these globs (empty: all).
        exclude: drop files matching any of these globs.
        count_records: fill null ``n_record`` values by counting (Parquet footers, lines).
        workers: threads for parallel listing, reading and counting.

    Returns:
        A table with exactly :data:`~parceler.models.DATA_FILE_SCHEMA`, sorted by ``uri``,
        one row per file.

    Raises:
        UnsupportedUriError: an unknown URI scheme.
        SourceError: an unreadable or malformed source (names the source, rows and fix).
        DuplicateUriError: the same URI with different sizes or etags.
        EmptySourceError: nothing left (names what was filtered out).
        RetryableError: S3 throttled or the connection failed.
    """
    parsed = storage.parse_uri(source)
    name = source.lower()
    if is_listing(name):
        listed = read_listing(source)
    elif name.endswith(".json"):
        listed = _read_json_source(source, workers=workers)
    elif parsed.is_s3:
        listed = list_prefix(parsed.bucket, parsed.key, workers=workers)
    elif Path(parsed.path).is_dir():
        listed = list_folder(parsed.path, exclude)
    elif Path(parsed.path).exists():
        raise SourceError(
            f"Source {source} is a file parceler cannot list from.",
            "Name a folder, an S3 prefix, a listing (.jsonl, .ndjson, .csv, .parquet), "
            "an S3 Inventory manifest.json or a manifest summary .json.",
        )
    else:
        raise SourceError(f"Source {source} does not exist.", "Check the path.")
    table, note = select(listed, include, exclude)
    table = finalise(table, source, filtered=note)
    if count_records:
        table = fill_record_counts(table, workers=workers)
    return table


def _read_json_source(source: str, *, workers: int) -> Listed:
    try:
        data = storage.read_bytes(source)
    except ObjectNotFoundError as exc:
        raise SourceError(f"Source {source} does not exist.", "Check the URI.") from exc
    except StorageError as exc:
        raise SourceError(f"Source {source} cannot be read: {exc.problem}", exc.fix) from exc
    document = parse_manifest_json(data, source)
    if is_inventory(document):
        return read_inventory(source, document, workers=workers)
    # lazy: manifest I/O is only needed for this source type
    from parceler.manifest import read_manifest

    try:
        table = read_manifest(source).table
    except ManifestError as exc:
        raise SourceError(
            f"Source {source} is neither an S3 Inventory manifest.json nor a readable "
            f"manifest summary: {exc.problem}",
            exc.fix or "Name an S3 Inventory manifest.json or a manifest summary .json.",
        ) from exc
    return Listed(table=table, subjects=table.column("uri"), noun="files")
