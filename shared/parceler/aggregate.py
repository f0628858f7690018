"""Reduce committed group results into the job result: batches (the Map), then a final reduce.

A two-level tree. :func:`reduce_batch` (one Map item) reads the committed results of a
contiguous run of groups, reduces their values with the job's reducer and concatenates
their output tables into a *partial* manifest ``jobs/{job}/aggregate/batch-{b:05d}.json``.
:func:`finalize` reduces the partials into the job result manifest ``jobs/{job}/result.json``
(+ ``result-value.json``), decides the outcome against ``limits.tolerated_failure_percent``
and records it in the ledger. The reducer is associative, so the tree gives the same value
as a flat reduce.

Only committed attempts count: a group contributes iff its ledger item is SUCCEEDED with a
``result_uri`` (the committed attempt's result manifest). Any other group is a failure,
listed with its error. Both steps are idempotent: re-running rewrites the same objects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.errors import ManifestError, ObjectNotFoundError
from parceler.ledger import SUCCEEDED, GroupItem
from parceler.manifest import read_manifest, read_summary, write_manifest
from parceler.models import DATA_FILE_SCHEMA, empty_table
from parceler.processors import default_reducer, reduce_values
from parceler.settings import AggregatorSettings
from parceler.spec import JobSpec, ReducerSpec, parse_spec

log = logging.getLogger(__name__)

INLINE_VALUE_BYTES = 32_768
"""A reduced value up to this size (JSON) rides inline in the manifest details."""
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
    failed_groups: list[dict[str, Any]]
    result_uri: str
    value_uri: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "within_tolerance": self.within_tolerance,
            "n_groups": self.n_groups,
            "groups_succeeded": self.groups_succeeded,
            "groups_failed": self.groups_failed,
            "failed_groups": self.failed_groups,
            "result_uri": self.result_uri,
            "value_uri": self.value_uri,
        }


def job_folder(settings: AggregatorSettings, job_id: str) -> str:
    """``s3://{work bucket}/jobs/{job_id}``."""
    return f"s3://{settings.work_bucket}/jobs/{job_id}"


def partial_uri(settings: AggregatorSettings, job_id: str, batch_index: int) -> str:
    """Where batch ``batch_index``'s partial manifest goes."""
    return storage.join(job_folder(settings, job_id), "aggregate", f"batch-{batch_index:05d}.json")


def load_spec(settings: AggregatorSettings, job_id: str) -> JobSpec:
    """The spec the planner stored at ``jobs/{job}/spec.json``."""
    return parse_spec(storage.read_bytes(storage.join(job_folder(settings, job_id), "spec.json")))


def reducer_of(spec: JobSpec) -> ReducerSpec | None:
    """The job's reducer: the spec's, else the processor's default (as the planner decides)."""
    return spec.reducer if spec.reducer is not None else default_reducer(spec.processor)


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
    ledger.mark_job(job_id, "AGGREGATING", expected=["RUNNING"])
    reducer = reducer_of(load_spec(settings, job_id))
    values: list[Any] = []
    tables: list[pa.Table] = []
    failed: list[dict[str, Any]] = []
    succeeded = 0
    for index in range(first_group, first_group + n_groups):
        group = ledger.get_group(job_id, index)
        if group is None or group.status != SUCCEEDED or not group.result_uri:
            failed.append(_failure(index, group))
            continue
        manifest = read_manifest(group.result_uri)
        tables.append(manifest.table)
        values.append(_value_of(manifest.summary.details, group.result_uri))
        succeeded += 1
    uri = partial_uri(settings, job_id, batch_index)
    details: dict[str, Any] = {
        "job_id": job_id,
        "batch_index": batch_index,
        "first_group": first_group,
        "n_groups": n_groups,
        "groups_succeeded": succeeded,
        "groups_failed": len(failed),
        "failed_groups": failed,
        **_value_details(reduce_values(reducer, values), uri.removesuffix(".json") + "-value.json"),
    }
    write_manifest(_concat(tables), uri, details=details)
    return uri


def finalize(job_id: str, partials: Sequence[str], settings: AggregatorSettings) -> JobOutcome:
    """Reduce the partial manifests into the job result and record the outcome.

    Writes ``jobs/{job}/result.json|.parquet`` (every committed output file; details carry
    the counts, the failed groups and the value or ``value_uri``) with ``parent_fingerprint``
    = the master manifest's fingerprint, and ``result-value.json`` when the value is not
    None. Marks the job SUCCEEDED, or FAILED with ``error``/``cause``, when more than
    ``limits.tolerated_failure_percent`` of its groups failed.

    Returns:
        The outcome (the state machine's ``WithinTolerance`` choice reads it).
    """
    ledger = Ledger(settings.ledger_table)
    job = ledger.get_job(job_id)
    spec = load_spec(settings, job_id)
    reducer = reducer_of(spec)
    folder = job_folder(settings, job_id)
    values: list[Any] = []
    tables: list[pa.Table] = []
    failed: list[dict[str, Any]] = []
    succeeded = 0
    for uri in partials:
        manifest = read_manifest(uri)
        details = manifest.summary.details
        if details.get("job_id") != job_id:
            raise ManifestError(
                f"partial {uri} belongs to job {details.get('job_id')!r}, not {job_id!r}."
            )
        tables.append(manifest.table)
        values.append(_value_of(details, uri))
        succeeded += int(details.get("groups_succeeded", 0))
        failed.extend(details.get("failed_groups", []))
    n_groups = int(job.n_groups if job.n_groups is not None else succeeded + len(failed))
    n_failed = n_groups - succeeded  # groups no partial covered count as failed too
    value = reduce_values(reducer, values)
    tolerated = spec.limits.tolerated_failure_percent
    within = n_groups == 0 or 100.0 * n_failed / n_groups <= tolerated

    result_uri = storage.join(folder, "result.json")
    value_uri: str | None = None
    if value is not None:
        value_uri = storage.join(folder, "result-value.json")
        storage.write_bytes(value_uri, _json_bytes(value), content_type="application/json")
    listed = sorted(failed, key=lambda f: int(f.get("index", 0)))[:MAX_LISTED_FAILURES]
    write_manifest(
        _concat(tables),
        result_uri,
        parent_fingerprint=_master_fingerprint(folder, job.fingerprint),
        details={
            "job_id": job_id,
            "n_groups": n_groups,
            "groups_succeeded": succeeded,
            "groups_failed": n_failed,
            "failed_groups": listed,
            "tolerated_failure_percent": tolerated,
            **_value_details(value, value_uri),
        },
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
        result_uri=result_uri,
        value_uri=value_uri,
    )


def _failure(index: int, group: GroupItem | None) -> dict[str, Any]:
    if group is None:
        return {"index": index, "status": "MISSING", "error": "NoGroupItem", "cause": None}
    error = group.error or group.last_error or ("NotFinished" if not group.terminal else "Unknown")
    cause = group.cause or group.last_cause
    return {
        "index": index,
        "status": group.status,
        "error": error,
        "cause": cause[:_MAX_CAUSE] if cause else None,
    }


def _value_of(details: dict[str, Any], where: str) -> Any:
    """A manifest's value: inline ``value``, or the JSON object named by ``value_uri``."""
    if details.get("value_uri"):
        try:
            return json.loads(storage.read_bytes(str(details["value_uri"])))
        except ValueError as exc:
            raise ManifestError(f"{where}: value_uri {details['value_uri']} is not JSON.") from exc
    return details.get("value")


def _value_details(value: Any, uri: str | None) -> dict[str, Any]:
    """``{"value": v}`` when small; else write it to ``uri`` and return ``{"value_uri": uri}``."""
    body = _json_bytes(value)
    if value is None or len(body) <= INLINE_VALUE_BYTES or uri is None:
        return {"value": value}
    storage.write_bytes(uri, body, content_type="application/json")
    return {"value_uri": uri}


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return empty_table()
    return pa.concat_tables(
        [t.select(DATA_FILE_SCHEMA.names).cast(DATA_FILE_SCHEMA) for t in tables]
    )


def _master_fingerprint(folder: str, recorded: str | None) -> str | None:
    if recorded:
        return recorded
    try:
        return read_summary(storage.join(folder, "manifest.json")).fingerprint
    except (ManifestError, ObjectNotFoundError):
        log.warning("no master manifest under %s; the result has no parent fingerprint", folder)
        return None
