"""Processors against emulated S3 (moto): inputs read from and outputs written to buckets."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parceler import aws, storage
from parceler.errors import OutputNameError
from parceler.models import DATA_FILE_SCHEMA
from parceler.processors import GroupContext, run_group
from parceler.processors.outputs import put_stream
from parceler.spec import ProcessorSpec, ReducerSpec

pytestmark = pytest.mark.functional
SUM = ReducerSpec(name="sum")


def _put(bucket: str, key: str, body: bytes) -> dict[str, object]:
    uri = f"s3://{bucket}/{key}"
    storage.write_bytes(uri, body)
    return {"uri": uri, "size": len(body), "n_record": None, "etag": None}


def _ctx(bucket: str) -> GroupContext:
    return GroupContext("job1", 7, 2, f"s3://{bucket}/jobs/job1/groups/000007/attempt-2/")


def test_csv_groupby_and_shell_over_s3(bucket: str) -> None:
    rows = [
        _put(bucket, "in/a.csv", b"vendor,passenger_count\nCMT,1\nVTS,2\nCMT,1\n"),
        _put(bucket, "in/b.csv", b"vendor,passenger_count\nDDS,1\nDDS,\n"),
    ]
    files = pa.Table.from_pylist(rows, schema=DATA_FILE_SCHEMA)
    spec = ProcessorSpec(kind="builtin", name="csv-groupby", options={"column": "passenger_count"})
    assert run_group(spec, SUM, files, _ctx(bucket)).value == {"1": 3, "2": 1, "": 1}

    outcome = run_group(
        ProcessorSpec(kind="shell", command="cut -d, -f1"), SUM, files, _ctx(bucket)
    )
    out = outcome.outputs.to_pylist()
    prefix = f"s3://{bucket}/jobs/job1/groups/000007/attempt-2/"
    assert [r["uri"] for r in out] == [prefix + "000000-a.csv", prefix + "000001-b.csv"]
    assert storage.read_bytes(prefix + "000000-a.csv") == b"vendor\nCMT\nVTS\nCMT\n"
    head = aws.client("s3").head_object(Bucket=bucket, Key=out[0]["uri"].split("/", 3)[3])
    assert out[0]["etag"] == head["ETag"].strip('"')
    assert out[0]["size"] == head["ContentLength"]


def test_parquet_compact_from_and_to_s3(bucket: str) -> None:
    rows = []
    for i in range(3):
        sink = io.BytesIO()
        pq.write_table(
            pa.table({"id": list(range(i * 100, i * 100 + 100))}), sink, row_group_size=10
        )
        rows.append(_put(bucket, f"in/p{i}.parquet", sink.getvalue()))
    files = pa.Table.from_pylist(rows, schema=DATA_FILE_SCHEMA)
    spec = ProcessorSpec(kind="builtin", name="parquet-compact")
    outcome = run_group(spec, SUM, files, _ctx(bucket))
    assert outcome.value == {"files_in": 3, "files_out": 1, "rows": 300}
    (out,) = outcome.outputs.to_pylist()
    table = pq.read_table(io.BytesIO(storage.read_bytes(out["uri"])))
    assert table.column("id").to_pylist() == list(range(300))
    assert out["n_record"] == 300


def test_put_stream_uses_multipart_for_long_streams(bucket: str) -> None:
    body = bytes(range(256)) * (11 * 4096)  # 11 MiB: three 5 MiB parts
    uri = f"s3://{bucket}/big/object.bin"
    result = put_stream(uri, io.BytesIO(body), part_size=5 * 1024 * 1024)
    assert result.size == len(body)
    assert result.etag is not None and result.etag.endswith("-3")  # a 3-part upload
    assert storage.read_bytes(uri) == body


def test_copy_between_buckets_streams_each_file(bucket: str) -> None:
    aws.client("s3").create_bucket(Bucket="parceler-dest")
    files = pa.Table.from_pylist([_put(bucket, "in/x.txt", b"payload")], schema=DATA_FILE_SCHEMA)
    spec = ProcessorSpec(kind="builtin", name="copy", options={"dest": "s3://parceler-dest/copies"})
    outcome = run_group(spec, SUM, files, _ctx(bucket))
    assert outcome.outputs.column("uri").to_pylist() == ["s3://parceler-dest/copies/000000-x.txt"]
    assert storage.read_bytes("s3://parceler-dest/copies/000000-x.txt") == b"payload"


def test_output_names_are_confined_to_the_attempt_folder_on_s3(bucket: str) -> None:
    ctx = _ctx(bucket)
    with pytest.raises(OutputNameError, match=r"'\.\.' segment"):
        ctx.write_output("../attempt-99/forged.txt", b"x")
    with pytest.raises(OutputNameError, match="absolute path"):
        ctx.write_output("/jobs/other/result.json", b"x")
    with pytest.raises(OutputNameError, match="is empty"):
        ctx.write_output("", b"x")
    uri = ctx.write_output("./parts//0001.txt", b"kept")
    assert uri == f"s3://{bucket}/jobs/job1/groups/000007/attempt-2/parts/0001.txt"
    listed = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="jobs/")
    assert [item["Key"] for item in listed["Contents"]] == [
        "jobs/job1/groups/000007/attempt-2/parts/0001.txt"
    ]
    assert ctx.outputs_table().column("uri").to_pylist() == [uri]
