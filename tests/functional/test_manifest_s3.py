"""Manifests and storage against S3 on the moto server (AWS_ENDPOINT_URL honoured)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from parceler import aws, storage
from parceler.errors import ManifestError, ManifestNotFoundError, ObjectNotFoundError
from parceler.manifest import read_manifest, write_manifest
from parceler.models import DATA_FILE_SCHEMA

pytestmark = pytest.mark.functional
FIXTURES = Path(__file__).parent.parent / "fixtures" / "s3manifesto"


def files(n: int) -> pa.Table:
    return pa.table(
        {
            "uri": [f"s3://in/{i}" for i in range(n)],
            "size": list(range(n)),
            "n_record": [None] * n,
            "etag": ["e"] * n,
        },
        schema=DATA_FILE_SCHEMA,
    )


def test_round_trip_lands_in_the_emulator(moto: str, bucket: str) -> None:
    uri = f"s3://{bucket}/jobs/j1/manifest.json"
    summary = write_manifest(files(4), uri)
    assert summary.data_uri == f"s3://{bucket}/jobs/j1/manifest.parquet"
    # A client built with the emulator's address sees the objects: AWS_ENDPOINT_URL was used.
    direct = boto3.client(
        "s3", endpoint_url=moto, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    head = direct.head_object(Bucket=bucket, Key="jobs/j1/manifest.json")
    assert head["ContentType"] == "application/json"
    assert "ContentEncoding" not in head
    body = json.loads(direct.get_object(Bucket=bucket, Key="jobs/j1/manifest.json")["Body"].read())
    assert body["n_files"] == 4
    loaded = read_manifest(uri)
    assert loaded.summary == summary
    assert loaded.table.equals(files(4))


def test_missing_and_tampered(bucket: str) -> None:
    with pytest.raises(ManifestNotFoundError):
        read_manifest(f"s3://{bucket}/nope.json")
    uri = f"s3://{bucket}/m.json"
    write_manifest(files(3), uri)
    write_manifest(files(2), f"s3://{bucket}/o.json", data_uri=f"s3://{bucket}/m.parquet")
    with pytest.raises(ManifestError, match="n_files: summary says 3, data has 2"):
        read_manifest(uri)
    aws.client("s3").delete_object(Bucket=bucket, Key="m.parquet")
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(uri)


def test_reads_an_s3manifesto_manifest_from_s3(bucket: str) -> None:
    summary_uri = f"s3://{bucket}/s3manifesto/manifest-summary.json"
    storage.write_bytes(summary_uri, (FIXTURES / "manifest-summary.json").read_bytes())
    s3 = aws.client("s3")
    # s3manifesto 1.0 labels its (uncompressed) Parquet with ContentEncoding gzip.
    s3.put_object(
        Bucket=bucket, Key="s3manifesto/manifest-data.parquet",
        Body=(FIXTURES / "manifest-data.parquet").read_bytes(), ContentEncoding="gzip",
    )  # fmt: skip
    loaded = read_manifest(summary_uri)
    assert loaded.summary.n_files == 3
    assert loaded.summary.total_size == 6_000_000
    assert loaded.summary.details["source_format"] == "s3manifesto-1.0"


def test_storage_on_s3(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"s3://{bucket}/a/lines.txt"
    storage.write_bytes(uri, b"one\ntwo\n", content_type="text/plain")
    assert storage.read_bytes(uri) == b"one\ntwo\n"
    assert storage.object_size(uri) == 8
    assert storage.exists(uri)
    assert storage.read_range(uri, 4, 100) == b"two\n"
    assert storage.read_range(uri, 50, 2) == b""
    with storage.open_input(uri) as stream:
        assert list(stream) == [b"one\n", b"two\n"]
    with pytest.raises(ObjectNotFoundError):
        storage.read_bytes(f"s3://{bucket}/absent")
    with pytest.raises(ObjectNotFoundError):
        storage.object_size(f"s3://{bucket}/absent")
    assert not storage.exists(f"s3://{bucket}/absent")
    assert not storage.exists("s3://no-such-bucket-here/x")


def test_delete_prefix_is_a_folder_and_batches(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_DELETE_BATCH", 2)
    for key in ("jobs/1/a", "jobs/1/b", "jobs/1/c/d", "jobs/10/keep", "jobs/1x"):
        storage.write_bytes(f"s3://{bucket}/{key}", b"x")
    assert storage.delete_prefix(f"s3://{bucket}/jobs/1") == 3
    left = aws.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in left) == ["jobs/10/keep", "jobs/1x"]
    assert storage.delete_prefix(f"s3://{bucket}/jobs/1") == 0


def test_put_stream_and_put_file_on_s3(bucket: str, tmp_path: Path) -> None:
    body = bytes(range(256)) * (6 * 4096)  # 6 MiB: two 5 MiB-minimum parts
    source = tmp_path / "big.bin"
    source.write_bytes(body)
    uri = f"s3://{bucket}/out/big.bin"
    result = storage.put_file(
        uri, source, content_type="application/octet-stream", part_size=storage.MIN_PART_SIZE
    )
    head = aws.client("s3").head_object(Bucket=bucket, Key="out/big.bin")
    assert result == storage.PutResult(len(body), head["ETag"].strip('"'))
    assert result.etag is not None and result.etag.endswith("-2")
    assert head["ContentType"] == "application/octet-stream"
    assert storage.read_bytes(uri) == body
    small = storage.put_stream(
        f"s3://{bucket}/out/s.txt", io.BytesIO(b"hi"), content_type="text/plain"
    )
    assert small.size == 2
    assert (
        aws.client("s3").head_object(Bucket=bucket, Key="out/s.txt")["ContentType"] == "text/plain"
    )
