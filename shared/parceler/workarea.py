"""The work-area layout, typed and in one place: every URI a job writes, and the one decoder back.

```
s3://{bucket}/jobs/{job_id}/spec.json                              JobArea.spec
                           /manifest.json|.parquet                 JobArea.manifest
                           /plan.json|.parquet                     JobArea.plan_index
                           /plan/slice-{k:05d}.parquet             JobArea.plan_slice(k)
                           /plan/slices.json                       JobArea.plan_slices
                           /redrive-{n:03d}/slice-{k:05d}.json     JobArea.redrive_slice(n, k)
                           /redrive-{n:03d}/slices.json            JobArea.redrive_slices(n)
                           /groups/{g//1000:03d}/{g:06d}.json      JobArea.group(g).manifest
                           /groups/{g//1000:03d}/{g:06d}/{run_id}/attempt-{a}/
                                                                   ….attempt(a, run_id).folder
                                                 …/result.json     ….attempt(a, run_id).result
                                                 …/value.json      ….attempt(a, run_id).value
                           /aggregate/batches.json                 JobArea.aggregation_batches
                           /aggregate/batch-{b:05d}.json           JobArea.partial(b)
                           /aggregate/batch-{b:05d}-value.json     JobArea.partial_value(b)
                           /result.json|.parquet                   JobArea.result
                           /result-value.json                      JobArea.result_value
                           /failures.json                          JobArea.failures
{spec.output}/{job_id}/groups/{g:06d}/{run_id}/attempt-{a}/        output_folder(...)
```

``run_id`` (:func:`new_run_id`, ``run-20261202T011447-3f9a1c``) is minted when the job is
created (the planner's first call, stored on the ledger's job item and in every group
manifest), so attempt folders are unique per run: two runs of one job id (a local job run
twice into one ``output`` folder, a job id reused once the ledger forgot it) never write
each other's files, and each run's result manifest names only its own.

A plan written anywhere else (``parceler plan --out``) uses the same plan-relative names
(:func:`plan_manifest_uri`, :func:`plan_index_uri`, :func:`group_summary_uri`).
:func:`parse_group_uri` is the only code that reads a URI back into a job and a group.
Pure: string arithmetic, no I/O.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

GROUPS_PER_FOLDER = 1000
"""Group manifests per folder of a plan (see :func:`group_summary_uri`)."""

_GROUP_URI = re.compile(
    r"^s3://(?P<bucket>[^/]+)/jobs/(?P<job>[^/]+)/groups/(?P<folder>\d{3,})/(?P<g>\d{6,})\.json$"
)


RUN_ID = re.compile(r"^run-\d{8}T\d{6}-[0-9a-f]{6}$")
"""The shape of a run id: safe in a path, sortable by its creation time (UTC)."""


def new_run_id(now: float | None = None) -> str:
    """A fresh run id, ``run-{UTC yyyymmddTHHMMSS}-{6 random hex digits}``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"run-{stamp}-{secrets.token_hex(3)}"


def _join(folder: str, *names: str) -> str:
    """``folder/name/…`` with one slash at each seam (``folder`` may end with ``/``)."""
    head = folder.rstrip("/")
    tail = "/".join(names)
    return f"{head}/{tail}" if head else tail


def plan_manifest_uri(folder: str) -> str:
    """The master manifest of a plan written under ``folder``."""
    return _join(folder, "manifest.json")


def plan_index_uri(folder: str) -> str:
    """The plan index (one row per group manifest) of a plan written under ``folder``."""
    return _join(folder, "plan.json")


def group_summary_uri(folder: str, index: int) -> str:
    """``{folder}/groups/{index // 1000:03d}/{index:06d}.json``: the URI the group's SQS
    message carries; the data object is beside it (``.parquet``).

    A thousand groups per folder: on S3 the PUTs spread over prefixes; on a local disk,
    each writer process creates files in its own folder (two processes creating files in
    one folder contend for its lock, and ran 2.3 times slower than one process here).
    """
    return _join(folder, "groups", f"{index // GROUPS_PER_FOLDER:03d}", f"{index:06d}.json")


def output_folder(output: str, job_id: str, run_id: str, index: int, attempt: int) -> str:
    """Where an attempt's outputs go when the spec names ``output`` (ends with ``/``)."""
    return _join(output, job_id, "groups", f"{index:06d}", run_id, f"attempt-{attempt}") + "/"


@dataclass(frozen=True, slots=True)
class JobArea:
    """One job's folder in the work bucket: ``s3://{bucket}/jobs/{job_id}``."""

    bucket: str
    job_id: str

    @property
    def folder(self) -> str:
        return f"s3://{self.bucket}/jobs/{self.job_id}"

    @property
    def spec(self) -> str:
        """The job spec, written by the planner before anything else: the one stored copy."""
        return _join(self.folder, "spec.json")

    @property
    def manifest(self) -> str:
        """The master manifest (every data file of the job)."""
        return plan_manifest_uri(self.folder)

    @property
    def plan_index(self) -> str:
        return plan_index_uri(self.folder)

    def group(self, index: int) -> GroupArea:
        return GroupArea(self, index)

    def plan_slice(self, slice_index: int) -> str:
        """One slice of the plan: its groups' rows, with a ``group`` column (Parquet)."""
        return _join(self.folder, "plan", f"slice-{slice_index:05d}.parquet")

    @property
    def plan_slices(self) -> str:
        """The ``WriteGroups`` map's item file: ``[{"job_id", "slice": k, "redrive": 0}, ...]``
        (JSON)."""
        return _join(self.folder, "plan", "slices.json")

    def redrive_slice(self, redrive: int, slice_index: int) -> str:
        """The group indices one ``WriteGroups`` child of redrive ``redrive`` re-sends (JSON)."""
        return _join(self.folder, f"redrive-{redrive:03d}", f"slice-{slice_index:05d}.json")

    def redrive_slices(self, redrive: int) -> str:
        """Redrive ``redrive``'s ``WriteGroups`` item file:
        ``[{"job_id", "slice": k, "redrive": n}, ...]`` (JSON)."""
        return _join(self.folder, f"redrive-{redrive:03d}", "slices.json")

    @property
    def aggregation_batches(self) -> str:
        """The ``ReduceBatches`` map's item file: one item per batch of groups (JSON)."""
        return _join(self.folder, "aggregate", "batches.json")

    @property
    def failures(self) -> str:
        """Every failed group of the job, when any failed (JSON)."""
        return _join(self.folder, "failures.json")

    def partial(self, batch_index: int) -> str:
        """The partial manifest of aggregation batch ``batch_index``."""
        return _join(self.folder, "aggregate", f"batch-{batch_index:05d}.json")

    def partial_value(self, batch_index: int) -> str:
        """Where a partial's value goes when it is too big to ride inline."""
        return self.partial(batch_index).removesuffix(".json") + "-value.json"

    @property
    def result(self) -> str:
        """The job result manifest (every committed output file)."""
        return _join(self.folder, "result.json")

    @property
    def result_value(self) -> str:
        """The job's reduced value (JSON), when it is not None."""
        return _join(self.folder, "result-value.json")


@dataclass(frozen=True, slots=True)
class GroupArea:
    """Group ``index`` of a job: its manifest and its attempt folders."""

    job: JobArea
    index: int

    @property
    def manifest(self) -> str:
        """The group manifest's summary URI (what its SQS message carries)."""
        return group_summary_uri(self.job.folder, self.index)

    def attempt(self, attempt: int, run_id: str) -> AttemptArea:
        return AttemptArea(self, attempt, run_id)


@dataclass(frozen=True, slots=True)
class AttemptArea:
    """One attempt at a group in one run: ``…/groups/000/000007/{run_id}/attempt-2/``, named
    after its manifest."""

    group: GroupArea
    attempt: int
    run_id: str

    @property
    def folder(self) -> str:
        """The attempt's folder (ends with ``/``): its outputs unless the spec names ``output``."""
        stem = self.group.manifest.removesuffix(".json")
        return f"{stem}/{self.run_id}/attempt-{self.attempt}/"

    @property
    def result(self) -> str:
        """The attempt's result manifest (committed if the ledger names it)."""
        return self.folder + "result.json"

    @property
    def value(self) -> str:
        """Where the group value goes when it is too big to ride inline."""
        return self.folder + "value.json"


def parse_group_uri(uri: str) -> GroupArea | None:
    """The group a work-area group-manifest URI names, or None if ``uri`` is not one.

    ``s3://w/jobs/j-1/groups/001/001007.json`` → ``GroupArea(JobArea("w", "j-1"), 1007)``.
    The inverse of :attr:`GroupArea.manifest`: a URI is accepted only if the group's
    folder is the one :func:`group_summary_uri` puts it in.
    """
    match = _GROUP_URI.match(uri)
    if match is None:
        return None
    index = int(match["g"])
    area = GroupArea(JobArea(match["bucket"], match["job"]), index)
    return area if area.manifest == uri else None
