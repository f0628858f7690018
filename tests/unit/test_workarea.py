"""The work-area layout: today's exact strings, the round trip, and what the decoder rejects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parceler.workarea import (
    RUN_ID,
    GroupArea,
    JobArea,
    group_summary_uri,
    new_run_id,
    output_folder,
    parse_group_uri,
    plan_index_uri,
    plan_manifest_uri,
)


def test_every_uri_of_a_job_is_the_documented_layout() -> None:
    job = JobArea("w", "j-1")
    attempt = job.group(1007).attempt(2, "run-20261202T011447-3f9a1c")
    assert job.folder == "s3://w/jobs/j-1"
    assert job.spec == "s3://w/jobs/j-1/spec.json"
    assert job.manifest == "s3://w/jobs/j-1/manifest.json"
    assert job.plan_index == "s3://w/jobs/j-1/plan.json"
    assert job.group(7).manifest == "s3://w/jobs/j-1/groups/000/000007.json"
    assert job.group(1007).manifest == "s3://w/jobs/j-1/groups/001/001007.json"
    run = "s3://w/jobs/j-1/groups/001/001007/run-20261202T011447-3f9a1c"
    assert attempt.folder == f"{run}/attempt-2/"
    assert attempt.result == f"{run}/attempt-2/result.json"
    assert attempt.value == f"{run}/attempt-2/value.json"
    assert job.partial(3) == "s3://w/jobs/j-1/aggregate/batch-00003.json"
    assert job.partial_value(3) == "s3://w/jobs/j-1/aggregate/batch-00003-value.json"
    assert job.result == "s3://w/jobs/j-1/result.json"
    assert job.result_value == "s3://w/jobs/j-1/result-value.json"


def test_a_plan_written_elsewhere_has_the_same_names() -> None:
    assert plan_manifest_uri("out/") == "out/manifest.json"
    assert plan_index_uri("s3://b/plans/p") == "s3://b/plans/p/plan.json"
    assert group_summary_uri("/tmp/p", 2_000_001) == "/tmp/p/groups/2000/2000001.json"
    assert (
        output_folder("s3://o/x/", "j", "run-20261202T011447-3f9a1c", 7, 2)
        == "s3://o/x/j/groups/000007/run-20261202T011447-3f9a1c/attempt-2/"
    )


@given(
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{2,20}", fullmatch=True),
    job_id=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    index=st.integers(min_value=0, max_value=10_000_000),
)
def test_the_decoder_reads_back_every_group_uri(bucket: str, job_id: str, index: int) -> None:
    area = JobArea(bucket, job_id).group(index)
    assert parse_group_uri(area.manifest) == area


@pytest.mark.parametrize(
    "uri",
    [
        "s3://w/other/manifest.json",
        "s3://w/jobs/j-1/groups/001/manifest.json",
        "s3://w/jobs/j-1/groups/000/001007.json",  # in the wrong folder
        "s3://w/jobs/j-1/groups/001/001007.parquet",
        "s3://w/jobs/j-1/groups/001/001007/attempt-2/result.json",
        "s3://w/x/jobs/j-1/groups/001/001007.json",
        "/tmp/p/jobs/j-1/groups/001/001007.json",
        "s3://w/jobs/j-1/groups/000/7.json",
    ],
)
def test_the_decoder_rejects_what_is_not_a_work_area_group_manifest(uri: str) -> None:
    assert parse_group_uri(uri) is None


def test_the_decoder_names_the_job_and_group() -> None:
    area = parse_group_uri("s3://w/jobs/j-1/groups/001/001007.json")
    assert area == GroupArea(JobArea("w", "j-1"), 1007)
    assert area is not None and (area.job.job_id, area.index) == ("j-1", 1007)


def test_run_ids_are_path_safe_sortable_and_fresh_per_call() -> None:
    first, second = new_run_id(now=1_764_638_087.0), new_run_id(now=1_764_638_087.0)
    assert RUN_ID.match(first) and RUN_ID.match(second)
    assert first.startswith("run-20251202T011447-")
    assert first != second  # the same second, two runs: two folders
    assert new_run_id(now=1_764_638_088.0) > new_run_id(now=1_764_638_087.0)
