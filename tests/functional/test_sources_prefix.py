"""S3 prefix listing against moto: pagination, the parallel split, folder markers, globs."""

from __future__ import annotations

import pytest

from parceler import aws
from parceler.errors import EmptySourceError, SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources import load_source
from parceler.sources import prefix as prefix_module

pytestmark = pytest.mark.functional


def _put(bucket: str, key: str, body: bytes = b"x") -> None:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def test_more_than_one_page_of_keys(bucket: str) -> None:
    for i in range(1100):
        _put(bucket, f"flat/f{i:05d}.txt", b"ab")
    out = load_source(f"s3://{bucket}/flat/", workers=4)
    assert out.schema == DATA_FILE_SCHEMA
    assert out.num_rows == 1100
    uris = out.column("uri").to_pylist()
    assert uris == sorted(uris)
    assert uris[0] == f"s3://{bucket}/flat/f00000.txt"
    assert set(out.column("size").to_pylist()) == {2}
    etag = out.column("etag")[0].as_py()
    assert etag and '"' not in etag
    assert len(etag) == 32  # the MD5 of a single-part upload


def test_sub_prefixes_are_listed_in_parallel_exactly_once(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ["top.csv", "a/1.csv", "a/deep/2.csv", "b/3.csv", "b/c/d/e/4.csv", "c/5.json"]
    for key in keys:
        _put(bucket, f"data/{key}")
    _put(bucket, "data/b/", b"")  # a folder marker
    _put(bucket, "data-old/ignored.csv")
    _put(bucket, "other/ignored.csv")
    calls: list[tuple[str, str | None]] = []
    real = prefix_module._list_one

    def spy(bucket: str, prefix: str, delimiter: str | None) -> tuple[object, list[str]]:
        calls.append((prefix, delimiter))
        return real(bucket, prefix, delimiter)

    monkeypatch.setattr(prefix_module, "_list_one", spy)
    listed = prefix_module.list_prefix(bucket, "data/", workers=8)
    assert listed.table.num_rows == len(keys)  # no key listed twice (dedup would hide it)
    out = load_source(f"s3://{bucket}/data/", workers=8)
    assert out.column("uri").to_pylist() == sorted(f"s3://{bucket}/data/{k}" for k in keys)
    delimited = {p for p, d in calls if d == "/"}
    assert {"data/", "data/a/", "data/b/", "data/c/"} <= delimited  # the split happened
    assert all(p.startswith("data/") for p, _ in calls)


def test_a_literal_prefix_without_slash(bucket: str) -> None:
    _put(bucket, "data/a.csv")
    _put(bucket, "data-old/b.csv")
    out = load_source(f"s3://{bucket}/data", workers=2)
    assert out.num_rows == 2


def test_globs_match_the_key_relative_to_the_prefix(bucket: str) -> None:
    for key in ["a.csv", "tmp/b.csv", "x/c.csv", "x/d.json"]:
        _put(bucket, f"in/{key}")
    out = load_source(f"s3://{bucket}/in/", include=["*.csv"], exclude=["tmp/*"])
    assert out.column("uri").to_pylist() == [f"s3://{bucket}/in/a.csv", f"s3://{bucket}/in/x/c.csv"]


def test_empty_result_names_filters_and_markers(bucket: str) -> None:
    _put(bucket, "in/a.json")
    _put(bucket, "in/sub/", b"")
    with pytest.raises(
        EmptySourceError,
        match=r"0 of 1 keys matched include=\['\*\.csv'\]; 1 folder marker\(s\) skipped",
    ):
        load_source(f"s3://{bucket}/in/", include=["*.csv"])
    with pytest.raises(EmptySourceError, match="0 keys listed"):
        load_source(f"s3://{bucket}/nothing-here/")


def test_missing_bucket_is_a_source_error(moto: str) -> None:
    with pytest.raises(
        SourceError, match=r"list s3://no-such-bucket/x/: bucket not found \(NoSuchBucket\)"
    ):
        load_source("s3://no-such-bucket/x/")


def test_a_key_ending_in_slash_that_holds_data_is_listed_with_a_warning(
    bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    _put(bucket, "in/a.csv")
    _put(bucket, "in/marker/", b"")  # a folder marker: skipped
    _put(bucket, "in/odd/", b"data written to a folder-like key")
    with caplog.at_level("WARNING", logger="parceler.sources.prefix"):
        out = load_source(f"s3://{bucket}/in/")
    assert out.column("uri").to_pylist() == [f"s3://{bucket}/in/a.csv", f"s3://{bucket}/in/odd/"]
    assert out.column("size").to_pylist() == [1, 33]
    assert "1 key(s) ending in '/' hold data and are listed as files" in caplog.text
