"""storage on local paths, URI parsing and joining, and S3 error mapping (stubbed, offline)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import boto3
import pytest
from botocore.stub import Stubber

from parceler import storage
from parceler.errors import (
    ObjectNotFoundError,
    RetryableError,
    StorageError,
    UnsupportedUriError,
)
from parceler.storage import ParsedUri, parse_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bkt/a/b.json", ParsedUri("s3", "bkt", "a/b.json", "")),
        ("s3://bkt", ParsedUri("s3", "bkt", "", "")),
        ("S3://bkt/k%20x", ParsedUri("s3", "bkt", "k%20x", "")),
        ("file:///tmp/a%20b.txt", ParsedUri("file", "", "", "/tmp/a b.txt")),
        ("file://localhost/tmp/x", ParsedUri("file", "", "", "/tmp/x")),
        ("/tmp/x", ParsedUri("file", "", "", "/tmp/x")),
        ("data/x.csv", ParsedUri("file", "", "", "data/x.csv")),
        ("weird:name.txt", ParsedUri("file", "", "", "weird:name.txt")),
    ],
)
def test_parse_uri(uri: str, expected: ParsedUri) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize("uri", ["gs://b/k", "https://x/y", "hdfs://n/p"])
def test_unsupported_schemes_name_the_scheme_and_the_accepted_ones(uri: str) -> None:
    with pytest.raises(UnsupportedUriError) as info:
        parse_uri(uri)
    message = str(info.value)
    assert repr(uri.split("://")[0]) in message
    assert "s3://" in message
    assert "file://" in message


@pytest.mark.parametrize("uri", ["", "s3://", "s3:///key", "file://otherhost/x"])
def test_malformed_uris_are_rejected(uri: str) -> None:
    with pytest.raises(UnsupportedUriError):
        parse_uri(uri)


@pytest.mark.parametrize(
    ("prefix", "parts", "expected"),
    [
        ("s3://b/jobs/", ("/7", "manifest.json"), "s3://b/jobs/7/manifest.json"),
        ("s3://b", ("k",), "s3://b/k"),
        ("/tmp/w", ("a", "", "b/"), "/tmp/w/a/b"),
        ("/", ("a",), "/a"),
        ("file:///tmp/w/", ("a",), "file:///tmp/w/a"),
        ("rel", ("a",), "rel/a"),
        ("s3://b/x", (), "s3://b/x"),
    ],
)
def test_join(prefix: str, parts: tuple[str, ...], expected: str) -> None:
    assert storage.join(prefix, *parts) == expected


def test_local_write_creates_parents_and_reads_back(tmp_path: Path) -> None:
    uri = str(tmp_path / "a" / "b" / "c.bin")
    storage.write_bytes(uri, b"hello")
    assert storage.read_bytes(uri) == b"hello"
    assert storage.read_bytes(f"file://{uri}") == b"hello"
    assert storage.object_size(uri) == 5
    assert storage.exists(uri)
    storage.write_bytes(uri, b"replaced")
    assert storage.read_bytes(uri) == b"replaced"
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["c.bin"]  # no temp left


def test_local_write_is_atomic_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.json"
    target.write_bytes(b"old")

    def fail_replace(self: Path, other: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", fail_replace)
    with pytest.raises(StorageError):
        storage.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"old"  # the reader never sees a partial file
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_local_in_place_write_creates_parents_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[Path] = []
    monkeypatch.setattr(Path, "replace", lambda self, other: renames.append(other))
    uri = str(tmp_path / "a" / "b" / "c.bin")
    storage.write_bytes(uri, b"hello", in_place=True)
    storage.write_bytes(uri, b"bye", in_place=True)
    assert storage.read_bytes(uri) == b"bye"
    assert renames == []  # written directly, not through a temp file
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["c.bin"]


def test_local_write_into_a_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_bytes(b"a file, not a folder")
    for in_place in (False, True):
        with pytest.raises(StorageError, match="taken"):
            storage.write_bytes(str(tmp_path / "taken" / "x.json"), b"{}", in_place=in_place)


def test_local_missing_file_is_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    for call in (storage.read_bytes, storage.object_size, storage.open_input):
        with pytest.raises(ObjectNotFoundError):
            call(missing)
    with pytest.raises(ObjectNotFoundError):
        storage.read_range(missing, 0, 1)
    assert not storage.exists(missing)
    assert not storage.exists(str(tmp_path))  # a folder is not an object


def test_local_read_range(tmp_path: Path) -> None:
    uri = str(tmp_path / "r.bin")
    storage.write_bytes(uri, b"0123456789")
    assert storage.read_range(uri, 2, 3) == b"234"
    assert storage.read_range(uri, 8, 10) == b"89"
    assert storage.read_range(uri, 20, 5) == b""
    assert storage.read_range(uri, 0, 0) == b""
    with pytest.raises(ValueError):
        storage.read_range(uri, -1, 2)


def test_local_open_input_streams(tmp_path: Path) -> None:
    uri = str(tmp_path / "lines.txt")
    storage.write_bytes(uri, b"a\nb\n")
    with storage.open_input(uri) as stream:
        assert list(stream) == [b"a\n", b"b\n"]


def test_local_delete_prefix_is_a_folder(tmp_path: Path) -> None:
    for name in ("jobs/1/a", "jobs/1/sub/b", "jobs/10/keep"):
        storage.write_bytes(str(tmp_path / name), b"x")
    assert storage.delete_prefix(str(tmp_path / "jobs" / "1")) == 2
    assert (tmp_path / "jobs" / "10" / "keep").exists()
    assert not (tmp_path / "jobs" / "1").exists()
    assert storage.delete_prefix(str(tmp_path / "absent")) == 0


# -- S3 error mapping, with botocore's Stubber (no network) ----------------------------------


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    monkeypatch.setattr(storage, "_s3", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, ObjectNotFoundError),
        ("NoSuchBucket", 404, ObjectNotFoundError),
        ("SlowDown", 503, RetryableError),
        ("InternalError", 500, RetryableError),
        ("SomethingNew", 502, RetryableError),
        ("AccessDenied", 403, StorageError),
    ],
)
def test_s3_errors_map_by_code(
    stubbed: Stubber, code: str, status: int, expected: type[Exception]
) -> None:
    stubbed.add_client_error(
        "get_object", service_error_code=code, service_message="ignored", http_status_code=status
    )
    with pytest.raises(expected) as info:
        storage.read_bytes("s3://bkt/key")
    assert "s3://bkt/key" in str(info.value)
    if expected is StorageError:
        assert not isinstance(info.value, ObjectNotFoundError)


def test_s3_head_404_is_not_found_and_exists_false(stubbed: Stubber) -> None:
    stubbed.add_client_error("head_object", service_error_code="404", http_status_code=404)
    stubbed.add_client_error("head_object", service_error_code="404", http_status_code=404)
    with pytest.raises(ObjectNotFoundError):
        storage.object_size("s3://bkt/key")
    assert storage.exists("s3://bkt/key") is False


def test_s3_exists_raises_when_s3_cannot_answer(stubbed: Stubber) -> None:
    stubbed.add_client_error("head_object", service_error_code="403", http_status_code=403)
    with pytest.raises(StorageError):
        storage.exists("s3://bkt/key")


def test_s3_write_needs_a_key() -> None:
    with pytest.raises(UnsupportedUriError):
        storage.write_bytes("s3://bkt/folder/", b"x")


# -- streamed writes -------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A pipe-like stream: short reads, then optionally a failure."""

    def __init__(self, body: bytes, *, fail_after: int | None = None) -> None:
        super().__init__()
        self._body = body
        self._at = 0
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._fail_after is not None and self._at >= self._fail_after:
            raise OSError(5, "pipe broke")
        chunk = self._body[self._at : self._at + 3]
        memoryview(buffer)[: len(chunk)] = chunk
        self._at += len(chunk)
        return len(chunk)


def test_local_put_stream_writes_everything_atomically(tmp_path: Path) -> None:
    uri = str(tmp_path / "out" / "x.bin")
    result = storage.put_stream(uri, cast(BinaryIO, Trickle(b"0123456789")))
    assert result == storage.PutResult(10, None)
    assert storage.read_bytes(uri) == b"0123456789"
    with pytest.raises(StorageError):
        storage.put_stream(uri, cast(BinaryIO, Trickle(b"new body", fail_after=3)))
    assert storage.read_bytes(uri) == b"0123456789"  # the old file stays whole
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.bin"]  # no temp left


def test_local_put_file(tmp_path: Path) -> None:
    source = tmp_path / "src.txt"
    source.write_bytes(b"payload")
    assert storage.put_file(str(tmp_path / "d" / "copy.txt"), source).size == 7
    assert (tmp_path / "d" / "copy.txt").read_bytes() == b"payload"
    with pytest.raises(ObjectNotFoundError, match="absent"):
        storage.put_file(str(tmp_path / "copy2.txt"), tmp_path / "absent")


def test_put_stream_rejects_parts_smaller_than_s3_allows(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="part_size"):
        storage.put_stream(str(tmp_path / "x"), io.BytesIO(b"x"), part_size=1024)


def test_s3_put_stream_short_body_is_one_put(stubbed: Stubber) -> None:
    stubbed.add_response(
        "put_object",
        {"ETag": '"abc"'},
        expected_params={"Bucket": "bkt", "Key": "k", "Body": b"small", "ContentType": "text/csv"},
    )
    result = storage.put_stream("s3://bkt/k", io.BytesIO(b"small"), content_type="text/csv")
    assert result == storage.PutResult(5, "abc")


def test_s3_put_stream_multipart_and_abort_on_failure(
    stubbed: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "MIN_PART_SIZE", 4)
    ids = {"Bucket": "bkt", "Key": "k", "UploadId": "u1"}
    stubbed.add_response(
        "create_multipart_upload",
        {"UploadId": "u1"},
        {"Bucket": "bkt", "Key": "k", "ContentType": "application/x-ndjson"},
    )
    stubbed.add_response("upload_part", {"ETag": '"p1"'}, {**ids, "PartNumber": 1, "Body": b"abcd"})
    stubbed.add_client_error("upload_part", service_error_code="SlowDown", http_status_code=503)
    stubbed.add_response("abort_multipart_upload", {}, ids)
    with pytest.raises(RetryableError):
        storage.put_stream(
            "s3://bkt/k",
            io.BytesIO(b"abcdefgh"),
            content_type="application/x-ndjson",
            part_size=4,
        )
