"""Write a processor output from bytes or a stream: S3 multipart uploads, atomic local files."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws, storage
from parceler.errors import UnsupportedUriError

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# 32 MiB parts: S3 allows 10,000 parts, so one streamed output may reach 320 GiB, while a
# worker holds one part in memory at a time (a Lambda with 1 GB of memory copes).
PART_SIZE = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PutResult:
    """What was written: its size in bytes and, for S3, its ETag (without quotes)."""

    size: int
    etag: str | None


def put_stream(uri: str, data: bytes | BinaryIO, *, part_size: int = PART_SIZE) -> PutResult:
    """Write ``data`` (bytes, or a binary stream read to its end) to ``uri``.

    S3: a body shorter than ``part_size`` is one PUT; a longer one a multipart upload
    (aborted if anything fails, so no orphan parts are billed). Local: a temp file in the
    destination folder renamed into place, so readers never see a half-written file.

    Raises:
        ObjectNotFoundError, RetryableError, StorageError: as for ``storage.write_bytes``.
    """
    parsed = storage.parse_uri(uri)
    if not parsed.is_s3:
        if isinstance(data, bytes):
            storage.write_bytes(uri, data)
            return PutResult(len(data), None)
        return _put_local(uri, Path(parsed.path), data)
    if not parsed.key or parsed.key.endswith("/"):
        raise UnsupportedUriError(f"Cannot write to {uri!r}: it names no object key.")
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return _put_s3(uri, parsed.bucket, parsed.key, stream, part_size)


def _read_part(stream: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes unless the stream ends first (pipes return short reads)."""
    chunks: list[bytes] = []
    missing = size
    while missing > 0:
        chunk = stream.read(missing)
        if not chunk:
            break
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _put_s3(uri: str, bucket: str, key: str, stream: BinaryIO, part_size: int) -> PutResult:
    s3 = aws.client("s3")
    first = _read_part(stream, part_size)
    try:
        if len(first) < part_size:
            response = s3.put_object(Bucket=bucket, Key=key, Body=first)
            return PutResult(len(first), response.get("ETag", "").strip('"') or None)
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    except (ClientError, BotoCoreError) as exc:
        storage._raise_mapped(exc, uri, "write")
    parts: list[CompletedPartTypeDef] = []
    total = 0
    try:
        chunk = first
        while chunk:
            number = len(parts) + 1
            part = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )
            parts.append({"ETag": part["ETag"], "PartNumber": number})
            total += len(chunk)
            chunk = _read_part(stream, part_size)
        done = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException as exc:
        with contextlib.suppress(ClientError, BotoCoreError):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if isinstance(exc, ClientError | BotoCoreError):
            storage._raise_mapped(exc, uri, "write")
        raise
    return PutResult(total, done.get("ETag", "").strip('"') or None)


def _put_local(uri: str, path: Path, stream: BinaryIO) -> PutResult:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        storage._raise_local(exc, uri, "write")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
            size = handle.tell()
        tmp.replace(path)
    except OSError as exc:
        storage._raise_local(exc, uri, "write")
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return PutResult(size, None)
