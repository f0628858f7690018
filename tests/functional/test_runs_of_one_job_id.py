"""Two runs of one job id: each run's attempt folders are its own (issue 11, defect 9)."""

from __future__ import annotations

from pathlib import Path

from parceler import aws, storage
from parceler.aws.ledger import Ledger
from parceler.container_worker import RunnerOptions, run_loop
from parceler.manifest import read_manifest
from parceler.planner import plan_and_send

from .conftest import LEDGER_TABLE, Resources, group_spec, seed_source


def _run(resources: Resources, job_id: str, output: Path) -> dict[str, bytes]:
    """Plan and run the job; return its committed outputs (URI → bytes) as its result lists them."""
    plan_and_send(group_spec(output=str(output)), job_id, resources.planner)
    stats = run_loop(
        resources.worker, RunnerOptions(resources.lambda_queue_url, idle_exit=1, wait_seconds=1)
    )
    assert dict(stats.outcomes) == {"succeeded": 2}
    listed: dict[str, bytes] = {}
    for group in Ledger(resources.worker.ledger_table).list_groups(job_id):
        assert group.result_uri is not None
        for uri in read_manifest(group.result_uri).table.column("uri").to_pylist():
            listed[str(uri)] = storage.read_bytes(str(uri))
    return listed


def _forget(job_id: str) -> None:
    """What the ledger's TTL does after ``ledgerRetentionDays`` (or a fresh local emulator)."""
    db = aws.client("dynamodb")
    for item in db.scan(TableName=LEDGER_TABLE)["Items"]:
        if item["pk"]["S"].startswith(f"job#{job_id}"):
            db.delete_item(TableName=LEDGER_TABLE, Key={"pk": item["pk"], "sk": item["sk"]})


def test_a_second_run_of_a_job_id_leaves_the_first_runs_outputs_as_its_result_lists_them(
    resources: Resources, tmp_path: Path
) -> None:
    output = tmp_path / "kept-output"
    seed_source(2)
    first = _run(resources, "job-again", output)
    first_run = Ledger(resources.worker.ledger_table).get_job("job-again").run_id
    _forget("job-again")
    seed_source(2, names={0: "f0000.txt"})  # same keys, other bytes below
    aws.client("s3").put_object(
        Bucket="parceler-src", Key="data/f0000.txt", Body=b"changed since the first run\n"
    )

    second = _run(resources, "job-again", output)

    second_run = Ledger(resources.worker.ledger_table).get_job("job-again").run_id
    assert first_run and second_run and first_run != second_run
    assert set(first).isdisjoint(second)  # no output path shared between the runs
    assert all(f"/{first_run}/attempt-1/" in uri for uri in first)
    assert all(f"/{second_run}/attempt-1/" in uri for uri in second)
    for uri, data in first.items():  # the first result still names the first run's bytes
        assert storage.read_bytes(uri) == data
    assert b"CHANGED SINCE THE FIRST RUN\n" in second.values()
