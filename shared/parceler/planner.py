"""Plan a job: spec → source → groups → ledger items → one SQS message per group, idempotently.

:func:`plan` may be re-run with the same job id at any point (a planner Lambda that
timed out, a Step Functions retry). Each phase leaves a mark in the job item, and a re-run
resumes after the last mark instead of starting over:

1. **job item** (``status = PLANNING``, the spec's hash) created with
   ``attribute_not_exists(pk)``; a re-run with a different spec for the same id is refused
   (:class:`SpecError`). The spec itself is stored once, in the work area (``spec.json``).
2. **plan recorded**: source listed, groups packed and written to the work area, group
   items written, then ``n_groups``/``remaining`` set on the job item under
   ``attribute_not_exists(n_groups)``. A crash before that mark replans from scratch —
   harmless, because no message has been sent yet (group items are overwritten; group
   manifests are rewritten). After the mark the plan is never recomputed: a changed source
   cannot change a job in flight.
3. **messages sent**: groups are sent in a fixed order (by queue, then group index), in
   ``SendMessageBatch`` calls of 10; after each call the job's ``enqueued_through``
   watermark is raised. A re-run sends only the groups past the watermark, so a crash
   between batches duplicates nothing. (A crash in the few milliseconds between a
   successful send and its watermark update re-sends at most that one batch; a duplicate
   message is harmless — the worker finds the group claimed or committed and drops it.)
4. ``status = RUNNING``. A re-run of a job past PLANNING returns the recorded plan without
   touching anything.

Not done: incremental runs (skipping groups whose fingerprint and processor version were
committed by an earlier job) — every job processes all its groups.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parceler import spec_store
from parceler.aws import queue
from parceler.aws.ledger import Ledger
from parceler.details import GroupDetails
from parceler.errors import SpecError
from parceler.ledger import JobItem, NewGroup, QueueName
from parceler.messages import GroupMessage, encode
from parceler.partition import Limits
from parceler.planning import plan_files, write_plan
from parceler.processors import check_processor, reducer_of
from parceler.settings import PlannerSettings
from parceler.sources import load_source
from parceler.spec import JobSpec
from parceler.workarea import JobArea

log = logging.getLogger(__name__)

AGGREGATION_BATCH = 50  # groups per aggregation Map item


@dataclass(frozen=True, slots=True)
class AggregationBatch:
    """One item of the aggregation Map: a contiguous run of group indices."""

    job_id: str
    batch_index: int
    first_group: int
    n_groups: int

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "batch_index": self.batch_index,
            "first_group": self.first_group,
            "n_groups": self.n_groups,
        }


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What the planner returns to the state machine (docs/INTERNALS.md, job state machine)."""

    job_id: str
    n_groups: int
    batches: list[AggregationBatch]
    poll_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "n_groups": self.n_groups,
            "batches": [b.to_json() for b in self.batches],
            "poll_seconds": self.poll_seconds,
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


def poll_interval(predicted: Sequence[float]) -> int:
    """How often the state machine polls the ledger: a tenth of the longest group, 1 to 60 s.

    Short jobs (and the local mode) see their end within a second; a job of hour-long
    groups polls once a minute, so polling costs a few state transitions per group-hour.
    """
    longest = max(predicted, default=0.0)
    return int(max(1, min(60, math.ceil(longest / 10))))


def aggregation_batches(
    job_id: str, n_groups: int, size: int = AGGREGATION_BATCH
) -> list[AggregationBatch]:
    """Contiguous batches of ``size`` groups (the last may be shorter)."""
    return [
        AggregationBatch(job_id, i, first, min(size, n_groups - first))
        for i, first in enumerate(range(0, n_groups, size))
    ]


def plan(
    spec: JobSpec,
    job_id: str,
    settings: PlannerSettings,
    *,
    batch_size: int = AGGREGATION_BATCH,
    send_attempts: int = 5,
) -> PlanResult:
    """Plan job ``job_id``: write its groups, record them in the ledger, send their messages.

    Idempotent and resumable (see the module docstring): calling it again with the same
    job id and spec creates no duplicate ledger items and sends no duplicate messages.

    Args:
        spec: the validated job spec.
        job_id: the job id (the execution name).
        settings: ledger table, work bucket and the two queue URLs.
        batch_size: groups per aggregation batch in the result.
        send_attempts: ``SendMessageBatch`` calls per batch before giving up.

    Returns:
        The plan the state machine needs (group count, aggregation batches, poll interval).

    Raises:
        SpecError: the job id exists with a different spec.
        InputError: the source is empty, unreadable or malformed (nothing is sent).
        EnqueueError: messages could not be sent; run again to resume.
        RetryableError: a transient AWS failure; run again to resume.
    """
    ledger = Ledger(settings.ledger_table, retention_days=settings.ledger_retention_days)
    spec_hash = spec_store.sha256(spec)
    # The ledger keeps only the hash: the spec's one copy is spec.json in the work area.
    job, created = ledger.create_job(job_id, spec_json=spec_hash)
    if not created and job.spec != spec_hash:
        raise SpecError(
            f"job {job_id!r} already exists with a different spec.",
            "use a new job id (execution name) for a different spec.",
        )
    if job.status != "PLANNING":
        return _result(job, batch_size)

    groups: list[NewGroup] | None = None
    if job.n_groups is None:
        groups = _plan(spec, spec_hash, job_id, settings, ledger)
        job = ledger.get_job(job_id)
    if groups is None or job.n_groups != len(groups):
        groups = [
            NewGroup(
                g.index,
                g.fingerprint or "",
                g.summary_uri or "",
                float(g.predicted_seconds or 0.0),
                "container" if g.queue == "container" else "lambda",
                g.n_files or 0,
                g.size or 0,
            )
            for g in ledger.list_groups(job_id)
        ]
    _enqueue(job_id, groups, settings, ledger, job.enqueued_through, send_attempts)
    ledger.mark_job(job_id, "RUNNING", expected=["PLANNING"])
    return _result(ledger.get_job(job_id), batch_size)


def _plan(
    spec: JobSpec, spec_hash: str, job_id: str, settings: PlannerSettings, ledger: Ledger
) -> list[NewGroup]:
    """Phase 2: store the spec, list, pack, write group manifests and group items, then
    record the plan."""
    check_processor(spec.processor, reducer_of(spec))  # a spec that cannot run sends nothing
    area = JobArea(settings.work_bucket, job_id)
    spec_store.write_spec(area, spec)  # before anything that refers to it
    table = load_source(
        spec.source, include=spec.include, exclude=spec.exclude, count_records=spec.count_records
    )
    packed = plan_files(table, limits_of(spec))
    details = GroupDetails(job_id=job_id, spec_sha256=spec_hash)
    written = write_plan(packed, area.folder, details=details.to_details())
    groups = []
    for uri, summary in zip(written.group_summary_uris, written.group_summaries, strict=True):
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
            )
        )
    ledger.put_groups(job_id, groups)
    recorded = ledger.record_plan(
        job_id,
        n_groups=len(groups),
        attrs={
            "poll_seconds": poll_interval([g.predicted_seconds for g in groups]),
            "plan_uri": written.index_uri,
            "n_files": written.master.n_files,
            "total_size": written.master.total_size,
            "fingerprint": written.master.fingerprint,
        },
    )
    if not recorded:
        log.warning(
            "job %s: another planner recorded the plan first; resuming from its record", job_id
        )
    return groups


def _enqueue(
    job_id: str,
    groups: Sequence[NewGroup],
    settings: PlannerSettings,
    ledger: Ledger,
    through: int,
    send_attempts: int,
) -> None:
    """Phase 3: send every group past the ``enqueued_through`` watermark, 10 per call."""
    urls = {"lambda": settings.lambda_queue_url, "container": settings.container_queue_url}
    ordered = sorted(groups, key=lambda g: (g.queue != "lambda", g.index))
    position = 0
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
            ledger.advance_job_counter(job_id, "enqueued_through", position)


def _result(job: JobItem, batch_size: int) -> PlanResult:
    n_groups = int(job.n_groups or 0)
    return PlanResult(
        job_id=job.job_id,
        n_groups=n_groups,
        batches=aggregation_batches(job.job_id, n_groups, batch_size),
        poll_seconds=job.poll_seconds or 5,
    )
