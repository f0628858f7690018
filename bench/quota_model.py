"""The quota model: what a job of F files and G groups costs against each AWS quota.

``python -m bench.quota_model`` prints, for the README's 1M-file case and a 10M-file job,
each quota's limit, the modelled value, the margin and whether it fits
(``bench/results/quotas.md`` holds the output). Every input is a named field of
:class:`Parameters` with its provenance, so the numbers can be re-calibrated from the real
design's measurements (``parceler.history.measure_execution`` on a local run gives the
events per state; ``ExecutionMeasure.events_by_state``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass

from parceler import quotas
from parceler import state_machine as _state_machine
from parceler.aggregator import AGGREGATION_BATCH
from parceler.aws.ledger import GROUPS_PER_SHARD, MAX_SHARDS
from parceler.planner import SLICE_GROUPS

# The model reads the design's own numbers: the Maps' concurrency from the one definition.
_STATES = json.loads(_state_machine.template())["States"]
WRITE_GROUPS_CONCURRENCY = int(_STATES["WriteGroups"]["MaxConcurrency"])
REDUCE_BATCHES_CONCURRENCY = int(_STATES["ReduceBatches"]["MaxConcurrency"])

# Events a state adds to a history (measured on moto 5.2.5, tests/functional/test_quotas_on_moto.py
# and the measurements): Task = entered, scheduled, started, succeeded, exited.
EVENTS_PER_TASK = 5
EVENTS_PER_PASS_OR_CHOICE = 2
EVENTS_PER_DISTRIBUTED_MAP = (
    6  # entered, started, MapRunStarted, MapRunSucceeded, succeeded, exited
)
EVENTS_PER_EXECUTION = 2  # ExecutionStarted, ExecutionSucceeded


@dataclass(frozen=True, slots=True)
class Parameters:
    """Model inputs. Defaults are the design of issue 10; each says where it comes from."""

    # The workload (README's 1M case: 58,052 groups of 1 GB, 20-s groups, concurrency 50).
    files: int = 1_000_000
    groups: int = 58_052
    group_seconds: float = 20.0
    concurrency: int = 50
    # The parent: Plan (Task), SlicesToWrite (Choice), WriteGroups (Distributed Map),
    # WaitForGroups (Task), Choice, PrepareAggregation (Task), BatchesToReduce (Choice),
    # ReduceBatches (Distributed Map), FinalReduce (Task), Choice, Succeed. Re-check: a timed-out wait, its Catch and a re-register (~8 events, brief).
    parent_tasks: int = 4
    parent_distributed_maps: int = 2
    parent_pass_or_choice: int = 5
    events_per_recheck: int = 8
    recheck_seconds: float = 3600.0  # the period stops doubling once it reaches this
    recheck_first_seconds: float = 60.0  # the plan's recheck_seconds for short groups
    # A child runs one Lambda task (writer slice or batch reducer).
    child_tasks: int = 1
    # State payloads: the spec and a few URIs and counts (the console spec, 2 KiB, is the
    # largest input; a 40-character job id in every URI).
    spec_bytes: int = 2048
    state_overhead_bytes: int = 1024
    batch_item_bytes: int = 200  # {job_id, batch_index, first_group, n_groups}
    # Planner Lambda (bench/results/partition.md: pack CPU 1.9 s at 1M flat, 40 s at 10M
    # hierarchical -> 4 us/file; peak RSS 352 MB at 1M, 2,072 MB at 10M -> 161 MB + 191 B/file).
    pack_seconds_per_file: float = 4e-6
    plan_memory_base_mb: float = 161.0
    plan_memory_bytes_per_file: float = 191.0
    # Listing the source: ListObjectsV2 returns 1,000 keys per call; ~60 ms per call
    # (an estimate, not measured here: moto is not AWS). An S3 Inventory source avoids it.
    list_seconds_per_1000_files: float = 0.06
    # Writer slices (bench/results/plan.md: 0.54 ms CPU per group manifest; 2 PUTs per
    # group; S3 PUT ~30 ms with 16 threads; BatchWriteItem 25 items, SendMessageBatch 10).
    groups_per_slice: int = SLICE_GROUPS  # parceler.planner
    writer_cpu_seconds_per_group: float = 0.00054
    writer_threads: int = 16
    s3_put_seconds: float = 0.03
    api_call_seconds: float = 0.03
    writer_concurrency: int = (
        WRITE_GROUPS_CONCURRENCY  # the writer Map's MaxConcurrency: sized to the S3 PUT rate
    )
    writer_memory_mb: float = 300.0  # a slice of 1,000 rows plus the runtime (estimate)
    # Aggregation children: one per batch of G groups; a GET per group result.
    groups_per_batch: int = AGGREGATION_BATCH  # parceler.aggregator
    s3_get_seconds: float = 0.02
    reducer_threads: int = 16
    aggregate_concurrency: int = (
        REDUCE_BATCHES_CONCURRENCY  # the reduce Map's MaxConcurrency: 5 x 800 GET/s fits S3
    )
    # Ledger: items under 1 KB; a commit is one transaction of 2 items on one shard key.
    item_kb: int = 1
    groups_per_shard: int = GROUPS_PER_SHARD  # parceler.aws.ledger
    max_shards: int = MAX_SHARDS
    required_commit_rate: float = 1000.0  # issue 10: the counters sustain >= 1,000 commits/s
    # SQS.
    retention_seconds: int = quotas.SQS_RETENTION.limit  # the stack sets 14 days
    receive_batch: int = 1


@dataclass(frozen=True, slots=True)
class Row:
    """One quota against one modelled value."""

    quota: str
    limit: float
    value: float
    unit: str

    @property
    def margin(self) -> float:
        return 1.0 - self.value / self.limit

    @property
    def fits(self) -> bool:
        return self.value <= self.limit


def duration_seconds(p: Parameters) -> float:
    """Wall time of the processing phase: groups spread evenly over the workers."""
    return p.groups * p.group_seconds / p.concurrency


def parent_history_events(p: Parameters) -> int:
    """Fixed states plus the re-checks: the period starts at ``recheck_first_seconds`` and
    doubles (Choice + Pass, 10 events) until it reaches an hour (Choice only, 8 events).
    Independent of the groups; logarithmic, then hourly, in the duration."""
    fixed = (
        EVENTS_PER_EXECUTION
        + p.parent_tasks * EVENTS_PER_TASK
        + p.parent_distributed_maps * EVENTS_PER_DISTRIBUTED_MAP
        + p.parent_pass_or_choice * EVENTS_PER_PASS_OR_CHOICE
    )
    left, period, events = duration_seconds(p), p.recheck_first_seconds, 0
    while period < p.recheck_seconds and left >= period:
        left, period, events = left - period, 2 * period, events + p.events_per_recheck + 2
    return fixed + events + math.floor(left / period) * p.events_per_recheck


def largest_child_events(p: Parameters) -> int:
    """A child execution: its start and end plus its tasks, whatever its batch size."""
    return EVENTS_PER_EXECUTION + p.child_tasks * EVENTS_PER_TASK


def largest_state_bytes(p: Parameters) -> int:
    return p.spec_bytes + p.state_overhead_bytes


def plan_seconds(p: Parameters) -> float:
    """The Plan Lambda: list the source and pack it (the writers do the rest)."""
    return p.files / 1000 * p.list_seconds_per_1000_files + p.files * p.pack_seconds_per_file


def plan_memory_mb(p: Parameters) -> float:
    return p.plan_memory_base_mb + p.files * p.plan_memory_bytes_per_file / 1e6


def writer_slice_seconds(p: Parameters) -> float:
    """One writer child: encode, PUT 2 objects per group, ledger and SQS batches."""
    n = p.groups_per_slice
    puts = 2 * n * p.s3_put_seconds / p.writer_threads
    calls = (math.ceil(n / 25) + math.ceil(n / 10)) * p.api_call_seconds
    return n * p.writer_cpu_seconds_per_group + puts + calls


def s3_put_rate(p: Parameters) -> float:
    """PUTs per second into the job's group prefix with every writer running."""
    return p.writer_concurrency * 2 * p.groups_per_slice / writer_slice_seconds(p)


def reduce_batch_seconds(p: Parameters) -> float:
    return p.groups_per_batch * p.s3_get_seconds / p.reducer_threads


def final_reduce_seconds(p: Parameters) -> float:
    return math.ceil(p.groups / p.groups_per_batch) * p.s3_get_seconds / p.reducer_threads


def s3_get_rate(p: Parameters) -> float:
    return p.aggregate_concurrency * p.reducer_threads / p.s3_get_seconds


def shards(p: Parameters) -> int:
    return min(p.max_shards, max(1, math.ceil(p.groups / p.groups_per_shard)))


def wcu_per_commit(p: Parameters) -> int:
    """A transaction of the group item and its shard's counter item: 2 WCU per KB each."""
    return 2 * p.item_kb * quotas.DYNAMODB_TRANSACTION_WCU_PER_KB


def wcu_per_shard_second(p: Parameters, commit_rate: float) -> float:
    """WCU/s on one shard key with commits spread evenly over the shards."""
    return wcu_per_commit(p) * commit_rate / shards(p)


def commit_rate(p: Parameters) -> float:
    return p.concurrency / p.group_seconds


def queue_residency_seconds(p: Parameters) -> float:
    """The last message sent waits (nearly) the whole processing phase."""
    return duration_seconds(p)


def in_flight_messages(p: Parameters) -> int:
    return p.concurrency * p.receive_batch


def rows(p: Parameters) -> list[Row]:
    """Every modelled quota for one workload."""
    q = quotas
    return [
        Row("parent history events", q.HISTORY_EVENTS.limit, parent_history_events(p), "events"),
        Row("largest child history events", q.HISTORY_EVENTS.limit, largest_child_events(p),
            "events"),
        Row("largest state input/output", q.STATE_PAYLOAD.limit, largest_state_bytes(p), "bytes"),
        Row("Distributed Map child item", q.STATE_PAYLOAD.limit, p.batch_item_bytes, "bytes"),
        Row("Plan Lambda seconds", q.LAMBDA_TIMEOUT.limit, plan_seconds(p), "s"),
        Row("Plan Lambda memory", q.LAMBDA_MEMORY.limit, plan_memory_mb(p), "MB"),
        Row("writer slice Lambda seconds", q.LAMBDA_TIMEOUT.limit, writer_slice_seconds(p), "s"),
        Row("writer slice Lambda memory", q.LAMBDA_MEMORY.limit, p.writer_memory_mb, "MB"),
        Row("batch reducer Lambda seconds", q.LAMBDA_TIMEOUT.limit, reduce_batch_seconds(p), "s"),
        Row("final reduce Lambda seconds", q.LAMBDA_TIMEOUT.limit, final_reduce_seconds(p), "s"),
        Row("S3 PUT/s into the group prefix", q.S3_PUT_RATE.limit, s3_put_rate(p), "req/s"),
        Row("S3 GET/s from the group prefix", q.S3_GET_RATE.limit, s3_get_rate(p), "req/s"),
        Row(f"WCU/s per shard key at the job's {commit_rate(p):.1f} commits/s",
            q.DYNAMODB_PARTITION_WCU.limit, wcu_per_shard_second(p, commit_rate(p)), "WCU/s"),
        Row(f"WCU/s per shard key at {p.required_commit_rate:,.0f} commits/s",
            q.DYNAMODB_PARTITION_WCU.limit, wcu_per_shard_second(p, p.required_commit_rate),
            "WCU/s"),
        Row("SQS queue residency (last message)", p.retention_seconds, queue_residency_seconds(p),
            "s"),
        Row("SQS in-flight messages", q.SQS_IN_FLIGHT.limit, in_flight_messages(p), "messages"),
    ]  # fmt: skip


WORKLOADS = {
    "1M files": Parameters(),
    "10M files": Parameters(files=10_000_000, groups=579_405),
}


def table(workloads: dict[str, Parameters]) -> str:
    """A markdown table: one row per quota, value / margin / fits per workload."""
    names = list(workloads)
    header = "| quota | limit | " + " | ".join(f"{n} | margin | fits" for n in names) + " |"
    lines = [header, "|" + "---|" * (2 + 3 * len(names))]
    per_workload = [rows(p) for p in workloads.values()]
    for index, first in enumerate(per_workload[0]):
        cells = [first.quota.split(" at the job")[0], f"{first.limit:,.0f} {first.unit}"]
        for workload_rows in per_workload:
            row = workload_rows[index]
            cells += [f"{row.value:,.1f}", f"{row.margin:.1%}", "yes" if row.fits else "**NO**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a Parameters field for every workload (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    overrides: dict[str, float] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = float(value)
    workloads = {
        name: dataclasses.replace(p, **{k: type(getattr(p, k))(v) for k, v in overrides.items()})
        for name, p in WORKLOADS.items()
    }
    for name, p in workloads.items():
        print(f"{name}: {p.groups:,} groups, {duration_seconds(p) / 3600:.1f} h of processing "
              f"at concurrency {p.concurrency}, {shards(p)} ledger shards")  # fmt: skip
    print()
    print(table(workloads))
    return 0 if all(r.fits for p in workloads.values() for r in rows(p)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
