"""Manifest details: each kind parses from and produces the wire dict; bad details are named."""

from __future__ import annotations

import pytest

from parceler.details import FailedGroup, GroupDetails, GroupResultDetails, JobResultDetails
from parceler.errors import ManifestError
from parceler.models import ManifestSummary


def _summary(details: dict[str, object]) -> ManifestSummary:
    return ManifestSummary(
        fingerprint="fp", n_files=0, total_size=0, data_uri="s3://w/x.parquet", details=details
    )


def test_a_group_result_carries_value_or_value_uri_never_both() -> None:
    inline = GroupResultDetails(job_id="j", attempt=2, value={"lines": 3})
    assert inline.to_details() == {"job_id": "j", "attempt": 2, "value": {"lines": 3}}
    named = GroupResultDetails(job_id="j", attempt=2, value_uri="s3://w/v.json")
    assert named.to_details() == {"job_id": "j", "attempt": 2, "value_uri": "s3://w/v.json"}
    assert GroupResultDetails.of(_summary(named.to_details()), "m") == named
    none = GroupResultDetails(job_id="j", attempt=1)
    assert none.to_details() == {"job_id": "j", "attempt": 1, "value": None}


def test_the_job_result_round_trips_with_its_failed_groups() -> None:
    details = JobResultDetails(
        job_id="j",
        n_groups=2,
        groups_succeeded=1,
        groups_failed=1,
        failed_groups=[FailedGroup(index=1, status="FAILED", error="ProcessorError")],
        tolerated_failure_percent=50,
        value={"lines": 1},
    )
    wire = details.to_details()
    assert wire["failed_groups"] == [
        {"index": 1, "status": "FAILED", "error": "ProcessorError", "cause": None, "attempt": None}
    ]
    assert JobResultDetails.of(_summary(wire), "m") == details


def test_missing_and_unknown_fields_are_a_manifest_error_naming_them() -> None:
    with pytest.raises(ManifestError, match=r"s3://w/g\.json: .*GroupDetails.*spec_sha256"):
        GroupDetails.of(_summary({"job_id": "j"}), "s3://w/g.json")
    with pytest.raises(ManifestError, match="processor"):
        GroupDetails.of(
            _summary({"job_id": "j", "spec_sha256": "sha256:0", "processor": {}}), "s3://w/g.json"
        )
