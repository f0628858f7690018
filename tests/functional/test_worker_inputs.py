"""Workers check each input against its group manifest: a file changed after planning fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parceler import aws
from parceler.aws.ledger import Ledger
from parceler.container_worker import RunnerOptions, run_loop
from parceler.planner import plan_and_send
from parceler.spec import JobSpec

from .conftest import SOURCE_BUCKET, Resources, group_spec, seed_source

pytestmark = pytest.mark.functional


def _run_all(resources: Resources) -> dict[str, int]:
    stats = run_loop(
        resources.worker, RunnerOptions(resources.lambda_queue_url, idle_exit=1, wait_seconds=1)
    )
    return dict(stats.outcomes)


def _groups_by_file(ledger: Ledger, job_id: str) -> dict[str, tuple[str, str | None, str]]:
    """``{file name: (status, error, cause)}`` for a job planned one file per group."""
    found = {}
    for group in ledger.list_groups(job_id):
        cause = group.cause or ""
        name = next((n for n in ("grown", "truncated", "touched", "same") if n in cause), "")
        if group.status == "SUCCEEDED":
            name = "ok"
        found.setdefault(name, (group.status, group.error, cause))
    return found


def test_local_files_changed_after_planning_fail_their_groups(
    resources: Resources, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("grown", "truncated", "touched", "same"):
        (folder / f"{name}.txt").write_bytes(b"one\ntwo\nthree\n")
    spec = JobSpec.model_validate(
        {**group_spec().model_dump(exclude={"source"}), "source": str(folder)}
    )
    plan_and_send(spec, "job-changed", resources.planner)

    # Between planning and processing: one file grows, one is truncated, one is rewritten
    # with the same size (only its change token, the local ETag, tells).
    with (folder / "grown.txt").open("ab") as handle:
        handle.write(b"four\n" * 1000)
    (folder / "truncated.txt").write_bytes(b"one\n")
    touched = folder / "touched.txt"
    before = touched.stat()
    touched.write_bytes(b"ONE\nTWO\nTHREE\n")
    os.utime(touched, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))

    assert _run_all(resources) == {"succeeded": 1, "failed": 3}
    ledger = Ledger(resources.worker.ledger_table)
    groups = _groups_by_file(ledger, "job-changed")
    assert groups["ok"][0] == "SUCCEEDED"
    for name in ("grown", "truncated", "touched"):
        status, error, cause = groups[name]
        assert (status, error) == ("FAILED", "SourceChangedError"), name
        assert f"{name}.txt changed after the job was planned" in cause
        assert "re-plan the job" in cause
    assert "size 14 planned, 5014 found" in groups["grown"][2]
    assert "size 14 planned, 4 found" in groups["truncated"][2]
    touched_cause = groups["touched"][2]
    assert "size" not in touched_cause
    later = before.st_mtime_ns + 1_000_000_000
    assert f"ETag {before.st_mtime_ns}-14 planned, {later}-14 found" in touched_cause
    job = ledger.get_job("job-changed")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (0, 1, 3)


def test_an_s3_object_overwritten_after_planning_fails_on_its_etag(resources: Resources) -> None:
    seed_source(2)
    plan_and_send(group_spec(), "job-etag", resources.planner)
    s3 = aws.client("s3")
    key = "data/f0001.txt"
    planned = s3.head_object(Bucket=SOURCE_BUCKET, Key=key)["ETag"].strip('"')
    # The same size, other bytes: only the ETag differs.
    s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=b"LINE 1\nSECOND\n")
    found = s3.head_object(Bucket=SOURCE_BUCKET, Key=key)["ETag"].strip('"')
    assert found != planned

    assert _run_all(resources) == {"succeeded": 1, "failed": 1}
    ledger = Ledger(resources.worker.ledger_table)
    (failed,) = [g for g in ledger.list_groups("job-etag") if g.status == "FAILED"]
    assert failed.error == "SourceChangedError"
    assert f"s3://{SOURCE_BUCKET}/{key} changed after the job was planned" in (failed.cause or "")
    assert f"ETag {planned} planned, {found} found" in (failed.cause or "")
    assert "size" not in (failed.cause or "")
