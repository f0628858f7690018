"""Validate, normalise, de-duplicate and sort data-file rows into :data:`DATA_FILE_SCHEMA`.

Every source ends here, so every source gets the same rules:

* ``uri`` and ``size`` columns are required; ``n_record`` and ``etag`` are optional (null).
* ``uri`` must be a non-empty string a worker can open (``s3://bucket/key``,
  ``file:///abs/path`` or an absolute path: not relative, not ``http://``); ``size`` a
  non-null integer >= 0; ``n_record`` a null
  or an integer >= 0. Integers may arrive as any Arrow integer type, as floats holding whole
  numbers (Parquet written by pandas) or as decimal strings (CSV read as text); anything
  else is a :class:`SourceError` naming the source, the column, the first offending rows
  (1-based data rows, a CSV header not counted) and the fix.
* ``etag`` loses surrounding double quotes (S3 returns ``"abc"``); an empty etag is null.
* Duplicates: rows with the same ``uri``, ``size`` and ``etag`` are kept once (a non-null
  ``n_record`` wins) and a warning names how many were dropped; the same ``uri`` with a
  different ``size`` or ``etag`` (null differs from any value) is a
  :class:`DuplicateUriError` naming the first URIs, because no rule can pick the true one.
* The output is sorted by ``uri`` (deterministic for equal input) and cast to exactly
  :data:`DATA_FILE_SCHEMA`. No rows left is an :class:`EmptySourceError`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from parceler.errors import DuplicateUriError, EmptySourceError, SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources.filters import describe, glob_mask

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("uri", "size")
OPTIONAL_COLUMNS = ("n_record", "etag")
_SHOW = 5  # offending rows named in an error message
_INTEGER_TEXT = r"^\s*[+-]?\d+\s*$"
# What a worker can open: an S3 object (bucket and key), a file:// URI or an absolute path.
_READABLE_URI = r"(?s)^(?:s3://[^/]+/.+|file://(?:localhost)?/.*|/.*)$"


def _first_rows(mask: pa.Array | pa.ChunkedArray, uris: pa.ChunkedArray | None) -> str:
    """Describe the first offending rows of ``mask`` as ``row 3 (s3://...)``."""
    indices = pc.indices_nonzero(mask.fill_null(True) if mask.null_count else mask)
    total = len(indices)
    shown = []
    for index in indices[:_SHOW].to_pylist():
        label = f"row {index + 1}"
        if uris is not None:
            uri = uris[index].as_py()
            if uri:
                label += f" ({uri})"
        shown.append(label)
    more = f" and {total - _SHOW} more" if total > _SHOW else ""
    return f"{total} row(s): {', '.join(shown)}{more}"


def _to_int64(
    column: pa.ChunkedArray, name: str, source: str, uris: pa.ChunkedArray | None
) -> pa.ChunkedArray:
    """Coerce an integer-like column to int64, or raise naming the rows that are not."""
    kind = column.type
    fix = f"Write {name} as a whole number of {'bytes' if name == 'size' else 'records'}."
    if pa.types.is_integer(kind):
        if pa.types.is_uint64(kind):
            too_big = pc.greater(column, pa.scalar(2**63 - 1, pa.uint64()))
            if pc.any(too_big).as_py():
                raise SourceError(
                    f"Source {source}: column {name!r} overflows int64 in "
                    f"{_first_rows(too_big, uris)}.",
                    fix,
                )
        return pc.cast(column, pa.int64())
    if pa.types.is_floating(kind):
        finite = pc.is_finite(column)
        whole = pc.and_(finite, pc.equal(pc.floor(column), column))
        bad = pc.and_(pc.is_valid(column), pc.invert(whole.fill_null(False)))
        if pc.any(bad).as_py():
            raise SourceError(
                f"Source {source}: column {name!r} holds non-integer numbers in "
                f"{_first_rows(bad, uris)}.",
                fix,
            )
        return pc.cast(column, pa.int64(), safe=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        trimmed = pc.utf8_trim_whitespace(column)
        empty = pc.equal(trimmed, "")
        text = pc.if_else(empty, pa.scalar(None, kind), trimmed)
        bad = pc.and_(
            pc.is_valid(text), pc.invert(pc.match_substring_regex(text, pattern=_INTEGER_TEXT))
        )
        if pc.any(bad).as_py():
            raise SourceError(
                f"Source {source}: column {name!r} holds values that are not integers in "
                f"{_first_rows(bad, uris)}.",
                fix,
            )
        try:
            return pc.cast(text, pa.int64())
        except pa.ArrowInvalid as exc:  # digits, but beyond int64
            raise SourceError(f"Source {source}: column {name!r} overflows int64.", fix) from exc
    if pa.types.is_null(kind):
        return pa.chunked_array([pa.nulls(len(column), pa.int64())])
    raise SourceError(
        f"Source {source}: column {name!r} has type {kind}; an integer is needed.", fix
    )


def _to_string(column: pa.ChunkedArray, name: str, source: str) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_large_string(kind) or pa.types.is_null(kind) or pa.types.is_dictionary(kind):
        return pc.cast(column, pa.string())
    if name == "etag" and (pa.types.is_integer(kind) or pa.types.is_binary(kind)):
        return pc.cast(column, pa.string())
    raise SourceError(
        f"Source {source}: column {name!r} has type {kind}; a string is needed.",
        f"Write {name} as text.",
    )


def normalise(table: pa.Table, source: str) -> pa.Table:
    """Check and coerce ``table``'s columns to :data:`DATA_FILE_SCHEMA` (order and types).

    Extra columns are dropped. Rows are neither reordered nor de-duplicated here.

    Raises:
        SourceError: a missing column, a null/empty uri, a null/negative/non-integer size,
            a negative/non-integer n_record, or a column of an unusable type.
    """
    names = set(table.column_names)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise SourceError(
            f"Source {source} has no column(s) {missing}; it has {table.column_names}.",
            "Give every row a uri and a size in bytes (n_record and etag are optional).",
        )
    uris = _to_string(table.column("uri"), "uri", source)
    bad_uri = pc.or_(pc.is_null(uris), pc.equal(uris, "").fill_null(True))
    if pc.any(bad_uri).as_py():
        raise SourceError(
            f"Source {source}: null or empty uri in {_first_rows(bad_uri, None)}.",
            "Give every row the URI of its file (s3://bucket/key or file:///path).",
        )
    unreadable = pc.invert(pc.match_substring_regex(uris, pattern=_READABLE_URI))
    if pc.any(unreadable).as_py():
        raise SourceError(
            f"Source {source}: uri that workers cannot read in {_first_rows(unreadable, uris)}.",
            "Give every file as s3://bucket/key, file:///absolute/path or an absolute path "
            "(not a relative path, which workers resolve elsewhere, nor http:// or another "
            "scheme).",
        )
    sizes = _to_int64(table.column("size"), "size", source, uris)
    if sizes.null_count:
        raise SourceError(
            f"Source {source}: missing size in {_first_rows(pc.is_null(sizes), uris)}.",
            "Give every row its size in bytes (list the files again, or stat them).",
        )
    negative = pc.less(sizes, 0)
    if pc.any(negative).as_py():
        raise SourceError(
            f"Source {source}: negative size in {_first_rows(negative, uris)}.",
            "Sizes are byte counts (>= 0).",
        )
    n = table.num_rows
    if "n_record" in names:
        records = _to_int64(table.column("n_record"), "n_record", source, uris)
        negative = pc.less(records, 0).fill_null(False)
        if pc.any(negative).as_py():
            raise SourceError(
                f"Source {source}: negative n_record in {_first_rows(negative, uris)}.",
                "n_record is a record count (>= 0), or empty when unknown.",
            )
    else:
        records = pa.chunked_array([pa.nulls(n, pa.int64())])
    if "etag" in names:
        etags = pc.utf8_trim(_to_string(table.column("etag"), "etag", source), characters='"')
        etags = pc.if_else(pc.equal(etags, ""), pa.scalar(None, pa.string()), etags)
    else:
        etags = pa.chunked_array([pa.nulls(n, pa.string())])
    return pa.Table.from_arrays([uris, sizes, records, etags], schema=DATA_FILE_SCHEMA)


def _same(a: pa.Array, b: pa.Array) -> pa.Array:
    """Elementwise equality where null equals null (and nothing else)."""
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return pc.or_(pc.equal(a, b).fill_null(False), both_null)


def _is_sorted_unique(uris: pa.Array) -> bool:
    if len(uris) < 2:
        return True
    return bool(pc.all(pc.less(uris[:-1], uris[1:])).as_py())


def deduplicate_and_sort(table: pa.Table, source: str) -> pa.Table:
    """Sort by uri; keep exact duplicates once (with a warning); reject conflicting ones.

    O(n log n) for the sort (skipped when the rows already are sorted and unique: S3 lists
    in key order), then one vectorised pass over adjacent rows.

    Raises:
        DuplicateUriError: the same uri with a different size or etag.
    """
    table = table.combine_chunks()
    if _is_sorted_unique(table.column("uri").chunk(0) if table.num_rows else pa.array([])):
        return table
    table = table.take(pc.sort_indices(table.column("uri"))).combine_chunks()
    uri = table.column("uri").chunk(0)
    if not pc.any(pc.equal(uri[:-1], uri[1:])).as_py():
        return table
    # Duplicates exist: order each uri's rows so that exact copies sit together and the
    # copy with a known n_record comes first (nulls filled, so no null_placement needed).
    keys = pa.table(
        {
            "uri": uri,
            "size": table.column("size"),
            "etag": table.column("etag").fill_null(""),
            "n_record": table.column("n_record").fill_null(-1),
        }
    )
    order = pc.sort_indices(
        keys,
        sort_keys=[
            ("uri", "ascending"),
            ("size", "ascending"),
            ("etag", "ascending"),
            ("n_record", "descending"),
        ],
    )
    table = table.take(order).combine_chunks()
    uri = table.column("uri").chunk(0)
    prev, curr = slice(0, len(uri) - 1), slice(1, len(uri))
    same_uri = pc.equal(uri[prev], uri[curr])
    size = table.column("size").chunk(0)
    etag = table.column("etag").chunk(0)
    same_file = pc.and_(_same(size[prev], size[curr]), _same(etag[prev], etag[curr]))
    conflict = pc.and_(same_uri, pc.invert(same_file))
    if pc.any(conflict).as_py():
        where = pc.indices_nonzero(conflict)
        uris = sorted({uri[i + 1].as_py() for i in where.to_pylist()})
        shown = ", ".join(uris[:_SHOW]) + (
            f" and {len(uris) - _SHOW} more" if len(uris) > _SHOW else ""
        )
        raise DuplicateUriError(
            f"Source {source} lists {len(uris)} uri(s) more than once with different sizes "
            f"or etags: {shown}.",
            "List each file once; if the file changed, keep only its current size and etag.",
        )
    keep = pc.invert(pa.concat_arrays([pa.array([False]), same_uri]))
    dropped = len(uri) - pc.sum(keep.cast(pa.int64())).as_py()
    message = (
        f"Source {source} lists {dropped} duplicate row(s) (same uri, size and etag); "
        "each file is kept once."
    )
    logger.warning(message)
    warnings.warn(message, stacklevel=3)
    return table.filter(keep)


def finalise(table: pa.Table, source: str, *, filtered: str | None = None) -> pa.Table:
    """Normalise, de-duplicate and sort ``table``; refuse an empty result.

    Args:
        table: rows with at least ``uri`` and ``size`` columns.
        source: the source as the user named it (for messages).
        filtered: what was left out before this point, for the empty-source message
            (e.g. ``"0 of 12 keys matched include=['*.csv']"``).

    Returns:
        A table with exactly :data:`DATA_FILE_SCHEMA`, sorted by uri, one row per uri.

    Raises:
        SourceError, DuplicateUriError, EmptySourceError.
    """
    if table.num_rows == 0:
        raise EmptySourceError(
            f"Source {source} holds no data files" + (f": {filtered}." if filtered else "."),
            "Check the URI, the include/exclude globs, and that the files were written.",
        )
    return deduplicate_and_sort(normalise(table, source), source)


def table_from_columns(
    uris: Sequence[str],
    sizes: Sequence[int],
    etags: Sequence[str | None] | None = None,
) -> pa.Table:
    """Build a data-file table from Python lists (the listing APIs hand back dicts)."""
    n = len(uris)
    return pa.Table.from_arrays(
        [
            pa.array(uris, pa.string()),
            pa.array(sizes, pa.int64()),
            pa.nulls(n, pa.int64()),
            pa.array(etags, pa.string()) if etags is not None else pa.nulls(n, pa.string()),
        ],
        schema=DATA_FILE_SCHEMA,
    )


@dataclass(frozen=True, slots=True)
class Listed:
    """What a source reader found, before globs and validation.

    Attributes:
        table: rows with at least ``uri`` and ``size`` (types not yet checked).
        subjects: the strings the include/exclude globs match, one per row (see
            :mod:`parceler.sources.filters` for which string each source uses).
        noun: what a row is, for messages (``"keys"``, ``"files"``, ``"rows"``).
        notes: what the reader left out on its own (e.g. ``"2 folder markers skipped"``).
    """

    table: pa.Table
    subjects: pa.Array | pa.ChunkedArray
    noun: str
    notes: tuple[str, ...] = ()


def select(listed: Listed, include: Sequence[str], exclude: Sequence[str]) -> tuple[pa.Table, str]:
    """Apply the globs to ``listed``; return the kept rows and a note of what was dropped."""
    table = listed.table
    total = table.num_rows
    note = f"{total} {listed.noun} listed"
    if include or exclude:
        table = table.filter(glob_mask(listed.subjects, include, exclude))
        note = f"{table.num_rows} of {total} {listed.noun} matched {describe(include, exclude)}"
    return table, "; ".join((note, *listed.notes))
