"""count_records and listing files on S3 objects (moto): ranged footer reads, streamed lines."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parceler import aws
from parceler.sources import load_source
from parceler.sources.records import TAIL_BYTES

pytestmark = pytest.mark.functional


@pytest.fixture
def get_requests(moto: str) -> Iterator[list[dict[str, Any]]]:
    """Headers of every GetObject the shared S3 client sends (a botocore event hook)."""
    seen: list[dict[str, Any]] = []

    def record(request: Any, **_kwargs: Any) -> None:
        value = request.headers.get("Range")
        seen.append({"url": request.url, "range": value.decode() if value else None})

    events = aws.client("s3").meta.events
    events.register("before-send.s3.GetObject", record)
    try:
        yield seen
    finally:
        events.unregister("before-send.s3.GetObject", record)


def _put(bucket: str, key: str, body: bytes) -> None:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def test_parquet_counted_from_a_ranged_footer_read(
    bucket: str, get_requests: list[dict[str, Any]]
) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"x": pa.array(range(300_000), pa.int64())}), sink)
    body = sink.getvalue().to_pybytes()
    assert len(body) > 4 * TAIL_BYTES
    _put(bucket, "in/big.parquet", body)
    out = load_source(f"s3://{bucket}/in/", count_records=True)
    assert out.column("n_record").to_pylist() == [300_000]
    parquet_gets = [r for r in get_requests if r["url"].endswith("big.parquet")]
    assert parquet_gets, "the footer was never read"
    size = len(body)
    assert [r["range"] for r in parquet_gets] == [f"bytes={size - TAIL_BYTES}-{size - 1}"]


def test_text_counted_streamed_including_gzip(bucket: str) -> None:
    _put(bucket, "in/a.csv", b"id\n1\n2\n3\n")
    _put(bucket, "in/b.jsonl.gz", gzip.compress(b'{"a":1}\n' * 5000))
    _put(bucket, "in/c.txt", b"one\ntwo")
    out = load_source(f"s3://{bucket}/in/", count_records=True, workers=2)
    assert out.column("n_record").to_pylist() == [3, 5000, 2]


def test_listing_file_on_s3(bucket: str) -> None:
    _put(bucket, "lists/files.csv", b"uri,size,n_record\ns3://x/b,2,\ns3://x/a,1,7\n")
    out = load_source(f"s3://{bucket}/lists/files.csv")
    assert out.to_pylist() == [
        {"uri": "s3://x/a", "size": 1, "n_record": 7, "etag": None},
        {"uri": "s3://x/b", "size": 2, "n_record": None, "etag": None},
    ]
