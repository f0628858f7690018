"""S3 Inventory reports (CSV gzip, Parquet, ORC) hand-made in moto S3."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.orc as paorc
import pyarrow.parquet as pq
import pytest

from parceler import aws
from parceler.errors import SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources import load_source

pytestmark = pytest.mark.functional

DEST = "inventory-dest"
SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"
# (key as stored, key as S3 Inventory CSV writes it, is_latest, is_delete_marker, size)
OBJECTS: list[tuple[str, str, bool, bool, int | None]] = [
    ("data/a.csv", "data/a.csv", True, False, 10),
    ("data/with space+plus.csv", "data/with+space%2Bplus.csv", True, False, 20),
    ("data/ünï.csv", "data/%C3%BCn%C3%AF.csv", True, False, 30),
    ("data/old.csv", "data/old.csv", False, False, 40),
    ("data/deleted.csv", "data/deleted.csv", True, True, None),
    ("data/folder/", "data/folder/", True, False, 0),
    ("logs/x.log", "logs/x.log", True, False, 50),
]
CURRENT = {"data/a.csv": 10, "data/with space+plus.csv": 20, "data/ünï.csv": 30, "logs/x.log": 50}


def _csv_line(obj: tuple[str, str, bool, bool, int | None]) -> str:
    _, encoded, latest, deleted, size = obj
    fields = ["src", encoded, "v1", str(latest).lower(), str(deleted).lower()]
    fields += ["" if size is None else str(size), "2024-01-01T00:00:00.000Z", f"etag{size}"]
    return ",".join(f'"{f}"' for f in fields)


def _put_manifest(file_format: str, schema: str, files: list[str]) -> str:
    s3 = aws.client("s3")
    manifest: dict[str, Any] = {
        "sourceBucket": "src",
        "destinationBucket": f"arn:aws:s3:::{DEST}",
        "version": "2016-11-30",
        "creationTimestamp": "1700000000000",
        "fileFormat": file_format,
        "fileSchema": schema,
        "files": [{"key": key, "size": 1, "MD5checksum": "x"} for key in files],
    }
    key = f"src/daily/2024-01-02T01-00Z/{file_format.lower()}/manifest.json"
    s3.put_object(Bucket=DEST, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{DEST}/{key}"


def _expected(include_prefix: str = "") -> list[dict[str, Any]]:
    rows = [
        {"uri": f"s3://src/{k}", "size": s, "n_record": None, "etag": f"etag{s}"}
        for k, s in CURRENT.items()
        if k.startswith(include_prefix)
    ]
    return sorted(rows, key=lambda r: r["uri"])


@pytest.fixture
def dest(moto: str) -> str:
    aws.client("s3").create_bucket(Bucket=DEST)
    return DEST


def test_csv_report(dest: str) -> None:
    s3 = aws.client("s3")
    lines = [_csv_line(o) for o in OBJECTS]
    files = []
    for i, chunk in enumerate((lines[:4], lines[4:])):
        key = f"src/daily/data/part-{i}.csv.gz"
        s3.put_object(Bucket=dest, Key=key, Body=gzip.compress("\n".join(chunk).encode()))
        files.append(key)
    uri = _put_manifest("CSV", SCHEMA, files)
    out = load_source(uri, workers=2)
    assert out.schema == DATA_FILE_SCHEMA
    assert out.to_pylist() == _expected()
    assert load_source(uri, include=["data/*"]).to_pylist() == _expected("data/")


def _arrow_report() -> pa.Table:
    return pa.table(
        {
            "bucket": ["src"] * len(OBJECTS),
            "key": [o[0] for o in OBJECTS],
            "version_id": ["v1"] * len(OBJECTS),
            "is_latest": [o[2] for o in OBJECTS],
            "is_delete_marker": [o[3] for o in OBJECTS],
            "size": pa.array([o[4] for o in OBJECTS], pa.int64()),
            "e_tag": [f"etag{o[4]}" for o in OBJECTS],
        }
    )


def test_parquet_report(dest: str) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(_arrow_report(), sink)
    key = "src/daily/data/part-0.parquet"
    aws.client("s3").put_object(Bucket=dest, Key=key, Body=sink.getvalue().to_pybytes())
    schema = "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); }"
    out = load_source(_put_manifest("Parquet", schema, [key]))
    assert out.to_pylist() == _expected()


def test_orc_report_from_a_local_manifest(dest: str, tmp_path: Path) -> None:
    sink = pa.BufferOutputStream()
    paorc.write_table(_arrow_report(), sink)
    key = "src/daily/data/part-0.orc"
    aws.client("s3").put_object(Bucket=dest, Key=key, Body=sink.getvalue().to_pybytes())
    uri = _put_manifest("ORC", "struct<bucket:string,key:string>", [key])
    local = tmp_path / "manifest.json"
    local.write_bytes(
        aws.client("s3").get_object(Bucket=dest, Key=uri.split("/", 3)[3])["Body"].read()
    )
    assert load_source(str(local)).to_pylist() == _expected()


def test_missing_data_file_names_it(dest: str) -> None:
    uri = _put_manifest("CSV", SCHEMA, ["src/daily/data/gone.csv.gz"])
    with pytest.raises(
        SourceError, match=rf"s3://{DEST}/src/daily/data/gone\.csv\.gz does not exist"
    ):
        load_source(uri)


def test_unsupported_format(dest: str) -> None:
    with pytest.raises(SourceError, match="fileFormat 'Avro'"):
        load_source(_put_manifest("Avro", SCHEMA, []))
