"""``parceler plan`` on an S3 prefix in moto, writing the plan back to S3."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parceler import aws
from parceler.cli import _register_commands, app
from parceler.manifest import read_manifest

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
