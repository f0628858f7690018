"""Pack data files into balanced groups: Best Fit Decreasing, ``groups=N``, hierarchical.

Pure (numpy and pyarrow only). The entry point is :func:`partition`; :func:`lower_bound`
is the group count no packing can beat, which tests and benchmarks compare against.

Algorithm (target mode: ``target_size`` and/or ``target_records``, optionally ``max_files``)

1. **Oversized files.** A file over ``target_size`` or ``target_records`` becomes a group
   of its own and is listed in :attr:`Partition.oversized`.
2. **Sort** by the BFD weight descending, then size, n_record descending, then ``uri``,
   ``etag`` ascending; the order, and so the result, does not depend on input row order.
   With one target the weight is that dimension (bytes or records). With both it is the
   larger fraction of a limit (in units of 2**-32, rounded up), and a group's room is
   the smaller fraction left (rounded down), so "room >= weight" guarantees a fit in
   both dimensions (vector packing by the max norm).
3. **Best Fit Decreasing.** Each file goes into the open group with the *least* room left
   that still holds it; if none does, it opens a new group. Open groups live in a
   bucketed sorted index keyed by ``(room left, group id)``: ~1k buckets of room, each a
   small sorted Python list, plus a sorted list of the non-empty buckets. Finding the best
   fit is two C-level bisections, so a file costs O(log n), not the O(groups) heap rescan
   of s3manifesto. A group whose room is smaller than every file still to come, or which
   holds ``max_files``, leaves the index for good. Ties go to the lower group id.
4. **Balance the tail.** BFD fills groups to the brim and leaves the remainder in the last
   group, which can be a sliver. The :data:`TAIL_POOL` least loaded groups are pooled
   and their files re-dealt with LPT (largest first, each to the least loaded group) into
   the *same number* of groups; the result is kept only if every limit still holds and
   the smallest group grew (else the pool is halved and retried). Group count unchanged.
5. **Number the groups** by their largest file in the order of step 2: group 0 holds the
   largest file, oversized groups come first. (Hierarchical mode: super-group by
   super-group, each numbered this way.)

``groups=N`` mode: exactly ``min(N, n_files)`` groups by LPT on size (a heap of group
loads); with ``max_files`` a full group leaves the heap. ``max_files`` alone means
``ceil(n_files / max_files)`` groups, dealt the same way. LPT guarantees
``max load - min load <= largest file`` (without ``max_files``).

Hierarchical mode (more than ``super_group_rows`` files, target mode): rows are split into
``ceil(n / super_group_rows)`` super-groups by a 64-bit polynomial hash of the uri bytes
(never ``random``), each packed as above and numbered after the previous ones. A
super-group is a uniform sample, so it packs as well as the whole: in practice the count
grows by about one tail group per super-group. Working memory is that of one
super-group, plus a few int64 arrays over all rows.

Invariants (tested with hypothesis): every row is in exactly one group; no group exceeds a
limit unless it is a single oversized file; equal input (in any row order) gives equal
groups. Group count against :func:`lower_bound` (LB): size target, any input: at most
``n_oversized + 2 * (LB - n_oversized)`` (any-fit: no two groups fit in one); realistic
lognormal sizes: within 0.2% (the benchmarks hit LB exactly up to 1M files). Two targets,
or a ``max_files`` that binds, are harder and the bound is weaker: ~3.5% and ~6% over.

Complexity: O(n log n) time (the sort; each BFD step is O(log n) bisections),
O(n) memory. 1M files pack in about 2 s on one core (``bench/results/partition.md``).

Worked example (target_size=100; sizes a=70 b=60 c=40 d=30 e=20 f=150)::

    oversized:      f → its own group
    BFD, desc:      a→new(room 30)  b→new(room 40)  c→b's(room 0)  d→a's(room 0)  e→new(room 80)
                    groups {a,d}=100 {b,c}=100 {e}=20: a sliver
    tail balancing: LPT over the 3 groups: a→A  b→B  c→C  d→C(70)  e→B(80)
                    {a}=70 {b,e}=80 {c,d}=70: same count, smallest 70 instead of 20
    numbering:      0={f}  1={a}  2={b,e}  3={c,d}
    lower bound:    1 oversized + ceil(220 / 100) = 4 groups: optimal.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from parceler.errors import SourceError, SpecError

__all__ = [
    "STABLE_CUT_RATE",
    "STABLE_MIN_FILL",
    "SUPER_GROUP_ROWS",
    "TAIL_POOL",
    "Limits",
    "Partition",
    "lower_bound",
    "partition",
    "stable_partition",
    "super_group_of",
]

IntArray = npt.NDArray[np.int64]

SUPER_GROUP_ROWS = 1_000_000
"""Above this many files, target mode plans hierarchically (hash super-groups)."""
TAIL_POOL = 16
"""How many of the least loaded groups tail balancing re-deals at most."""

_BUCKET_BITS = 10  # ~1k room buckets: measured fastest (8..14 bits within 20%)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a group may hold. Give a target (size and/or records), or ``groups``.

    Attributes:
        target_size: the most bytes per group.
        target_records: the most records per group (needs ``n_record`` on every row).
        max_files: the most files per group; alone it means ``ceil(n / max_files)`` groups.
        groups: exactly this many groups (fewer only if there are fewer files).

    Raises:
        SpecError: a limit is zero or negative, none is given, or ``groups`` is combined
            with a target.
    """

    target_size: int | None = None
    target_records: int | None = None
    max_files: int | None = None
    groups: int | None = None

    def __post_init__(self) -> None:
        for name in ("target_size", "target_records", "max_files", "groups"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SpecError(
                    f"partitioning {name}={value!r} is not a whole number.",
                    f"give {name} as a positive integer (sizes like '1GB' are parsed by the spec).",
                )
            if value is not None and value <= 0:
                raise SpecError(
                    f"partitioning {name}={value} must be positive.",
                    f"give {name} > 0, or leave it out.",
                )
        has_target = self.target_size is not None or self.target_records is not None
        if self.groups is not None and has_target:
            raise SpecError(
                "partitioning gives both 'groups' and a target (target_size/target_records).",
                "give either groups=N (a fixed count) or a target per group, not both.",
            )
        if self.groups is None and not has_target and self.max_files is None:
            raise SpecError(
                "partitioning gives no limit.",
                "give target_size (e.g. 1GB), target_records, max_files or groups.",
            )


@dataclass(frozen=True, slots=True)
class Partition:
    """The result of :func:`partition`: a group index for every input row, plus totals.

    Attributes:
        group_of: int64, one group index in ``[0, n_groups)`` per input row, input order.
        n_groups: how many groups.
        oversized: int64 input row indices (ascending) of files over a target; each is
            alone in its group.
        n_files: int64 per group: how many files.
        size: int64 per group: total bytes.
        n_record: int64 per group: total records, or ``None`` if any row lacks n_record.
    """

    group_of: IntArray
    n_groups: int
    oversized: IntArray
    n_files: IntArray
    size: IntArray
    n_record: IntArray | None

    def rows_by_group(self, within: IntArray | None = None) -> tuple[IntArray, IntArray]:
        """Rows sorted by group: group ``g`` is ``rows[offsets[g]:offsets[g + 1]]``.

        Within a group, rows keep the order they have in ``within`` (a permutation of the
        row indices; default: input order). O(n log n).
        """
        rows = np.arange(len(self.group_of), dtype=np.int64) if within is None else within
        rows = rows[np.argsort(self.group_of[rows], kind="stable")].astype(np.int64)
        offsets = np.zeros(self.n_groups + 1, dtype=np.int64)
        np.cumsum(self.n_files, out=offsets[1:])
        return rows, offsets


# --------------------------------------------------------------------------- public API


def partition(
    table: pa.Table, limits: Limits, *, super_group_rows: int = SUPER_GROUP_ROWS
) -> Partition:
    """Pack the data files of ``table`` into groups that respect ``limits``.

    See the module docstring for the algorithm, invariants, complexity and a worked
    example.

    Args:
        table: data-file rows (``models.DATA_FILE_SCHEMA``: uri, size, n_record, etag).
        limits: targets per group, or a group count.
        super_group_rows: above this many rows, target mode plans hierarchically.

    Returns:
        The group of every row and per-group totals; groups numbered by their largest file.

    Raises:
        SpecError: ``target_records`` is given but some rows have no ``n_record``, or
            ``groups * max_files`` is fewer than the files.
        SourceError: the table lacks a data-file column or has a negative size/n_record.
    """
    size, n_record, uri, etag = _checked_columns(table, limits)
    n = len(size)
    if n > super_group_rows and limits.groups is None and _is_target_mode(limits):
        group_of, oversized_mask = _plan_hierarchical(
            size, n_record, uri, etag, limits, super_group_rows
        )
    else:
        group_of, oversized_mask = _plan(size, n_record, uri, etag, limits)
    return _result(group_of, oversized_mask, size, n_record)


STABLE_MIN_FILL = 0.75
"""Stable packing: a group is not cut at a boundary file before it is this full."""
STABLE_CUT_RATE = 12.0
"""Stable packing: boundary files per unit of fill (a file of fill f is one with probability
``1 - exp(-STABLE_CUT_RATE * f)``, decided by its uri's hash)."""


def stable_partition(table: pa.Table, limits: Limits) -> Partition:
    """Pack ``table`` into groups whose boundaries depend on the files themselves, so that
    adding, removing or changing a few files changes only the groups that hold them (the
    incremental mode's plan: unchanged groups keep their fingerprints and are reused).

    Algorithm (content-defined boundaries, as in content-defined chunking):

    1. Files in uri order (then size, etag). A file over a target is a group of its own
       (the open group stays open around it).
    2. Each file's *fill* is its largest fraction of a limit (bytes, records, or
       ``1/max_files``). It is a **boundary file** iff ``hash(uri) / 2**64 <
       1 - exp(-STABLE_CUT_RATE * fill)``: a property of the file alone (on average one
       boundary per ``1/STABLE_CUT_RATE`` of a group's fill, whatever the file sizes).
    3. Walk the files: a file that would overflow the open group (any limit) closes it
       first (a *forced* cut); after adding a file, a group at least
       :data:`STABLE_MIN_FILL` full is closed if the file is a boundary file.
    4. Groups are numbered in the uri order of their first file.

    Why it is stable: a group that ends at a boundary file ends there whatever came
    before, once it is full enough; an insertion or a change only moves the cuts until the
    next boundary cut (forced cuts, ~5% of groups with the defaults, carry it one group
    further). Groups ending before the first changed uri are unchanged by construction,
    and a change of a file's ETag alone changes exactly its group. The price is fill:
    groups close between :data:`STABLE_MIN_FILL` and 1 (mean ~0.83 for small files,
    against ~0.96 for Best Fit Decreasing; ``bench/results/incremental.md``).

    ``groups=N`` has no stable form: it falls back to :func:`partition`.

    Invariants: every row is in exactly one group; no group exceeds a limit unless it is a
    single oversized file; equal input (in any row order) gives equal groups.

    Complexity: O(n log n) for the sort, then one O(n) pass (a Python loop: ~1 s per
    million files).

    Raises:
        SpecError, SourceError: as :func:`partition`.
    """
    if limits.groups is not None:
        return partition(table, limits)
    size, n_record, uri, etag = _checked_columns(table, limits)
    n = len(size)
    over = _oversized_mask(size, n_record, limits)
    group_of = np.zeros(n, dtype=np.int64)
    if n == 0:
        return _result(group_of, over, size, n_record)
    uri_array = uri.combine_chunks() if isinstance(uri, pa.ChunkedArray) else uri
    etag_key = (
        pc.fill_null(etag, "").combine_chunks()
        if isinstance(etag, pa.ChunkedArray)
        else (pc.fill_null(etag, "") if etag is not None else pa.array([""] * n))
    )
    order = np.asarray(
        pc.sort_indices(
            pa.table({"uri": uri_array, "size": pa.array(size), "etag": etag_key}),
            sort_keys=[("uri", "ascending"), ("size", "ascending"), ("etag", "ascending")],
        ),
        dtype=np.int64,
    )
    dims = _dimensions(size, n_record, limits)
    # Needs in units of 2**-32 of each limit, rounded up (clipped: oversized files are
    # groups of their own and never added to an open group).
    needs = [_scaled_up(np.minimum(values, limit), limit)[order] for values, limit in dims]
    fill = np.maximum.reduce(needs).astype(np.float64) / _SCALE if needs else np.zeros(n)
    if limits.max_files is not None:
        fill = np.maximum(fill, 1.0 / limits.max_files)
    hashed = _mix64(_poly_hash(uri_array.take(pa.array(order))))
    unit = (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53
    boundary = (unit < -np.expm1(-STABLE_CUT_RATE * fill)).tolist()
    group_sorted = _stable_walk(
        over[order].tolist(),
        [need.tolist() for need in needs],
        boundary,
        limits.max_files,
    )
    group_of[order] = np.asarray(group_sorted, dtype=np.int64)
    return _result(group_of, over, size, n_record)


def _stable_walk(
    oversized: list[bool],
    needs: list[list[int]],
    boundary: list[bool],
    max_files: int | None,
) -> list[int]:
    """Step 3 of :func:`stable_partition` over files already in uri order: the group of each.

    ``needs[d][i]`` is file i's share of limit d in units of ``2**-32`` (:data:`_SCALE`).
    Worked example (one limit, shares in hundredths for reading; boundary files c, f)::

        a=.30 b=.30 c=.30 d=.20 e=.50 f=.40 g=1.5 (oversized) h=.10
        a b c: .90 >= .75 and c is a boundary → {a,b,c} closes
        d e:   .70; f would make 1.10 → {d,e} closes (forced), f opens a group
        g:     oversized: a group of its own; f's group stays open
        h:     joins f: {f,h} = .50, the last group
        groups (numbered by first file): {a,b,c}=0 {d,e}=1 {f,h}=2 {g}=3
    """
    n = len(oversized)
    limit = max_files if max_files is not None else n + 1
    group_of = [0] * n
    open_group = -1  # none open
    next_group = 0
    loads = [0] * len(needs)
    count = 0
    for i in range(n):
        if oversized[i]:  # a group of its own; the open group stays open around it
            group_of[i] = next_group
            next_group += 1
            continue
        fits = (
            open_group >= 0
            and count < limit
            and all(loads[d] + needs[d][i] <= _SCALE for d in range(len(loads)))
        )
        if not fits:
            open_group, next_group = next_group, next_group + 1
            loads = [0] * len(needs)
            count = 0
        group_of[i] = open_group
        for d in range(len(loads)):
            loads[d] += needs[d][i]
        count += 1
        load = max(loads) / _SCALE if loads else 0.0
        if max_files is not None:
            load = max(load, count / max_files)
        if boundary[i] and load >= STABLE_MIN_FILL:
            open_group = -1  # closed at a boundary file
    return group_of


def lower_bound(table: pa.Table, limits: Limits) -> int:
    """The fewest groups any packing that respects ``limits`` can have.

    Target mode: ``n_oversized + max(ceil(S / target_size), ceil(R / target_records),
    ceil(m / max_files))`` over the limits given, where S, R and m are the bytes, records
    and count of the non-oversized files (at least 1 if there are any).
    ``groups=N``: ``min(N, n)``; ``max_files`` alone: ``ceil(n / max_files)``.
    """
    size, n_record, _, _ = _columns(table)
    n = len(size)
    if limits.groups is not None:
        return min(limits.groups, n)
    if not _is_target_mode(limits):
        assert limits.max_files is not None
        return -(-n // limits.max_files)
    over = _oversized_mask(size, n_record, limits)
    regular = ~over
    n_regular = int(regular.sum())
    bound = 1 if n_regular else 0
    if limits.target_size is not None:
        bound = max(bound, -(-int(size[regular].sum()) // limits.target_size))
    if limits.target_records is not None and n_record is not None:
        bound = max(bound, -(-int(n_record[regular].sum()) // limits.target_records))
    if limits.max_files is not None:
        bound = max(bound, -(-n_regular // limits.max_files))
    return int(over.sum()) + bound


def super_group_of(uri: pa.Array | pa.ChunkedArray, n_super: int) -> IntArray:
    """The hierarchical super-group of each uri: a 64-bit hash of its UTF-8 bytes mod k.

    The hash is ``(len + sum(byte_i * P**(len-1-i))) mod 2**64`` (P the FNV-1 prime)
    finished with the splitmix64
    mixer: stable across runs, processes and platforms (unlike ``hash()``), vectorised,
    and computed in slices of rows so memory stays bounded.
    """
    out = np.empty(len(uri), dtype=np.int64)
    chunks = uri.chunks if isinstance(uri, pa.ChunkedArray) else [uri]
    start = 0
    for chunk in chunks:
        for lo in range(0, len(chunk), 131_072):
            part = chunk.slice(lo, 131_072)
            hashed = _mix64(_poly_hash(part))
            out[start : start + len(part)] = (hashed % np.uint64(n_super)).astype(np.int64)
            start += len(part)
    return out


# --------------------------------------------------------------------------- planning


def _is_target_mode(limits: Limits) -> bool:
    return limits.target_size is not None or limits.target_records is not None


def _checked_columns(
    table: pa.Table, limits: Limits
) -> tuple[IntArray, IntArray | None, pa.ChunkedArray, pa.ChunkedArray | None]:
    """:func:`_columns`, refusing ``target_records`` when some file has no ``n_record``."""
    size, n_record, uri, etag = _columns(table)
    if limits.target_records is not None and n_record is None:
        raise SpecError(
            "partitioning by target_records, but some files have no n_record.",
            "count records first (count_records: true / --count-records), "
            "or partition by target_size.",
        )
    return size, n_record, uri, etag


def _columns(
    table: pa.Table,
) -> tuple[IntArray, IntArray | None, pa.ChunkedArray, pa.ChunkedArray | None]:
    names = set(table.column_names)
    for name in ("uri", "size"):
        if name not in names:
            raise SourceError(
                f"the data-file table has no '{name}' column.",
                "build it with parceler.models.DATA_FILE_SCHEMA (uri, size, n_record, etag).",
            )
    uri = table.column("uri")
    size_col = table.column("size")
    if not pa.types.is_integer(size_col.type) or size_col.null_count:
        raise SourceError(
            "the data-file table's 'size' must be a non-null integer column.",
            "build it with parceler.models.DATA_FILE_SCHEMA (size: int64 not null).",
        )
    size = size_col.to_numpy().astype(np.int64, copy=False)
    n_record: IntArray | None = None
    if "n_record" in names:
        rec_col = table.column("n_record")
        if rec_col.null_count == 0 and len(rec_col) == len(size):
            n_record = rec_col.to_numpy().astype(np.int64, copy=False)
    elif len(size) == 0:
        n_record = np.zeros(0, dtype=np.int64)
    if len(size) and (size.min() < 0 or (n_record is not None and n_record.min() < 0)):
        raise SourceError(
            "the data-file table has a negative size or n_record.",
            "fix the listing: sizes and record counts are >= 0.",
        )
    etag = table.column("etag") if "etag" in names else None
    return size, n_record, uri, etag


def _oversized_mask(
    size: IntArray, n_record: IntArray | None, limits: Limits
) -> npt.NDArray[np.bool_]:
    over = np.zeros(len(size), dtype=bool)
    if limits.target_size is not None:
        over |= size > limits.target_size
    if limits.target_records is not None and n_record is not None:
        over |= n_record > limits.target_records
    return over


def _plan(
    size: IntArray,
    n_record: IntArray | None,
    uri: pa.ChunkedArray | pa.Array,
    etag: pa.ChunkedArray | pa.Array | None,
    limits: Limits,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Group index per row (numbered by largest file) and the oversized mask, flat."""
    n = len(size)
    over = _oversized_mask(size, n_record, limits)
    if n == 0:
        return np.zeros(0, dtype=np.int64), over

    dims = _dimensions(size, n_record, limits)
    key, cap = _bfd_key(dims)
    order = _sort_order(key, size, n_record, uri, etag)  # rows, largest first
    bin_sorted = np.empty(n, dtype=np.int64)  # bin of the file at each sorted position

    if limits.groups is not None or not dims:
        n_bins = min(limits.groups, n) if limits.groups is not None else -(-n // _mf(limits))
        if limits.max_files is not None and n_bins * limits.max_files < n:
            raise SpecError(
                f"{n} files do not fit in groups={n_bins} of max_files={limits.max_files}.",
                "raise groups or max_files, or drop one of them.",
            )
        bin_sorted[:] = _lpt(size[order], n_bins, limits.max_files)
    else:
        over_sorted = over[order]
        n_over = int(over_sorted.sum())
        bin_sorted[over_sorted] = np.arange(n_over, dtype=np.int64)
        regular = order[~over_sorted]
        if len(regular):
            sorted_dims = [(values[regular], limit) for values, limit in dims]
            bins = _best_fit_decreasing(key[regular], cap, sorted_dims, limits.max_files)
            bins = _balance_tail(bins, key[regular], sorted_dims, limits.max_files)
            bin_sorted[~over_sorted] = bins + n_over
    group_of = np.empty(n, dtype=np.int64)
    group_of[order] = _number_by_first(bin_sorted)
    return group_of, over


def _mf(limits: Limits) -> int:
    assert limits.max_files is not None
    return limits.max_files


Dimension = tuple[IntArray, int]  # (value of each file, limit per group)

_SCALE = 1 << 32  # with two targets, needs and rooms are fractions of a limit times this


def _dimensions(size: IntArray, n_record: IntArray | None, limits: Limits) -> list[Dimension]:
    """The targeted dimensions (size, records), each with its limit; empty without targets.

    ``max_files`` is not a dimension: a group holding that many files leaves the index.
    (Counting it as one, by the max norm, packed no better: tiny files still sort last.)
    """
    dims: list[Dimension] = []
    if limits.target_size is not None:
        dims.append((size, limits.target_size))
    if limits.target_records is not None:
        assert n_record is not None
        dims.append((n_record, limits.target_records))
    return dims


def _bfd_key(dims: list[Dimension]) -> tuple[IntArray, int]:
    """The one-number weight BFD sorts and fits by, and the capacity it is measured against.

    One limited dimension: the value itself. Several (size, records, file count): the
    largest fraction of its limit, rounded up to 1/2**32, so that a room key (the smallest
    fraction left, rounded down) at least the key guarantees a fit in every dimension.
    """
    if not dims:
        return np.zeros(0, dtype=np.int64), 0
    if len(dims) == 1:
        return dims[0][0], dims[0][1]
    # Oversized values only need to sort above every regular one: clip before scaling.
    needs = [_scaled_up(np.minimum(values, limit + 1), limit) for values, limit in dims]
    key: IntArray = np.maximum.reduce(needs)
    return key, _SCALE


def _scaled_up(values: IntArray, limit: int) -> IntArray:
    """``ceil(values * SCALE / limit)`` exactly (no float rounding), for values <= limit + 1."""
    whole = (values // limit) * _SCALE
    rest = values % limit
    # rest * SCALE can overflow int64; split SCALE = 2**16 * 2**16 through a float-free path.
    high = rest * (1 << 16)
    part = (high // limit) * (1 << 16) + ((high % limit) * (1 << 16) + limit - 1) // limit
    scaled: IntArray = whole + part
    return scaled


def _sort_order(
    key: IntArray,
    size: IntArray,
    n_record: IntArray | None,
    uri: pa.ChunkedArray | pa.Array,
    etag: pa.ChunkedArray | pa.Array | None,
) -> IntArray:
    """Rows by key desc, size desc, n_record desc, uri asc, etag asc (nulls last).

    Independent of input row order.
    """
    columns: dict[str, object] = {"k": key if len(key) else size, "s": size}
    keys: list[tuple[str, str]] = [("k", "descending"), ("s", "descending")]
    if n_record is not None:
        columns["r"] = n_record
        keys.append(("r", "descending"))
    columns["u"] = uri
    keys.append(("u", "ascending"))
    if etag is not None:
        columns["e"] = etag
        keys.append(("e", "ascending"))
    indices = pc.sort_indices(pa.table(columns), sort_keys=keys)  # nulls sort last
    order: IntArray = np.asarray(indices.to_numpy(), dtype=np.int64)
    return order


def _number_by_first(bin_sorted: IntArray) -> IntArray:
    """Renumber bins so that bin order follows the sorted position of their first file."""
    if len(bin_sorted) == 0:
        return bin_sorted
    ids, first = np.unique(bin_sorted, return_index=True)
    rank = np.empty(int(ids.max()) + 1, dtype=np.int64)
    rank[ids[np.argsort(first, kind="stable")]] = np.arange(len(ids), dtype=np.int64)
    return rank[bin_sorted]


def _best_fit_decreasing(
    key: IntArray, cap: int, dims: list[Dimension], max_files: int | None
) -> IntArray:
    """BFD over files sorted by ``key`` largest first; returns the bin of each file.

    Open bins are ints ``room << SH | bin`` in ``buckets[room >> QSH]`` (each list sorted);
    ``nonempty`` is the sorted list of non-empty bucket numbers, so the least room >= key
    is a bisection in one bucket or, failing that, the first entry of the next non-empty
    bucket. A bin whose room is below the smallest key still to come, or which holds
    ``max_files``, is not put back. With several limited dimensions the room is
    recomputed from the exact per-dimension rooms (see :func:`_bfd_key`).
    """
    n = len(key)
    sh = max(1, n.bit_length())
    qsh = max(0, cap.bit_length() - _BUCKET_BITS)
    mask = (1 << sh) - 1
    buckets: list[list[int]] = [[] for _ in range((cap >> qsh) + 1)]
    nonempty: list[int] = []
    smallest = int(key[-1])
    file_cap = max_files if max_files is not None else n + 1
    counts: list[int] = []
    out = np.empty(n, dtype=np.int64)
    n_bins = 0
    multi = len(dims) >= 2  # then rooms are tracked per dimension, exactly
    values = [d[0].tolist() for d in dims]
    limits = [d[1] for d in dims]
    rooms: list[list[int]] = [[] for _ in dims]

    for i, x in enumerate(key.tolist()):
        q = x >> qsh
        bucket = buckets[q]
        j = bisect_left(bucket, x << sh)
        if j < len(bucket):
            found = bucket[j]
            del bucket[j]
            if not bucket:
                del nonempty[bisect_left(nonempty, q)]
        else:
            found = -1
            k = bisect_right(nonempty, q)
            if k < len(nonempty):
                q = nonempty[k]
                bucket = buckets[q]
                found = bucket[0]
                del bucket[0]
                if not bucket:
                    del nonempty[k]
        if found >= 0:
            b = found & mask
            room = (found >> sh) - x
            counts[b] += 1
        else:
            b = n_bins
            n_bins += 1
            room = cap - x
            counts.append(1)
            if multi:
                for room_d, limit in zip(rooms, limits, strict=True):
                    room_d.append(limit)
        if multi:
            room = cap
            for room_d, value_d, limit in zip(rooms, values, limits, strict=True):
                room_d[b] -= value_d[i]
                room = min(room, room_d[b] * _SCALE // limit)
        out[i] = b
        if room >= smallest and counts[b] < file_cap:
            q = room >> qsh
            bucket = buckets[q]
            if not bucket:
                insort(nonempty, q)
            insort(bucket, (room << sh) | b)
    return out


def _lpt(weights: IntArray, n_bins: int, max_files: int | None) -> IntArray:
    """LPT / list scheduling over weights sorted largest first: each file to the least
    loaded bin (ties: fewer files, then lower bin), skipping full bins. O(n log n_bins).

    Every bin gets a file when there are at least ``n_bins`` files: an empty bin is the
    least loaded (or tied at zero load with fewer files) until it is used.
    """
    out = np.empty(len(weights), dtype=np.int64)
    heap = [(0, 0, b) for b in range(n_bins)]  # (load, files, bin); already a heap
    file_cap = max_files if max_files is not None else len(weights) + 1
    for lo in range(0, len(weights), 1_000_000):  # slices bound the Python-list memory
        for i, w in enumerate(weights[lo : lo + 1_000_000].tolist(), start=lo):
            load, files, b = heap[0]
            out[i] = b
            if files + 1 < file_cap:
                heapq.heapreplace(heap, (load + w, files + 1, b))
            else:
                heapq.heappop(heap)
    return out


def _balance_tail(
    bins: IntArray, key: IntArray, dims: list[Dimension], max_files: int | None
) -> IntArray:
    """Re-deal the files of the least loaded bins with LPT into as many bins, if it helps.

    Load is ``key`` (the BFD weight). Accepts the first pool size (TAIL_POOL, halved on
    failure, down to 2) whose LPT result respects every limit and has a larger smallest
    bin. The bin count never changes.
    """
    n_bins = int(bins.max()) + 1
    if n_bins < 2:
        return bins
    load = np.bincount(bins, weights=key, minlength=n_bins)
    by_load = np.argsort(load, kind="stable")
    pool = min(TAIL_POOL, n_bins)
    while pool >= 2:
        chosen = by_load[:pool]
        members = np.flatnonzero(np.isin(bins, chosen))  # sorted positions: largest first
        dealt = _lpt(key[members], pool, max_files)
        ok = bool(np.bincount(dealt, weights=key[members]).min() > load[chosen].min())
        for values, limit in dims:
            totals = np.zeros(pool, dtype=np.int64)
            np.add.at(totals, dealt, values[members])
            ok = ok and bool(totals.max() <= limit)
        if ok and len(np.unique(dealt)) == pool:
            result = bins.copy()
            result[members] = chosen[dealt]
            return result
        pool //= 2
    return bins


def _plan_hierarchical(
    size: IntArray,
    n_record: IntArray | None,
    uri: pa.ChunkedArray,
    etag: pa.ChunkedArray | None,
    limits: Limits,
    super_group_rows: int,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    n = len(size)
    n_super = -(-n // super_group_rows)
    super_of = super_group_of(uri, n_super)
    rows_by_super = np.argsort(super_of, kind="stable")
    bounds = np.searchsorted(super_of[rows_by_super], np.arange(n_super + 1))
    del super_of
    group_of = np.empty(n, dtype=np.int64)
    over = np.zeros(n, dtype=bool)
    offset = 0
    for s in range(n_super):
        rows = rows_by_super[bounds[s] : bounds[s + 1]]
        if len(rows) == 0:
            continue
        take = pa.array(rows)
        sub_groups, sub_over = _plan(
            size[rows],
            n_record[rows] if n_record is not None else None,
            uri.take(take),
            etag.take(take) if etag is not None else None,
            limits,
        )
        group_of[rows] = sub_groups + offset
        over[rows] = sub_over
        offset += int(sub_groups.max()) + 1
    return group_of, over


def _result(
    group_of: IntArray,
    over: npt.NDArray[np.bool_],
    size: IntArray,
    n_record: IntArray | None,
) -> Partition:
    n_groups = int(group_of.max()) + 1 if len(group_of) else 0
    rows = np.argsort(group_of, kind="stable")
    n_files = np.bincount(group_of, minlength=n_groups).astype(np.int64)
    starts = np.zeros(n_groups, dtype=np.int64)
    if n_groups:
        np.cumsum(n_files[:-1], out=starts[1:])

    def totals(values: IntArray) -> IntArray:
        if n_groups == 0:
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(values[rows], starts).astype(np.int64)

    return Partition(
        group_of=group_of,
        n_groups=n_groups,
        oversized=np.flatnonzero(over).astype(np.int64),
        n_files=n_files,
        size=totals(size),
        n_record=totals(n_record) if n_record is not None else None,
    )


# --------------------------------------------------------------------------- hashing

_P = np.uint64(0x100000001B3)  # the FNV-1 64-bit prime, as the polynomial base


def _poly_hash(strings: pa.Array) -> npt.NDArray[np.uint64]:
    """``sum(byte_i * P**(len-1-i)) mod 2**64`` per string (null hashes like "")."""
    strings = strings.cast(pa.large_string()) if strings.type != pa.large_string() else strings
    n = len(strings)
    buffers = strings.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[strings.offset : strings.offset + n + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(buffers[2], dtype=np.uint8)[lo:hi] if hi > lo else np.zeros(0, np.uint8)
    rel = offsets - lo
    lengths = np.diff(rel)
    if lengths.size and strings.null_count:
        valid = np.asarray(strings.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        lengths = np.where(valid, lengths, 0)
    max_len = int(lengths.max()) if lengths.size else 0
    powers = np.ones(max_len + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, max_len + 1):  # short loop: the longest uri
            powers[i] = powers[i - 1] * _P
        position_from_end = np.repeat(rel[1:], np.diff(rel)) - 1 - np.arange(hi - lo)
        terms = data.astype(np.uint64) * powers[position_from_end]
        running = np.zeros(hi - lo + 1, dtype=np.uint64)
        np.cumsum(terms, out=running[1:])
        hashed = running[rel[1:]] - running[rel[:-1]]
        hashed += lengths.astype(np.uint64)
    return hashed


def _mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The splitmix64 finaliser: spreads every input bit over the output."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
