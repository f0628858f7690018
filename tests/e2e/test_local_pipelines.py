"""Whole pipelines in the local mode: map, map_to_n and map_from_n stages in one execution.

Each test checks the pipeline's result against a direct count over the same files, so a
piece lost, read twice or routed to two partitions fails it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from parceler import aws
from parceler.aws.ledger import Ledger
from parceler.execution import PipelineResult, follow_pipeline, start_pipeline
from parceler.ledger import RUNNING, SUCCEEDED
from parceler.local.session import LocalSession
from parceler.pipeline import stage_job_id
from parceler.shuffle import DATA_NAME, INDEX_NAME, partition_of
from parceler.spec import PipelineSpec, parse_pipeline
from tests.e2e import procs
from tests.e2e.conftest import JOB_TIMEOUT_SECONDS, parceler
from tests.e2e.test_local_jobs import wait_for

pytestmark = pytest.mark.e2e
Run = Callable[..., subprocess.CompletedProcess[str]]
KEYS = [f"k{i}" for i in range(23)]


def keyed_files(folder: Path, n_files: int, lines: int = 30) -> Counter[str]:
    """Files of lines ``<file> <key> <i>``; return the lines per key (the direct count)."""
    folder.mkdir(parents=True)
    truth: Counter[str] = Counter()
    for f in range(n_files):
        rows = [KEYS[(f * 7 + i * i) % len(KEYS)] for i in range(lines + f % 5)]
        (folder / f"part-{f:03d}.txt").write_text(
            "".join(f"part-{f:03d}.txt {key} {i}\n" for i, key in enumerate(rows))
        )
        truth.update(rows)
    return truth


def python_pipeline(
    source: Path, *, mappers: int, partitions: int, route: str, merge: str = "count_by_key"
) -> PipelineSpec:
    return parse_pipeline(
        {
            "source": str(source),
            "stages": [
                {"name": "upper", "processor": {"kind": "python",
                 "function": "tests.e2e.procs:upper_named"}, "partitioning": {"groups": 4}},
                {"name": "route", "kind": "map_to_n", "partitions": partitions,
                 "processor": {"kind": "python", "function": f"tests.e2e.procs:{route}"},
                 "partitioning": {"groups": mappers}, "reducer": {"name": "sum"}},
                {"name": "count", "kind": "map_from_n",
                 "processor": {"kind": "python", "function": f"tests.e2e.procs:{merge}",
                               "per": "group"},
                 "reducer": {"name": "sum"}, "limits": {"max_concurrency": 1}},
            ],
        }
    )  # fmt: skip


def run_pipeline(session: LocalSession, spec: PipelineSpec, name: str) -> PipelineResult:
    ledger = Ledger(session.stack.ledger_table)
    arn = start_pipeline(spec, name, session.stack.state_machine_arn)
    return follow_pipeline(arn, name, spec, ledger, timeout_seconds=JOB_TIMEOUT_SECONDS)


def work_keys(session: LocalSession, prefix: str) -> list[str]:
    pages = aws.client("s3").get_paginator("list_objects_v2")
    bucket = session.stack.work_bucket
    return [o["Key"] for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]  # fmt: skip


def test_a_python_pipeline_maps_shuffles_and_merges_to_the_direct_count(
    tmp_path: Path, local_session: Callable[..., LocalSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 mappers x 16 partitions: the shuffle writes one object and one index per mapper.
    data = tmp_path / "data"
    truth = keyed_files(data, 40)
    intervals = tmp_path / "intervals"
    intervals.mkdir()
    monkeypatch.setenv("E2E_INTERVALS", str(intervals))  # before the workers start
    session = local_session(workers=2)
    spec = python_pipeline(
        data, mappers=20, partitions=16, route="route_by_key", merge="timed_count_by_key"
    )

    result = run_pipeline(session, spec, "e2e-pipeline")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    _upper, route, count = result.stages
    assert [s.job.status if s.job else None for s in result.stages] == [SUCCEEDED] * 3
    assert route.job is not None and route.job.n_groups == 20
    assert route.job.result == {"lines": sum(truth.values())}
    upper_truth = {key.upper(): n for key, n in truth.items()}  # the first stage upper-cased
    assert count.job is not None and count.job.result == upper_truth
    # one group per non-empty partition, each partition's keys hashed there
    used = {partition_of(key, 16) for key in upper_truth}
    assert count.job.n_groups == len(used)
    assert count.partition_sizes is not None and count.partition_sizes["partitions"] == 16
    # the 1:1 map wrote one output per input, named after it
    keys = work_keys(session, "jobs/e2e-pipeline--upper/")
    named = sorted(k.rsplit("/", 1)[-1] for k in keys if "/attempt-" in k and k.endswith(".txt"))
    assert named == sorted(p.name for p in data.iterdir())
    shuffle = [k for k in work_keys(session, "jobs/e2e-pipeline--route/")
               if k.endswith((DATA_NAME, INDEX_NAME))]  # fmt: skip
    assert len(shuffle) == 40 <= 2 * 20, "intermediate objects must not multiply by partitions"
    # the merge stage's max_concurrency 1 held on two workers: its groups never overlapped
    spans = sorted(tuple(map(float, p.read_text().split())) for p in intervals.iterdir())
    assert len(spans) == count.job.n_groups
    for (_, end), (start, _) in pairwise(spans):
        assert end <= start, f"two merge groups ran at once: {spans}"
    # each stage reports its own time: together they fit in the pipeline's
    assert sum(s.job.seconds for s in result.stages if s.job) <= result.seconds
    # the ledger holds one record per stage
    ledger = Ledger(session.stack.ledger_table)
    for stage in ("upper", "route", "count"):
        assert ledger.get_job(stage_job_id("e2e-pipeline", stage)).status == SUCCEEDED


def test_workers_killed_during_the_shuffle_still_give_the_exact_count(
    tmp_path: Path, local_session: Callable[..., LocalSession]
) -> None:
    data = tmp_path / "data"
    truth = keyed_files(data, 24)
    session = local_session(workers=2, visibility_seconds=5)
    spec = python_pipeline(data, mappers=8, partitions=6, route="slow_route_by_key")
    name = "e2e-pipeline-kill"
    ledger = Ledger(session.stack.ledger_table)
    arn = start_pipeline(spec, name, session.stack.state_machine_arn)
    route_job = stage_job_id(name, "route")

    def a_mapper_just_started() -> list[Any]:
        return [
            g for g in ledger.list_groups(route_job)
            if g.status == RUNNING and time.time() - (g.started_at or 0) < procs.SLOW_SECONDS
        ]  # fmt: skip

    interrupted = wait_for(a_mapper_just_started, "a map_to_n group caught RUNNING")
    for pid in session.worker_pids:
        os.kill(pid, signal.SIGKILL)
    session.start_workers(2)
    result = follow_pipeline(arn, name, spec, ledger, timeout_seconds=JOB_TIMEOUT_SECONDS)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    count = result.stages[-1].job
    assert count is not None and count.result == {k.upper(): n for k, n in truth.items()}
    for group in interrupted:
        after = ledger.get_group(route_job, group.index)
        assert after is not None and after.committed_attempt is not None
        assert after.committed_attempt >= 2  # the killed attempt never committed


SHELL_PIPELINE = {
    "source": "data",
    "stages": [
        {"name": "tag", "processor": {"kind": "shell", "command": 'sed "s/^/$filename /"'},
         "partitioning": {"groups": 3}},
        {"name": "split", "kind": "map_to_n", "partitions": 5,
         "processor": {"kind": "shell",
                       "command": "awk '{ print > $3; seen[$3] = 1 } END { for (k in seen) print k }'"},
         "partitioning": {"groups": 4}},
        {"name": "count", "kind": "map_from_n",
         "processor": {"kind": "shell",
                       "command": "xargs cat | awk '{ n[$3]++ } END { for (k in n) print k, n[k] }'"}},
    ],
}  # fmt: skip


def test_a_shell_pipeline_runs_from_the_cli_with_a_stage_entry_each(tmp_path: Path) -> None:
    truth = keyed_files(tmp_path / "data", 12)
    (tmp_path / "shell-pipeline.json").write_text(json.dumps(SHELL_PIPELINE))

    done = parceler(tmp_path, "run", "shell-pipeline.json", "--local", "--json",
                    "--job-id", "e2e-shell-pipeline")  # fmt: skip

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "SUCCEEDED"
    assert [s["name"] for s in document["stages"]] == ["tag", "split", "count"]
    assert [s["status"] for s in document["stages"]] == ["SUCCEEDED"] * 3
    assert [s["n_groups"] for s in document["stages"][:2]] == [3, 4]
    for stage in document["stages"]:
        assert Path(stage["result_uri"]).is_file()  # each stage's result manifest on disk
    outputs = Path(document["outputs"])
    counted: Counter[str] = Counter()
    for part in outputs.glob("e2e-shell-pipeline--count/**/part-*"):
        for line in part.read_text().splitlines():
            key, n = line.split()
            counted[key] += int(n)
    assert counted == truth
    tagged = [p.name for p in outputs.glob("e2e-shell-pipeline--tag/**/*.txt")]
    assert sorted(name.split("-", 1)[1] for name in tagged) == sorted(
        p.name for p in (tmp_path / "data").iterdir()
    )
    # every stage is a job with its own run folder: status works on it after the run
    status = parceler(tmp_path, "status", "e2e-shell-pipeline--split")
    assert status.returncode == 0, status.stderr
    assert "SUCCEEDED" in status.stdout
    # and the pipeline's own id lists its stages
    overview = parceler(tmp_path, "status", "e2e-shell-pipeline", "--json")
    assert overview.returncode == 0, overview.stderr
    listed = json.loads(overview.stdout)["stages"]
    assert [(s["name"], s["status"]) for s in listed] == [
        ("tag", "SUCCEEDED"), ("split", "SUCCEEDED"), ("count", "SUCCEEDED"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stages", "named"),
    [
        ([{"name": "a", "input": "zz", "processor": {"kind": "shell", "command": "cat"}}],
         "stage 'a': input 'zz' names no stage"),
        ([{"name": "a", "processor": {"kind": "shell", "command": "cat"}},
          {"name": "b", "kind": "map_from_n", "processor": {"kind": "shell", "command": "cat"}}],
         "stage 'b' is map_from_n, so its input must be a map_to_n stage"),
        ([{"name": "a", "input": "b", "processor": {"kind": "shell", "command": "cat"}},
          {"name": "b", "input": "a", "processor": {"kind": "shell", "command": "cat"}}],
         "cycle of inputs"),
        ([{"name": "a", "processor": {"kind": "python", "function": "nosuch_module:f"}}],
         "stage 'a'"),
    ],
)  # fmt: skip
def test_a_bad_pipeline_exits_2_naming_the_stage_before_anything_runs(
    tmp_path: Path, stages: list[dict[str, Any]], named: str
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("x k1\n")
    (tmp_path / "pipeline.json").write_text(json.dumps({"source": "data", "stages": stages}))

    done = parceler(tmp_path, "run", "pipeline.json", "--local")

    assert done.returncode == 2, done.stderr
    assert named in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "parceler-runs").exists()  # nothing started


def test_a_redrive_of_a_failed_pipeline_reruns_its_failed_stage_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_pythonpath: str
) -> None:
    truth = keyed_files(tmp_path / "data", 8)
    block = tmp_path / "block"
    block.touch()
    monkeypatch.setenv("E2E_BLOCK", str(block))
    pipeline = {
        "source": "data",
        "stages": [
            {"name": "route", "kind": "map_to_n", "partitions": 3, "partitioning": {"groups": 2},
             "processor": {"kind": "python", "function": "tests.e2e.procs:route_by_key"}},
            {"name": "count", "kind": "map_from_n", "reducer": {"name": "sum"},
             "processor": {"kind": "python", "per": "group",
                           "function": "tests.e2e.procs:blockable_count_by_key"}},
            {"name": "copy", "processor": {"kind": "shell", "command": "cat"}},
        ],
    }  # fmt: skip
    (tmp_path / "pipeline.json").write_text(json.dumps(pipeline))

    failed = parceler(tmp_path, "run", "pipeline.json", "--local", "--json", "--job-id", "e2e-rd")
    assert failed.returncode == 1, failed.stderr
    first = json.loads(failed.stdout)
    assert [s["status"] for s in first["stages"]] == ["SUCCEEDED", "FAILED", "NOT_STARTED"]

    block.unlink()
    redriven = parceler(tmp_path, "redrive", "e2e-rd", "--local", "--json")

    assert redriven.returncode == 0, redriven.stderr
    document = json.loads(redriven.stdout)
    assert [s["status"] for s in document["stages"]] == ["SUCCEEDED"] * 3
    count = document["stages"][1]
    assert count["result"] == dict(truth)
    assert count["groups_failed"] == 0
    # the stage after the redriven one ran: one copy per partition file the merge wrote
    copies = list(Path(document["outputs"]).glob("e2e-rd--copy/**/*-part-*"))
    assert len(copies) == count["n_groups"]
    again = parceler(tmp_path, "redrive", "e2e-rd", "--local")
    assert again.returncode == 0 and "nothing to redrive" in again.stdout, again.stderr
