"""Plan a job: spec → source → groups → ledger → one SQS message per group, resumably.

Planning runs in two steps so that no Lambda's work grows with the job (docs/quotas.md):

1. :func:`plan` (the ``Plan`` state): creates the job item (``status = PLANNING``, the
   spec's hash; a different spec under the same id is refused), stores the spec once
   (``spec.json``), lists the source, packs the groups, writes the master manifest and the
   plan as **slices** of :data:`SLICE_GROUPS` groups (``plan/slice-{k:05d}.parquet``: the
   slice's rows in group order with a ``group`` column) and the slice item file the next
   state reads, then records the plan: the ledger's shard counters, ``n_groups`` /
   ``n_shards`` / ``n_slices`` under ``attribute_not_exists(n_groups)``. A crash before
   that mark replans from scratch — harmless, because nothing was sent yet. After it the
   plan is never recomputed: a changed source cannot change a job in flight.
2. :func:`write_slice` (one child of the ``WriteGroups`` Distributed Map per slice): writes
   the slice's group manifests, then its PENDING group items once (``items_written`` mark on
   the slice item), then sends its messages in a fixed order, ``SendMessageBatch`` calls of
   10, raising the slice's ``enqueued_through`` watermark every :data:`WATERMARK_EVERY`
   calls. A re-run resumes after the last mark; a crash between a send and its watermark
   re-sends at most :data:`WATERMARK_EVERY` x 10 messages, and a duplicate message is
   harmless (the worker finds the group claimed or committed). The first slice to finish
   moves the job to ``RUNNING``. A plan of one slice of at most :data:`INLINE_FILES` files
   is written by :func:`plan` itself, in the ``Plan`` task: the state machine then skips
   ``WriteGroups`` (docs/INTERNALS.md, small jobs skip the fan-outs).

**Incremental runs** (``spec.incremental``, on by default): every group item carries its
identity (:mod:`parceler.identity`: fingerprint + processor identity). Before a slice sends
anything, :func:`write_slice` looks its identities up in the ledger's result cache (written
by the aggregator for every committed group); a group whose cached result still exists is
committed at once with that result (``Ledger.reuse_group``: SUCCEEDED, ``reused_from``,
counted in ``n_skipped``) and no message is sent for it. The ``reuse_done`` mark on the
slice item makes the choice final before the first send, so a resumed slice sends the
same groups.

**Redrive** (:func:`redrive`, the state machine's ``Redrive`` state, started by an execution
whose input is ``{"redrive": JOB}``): a FAILED job goes back to RUNNING; every group that
did not succeed is reset (FAILED → PENDING, counted remaining again; a fresh
``limits.max_attempts`` budget), its index written to redrive slices, and the
``WriteGroups`` children re-send those groups' messages. Succeeded groups are not
touched; the aggregation then runs over every committed result. A SUCCEEDED job's redrive
does nothing (``noop``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from parceler import pipeline, shuffle, spec_store, storage
from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.details import GroupDetails
from parceler.errors import (
    ManifestError,
    ObjectNotFoundError,
    RedriveError,
    SpecError,
)
from parceler.identity import group_identity, processor_identity
from parceler.ledger import FAILED, SUCCEEDED, CachedResult, GroupItem, JobItem, NewGroup, QueueName
from parceler.manifest import conform, read_summary, write_manifest, write_manifests
from parceler.messages import GroupMessage, encode
from parceler.models import DATA_FILE_SCHEMA, ManifestSummary
from parceler.partition import Limits
from parceler.planning import plan_by_key, plan_files
from parceler.processors import check_processor, reducer_of
from parceler.settings import PlannerSettings
from parceler.sources import load_source
from parceler.spec import JobSpec
from parceler.workarea import JobArea, new_run_id

log = logging.getLogger(__name__)

SLICE_GROUPS = 1_000
"""Groups per plan slice: one ``WriteGroups`` child writes this many group manifests (2,000
PUTs), ledger items and messages, well inside a Lambda's 15 minutes (docs/quotas.md)."""
WATERMARK_EVERY = 10
"""``SendMessageBatch`` calls between two raises of a slice's ``enqueued_through``."""
GROUP_WRITERS = 16
"""Threads writing one slice's group manifests (the work is waiting on S3 PUTs)."""
GROUPS_PER_WRITE = 64
"""Group manifests one writer thread writes per turn."""
INLINE_FILES = 100_000
"""The most files a one-slice plan may hold for :func:`plan` (the ``Plan`` task) to write
its slice itself: listing and writing that many take seconds, far inside a Lambda's 15
minutes (docs/quotas.md)."""
MIN_RECHECK_SECONDS = 60
MAX_RECHECK_SECONDS = 3_600


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What the planner returns to the state machine: counts and locations, never lists
    (docs/INTERNALS.md, the job state machine)."""

    job_id: str
    n_groups: int  # groups to send (a redrive: the groups it re-runs)
    n_slices: int  # slices left for the WriteGroups map to write
    slices_uri: str
    recheck_seconds: int
    noop: bool = False  # a redrive of a SUCCEEDED job: nothing to do

    def to_json(self) -> dict[str, Any]:
        where = storage.parse_uri(self.slices_uri)
        return {
            "job_id": self.job_id,
            "n_groups": self.n_groups,
            "n_slices": self.n_slices,
            "slices": {"bucket": where.bucket, "key": where.key},
            "recheck_seconds": self.recheck_seconds,
            "noop": self.noop,
        }


def limits_of(spec: JobSpec) -> Limits:
    """The partitioner's limits from the spec's ``partitioning``."""
    p = spec.partitioning
    return Limits(
        target_size=p.target_size,
        target_records=p.target_records,
        max_files=p.max_files,
        groups=p.groups,
    )


def route(size: int, spec: JobSpec) -> tuple[float, QueueName]:
    """Predicted seconds of a group of ``size`` bytes, and the queue that fits it."""
    seconds = size / spec.routing.throughput_bytes_per_second
    return seconds, ("lambda" if seconds <= spec.routing.lambda_max_seconds else "container")


def recheck_interval(predicted: Sequence[float], override: int | None = None) -> int:
    """How long the state machine waits for the completion signal before it re-checks the
    ledger itself: three times the longest group, 60 s to an hour (``override`` wins).

    The signal is the normal path; the re-check only bounds the delay of a lost signal, and
    each one costs ~6 history events, so a 30-day job re-checking hourly adds ~4,300 events
    at most (docs/quotas.md).
    """
    if override is not None:
        return max(1, int(override))
    longest = max(predicted, default=0.0)
    return int(max(MIN_RECHECK_SECONDS, min(MAX_RECHECK_SECONDS, math.ceil(3 * longest))))


def plan(spec: JobSpec, job_id: str, settings: PlannerSettings) -> PlanResult:
    """Plan job ``job_id`` (step 1 of the module docstring): everything but the group
    manifests, items and messages, which :func:`write_slice` writes per slice; a plan of
    one slice of at most :data:`INLINE_FILES` files has that slice written here too, so
    that the state machine skips the ``WriteGroups`` fan-out (a child execution costs
    latency on AWS as in the local mode).

    Idempotent: calling it again with the same job id and spec returns the recorded plan
    (and resumes the small plan's slice).

    Returns:
        The plan the state machine needs (counts, the slice item file, the re-check
        period); ``n_slices`` counts the slices left for ``WriteGroups``: 0 when this call
        wrote the only one (the ledger keeps the plan's own count).

    Raises:
        SpecError: the job id exists with a different spec.
        InputError: the source is empty, unreadable or malformed (nothing is sent).
        EnqueueError, RetryableError: a transient AWS failure; run again to resume.
    """
    ledger = _ledger(settings)
    spec_hash = spec_store.sha256(spec)
    # The ledger keeps only the hash: the spec's one copy is spec.json in the work area.
    # The run id is minted here, once per job item: it names this run's attempt folders.
    job, created = ledger.create_job(job_id, spec_json=spec_hash, run_id=new_run_id())
    if not created and job.spec != spec_hash:
        raise SpecError(
            f"job {job_id!r} already exists with a different spec.",
            "use a new job id (execution name) for a different spec.",
        )
    if job.n_groups is None:
        _plan(spec, job, settings, ledger)
        job = ledger.get_job(job_id)
    result = _result(job, settings)
    if result.n_slices == 1 and job.n_files is not None and job.n_files <= INLINE_FILES:
        # A small plan: its one slice is written here, and the WriteGroups fan-out skipped.
        write_slice(job_id, 0, settings)
        return dataclasses.replace(result, n_slices=0)
    return result


def _ledger(settings: PlannerSettings) -> Ledger:
    return Ledger(settings.ledger_table, retention_days=settings.ledger_retention_days)


def _plan(spec: JobSpec, job: JobItem, settings: PlannerSettings, ledger: Ledger) -> None:
    """Step 1: store the spec, list, pack, write the master manifest and the slices, record
    the plan."""
    job_id = job.job_id
    check_processor(
        spec.processor, reducer_of(spec), spec.kind
    )  # a spec that cannot run sends nothing
    area = JobArea(settings.work_bucket, job_id)
    spec_store.write_spec(area, spec)  # before anything that refers to it
    table = load_source(
        spec.source, include=spec.include, exclude=spec.exclude, count_records=spec.count_records
    )
    details = _details(spec, job)
    if spec.kind == "map_from_n":  # a group per partition of the map_to_n stage's shuffle
        shuffled = shuffle.pieces(table, f"source {spec.source}")
        packed = plan_by_key(shuffled.table, shuffled.partition)
        sizes = shuffle.partition_sizes(shuffled.sizes())
        details = {**details, "partition_sizes": sizes.to_json()}
        if sizes.skewed:
            log.warning(
                "job %s: partitions %s hold over %dx the median partition (%d bytes)",
                job_id, sizes.skewed, shuffle.SKEW_FACTOR, sizes.median,
            )  # fmt: skip
    else:
        # Incremental jobs plan stable groups: a few new files must not reshuffle every group.
        packed = plan_files(table, limits_of(spec), stable=spec.incremental)
    master = write_manifest(packed.table, area.manifest, details=details)
    grouped = conform(packed.by_group(), f"plan of job {job_id}")
    group_of = np.repeat(np.arange(packed.n_groups, dtype=np.int32), np.diff(packed.offsets))
    n_slices = math.ceil(packed.n_groups / SLICE_GROUPS)

    def write(k: int) -> None:
        first, last = k * SLICE_GROUPS, min((k + 1) * SLICE_GROUPS, packed.n_groups)
        start, stop = int(packed.offsets[first]), int(packed.offsets[last])
        rows = grouped.slice(start, stop - start).append_column(
            "group", pa.array(group_of[start:stop], pa.int32())
        )
        sink = io.BytesIO()
        pq.write_table(rows, sink, compression="zstd")
        storage.write_bytes(area.plan_slice(k), sink.getvalue())

    with ThreadPoolExecutor(max_workers=GROUP_WRITERS) as threads:
        list(threads.map(write, range(n_slices)))
    storage.write_bytes(
        area.plan_slices,
        json.dumps(_slice_items(job_id, n_slices)).encode(),
        content_type="application/json",
    )
    predicted = [route(int(size), spec)[0] for size in packed.partition.size]
    recorded = ledger.record_plan(
        job_id,
        n_groups=packed.n_groups,
        attrs={
            "n_slices": n_slices,
            "recheck_seconds": recheck_interval(predicted, spec.limits.recheck_seconds),
            "n_files": master.n_files,
            "total_size": master.total_size,
            "fingerprint": master.fingerprint,
        },
    )
    if not recorded:
        log.warning("job %s: another planner recorded the plan first; keeping its record", job_id)


def _slice_items(job_id: str, n_slices: int, redrive: int = 0) -> list[dict[str, Any]]:
    """The ``WriteGroups`` items: each names its job (an execution that redrives a job is
    named otherwise), its slice and its redrive (0 for the job's first run)."""
    return [{"job_id": job_id, "slice": k, "redrive": redrive} for k in range(n_slices)]


def _details(spec: JobSpec, job: JobItem) -> dict[str, Any]:
    if job.run_id is None:
        raise ManifestError(
            f"job {job.job_id!r} has no run id in the ledger (planned by an older parceler).",
            "run the job again under a new job id.",
        )
    return GroupDetails(
        job_id=job.job_id, spec_sha256=spec_store.sha256(spec), run_id=job.run_id
    ).to_details()


def write_slice(
    job_id: str,
    slice_index: int,
    settings: PlannerSettings,
    *,
    redrive: int = 0,
    send_attempts: int = 5,
) -> int:
    """Write plan slice ``slice_index``'s group manifests, ledger items and messages (step 2
    of the module docstring), reusing cached results in an incremental job; or, for
    ``redrive`` > 0, re-send that redrive's slice. Idempotent and resumable.

    Returns:
        The number of groups in the slice.

    Raises:
        ManifestError: the slice does not belong to a recorded plan.
        EnqueueError, RetryableError: run again to resume.
    """
    if redrive:
        return _resend_slice(job_id, redrive, slice_index, settings, send_attempts)
    ledger = _ledger(settings)
    job = ledger.get_job(job_id)
    n_groups = int(job.n_groups or 0)
    first, last = slice_index * SLICE_GROUPS, min((slice_index + 1) * SLICE_GROUPS, n_groups)
    if job.n_groups is None or first >= last:
        raise ManifestError(
            f"job {job_id!r} has no plan slice {slice_index} (planned groups: {job.n_groups})."
        )
    area = JobArea(settings.work_bucket, job_id)
    spec = spec_store.read_spec(area, job.spec)
    rows = pq.read_table(io.BytesIO(storage.read_bytes(area.plan_slice(slice_index))))
    table = rows.select(DATA_FILE_SCHEMA.names).cast(DATA_FILE_SCHEMA)
    counts = np.bincount(rows.column("group").to_numpy() - first, minlength=last - first)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    uris = [area.group(g).manifest for g in range(first, last)]
    details = _details(spec, job)

    def write(at: int) -> list[ManifestSummary]:
        end = min(at + GROUPS_PER_WRITE, last - first)
        return write_manifests(
            table.slice(int(offsets[at]), int(offsets[end] - offsets[at])),
            offsets[at : end + 1] - offsets[at],
            uris[at:end],
            first_group_index=first + at,
            group_count=n_groups,
            parent_fingerprint=job.fingerprint,
            details=details,
        )

    with ThreadPoolExecutor(max_workers=GROUP_WRITERS) as threads:
        chunks = range(0, last - first, GROUPS_PER_WRITE)
        summaries = [s for batch in threads.map(write, chunks) for s in batch]
    processor = processor_identity(spec) if spec.incremental else None
    groups = []
    for uri, summary in zip(uris, summaries, strict=True):
        seconds, queue_name = route(summary.total_size, spec)
        groups.append(
            NewGroup(
                index=int(summary.group_index or 0),
                fingerprint=summary.fingerprint,
                summary_uri=uri,
                predicted_seconds=seconds,
                queue=queue_name,
                n_files=summary.n_files,
                size=summary.total_size,
                identity=(
                    None if processor is None else group_identity(summary.fingerprint, processor)
                ),
            )
        )
    marks = ledger.get_slice(job_id, slice_index)
    if not marks.get("items_written"):
        ledger.put_groups(job_id, groups)
        ledger.mark_slice(job_id, slice_index, items_written=True)
    to_send: Sequence[NewGroup] = groups
    if processor is not None:
        if not marks.get("reuse_done"):
            _reuse(job_id, groups, ledger)
            ledger.mark_slice(job_id, slice_index, reuse_done=True)
        # The items say which groups were reused: the same answer on every resume.
        items = ledger.get_groups(job_id, [g.index for g in groups])
        to_send = [g for g in groups if (item := items.get(g.index)) is None or not item.skipped]
    through = int(marks.get("enqueued_through") or 0)
    _enqueue(job_id, slice_index, to_send, settings, ledger, through, send_attempts)
    ledger.mark_job(job_id, "RUNNING", expected=["PLANNING"])
    return len(groups)


def _reuse(job_id: str, groups: Sequence[NewGroup], ledger: Ledger) -> int:
    """Commit the cached result of every group whose identity has one that still exists
    (its result summary reads back, for this group's files); returns how many."""
    cached = ledger.get_cached_results([g.identity for g in groups if g.identity])
    candidates = [(g, cached[g.identity]) for g in groups if g.identity in cached]

    def reuse(pair: tuple[NewGroup, CachedResult]) -> bool:
        group, result = pair
        try:
            summary = read_summary(result.result_uri)
        except (ObjectNotFoundError, ManifestError) as exc:
            log.warning("job %s group %d: cached result unusable (%s)", job_id, group.index, exc)
            return False
        if summary.parent_fingerprint != group.fingerprint:
            return False
        return ledger.reuse_group(job_id, group.index, result)

    with ThreadPoolExecutor(max_workers=GROUP_WRITERS) as threads:
        return sum(threads.map(reuse, candidates))


def redrive(job_id: str, execution: str, settings: PlannerSettings) -> PlanResult:
    """Start redrive of job ``job_id`` run by execution ``execution`` (see the module
    docstring): reset every group that did not succeed and write the slices that re-send
    them. Idempotent for one execution (a retried step resumes).

    Returns:
        The groups to re-send and their slices; ``noop`` for a SUCCEEDED job.

    Raises:
        JobNotFoundError: no such job.
        RedriveError: the job is still running, or was never planned.
    """
    ledger = _ledger(settings)
    job = ledger.get_job(job_id)
    area = JobArea(settings.work_bucket, job_id)
    resuming = job.redrive_execution == execution and job.status not in (SUCCEEDED, FAILED)
    if job.status == SUCCEEDED and not resuming:
        return PlanResult(job_id, 0, 0, area.plan_slices, MIN_RECHECK_SECONDS, noop=True)
    if job.n_groups is None:
        raise RedriveError(
            f"job {job_id!r} failed before its groups were planned: there is nothing to redrive.",
            "run the job again (fix the spec or the source first).",
        )
    if job.status != FAILED and not resuming:
        raise RedriveError(
            f"job {job_id!r} is {job.status}: only a finished job can be redriven.",
            f"wait for it to finish (`parceler status {job_id}`), or cancel it first.",
        )
    started = ledger.start_redrive(job_id, execution)
    if started is None:
        raise RedriveError(
            f"job {job_id!r} changed while its redrive started (another redrive?).",
            f"check `parceler status {job_id}` and redrive again once it has finished.",
        )
    number = started.redrives
    rerun = [g for g in ledger.list_groups(job_id) if g.status != SUCCEEDED]

    def reset(group: GroupItem) -> None:
        if group.redrive != number:
            ledger.reset_group(job_id, group, number)

    with ThreadPoolExecutor(max_workers=GROUP_WRITERS) as threads:
        list(threads.map(reset, rerun))
    n_slices = math.ceil(len(rerun) / SLICE_GROUPS)
    for k in range(n_slices):
        indices = [g.index for g in rerun[k * SLICE_GROUPS : (k + 1) * SLICE_GROUPS]]
        storage.write_bytes(
            area.redrive_slice(number, k),
            json.dumps(indices).encode(),
            content_type="application/json",
        )
    slices_uri = area.redrive_slices(number)
    storage.write_bytes(
        slices_uri,
        json.dumps(_slice_items(job_id, n_slices, number)).encode(),
        content_type="application/json",
    )
    log.info("job %s: redrive %d re-runs %d group(s)", job_id, number, len(rerun))
    recheck = int(started.recheck_seconds or MAX_RECHECK_SECONDS)
    return PlanResult(job_id, len(rerun), n_slices, slices_uri, recheck)


def _resend_slice(
    job_id: str, redrive_number: int, slice_index: int, settings: PlannerSettings, attempts: int
) -> int:
    """Send the messages of one redrive slice's groups again (a duplicate is harmless: the
    worker finds the group claimed or committed)."""
    ledger = _ledger(settings)
    area = JobArea(settings.work_bucket, job_id)
    indices = json.loads(storage.read_bytes(area.redrive_slice(redrive_number, slice_index)))
    items = ledger.get_groups(job_id, [int(i) for i in indices])
    groups = [
        NewGroup(
            index=g.index,
            fingerprint=g.fingerprint or "",
            summary_uri=g.summary_uri or area.group(g.index).manifest,
            predicted_seconds=g.predicted_seconds or 0.0,
            queue="container" if g.queue == "container" else "lambda",
            n_files=g.n_files or 0,
            size=g.size or 0,
        )
        for g in sorted(items.values(), key=lambda g: g.index)
        if not g.terminal
    ]
    urls = {"lambda": settings.lambda_queue_url, "container": settings.container_queue_url}
    for queue_name in ("lambda", "container"):
        bodies = [
            encode(GroupMessage(summary_uri=g.summary_uri)) for g in groups if g.queue == queue_name
        ]
        for start in range(0, len(bodies), queue.SEND_BATCH):
            queue.send_batch(
                urls[queue_name], bodies[start : start + queue.SEND_BATCH], attempts=attempts
            )
    return len(groups)


def plan_and_send(spec: JobSpec, job_id: str, settings: PlannerSettings) -> PlanResult:
    """Both planning steps in this process, slice after slice: what the state machine's
    ``Plan`` and ``WriteGroups`` states do, for callers without one (tests, benches)."""
    result = plan(spec, job_id, settings)
    for slice_index in range(result.n_slices):
        write_slice(job_id, slice_index, settings)
    return result


def _enqueue(
    job_id: str,
    slice_index: int,
    groups: Sequence[NewGroup],
    settings: PlannerSettings,
    ledger: Ledger,
    through: int,
    send_attempts: int,
) -> None:
    """Send every group of a slice past its ``enqueued_through`` watermark, 10 per call."""
    urls = {"lambda": settings.lambda_queue_url, "container": settings.container_queue_url}
    ordered = sorted(groups, key=lambda g: (g.queue != "lambda", g.index))
    position = 0
    calls = 0
    for queue_name in ("lambda", "container"):
        members = [g for g in ordered if g.queue == queue_name]
        for start in range(0, len(members), queue.SEND_BATCH):
            chunk = members[start : start + queue.SEND_BATCH]
            first, position = position, position + len(chunk)
            unsent = chunk[max(0, through - first) :]
            if not unsent:
                continue
            bodies = [encode(GroupMessage(summary_uri=g.summary_uri)) for g in unsent]
            queue.send_batch(urls[queue_name], bodies, attempts=send_attempts)
            calls += 1
            if calls % WATERMARK_EVERY == 0:
                ledger.mark_slice(job_id, slice_index, enqueued_through=position)
    if position > through:
        ledger.mark_slice(job_id, slice_index, enqueued_through=position)


def _result(job: JobItem, settings: PlannerSettings) -> PlanResult:
    return PlanResult(
        job_id=job.job_id,
        n_groups=int(job.n_groups or 0),
        n_slices=int(job.n_slices or 0),
        slices_uri=JobArea(settings.work_bucket, job.job_id).plan_slices,
        recheck_seconds=int(job.recheck_seconds or MAX_RECHECK_SECONDS),
    )


def start_pipeline(
    document: dict[str, Any], execution: str, settings: PlannerSettings
) -> dict[str, Any]:
    """The ``StartPipeline`` state: :func:`parceler.pipeline.start`."""
    return pipeline.start(document, execution, settings.work_bucket, _ledger(settings))


def next_stage(state: dict[str, Any], settings: PlannerSettings) -> dict[str, Any]:
    """The ``NextStage`` state: :func:`parceler.pipeline.next_stage`."""
    return pipeline.next_stage(state, settings.work_bucket, _ledger(settings))
