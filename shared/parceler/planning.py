"""Plan: pack a master table of data files into groups and write each group as a manifest.

``plan_files`` is pure (table + limits → :class:`Plan`); ``write_plan`` writes the master
manifest, one manifest per group and the plan index (a manifest of manifests: one row per
group, ``uri`` = the group's summary URI, ``size``/``n_record`` = the group's totals,
``etag`` = the group's fingerprint).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from parceler.manifest import conform, write_manifest
from parceler.models import DATA_FILE_SCHEMA, ManifestSummary
from parceler.partition import Limits, Partition, lower_bound, partition
from parceler.storage import join


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


def plan_files(table: pa.Table, limits: Limits) -> Plan:
    """Pack ``table`` (``DATA_FILE_SCHEMA`` rows) into groups under ``limits``.

    Complexity: O(n log n) (the partitioner's sort dominates).

    Raises:
        SpecError: the limits are invalid (from the partitioner).
    """
    part = partition(table, limits)
    order, offsets = part.rows_by_group()
    return Plan(table=table, limits=limits, partition=part, order=order, offsets=offsets)


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
    """Summarise a plan. Fill is group load / target (or / mean load with ``groups=N``)."""
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
    fills = [load / target for load in loads] or [0.0]
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


def group_summary_uri(prefix: str, index: int) -> str:
    """``{prefix}/groups/{index:06d}/manifest.json``: the URI the group's SQS message carries."""
    return join(prefix, "groups", f"{index:06d}", "manifest.json")


def write_plan(
    plan: Plan,
    prefix: str,
    *,
    details: dict[str, Any] | None = None,
    workers: int = 8,
) -> WrittenPlan:
    """Write the master manifest, every group manifest and the plan index under ``prefix``.

    Group manifests are written in parallel; the plan index is written last, so its
    presence means every group manifest it lists is committed.

    Args:
        plan: the plan from :func:`plan_files`.
        prefix: a folder URI (``s3://bucket/jobs/J`` or a local path).
        details: free-form details copied into every summary (e.g. ``job_id``).
        workers: threads writing group manifests.

    Returns:
        The summaries and URIs written.
    """
    extra = dict(details or {})
    master = write_manifest(plan.table, join(prefix, "manifest.json"), details=extra)
    uris = [group_summary_uri(prefix, g) for g in range(plan.n_groups)]
    grouped = conform(plan.by_group(), f"plan of {prefix}")  # checked once, sliced below

    def write_group(g: int) -> ManifestSummary:
        start, stop = int(plan.offsets[g]), int(plan.offsets[g + 1])
        return write_manifest(
            grouped.slice(start, stop - start),
            uris[g],
            parent_fingerprint=master.fingerprint,
            group_index=g,
            group_count=plan.n_groups,
            details=extra,
            conformed=True,
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        summaries = list(pool.map(write_group, range(plan.n_groups), chunksize=64))
    index_table = pa.table(
        {
            "uri": pa.array(uris, pa.string()),
            "size": pa.array([s.total_size for s in summaries], pa.int64()),
            "n_record": pa.array([s.total_records for s in summaries], pa.int64()),
            "etag": pa.array([s.fingerprint for s in summaries], pa.string()),
        },
        schema=DATA_FILE_SCHEMA,
    )
    index_uri = join(prefix, "plan.json")
    index = write_manifest(
        index_table,
        index_uri,
        parent_fingerprint=master.fingerprint,
        details={**extra, "kind": "plan-index", "limits": _limits_json(plan.limits)},
    )
    return WrittenPlan(master, index, index_uri, uris, summaries)


def _limits_json(limits: Limits) -> dict[str, int]:
    names = ("target_size", "target_records", "max_files", "groups")
    return {n: int(v) for n in names if (v := getattr(limits, n)) is not None}
