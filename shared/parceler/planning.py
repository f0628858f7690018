"""Plan: pack a master table of data files into groups and write each group as a manifest.

``plan_files`` is pure (table + limits → :class:`Plan`); ``write_plan`` writes the master
manifest, one manifest per group and the plan index (a manifest of manifests: one row per
group, ``uri`` = the group's summary URI, ``size``/``n_record`` = the group's totals,
``etag`` = the group's fingerprint).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from parceler.fingerprint import canonical_order
from parceler.manifest import conform, write_manifest, write_manifests
from parceler.models import DATA_FILE_SCHEMA, ManifestSummary
from parceler.partition import Limits, Partition, lower_bound, partition, stable_partition
from parceler.storage import parse_uri
from parceler.workarea import (
    GROUPS_PER_FOLDER,
    group_summary_uri,
    plan_index_uri,
    plan_manifest_uri,
)


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Totals of one planned group."""

    index: int
    n_files: int
    size: int
    n_record: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    """A master table packed into groups; rows of group ``g`` are ``table[order[offsets[g]:offsets[g+1]]]``."""

    table: pa.Table
    limits: Limits
    partition: Partition
    order: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)

    @property
    def n_groups(self) -> int:
        return self.partition.n_groups

    def by_group(self) -> pa.Table:
        """The master table reordered group by group: group ``g`` is rows
        ``offsets[g]:offsets[g+1]``, so each group is a zero-copy slice (one take in all)."""
        return self.table.take(pa.array(self.order))

    def groups(self) -> Iterator[GroupStats]:
        """Per-group totals, in group order (the partitioner's, not summed again)."""
        part = self.partition
        for g in range(self.n_groups):
            yield GroupStats(
                index=g,
                n_files=int(part.n_files[g]),
                size=int(part.size[g]),
                n_record=None if part.n_record is None else int(part.n_record[g]),
            )

    def oversized_uris(self) -> list[str]:
        """URIs of files over a limit on their own (each is a group by itself)."""
        uris = self.table.column("uri")
        return [uris[int(i)].as_py() for i in self.partition.oversized]


def plan_files(table: pa.Table, limits: Limits, *, stable: bool = False) -> Plan:
    """Pack ``table`` (``DATA_FILE_SCHEMA`` rows) into groups under ``limits``.

    Within each group, rows are in uri order (the fingerprint's canonical order).
    ``stable`` packs with content-defined boundaries (:func:`partition.stable_partition`,
    the incremental mode's plan) instead of Best Fit Decreasing.

    Complexity: O(n log n) (the partitioner's sort dominates).

    Raises:
        SpecError: the limits are invalid (from the partitioner).
    """
    part = stable_partition(table, limits) if stable else partition(table, limits)
    # Rows within a group in fingerprint order, so each group's fingerprint needs no sort.
    order, offsets = part.rows_by_group(canonical_order(table))
    return Plan(table=table, limits=limits, partition=part, order=order, offsets=offsets)


def plan_by_key(table: pa.Table, keys: np.ndarray) -> Plan:
    """One group per distinct key of ``keys`` (one per row of ``table``), groups in key
    order, rows within a group in fingerprint order: a ``map_from_n`` job's plan (a group
    per partition, whatever its size).

    Raises:
        ValueError: ``keys`` and ``table`` differ in length, or the table is empty.
    """
    if len(keys) != table.num_rows or table.num_rows == 0:
        raise ValueError(f"plan_by_key: {len(keys)} keys for {table.num_rows} rows")
    distinct, inverse = np.unique(keys, return_inverse=True)
    group_of = inverse.astype(np.int64)
    n_groups = len(distinct)
    sizes = table.column("size").to_numpy()
    records = table.column("n_record")
    part = Partition(
        group_of=group_of,
        n_groups=n_groups,
        oversized=np.empty(0, np.int64),
        n_files=np.bincount(group_of, minlength=n_groups).astype(np.int64),
        size=np.bincount(group_of, weights=sizes, minlength=n_groups).astype(np.int64),
        n_record=(
            None
            if records.null_count
            else np.bincount(group_of, weights=records.to_numpy(), minlength=n_groups).astype(
                np.int64
            )
        ),
    )
    order, offsets = part.rows_by_group(canonical_order(table))
    return Plan(table, Limits(groups=n_groups), part, order, offsets)


@dataclass(frozen=True, slots=True)
class PlanSummaryStats:
    """What ``parceler plan`` prints: totals, fill, oversized files, the lower bound."""

    n_files: int
    total_size: int
    total_records: int | None
    n_groups: int
    lower_bound: int | None
    fill_min: float
    fill_mean: float
    fill_max: float
    fill_basis: str
    oversized: list[str]


def plan_stats(plan: Plan) -> PlanSummaryStats:
    """Summarise a plan. Fill is group load / target (or / mean load with ``groups=N``).

    A group holding one file over the target is listed under ``oversized``, not in the
    fill figures: its 170 % says nothing about how well the other groups were packed.
    """
    groups = list(plan.groups())
    records = [g.n_record for g in groups]
    total_records = None if any(r is None for r in records) else sum(r or 0 for r in records)
    limits = plan.limits
    if limits.target_size:
        basis, loads, target = "size", [g.size for g in groups], float(limits.target_size)
    elif limits.target_records:
        basis, loads, target = (
            "records",
            [g.n_record or 0 for g in groups],
            float(limits.target_records),
        )
    elif limits.max_files and not limits.groups:
        basis, loads, target = "files", [g.n_files for g in groups], float(limits.max_files)
    else:
        loads = [g.size for g in groups]
        basis, target = "size (vs mean)", (sum(loads) / len(loads)) if loads else 1.0
    packed = (
        loads
        if basis == "size (vs mean)"
        else [
            load for load, g in zip(loads, groups, strict=True) if g.n_files > 1 or load <= target
        ]
    )
    fills = [load / target for load in packed] or [0.0]
    bound = lower_bound(plan.table, limits) if not limits.groups else None
    return PlanSummaryStats(
        n_files=plan.table.num_rows,
        total_size=sum(g.size for g in groups),
        total_records=total_records,
        n_groups=plan.n_groups,
        lower_bound=bound,
        fill_min=min(fills),
        fill_mean=math.fsum(fills) / len(fills),
        fill_max=max(fills),
        fill_basis=basis,
        oversized=plan.oversized_uris(),
    )


@dataclass(frozen=True, slots=True)
class WrittenPlan:
    """Where a written plan lives."""

    master: ManifestSummary
    index: ManifestSummary
    index_uri: str
    group_summary_uris: list[str]
    group_summaries: list[ManifestSummary]


def write_plan(
    plan: Plan,
    prefix: str,
    *,
    details: dict[str, Any] | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> WrittenPlan:
    """Write the master manifest, every group manifest and the plan index under ``prefix``.

    The names under ``prefix`` are the work area's (``parceler.workarea``), so a plan
    written with ``--out`` has the layout of a job's. Groups are written in batches: to S3 by threads, :data:`S3_GROUPS_PER_BATCH` at a time
    (the work is mostly waiting on PUTs); to a local folder by one process per core,
    :data:`GROUPS_PER_BATCH` (one folder) at a time (the work is mostly Parquet encoding
    and hashing, which hold the GIL), each group's two files written in place. The plan
    index is written last and atomically: its presence means every group manifest it
    lists is complete.

    Args:
        plan: the plan from :func:`plan_files`.
        prefix: a folder URI (``s3://bucket/jobs/J`` or a local path).
        details: free-form details copied into every summary (e.g. ``job_id``).
        workers: threads (S3) or processes (local) writing groups; default 8 threads, or
            one process per core. A local plan of fewer than two batches is written by
            this process.
        progress: called with the number of groups written so far, after each batch.

    Returns:
        The summaries and URIs written.
    """
    extra = dict(details or {})
    local = not parse_uri(prefix).is_s3
    master = write_manifest(plan.table, plan_manifest_uri(prefix), details=extra)
    uris = [group_summary_uri(prefix, g) for g in range(plan.n_groups)]
    per_batch = GROUPS_PER_BATCH if local else S3_GROUPS_PER_BATCH
    grouped = conform(plan.by_group(), f"plan of {prefix}")  # checked once, sliced below
    batches = [
        _GroupBatch(
            first_group=first,
            offsets=plan.offsets[first : last + 1] - plan.offsets[first],
            summary_uris=uris[first:last],
            group_count=plan.n_groups,
            parent_fingerprint=master.fingerprint,
            details=extra,
            in_place=local,
        )
        for first in range(0, plan.n_groups, per_batch)
        for last in [min(first + per_batch, plan.n_groups)]
    ]

    def rows(batch: _GroupBatch) -> pa.Table:
        start = int(plan.offsets[batch.first_group])
        return grouped.slice(start, int(batch.offsets[-1]))

    summaries: list[ManifestSummary] = []
    for written in _write_batches(batches, rows, local=local, workers=workers):
        summaries.extend(written)
        if progress is not None:
            progress(len(summaries))
    index_table = pa.table(
        {
            "uri": pa.array(uris, pa.string()),
            "size": pa.array([s.total_size for s in summaries], pa.int64()),
            "n_record": pa.array([s.total_records for s in summaries], pa.int64()),
            "etag": pa.array([s.fingerprint for s in summaries], pa.string()),
        },
        schema=DATA_FILE_SCHEMA,
    )
    index_uri = plan_index_uri(prefix)
    index = write_manifest(
        index_table,
        index_uri,
        parent_fingerprint=master.fingerprint,
        details={**extra, "kind": "plan-index", "limits": _limits_json(plan.limits)},
    )
    return WrittenPlan(master, index, index_uri, uris, summaries)


GROUPS_PER_BATCH = GROUPS_PER_FOLDER
"""Groups per unit of parallel work: one folder (so no two writers share a folder), large
enough to amortise a process hand-off, small enough to balance the cores and to report
progress often."""

S3_GROUPS_PER_BATCH = 64
"""Groups per thread's turn when writing to S3: small, so the threads share even a plan of
a few hundred groups (each group is two PUTs of tens of milliseconds)."""


@dataclass(frozen=True, slots=True)
class _GroupBatch:
    """Consecutive groups to write: group ``first_group + i`` is rows
    ``offsets[i]:offsets[i + 1]`` of the batch's own slice of the grouped table."""

    first_group: int
    offsets: np.ndarray
    summary_uris: list[str]
    group_count: int
    parent_fingerprint: str
    details: dict[str, Any]
    in_place: bool

    def write(self, table: pa.Table) -> list[ManifestSummary]:
        return write_manifests(
            table,
            self.offsets,
            self.summary_uris,
            first_group_index=self.first_group,
            group_count=self.group_count,
            parent_fingerprint=self.parent_fingerprint,
            details=self.details,
            in_place=self.in_place,
        )


def _write_batches(
    batches: list[_GroupBatch],
    rows: Callable[[_GroupBatch], pa.Table],
    *,
    local: bool,
    workers: int | None,
) -> Iterator[list[ManifestSummary]]:
    """Write ``batches`` in parallel; yield each batch's summaries, in batch order."""
    if not local:
        with ThreadPoolExecutor(max_workers=max(1, workers or 8)) as threads:
            yield from threads.map(lambda batch: batch.write(rows(batch)), batches)
        return
    processes = max(1, workers or os.cpu_count() or 1)
    if processes == 1 or len(batches) < 2:
        for batch in batches:
            yield batch.write(rows(batch))
        return
    # Spawned, not forked: the caller may run threads (a progress spinner). A batch's rows
    # travel as Arrow IPC, which carries only the slice (pickling a slice copies its
    # whole parent buffers).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        yield from pool.map(_write_batch_ipc, batches, (_ipc_bytes(rows(b)) for b in batches))


def _write_batch_ipc(batch: _GroupBatch, rows: bytes) -> list[ManifestSummary]:
    return batch.write(pa.ipc.open_stream(rows).read_all())


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _limits_json(limits: Limits) -> dict[str, int]:
    names = ("target_size", "target_records", "max_files", "groups")
    return {n: int(v) for n in names if (v := getattr(limits, n)) is not None}
