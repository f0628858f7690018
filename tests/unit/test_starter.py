"""The S3-event starter: event parsing, the deterministic job id, spec lookup, duplicate drop."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from parceler import aws, starter
from parceler.errors import ObjectNotFoundError, SpecError, UnconfiguredTriggerError
from parceler.settings import StarterSettings

SPEC = {"source": "s3://data/in/", "processor": {"kind": "builtin", "name": "linecount"}}
SETTINGS = StarterSettings.from_env(
    {
        "PARCELER_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:1:stateMachine:job",
        "PARCELER_TRIGGER_BUCKETS": "work,inbox",
        "PARCELER_TRIGGER_PREFIX": "specs/",
        "PARCELER_TRIGGER_SUFFIX": ".job.json",
    }
)


def eventbridge(
    key: str, *, etag: str = "abc", sequencer: str = "0062E99A88DC407460", bucket: str = "inbox"
) -> dict[str, Any]:
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 10, "etag": etag, "sequencer": sequencer},
            "reason": "PutObject",
        },
    }


def reader(objects: dict[str, Any]) -> Any:
    def read(uri: str) -> bytes:
        if uri not in objects:
            raise ObjectNotFoundError(f"read {uri}: object not found.")
        return json.dumps(objects[uri]).encode()

    return read


class FakeStepFunctions:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:  # noqa: N803
        if name in self.names:
            error = {
                "Error": {"Code": "ExecutionAlreadyExists", "Message": "Execution Already Exists"}
            }
            raise ClientError(error, "StartExecution")  # type: ignore[arg-type]
        self.names[name] = input
        return {"executionArn": f"{stateMachineArn}:{name}".replace("stateMachine", "execution")}


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    fake = FakeStepFunctions()
    monkeypatch.setattr(aws, "client", lambda service: fake)
    return fake


def test_parse_eventbridge_event_decodes_the_key() -> None:
    obj = starter.parse_event(eventbridge("jobs/taxi+2024%2F01.job.json"))
    assert obj == starter.ObjectCreated(
        "inbox", "jobs/taxi 2024/01.job.json", "abc", "0062E99A88DC407460"
    )
    assert obj.trigger == "spec"


def test_parse_s3_notification_record() -> None:
    record = {
        "Records": [
            {
                "s3": {
                    "bucket": {"name": "b"},
                    "object": {"key": "x/_SUCCESS", "eTag": "e", "sequencer": "1"},
                }
            }
        ]
    }
    obj = starter.parse_event(record)
    assert (obj.bucket, obj.key, obj.etag, obj.trigger) == ("b", "x/_SUCCESS", "e", "marker")


def test_parse_rejects_other_events() -> None:
    with pytest.raises(SpecError, match="not an S3 'Object Created' event"):
        starter.parse_event({"detail-type": "Scheduled Event", "detail": {}})


def test_other_keys_are_not_triggers() -> None:
    with pytest.raises(SpecError, match="neither a job spec"):
        _ = starter.parse_event(eventbridge("data/part-0001.csv")).trigger
    with pytest.raises(SpecError):
        _ = starter.parse_event(
            eventbridge("data/parceler.job.json")
        ).trigger  # a template, not a job


def test_job_id_is_deterministic_valid_and_names_the_object() -> None:
    obj = starter.parse_event(eventbridge("in/Taxi trips (2024).job.json"))
    job_id = starter.job_id_for(obj)
    assert job_id == starter.job_id_for(
        starter.parse_event(eventbridge("in/Taxi trips (2024).job.json"))
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", job_id)
    assert job_id.startswith("Taxi-trips-2024-")


@pytest.mark.parametrize(
    "change", [{"etag": "other"}, {"sequencer": "0062E99A88DC407461"}, {"key": "in/b.job.json"}]
)
def test_job_id_changes_with_the_object_version(change: dict[str, str]) -> None:
    base = {"key": "in/a.job.json", "etag": "abc", "sequencer": "0062E99A88DC407460"}
    first = starter.job_id_for(starter.parse_event(eventbridge(**base)))
    second = starter.job_id_for(starter.parse_event(eventbridge(**{**base, **change})))
    assert first != second


def test_job_id_digest_is_injective_across_field_boundaries() -> None:
    a = starter.ObjectCreated("b", "k.job.json", "ab", "c")
    b = starter.ObjectCreated("b", "k.job.json", "a", "bc")
    assert starter.job_id_for(a) != starter.job_id_for(b)


def test_a_long_name_is_cut_to_eighty_characters() -> None:
    job_id = starter.job_id_for(starter.parse_event(eventbridge("x" * 200 + ".job.json")))
    assert len(job_id) == 80


def test_marker_uses_the_folder_and_its_sibling_template() -> None:
    obj = starter.parse_event(eventbridge("exports/day=1/_SUCCESS"))
    spec = starter.spec_for(obj, reader({"s3://inbox/exports/day=1/parceler.job.json": SPEC}))
    assert spec.source == "s3://inbox/exports/day=1/"
    assert {"_SUCCESS", "parceler.job.json"} <= set(spec.exclude)
    assert spec.processor.name == "linecount"
    assert starter.job_id_for(obj).startswith("day-1-")


def test_marker_without_template_is_refused_naming_the_file_to_create() -> None:
    obj = starter.parse_event(eventbridge("exports/day=1/_SUCCESS"))
    with pytest.raises(SpecError, match=re.escape("s3://inbox/exports/day=1/parceler.job.json")):
        starter.spec_for(obj, reader({}))


def test_an_invalid_spec_names_the_field() -> None:
    obj = starter.parse_event(eventbridge("a.job.json"))
    with pytest.raises(SpecError, match="processor"):
        starter.spec_for(obj, reader({"s3://inbox/a.job.json": {"source": "s3://x/"}}))


def test_start_names_the_execution_by_the_job_id_and_drops_a_redelivery(
    sfn: FakeStepFunctions, caplog: pytest.LogCaptureFixture
) -> None:
    read = reader({"s3://inbox/specs/a.job.json": SPEC})
    first = starter.start(eventbridge("specs/a.job.json"), SETTINGS, read)
    with caplog.at_level(logging.INFO, logger="parceler.starter"):
        again = starter.start(eventbridge("specs/a.job.json"), SETTINGS, read)

    assert first.status == "started" and first.execution_arn
    assert again.status == "duplicate" and again.job_id == first.job_id
    assert list(sfn.names) == [first.job_id]
    assert json.loads(sfn.names[first.job_id])["job_id"] == first.job_id
    # The same object version delivered twice is not new work: no refusal is counted.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_spec_with_its_own_job_id_keeps_it(sfn: FakeStepFunctions) -> None:
    read = reader({"s3://inbox/specs/a.job.json": {**SPEC, "job_id": "nightly-2024"}})
    assert starter.start(eventbridge("specs/a.job.json"), SETTINGS, read).job_id == "nightly-2024"


def test_a_reupload_of_a_spec_whose_job_id_ran_is_refused_at_warning_with_the_fix(
    sfn: FakeStepFunctions, caplog: pytest.LogCaptureFixture
) -> None:
    read = reader({"s3://inbox/specs/a.job.json": {**SPEC, "job_id": "nightly-2024"}})
    starter.start(eventbridge("specs/a.job.json"), SETTINGS, read)
    corrected = eventbridge("specs/a.job.json", etag="def", sequencer="0062E99A88DC407499")
    with caplog.at_level(logging.INFO, logger="parceler.starter"):
        again = starter.start(corrected, SETTINGS, read)

    assert (again.status, again.job_id) == ("duplicate", "nightly-2024")
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = record.getMessage()
    assert message.startswith(f"{starter.REFUSAL_MARKER} reason=duplicate ")
    assert "s3://inbox/specs/a.job.json" in message and "remove job_id" in message
    assert list(sfn.names) == ["nightly-2024"]


@pytest.mark.parametrize(
    ("bucket", "key", "problem"),
    [
        ("elsewhere", "specs/a.job.json", "bucket 'elsewhere' is not one of"),
        (
            "inbox",
            "jobs/a/groups/000/000001/run-20261202T011447-3f9a1c/attempt-1/x.job.json",
            "does not match",
        ),
        ("inbox", "specs/a.json", "does not match"),
        ("inbox", "specs.job.json", "does not match"),
    ],
)
def test_a_trigger_outside_the_configuration_is_refused_and_starts_nothing(
    sfn: FakeStepFunctions,
    caplog: pytest.LogCaptureFixture,
    bucket: str,
    key: str,
    problem: str,
) -> None:
    read = reader({f"s3://{bucket}/{key}": SPEC})
    with (
        caplog.at_level(logging.WARNING, logger="parceler.starter"),
        pytest.raises(UnconfiguredTriggerError, match=problem) as raised,
    ):
        starter.start(eventbridge(key, bucket=bucket), SETTINGS, read)

    assert "parceler:triggerPrefix" in str(raised.value)
    assert sfn.names == {}
    (record,) = caplog.records
    assert record.getMessage().startswith(f"{starter.REFUSAL_MARKER} reason=unconfigured ")


def test_starter_settings_read_the_trigger_configuration_from_the_environment() -> None:
    assert SETTINGS.trigger_buckets == ("work", "inbox")
    assert (SETTINGS.trigger_prefix, SETTINGS.trigger_suffix) == ("specs/", ".job.json")
    with pytest.raises(SpecError, match="PARCELER_TRIGGER_BUCKETS"):
        StarterSettings.from_env(
            {
                "PARCELER_STATE_MACHINE_ARN": "arn",
                "PARCELER_TRIGGER_PREFIX": "specs/",
                "PARCELER_TRIGGER_SUFFIX": ".job.json",
            }
        )


PIPELINE = {
    "stages": [
        {"name": "route", "kind": "map_to_n", "partitions": 4,
         "processor": {"kind": "shell", "command": "cat"}},
        {"name": "merge", "kind": "map_from_n", "processor": {"kind": "shell", "command": "cat"}},
    ]
}  # fmt: skip


def test_an_uploaded_pipeline_spec_starts_a_pipeline_named_by_its_id(
    sfn: FakeStepFunctions,
) -> None:
    read = reader({"s3://inbox/specs/p.job.json": {**PIPELINE, "source": "s3://data/in/"}})
    started = starter.start(eventbridge("specs/p.job.json"), SETTINGS, read)

    document = json.loads(sfn.names[started.job_id])
    assert started.status == "started" and started.job_id.startswith("p-")
    assert document["pipeline_id"] == started.job_id
    assert [stage["name"] for stage in document["stages"]] == ["route", "merge"]


def test_a_marker_with_a_pipeline_template_feeds_the_folder_to_its_first_stage() -> None:
    obj = starter.parse_event(eventbridge("exports/day=1/_SUCCESS"))
    spec = starter.spec_for(obj, reader({"s3://inbox/exports/day=1/parceler.job.json": PIPELINE}))
    assert spec.source == "s3://inbox/exports/day=1/"
    first, second = spec.stages
    assert {"_SUCCESS", "parceler.job.json"} <= set(first.exclude)
    assert second.exclude == ()  # it reads the first stage's result, not the folder


def test_a_bad_uploaded_pipeline_names_the_stage() -> None:
    obj = starter.parse_event(eventbridge("p.job.json"))
    bad = {"source": "s3://x/", "stages": [PIPELINE["stages"][1]]}
    with pytest.raises(SpecError, match="stage 'merge' is map_from_n"):
        starter.spec_for(obj, reader({"s3://inbox/p.job.json": bad}))
