"""``parceler plan`` on an S3 prefix in moto, writing the plan back to S3."""

from __future__ import annotations

import json
import threading
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from parceler import aws, storage
from parceler.cli import _register_commands, app
from parceler.manifest import read_manifest
from parceler.models import DATA_FILE_SCHEMA
from parceler.partition import Limits
from parceler.planning import S3_GROUPS_PER_BATCH, plan_files, write_plan

_register_commands()


def test_plan_an_s3_prefix_and_write_the_plan_to_s3(bucket: str) -> None:
    s3 = aws.client("s3")
    for i in range(25):
        s3.put_object(Bucket=bucket, Key=f"in/part-{i:03d}.csv", Body=b"a,b\n" * (10 + i * 7))
    s3.put_object(Bucket=bucket, Key="in/folder/", Body=b"")
    s3.put_object(Bucket=bucket, Key="in/notes.txt", Body=b"skip me")
    out = f"s3://{bucket}/plans/p1"
    result = CliRunner().invoke(
        app,
        ["plan", f"s3://{bucket}/in/", "--include", "*.csv", "--target-size", "200B",
         "--out", out, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["n_files"] == 25
    uris: list[str] = []
    for group in doc["groups"]:
        assert group["summary_uri"].startswith(out + "/groups/")
        manifest = read_manifest(group["summary_uri"])
        assert manifest.summary.group_count == doc["n_groups"]
        uris += manifest.table.column("uri").to_pylist()
    assert sorted(uris) == [f"s3://{bucket}/in/part-{i:03d}.csv" for i in range(25)]
    assert read_manifest(doc["index_uri"]).summary.n_files == doc["n_groups"]


def test_write_plan_to_s3_shares_a_few_hundred_groups_among_threads(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 150  # groups: three batches of S3_GROUPS_PER_BATCH
    table = pa.table(
        {"uri": [f"s3://{bucket}/in/{i:04d}" for i in range(n)], "size": [1] * n,
         "n_record": [None] * n, "etag": [None] * n},
        schema=DATA_FILE_SCHEMA,
    )  # fmt: skip
    plan = plan_files(table, Limits(max_files=1))
    threads: set[str] = set()
    real_write = storage.write_bytes

    def recording(uri: str, data: bytes, **kwargs: Any) -> None:
        if "/groups/" in uri:
            threads.add(threading.current_thread().name)
        real_write(uri, data, **kwargs)

    monkeypatch.setattr(storage, "write_bytes", recording)
    seen: list[int] = []
    written = write_plan(plan, f"s3://{bucket}/plans/p2", workers=3, progress=seen.append)
    assert seen == [S3_GROUPS_PER_BATCH, 2 * S3_GROUPS_PER_BATCH, n]
    assert len(threads) == 3  # the batches ran side by side, not in one thread
    for g in (0, 64, 149):
        assert read_manifest(written.group_summary_uris[g]).table.column("uri").to_pylist() == [
            f"s3://{bucket}/in/{g:04d}"
        ]
