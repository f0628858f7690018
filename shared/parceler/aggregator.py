"""Reduce committed group results into the job result: batches (a Distributed Map), then a
final reduce.

A two-level tree, driven from S3 so that no state carries a list (docs/quotas.md).
:func:`prepare` writes the item file (``JobArea.aggregation_batches``: one item per
:data:`AGGREGATION_BATCH` groups) that the ``ReduceBatches`` Distributed Map reads (a job
of one batch is reduced by :func:`prepare` itself, and the Map is skipped);
:func:`reduce_batch` (one child execution) reads the committed results of its groups,
reduces their values with the job's reducer and concatenates their output tables into a
*partial* manifest (``JobArea.partial``). :func:`finalize` reads the partials by index,
reduces them into the job result manifest (``JobArea.result``, + ``result_value``, +
``failures`` listing every failed group), decides the outcome against
``limits.tolerated_failure_percent``, records it in the ledger and returns counts and URIs
only. The reducer is associative, so the tree gives the same value as a flat reduce.

Only committed attempts count: a group contributes iff its ledger item is SUCCEEDED with a
``result_uri`` (the committed attempt's result manifest, or the earlier job's result it
reuses). Any other group is a failure, listed with its error. :func:`reduce_batch` also
records each freshly committed result of an incremental job in the ledger's result cache
(``Ledger.put_cached_results``, keyed by the group's identity) for later jobs to reuse, and
counts the reused ones (``groups_skipped``). Both steps are idempotent: re-running rewrites the same objects.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from parceler import storage, values
from parceler.aws.ledger import Ledger
from parceler.details import FailedGroup, GroupResultDetails, JobResultDetails, PartialDetails
from parceler.errors import ManifestError, ObjectNotFoundError
from parceler.ledger import SUCCEEDED, CachedResult, GroupItem
from parceler.manifest import read_manifest, read_summary, write_manifest
from parceler.models import DATA_FILE_SCHEMA, empty_table
from parceler.processors import reduce_values, reducer_of
from parceler.settings import AggregatorSettings
from parceler.spec_store import read_spec
from parceler.workarea import JobArea

log = logging.getLogger(__name__)

AGGREGATION_BATCH = 100
"""Groups per ``ReduceBatches`` child: 100 ledger reads and 200 S3 GETs (docs/quotas.md)."""
READERS = 16
"""Threads reading result manifests (the work is waiting on S3 GETs)."""
MAX_LISTED_FAILURES = 1_000
"""At most this many failed groups are listed (the counts are always exact)."""
_MAX_CAUSE = 1_000


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What :func:`finalize` returns to the state machine (``to_json``)."""

    status: str
    within_tolerance: bool
    n_groups: int
    groups_succeeded: int
    groups_failed: int
    failed_groups: list[FailedGroup]
    groups_skipped: int
    result_uri: str
    value_uri: str | None
    failures_uri: str | None

    def to_json(self) -> dict[str, Any]:
        """Counts and URIs only: this is a task result in the execution's history (the
        failed groups are in the result manifest and ``failures_uri``)."""
        return {
            "status": self.status,
            "within_tolerance": self.within_tolerance,
            "n_groups": self.n_groups,
            "groups_succeeded": self.groups_succeeded,
            "groups_failed": self.groups_failed,
            "groups_skipped": self.groups_skipped,
            "result_uri": self.result_uri,
            "value_uri": self.value_uri,
            "failures_uri": self.failures_uri,
        }


@dataclass(frozen=True, slots=True)
class AggregationItems:
    """Where :func:`prepare` wrote the ``ReduceBatches`` item file, and how many items."""

    bucket: str
    key: str
    n_batches: int
    reduced: bool = False  # the one batch is reduced already: the state machine skips the Map

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "n_batches": self.n_batches,
            "reduced": self.reduced,
        }


def aggregation_batches(
    n_groups: int, size: int = AGGREGATION_BATCH, *, job_id: str = ""
) -> list[dict[str, Any]]:
    """The ``ReduceBatches`` items: contiguous runs of ``size`` groups (the last may be
    shorter), each naming its job (a redrive's execution is not named after the job)."""
    return [
        {
            "job_id": job_id,
            "batch": b,
            "first_group": first,
            "n_groups": min(size, n_groups - first),
        }
        for b, first in enumerate(range(0, n_groups, size))
    ]


def prepare(job_id: str, settings: AggregatorSettings) -> AggregationItems:
    """Write the item file of the ``ReduceBatches`` Distributed Map and mark the job
    AGGREGATING; a job of one batch has that batch reduced here too (``reduced``), so that
    the state machine skips the fan-out (one batch is :data:`AGGREGATION_BATCH` groups at
    most: a reducer's ~1 s). Idempotent."""
    ledger = Ledger(settings.ledger_table)
    job = ledger.get_job(job_id)
    ledger.mark_job(job_id, "AGGREGATING", expected=["RUNNING", "PLANNING"])
    # The size read now, not bound as a default when the module loaded (tests change it).
    items = aggregation_batches(int(job.n_groups or 0), AGGREGATION_BATCH, job_id=job_id)
    uri = JobArea(settings.work_bucket, job_id).aggregation_batches
    storage.write_bytes(uri, json.dumps(items).encode(), content_type="application/json")
    where = storage.parse_uri(uri)
    reduced = len(items) == 1
    if reduced:
        (only,) = items
        reduce_batch(job_id, 0, only["first_group"], only["n_groups"], settings)
    return AggregationItems(
        bucket=where.bucket, key=where.key, n_batches=len(items), reduced=reduced
    )


def reduce_batch(
    job_id: str,
    batch_index: int,
    first_group: int,
    n_groups: int,
    settings: AggregatorSettings,
) -> str:
    """Reduce groups ``first_group .. first_group + n_groups - 1`` into a partial manifest.

    Returns:
        The partial manifest's summary URI. Its details carry ``value`` (or ``value_uri``),
        ``groups_succeeded``, ``groups_failed`` and ``failed_groups`` (index, status, error,
        cause).

    Raises:
        ManifestError: a committed group result fails verification (a corrupt work area).
        ProcessorError: the reducer cannot merge the values.
    """
    ledger = Ledger(settings.ledger_table)
    area = JobArea(settings.work_bucket, job_id)
    reducer = reducer_of(read_spec(area))
    indices = list(range(first_group, first_group + n_groups))
    groups = ledger.get_groups(job_id, indices)
    committed = [
        g.result_uri
        for i in indices
        if (g := groups.get(i)) is not None and g.status == SUCCEEDED and g.result_uri
    ]
    failed = [
        _failure(i, g)
        for i in indices
        if (g := groups.get(i)) is None or g.status != SUCCEEDED or not g.result_uri
    ]
    with ThreadPoolExecutor(max_workers=READERS) as threads:
        manifests = list(threads.map(read_manifest, committed))
    # Fresh results of an incremental job become reusable by later jobs (the result cache).
    fresh = [
        CachedResult(g.identity, g.result_uri, job_id, g.index, g.value_summary)
        for i in indices
        if (g := groups.get(i)) is not None
        and g.status == SUCCEEDED
        and g.result_uri
        and g.identity
        and not g.skipped
    ]
    if fresh:
        ledger.put_cached_results(fresh)
    skipped = sum(1 for i in indices if (g := groups.get(i)) is not None and g.skipped)
    tables = [m.table for m in manifests]
    group_values = [
        values.value_of(GroupResultDetails.of(m.summary, uri), uri)
        for m, uri in zip(manifests, committed, strict=True)
    ]
    succeeded = len(committed)
    uri = area.partial(batch_index)
    value = reduce_values(reducer, group_values)
    details = PartialDetails(
        job_id=job_id,
        batch_index=batch_index,
        first_group=first_group,
        n_groups=n_groups,
        groups_succeeded=succeeded,
        groups_failed=len(failed),
        failed_groups=failed,
        groups_skipped=skipped,
        **values.place(value, area.partial_value(batch_index)),
    )
    write_manifest(_concat(tables), uri, details=details.to_details())
    return uri


def finalize(job_id: str, n_batches: int, settings: AggregatorSettings) -> JobOutcome:
    """Reduce the partial manifests of batches ``0 .. n_batches - 1`` into the job result
    and record the outcome.

    Writes ``jobs/{job}/result.json|.parquet`` (every committed output file; details carry
    the counts, the first :data:`MAX_LISTED_FAILURES` failed groups, ``failures_uri`` and
    the value or ``value_uri``) with ``parent_fingerprint`` = the master manifest's
    fingerprint, ``failures.json`` (every failed group) when any failed, and
    ``result-value.json`` when the value is not None. Marks the job SUCCEEDED, or FAILED with ``error``/``cause``, when more than
    ``limits.tolerated_failure_percent`` of its groups failed.

    Returns:
        The outcome (the state machine's ``WithinTolerance`` choice reads it).
    """
    ledger = Ledger(settings.ledger_table)
    job = ledger.get_job(job_id)
    area = JobArea(settings.work_bucket, job_id)
    spec = read_spec(area)
    reducer = reducer_of(spec)
    partial_values: list[Any] = []
    tables: list[pa.Table] = []
    failed: list[FailedGroup] = []
    succeeded = 0
    skipped = 0
    uris = [area.partial(b) for b in range(n_batches)]
    with ThreadPoolExecutor(max_workers=READERS) as threads:
        manifests = list(threads.map(read_manifest, uris))
    for uri, manifest in zip(uris, manifests, strict=True):
        partial = PartialDetails.of(manifest.summary, uri)
        if partial.job_id != job_id:
            raise ManifestError(f"partial {uri} belongs to job {partial.job_id!r}, not {job_id!r}.")
        tables.append(manifest.table)
        partial_values.append(values.value_of(partial, uri))
        succeeded += partial.groups_succeeded
        skipped += partial.groups_skipped
        failed.extend(partial.failed_groups)
    n_groups = int(job.n_groups if job.n_groups is not None else succeeded + len(failed))
    n_failed = n_groups - succeeded  # groups no partial covered count as failed too
    value = reduce_values(reducer, partial_values)
    tolerated = spec.limits.tolerated_failure_percent
    within = n_groups == 0 or 100.0 * n_failed / n_groups <= tolerated

    result_uri = area.result
    value_uri: str | None = None
    if value is not None:
        # Always an object of its own (the CLI prints it from there); inline too when small.
        value_uri = area.result_value
        body = values.encode(value)
        storage.write_bytes(value_uri, body, content_type="application/json")
        placed: dict[str, Any] = (
            {"value": value} if values.fits_inline(body) else {"value_uri": value_uri}
        )
    else:
        placed = {"value": None}
    failed.sort(key=lambda f: f.index)
    failures_uri: str | None = None
    if failed:
        failures_uri = area.failures
        body = json.dumps([f.to_details() for f in failed]).encode()
        storage.write_bytes(failures_uri, body, content_type="application/json")
    listed = failed[:MAX_LISTED_FAILURES]
    details = JobResultDetails(
        job_id=job_id,
        n_groups=n_groups,
        groups_succeeded=succeeded,
        groups_failed=n_failed,
        failed_groups=listed,
        groups_skipped=skipped,
        failures_uri=failures_uri,
        tolerated_failure_percent=tolerated,
        **placed,
    )
    write_manifest(
        _concat(tables),
        result_uri,
        parent_fingerprint=_master_fingerprint(area, job.fingerprint),
        details=details.to_details(),
    )
    marks: dict[str, Any] = {"result_uri": result_uri}
    if value_uri is not None:
        marks["value_uri"] = value_uri
    if within:
        ledger.mark_job(job_id, "SUCCEEDED", **marks)
    else:
        cause = (
            f"{n_failed} of {n_groups} groups failed ({100.0 * n_failed / n_groups:.1f}%); "
            f"limits.tolerated_failure_percent is {tolerated:g}."
        )
        ledger.mark_job(job_id, "FAILED", error="Parceler.ToleranceExceeded", cause=cause, **marks)
    return JobOutcome(
        status="SUCCEEDED" if within else "FAILED",
        within_tolerance=within,
        n_groups=n_groups,
        groups_succeeded=succeeded,
        groups_failed=n_failed,
        failed_groups=listed,
        groups_skipped=skipped,
        result_uri=result_uri,
        value_uri=value_uri,
        failures_uri=failures_uri,
    )


def _failure(index: int, group: GroupItem | None) -> FailedGroup:
    if group is None:
        return FailedGroup(index=index, status="MISSING", error="NoGroupItem")
    error = group.error or group.last_error or ("NotFinished" if not group.terminal else "Unknown")
    cause = group.cause or group.last_cause
    return FailedGroup(
        index=index,
        status=group.status,
        error=error,
        cause=cause[:_MAX_CAUSE] if cause else None,
        attempt=group.attempt,
    )


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return empty_table()
    return pa.concat_tables(
        [t.select(DATA_FILE_SCHEMA.names).cast(DATA_FILE_SCHEMA) for t in tables]
    )


def _master_fingerprint(area: JobArea, recorded: str | None) -> str | None:
    if recorded:
        return recorded
    try:
        return read_summary(area.manifest).fingerprint
    except (ManifestError, ObjectNotFoundError):
        log.warning("no master manifest at %s; the result has no parent fingerprint", area.manifest)
        return None
