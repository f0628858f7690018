"""Pipelines on a `parceler local up` stack, started as AWS users start them: a pipeline spec
pasted as an execution's input (the console) and uploaded to the trigger prefix (the S3
event through the real starter), each ending with the exact count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.e2e.test_local_up import Stack, stack, texts  # noqa: F401 - fixtures

PIPELINE_STAGES = [
    {"name": "route", "kind": "map_to_n", "partitions": 3, "partitioning": {"groups": 3},
     "processor": {"kind": "python", "function": "tests.e2e.procs:route_by_key"}},
    {"name": "count", "kind": "map_from_n", "reducer": {"name": "sum"},
     "processor": {"kind": "python", "function": "tests.e2e.procs:count_by_key", "per": "group"}},
]  # fmt: skip


def second_words(contents: list[str]) -> Counter[str]:
    """What route_by_key + count_by_key give: lines per second word."""
    return Counter(line.split()[1] for text in contents for line in text.splitlines())


def test_a_pipeline_runs_from_the_console_and_from_an_upload(
    stack: Stack,  # noqa: F811 - the fixture imported above
    texts: tuple[Path, list[str]],  # noqa: F811
) -> None:
    folder, contents = texts
    state = stack.up(workers=2)
    spec = stack.cwd / "pipeline.json"
    spec.write_text(json.dumps({"source": str(folder), "stages": PIPELINE_STAGES}))

    started = stack.aws(
        "stepfunctions", "start-execution", "--state-machine-arn", state["state_machine_arn"],
        "--name", "pipeline-from-the-console", "--input", f"file://{spec}",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    described = stack.wait_for_execution("pipeline-from-the-console")
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert [s["status"] for s in output["stages"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert stack.value_of(described) == dict(second_words(contents))

    spec.write_text(json.dumps({"pipeline_id": "pipeline-from-an-upload", "source": str(folder),
                                "stages": PIPELINE_STAGES}))  # fmt: skip
    where = f"s3://{state['work_bucket']}/{state['spec_prefix']}p{state['spec_suffix']}"
    copied = stack.aws("s3", "cp", str(spec), where)
    assert copied.returncode == 0, copied.stderr
    described = stack.wait_for_execution("pipeline-from-an-upload")
    assert described["status"] == "SUCCEEDED", described
    assert stack.value_of(described) == dict(second_words(contents))
    # each stage is a job: status reads it from the stack's ledger
    status = stack.parceler("status", "pipeline-from-an-upload--count")
    assert status.returncode == 0, status.stderr
