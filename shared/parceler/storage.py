"""URI I/O for ``s3://`` objects, ``file://`` URIs and plain local paths, with typed errors.

Every S3 call goes through :func:`parceler.aws.client`, so ``AWS_ENDPOINT_URL`` (moto, another
emulator) and real AWS are one code path. botocore errors go through
:func:`parceler.aws.errors.raise_mapped` (by error code and HTTP status, never message text):

- ``NoSuchKey``, ``NoSuchBucket``, ``NotFound``, HTTP 404 → ``ObjectNotFoundError``
- throttling codes, HTTP 5xx, connection and read timeouts → ``RetryableError``
- anything else (``AccessDenied``, missing credentials, ...) → ``StorageError``

Local paths get the same errors (a missing file is ``ObjectNotFoundError``). Local writes are
atomic against concurrent readers (a temp file in the same folder, then a rename) but are
not fsynced: the local mode trades power-loss durability for speed.

Writes: :func:`write_bytes` for a body in memory, :func:`put_stream`
and :func:`put_file` for bodies of any size (S3 multipart uploads, one part in memory).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, NoReturn, Protocol, TypeVar, cast
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws
from parceler.aws.errors import error_code, raise_mapped
from parceler.errors import ObjectNotFoundError, StorageError, UnsupportedUriError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

ACCEPTED_SCHEMES = ("s3", "file")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_DELETE_BATCH = 1000  # the DeleteObjects maximum
# 32 MiB parts: S3 allows 10,000 parts, so one streamed object may reach 320 GiB, while a
# writer holds one part in memory at a time (a Lambda with 1 GB of memory copes).
PART_SIZE = 32 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last


@dataclass(frozen=True, slots=True)
class ParsedUri:
    """A URI split into its parts.

    Attributes:
        scheme: ``"s3"`` or ``"file"``.
        bucket: the S3 bucket (``""`` for local files).
        key: the S3 key, possibly empty for a whole bucket (``""`` for local files).
        path: the local filesystem path (``""`` for S3).
    """

    scheme: Literal["s3", "file"]
    bucket: str
    key: str
    path: str

    @property
    def is_s3(self) -> bool:
        """True for an S3 object or prefix."""
        return self.scheme == "s3"


def parse_uri(uri: str) -> ParsedUri:
    """Split ``uri`` into scheme, bucket, key and path.

    ``s3://bucket/key`` is S3 (the key is kept verbatim, not URL-decoded). ``file:///abs/path``
    (or ``file://localhost/abs/path``, percent-decoded) and anything without ``scheme://``
    (a plain absolute or relative path) are local files.

    Raises:
        UnsupportedUriError: another scheme, an S3 URI without a bucket, or a ``file://`` URI
            naming a remote host.
    """
    match = _SCHEME_RE.match(uri)
    if match is None:
        if not uri:
            raise UnsupportedUriError(
                "An empty string is not a URI.", "Pass s3://bucket/key or a path."
            )
        return ParsedUri("file", "", "", uri)
    scheme = match.group(1).lower()
    rest = uri[match.end() :]
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise UnsupportedUriError(
                f"S3 URI {uri!r} names no bucket.", "Write it as s3://bucket/key."
            )
        return ParsedUri("s3", bucket, key, "")
    if scheme == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedUriError(
                f"file URI {uri!r} names host {parts.netloc!r}; only local files are supported.",
                "Write an absolute path as file:///abs/path, or pass a plain (relative) path.",
            )
        return ParsedUri("file", "", "", unquote(parts.path))
    raise UnsupportedUriError(
        f"URI {uri!r} has unsupported scheme {scheme!r}; parceler reads and writes "
        f"{', '.join(s + '://' for s in ACCEPTED_SCHEMES)} and plain paths.",
        "Copy the data to S3 or a local folder first.",
    )


def join(prefix: str, *parts: str) -> str:
    """Join ``parts`` onto ``prefix`` with ``/``, for S3 URIs, ``file://`` URIs and paths alike.

    Slashes at the seams are collapsed and empty parts skipped, so
    ``join("s3://b/jobs/", "/7", "manifest.json") == "s3://b/jobs/7/manifest.json"`` and
    ``join("/tmp/w", "a") == "/tmp/w/a"``. A part is never treated as an absolute path.
    """
    pieces = [p.strip("/") for p in parts]
    tail = "/".join(p for p in pieces if p)
    if not tail:
        return prefix
    if not prefix:
        return tail
    head = prefix.rstrip("/")
    if not head or head.endswith(":"):
        # "/" or a bare "scheme://": the slashes there carry meaning, keep them.
        return prefix + tail if prefix.endswith("/") else prefix + "/" + tail
    return head + "/" + tail


# -- errors ----------------------------------------------------------------------------------


def _raise_local(exc: OSError, uri: str, action: str) -> NoReturn:
    if action == "write" and isinstance(exc, NotADirectoryError | FileExistsError):
        raise StorageError(
            f"write {uri}: a folder on its path is a file.", "Choose another path."
        ) from exc
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        raise ObjectNotFoundError(f"{action} {uri}: no such file.", "Check the path.") from exc
    if isinstance(exc, IsADirectoryError):
        raise StorageError(f"{action} {uri}: is a folder, not a file.", "Name a file.") from exc
    if isinstance(exc, PermissionError):
        raise StorageError(
            f"{action} {uri}: permission denied.", "Check file permissions."
        ) from exc
    raise StorageError(f"{action} {uri}: {type(exc).__name__} (errno {exc.errno}).") from exc


def _s3() -> S3Client:
    return aws.client("s3")


# -- reads -----------------------------------------------------------------------------------


def read_bytes(uri: str) -> bytes:
    """Return the whole object at ``uri``.

    Raises:
        ObjectNotFoundError: no such object or file.
        RetryableError: throttling, 5xx, a dropped connection.
        StorageError: any other refusal.
    """
    parsed = parse_uri(uri)
    if parsed.is_s3:
        try:
            response = _s3().get_object(Bucket=parsed.bucket, Key=parsed.key)
            return response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "s3", "read", uri)
    try:
        return Path(parsed.path).read_bytes()
    except OSError as exc:
        _raise_local(exc, uri, "read")


class _Body(Protocol):
    def read(self, amt: int | None = ..., /) -> bytes: ...
    def close(self) -> None: ...


class _S3Stream(io.RawIOBase):
    """A raw stream over a botocore StreamingBody whose read faults are typed errors."""

    def __init__(self, body: _Body, uri: str) -> None:
        super().__init__()
        self._body = body
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            chunk = self._body.read(len(view))
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "s3", "stream", self._uri)
        view[: len(chunk)] = chunk
        return len(chunk)

    def readall(self) -> bytes:
        # read() to the end in one body read, not RawIOBase's 8 KiB loop (read_bytes of a
        # checked input goes through here).
        try:
            return self._body.read()
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "s3", "stream", self._uri)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


def open_input(uri: str) -> BinaryIO:
    """Open ``uri`` for streamed binary reading (the object is never read whole into memory).

    Use it as a context manager. S3 bodies are wrapped in a buffered reader, so ``readline``
    and iteration work; a connection dropped mid-stream raises :class:`RetryableError`.

    Raises:
        ObjectNotFoundError, RetryableError, StorageError: as for :func:`read_bytes`.
    """
    return open_input_as_found(uri).stream


@dataclass(frozen=True, slots=True)
class OpenedInput:
    """An input opened for reading, with the size and ETag of what was opened.

    ``etag`` is S3's ETag without quotes, or for a local file its change token
    (:func:`local_etag`): both come with the open at no extra cost (the GetObject
    response, an ``fstat`` of the open file), so they describe exactly the bytes read.
    """

    stream: BinaryIO
    size: int
    etag: str | None


def local_etag(stat: os.stat_result) -> str:
    """The change token a local file stands for its ETag: ``"{mtime_ns}-{size}"``.

    Not a content hash: stable while the file is untouched, different once it is
    rewritten, and free to compute (the local folder source records it at planning).
    """
    return f"{stat.st_mtime_ns}-{stat.st_size}"


_LOCAL_ETAG = re.compile(r"^\d+-\d+$")


def is_local_etag(etag: str) -> bool:
    """True if ``etag`` has the form of :func:`local_etag` (so a local file can be checked)."""
    return _LOCAL_ETAG.match(etag) is not None


def open_input_as_found(uri: str, byte_range: tuple[int, int] | None = None) -> OpenedInput:
    """Open ``uri`` like :func:`open_input`, and say what size and ETag were found.

    Args:
        byte_range: ``(start, length)``: open only those bytes (a ranged GET on S3); the
            size found is then the range's (shorter if the object ends sooner), the ETag
            the whole object's.

    Raises:
        ObjectNotFoundError, RetryableError, StorageError: as for :func:`read_bytes`.
    """
    parsed = parse_uri(uri)
    if parsed.is_s3:
        try:
            if byte_range is None:
                response = _s3().get_object(Bucket=parsed.bucket, Key=parsed.key)
            else:
                start, length = byte_range
                span = f"bytes={start}-{start + max(length, 1) - 1}"
                response = _s3().get_object(Bucket=parsed.bucket, Key=parsed.key, Range=span)
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "s3", "open", uri)
        raw = _S3Stream(response["Body"], uri)
        etag = response.get("ETag", "").strip('"') or None
        return OpenedInput(
            cast(BinaryIO, io.BufferedReader(raw, buffer_size=1 << 20)),
            int(response["ContentLength"]),
            etag,
        )
    try:
        handle = Path(parsed.path).open("rb")  # noqa: SIM115 - the caller closes the stream
    except OSError as exc:
        _raise_local(exc, uri, "open")
    stat = os.fstat(handle.fileno())  # of the file opened, even if the path is replaced now
    if byte_range is None:
        return OpenedInput(handle, stat.st_size, local_etag(stat))
    start, length = byte_range
    handle.seek(start)
    found = max(0, min(length, stat.st_size - start))
    stream = io.BufferedReader(_Limited(handle, found), buffer_size=1 << 20)
    return OpenedInput(cast(BinaryIO, stream), found, local_etag(stat))


class _Limited(io.RawIOBase):
    """The first ``left`` bytes of an open file, as a stream that closes the file."""

    def __init__(self, handle: BinaryIO, left: int) -> None:
        super().__init__()
        self._handle = handle
        self._left = left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")[: self._left]
        got = self._handle.readinto(view) if len(view) else 0  # type: ignore[attr-defined]
        self._left -= got
        return got

    def close(self) -> None:
        self._handle.close()
        super().close()


def read_range(uri: str, start: int, length: int) -> bytes:
    """Return up to ``length`` bytes of ``uri`` from offset ``start`` (a ranged GET on S3).

    Fewer bytes come back when the object ends sooner; none when ``start`` is at or past the
    end (S3's ``InvalidRange`` is mapped to ``b""`` so S3 and local files agree).

    Raises:
        ValueError: a negative ``start`` or ``length``.
        ObjectNotFoundError, RetryableError, StorageError: as for :func:`read_bytes`.
    """
    if start < 0 or length < 0:
        raise ValueError(f"read_range needs start >= 0 and length >= 0, got {start}, {length}")
    if length == 0:
        return b""
    parsed = parse_uri(uri)
    if parsed.is_s3:
        try:
            response = _s3().get_object(
                Bucket=parsed.bucket, Key=parsed.key, Range=f"bytes={start}-{start + length - 1}"
            )
            return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise_mapped(exc, "s3", "read range of", uri)
        except BotoCoreError as exc:
            raise_mapped(exc, "s3", "read range of", uri)
    try:
        with Path(parsed.path).open("rb") as handle:
            handle.seek(start)
            return handle.read(length)
    except OSError as exc:
        _raise_local(exc, uri, "read range of")


def object_size(uri: str) -> int:
    """Return the size of the object at ``uri`` in bytes (a HEAD request on S3).

    Raises:
        ObjectNotFoundError, RetryableError, StorageError: as for :func:`read_bytes`.
    """
    parsed = parse_uri(uri)
    if parsed.is_s3:
        try:
            return int(_s3().head_object(Bucket=parsed.bucket, Key=parsed.key)["ContentLength"])
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "s3", "size of", uri)
    path = Path(parsed.path)
    try:
        if path.is_dir():
            raise IsADirectoryError(parsed.path)
        return path.stat().st_size
    except OSError as exc:
        _raise_local(exc, uri, "size of")


def exists(uri: str) -> bool:
    """True if an object (S3) or a regular file (local) exists at ``uri``; folders do not count.

    Raises:
        RetryableError, StorageError: the store could not answer (not found is ``False``).
    """
    parsed = parse_uri(uri)
    if parsed.is_s3:
        try:
            _s3().head_object(Bucket=parsed.bucket, Key=parsed.key)
        except ClientError as exc:
            try:
                raise_mapped(exc, "s3", "check", uri)
            except ObjectNotFoundError:
                return False
        except BotoCoreError as exc:
            raise_mapped(exc, "s3", "check", uri)
        return True
    return Path(parsed.path).is_file()


# -- writes ----------------------------------------------------------------------------------


def write_bytes(
    uri: str,
    data: bytes,
    *,
    content_type: str | None = None,
    in_place: bool = False,
) -> None:
    """Write ``data`` to ``uri``, replacing any object there.

    Args:
        uri: the destination.
        data: the whole body.
        content_type: the S3 ``Content-Type`` (ignored for local files).
        in_place: locally, write the file directly instead of a temp file renamed into place
            (a crash can leave it half-written): for many objects committed together by a
            later atomic write. No effect on S3, where a PUT is always atomic.

    Local writes create missing parent folders and are atomic (temp file + rename) unless
    ``in_place``.

    Raises:
        RetryableError, StorageError: as for :func:`read_bytes`.
    """
    parsed = parse_uri(uri)
    if parsed.is_s3:
        if not parsed.key or parsed.key.endswith("/"):
            raise UnsupportedUriError(f"Cannot write to {uri!r}: it names no object key.")
        extra: dict[str, str] = {}
        if content_type is not None:
            extra["ContentType"] = content_type
        try:
            _s3().put_object(Bucket=parsed.bucket, Key=parsed.key, Body=data, **extra)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            raise_mapped(exc, "s3", "write", uri)
        return
    _write_local(
        Path(parsed.path),
        uri,
        lambda handle: handle.write(data),
        in_place=in_place,
    )


def _write_local(
    path: Path,
    uri: str,
    fill: Callable[[BinaryIO], object],
    *,
    in_place: bool = False,
) -> int:
    """Write via ``fill`` to a temp file beside ``path``, then move it there; return its size.

    ``in_place`` writes straight to ``path`` instead (no temp file, no rename): for callers
    whose own last write is the commit (a plan's index), saving two file-system calls.
    The folder is created only when the first attempt finds it missing.
    """
    try:
        if in_place:
            with _open_creating_folder(path, lambda: path.open("wb")) as handle:
                fill(handle)
                return handle.tell()
        fd, tmp_name = _open_creating_folder(
            path,
            lambda: tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent),
        )
    except OSError as exc:
        _raise_local(exc, uri, "write")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            size = handle.tell()
        tmp.replace(path)
    except OSError as exc:
        _raise_local(exc, uri, "write")
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return size


_Opened = TypeVar("_Opened")


def _open_creating_folder(path: Path, open_it: Callable[[], _Opened]) -> _Opened:
    """``open_it()``, creating ``path``'s folder first if the first attempt finds it missing."""
    try:
        return open_it()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_it()


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a streamed write stored: its size in bytes and, on S3, its ETag (no quotes)."""

    size: int
    etag: str | None


def put_stream(
    uri: str,
    stream: BinaryIO,
    *,
    content_type: str | None = None,
    part_size: int = PART_SIZE,
) -> PutResult:
    """Write everything ``stream`` yields (read to its end) to ``uri``, replacing any object.

    S3: a body shorter than ``part_size`` is one PUT; a longer one is a multipart upload
    holding one part in memory at a time, aborted if anything fails (no orphan parts are
    billed). Local: a temp file in the destination folder renamed into place, so readers
    never see a half-written file. Short reads (pipes) are fine.

    Args:
        uri: the destination object or file.
        stream: a binary stream; read, never closed.
        content_type: the S3 ``Content-Type`` (ignored for local files).
        part_size: bytes per multipart part, at least :data:`MIN_PART_SIZE`.

    Returns:
        The size written and, on S3, the object's ETag (a multipart ETag ends in ``-<parts>``).

    Raises:
        ValueError: ``part_size`` below S3's 5 MiB minimum.
        UnsupportedUriError: an S3 URI without a key (or ending in ``/``).
        RetryableError, StorageError: as for :func:`read_bytes`; errors raised by ``stream``
            itself propagate unchanged.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
    parsed = parse_uri(uri)
    if not parsed.is_s3:
        size = _write_local(
            Path(parsed.path),
            uri,
            lambda handle: shutil.copyfileobj(stream, handle, 1 << 20),
        )
        return PutResult(size, None)
    if not parsed.key or parsed.key.endswith("/"):
        raise UnsupportedUriError(f"Cannot write to {uri!r}: it names no object key.")
    return _put_s3(uri, parsed.bucket, parsed.key, stream, content_type, part_size)


def put_file(
    uri: str,
    local_path: str | os.PathLike[str],
    *,
    content_type: str | None = None,
    part_size: int = PART_SIZE,
) -> PutResult:
    """Write the local file ``local_path`` to ``uri`` (see :func:`put_stream`).

    Raises:
        ObjectNotFoundError: ``local_path`` does not exist.
        StorageError: ``local_path`` cannot be read (a folder, no permission).
        ValueError, UnsupportedUriError, RetryableError, StorageError: as for
            :func:`put_stream`.
    """
    source = os.fspath(local_path)
    try:
        handle = Path(source).open("rb")  # noqa: SIM115 - closed below, errors mapped here
    except OSError as exc:
        _raise_local(exc, source, "read")
    with handle:
        return put_stream(uri, handle, content_type=content_type, part_size=part_size)


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


def _put_s3(
    uri: str, bucket: str, key: str, stream: BinaryIO, content_type: str | None, part_size: int
) -> PutResult:
    s3 = _s3()
    extra: dict[str, str] = {} if content_type is None else {"ContentType": content_type}
    first = _read_part(stream, part_size)
    try:
        if len(first) < part_size:
            response = s3.put_object(Bucket=bucket, Key=key, Body=first, **extra)  # type: ignore[arg-type]
            return PutResult(len(first), response.get("ETag", "").strip('"') or None)
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]  # type: ignore[arg-type]
    except (ClientError, BotoCoreError) as exc:
        raise_mapped(exc, "s3", "write", uri)
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
            raise_mapped(exc, "s3", "write", uri)
        raise
    return PutResult(total, done.get("ETag", "").strip('"') or None)


def delete_prefix(uri: str) -> int:
    """Delete everything under the folder ``uri``; return how many objects were deleted.

    ``uri`` is a folder: ``s3://b/jobs/1`` deletes ``jobs/1/...`` but never ``jobs/10/...``
    (a ``/`` is appended to the key). S3 deletes go in ``DeleteObjects`` batches of 1,000;
    keys S3 fails to delete are skipped (best effort), so the count may be lower than the
    number of keys listed. A local folder is removed with its files; a local file alone is
    deleted too. Nothing there is not an error (returns 0).

    Raises:
        RetryableError, StorageError: listing failed.
    """
    parsed = parse_uri(uri)
    if not parsed.is_s3:
        return _delete_local(Path(parsed.path), uri)
    prefix = parsed.key if not parsed.key or parsed.key.endswith("/") else parsed.key + "/"
    s3 = _s3()
    deleted = 0
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=parsed.bucket, Prefix=prefix):
            keys = [item["Key"] for item in page.get("Contents", [])]
            for i in range(0, len(keys), _DELETE_BATCH):
                batch = keys[i : i + _DELETE_BATCH]
                response = s3.delete_objects(
                    Bucket=parsed.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
                deleted += len(batch) - len(response.get("Errors", []))
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return deleted
        raise_mapped(exc, "s3", "delete", uri)
    except BotoCoreError as exc:
        raise_mapped(exc, "s3", "delete", uri)
    return deleted


def _delete_local(path: Path, uri: str) -> int:
    try:
        if path.is_file() or path.is_symlink():
            path.unlink()
            return 1
        if not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if not p.is_dir())
        shutil.rmtree(path)
        return count
    except OSError as exc:
        _raise_local(exc, uri, "delete")
