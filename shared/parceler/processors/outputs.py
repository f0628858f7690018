"""Write a processor output from bytes or a stream: a thin layer over ``storage.put_stream``."""

from __future__ import annotations

import io
from typing import BinaryIO

from parceler import storage
from parceler.storage import PART_SIZE, PutResult

__all__ = ["PART_SIZE", "PutResult", "put_stream"]


def put_stream(uri: str, data: bytes | BinaryIO, *, part_size: int = PART_SIZE) -> PutResult:
    """Write ``data`` (bytes, or a binary stream read to its end) to ``uri``.

    See :func:`parceler.storage.put_stream`: S3 multipart uploads for long bodies, atomic
    local files.

    Raises:
        ValueError, UnsupportedUriError, RetryableError, StorageError: as for
            :func:`parceler.storage.put_stream`.
    """
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return storage.put_stream(uri, stream, part_size=part_size)
