"""List an S3 prefix (ListObjectsV2), fanning out over sub-prefixes in parallel.

The prefix is used literally, as S3 does (``s3://b/data`` also lists ``data-old/...``;
write ``s3://b/data/`` for a folder). Listing one prefix is a chain of 1,000-key pages, so
a large prefix is split: the top levels are listed with ``Delimiter="/"`` (one level per
round, the sub-prefixes of a level in parallel) until there are at least ``workers``
sub-prefixes or :data:`MAX_SPLIT_DEPTH` levels, then every remaining sub-prefix is listed
flat, ``workers`` at a time. Every key is listed exactly once: the objects directly at a
split level come back with that level's delimited listing.

Zero-byte keys ending in ``/`` ("folder markers" written by consoles and tools) are
skipped. A key ending in ``/`` that holds bytes is data (S3 allows it; some tools write
them) and is listed like any other key, with a warning naming how many, since a folder
marker with content usually means an upload went wrong. ETags lose their quotes. The
glob subject is the key relative to the prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws
from parceler.aws.errors import raise_mapped
from parceler.errors import SourceError
from parceler.sources.rows import Listed

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

MAX_SPLIT_DEPTH = 3
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Keys:
    keys: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    etags: list[str | None] = field(default_factory=list)
    markers: int = 0
    slash_keys_with_data: int = 0

    def extend(self, other: _Keys) -> None:
        self.keys.extend(other.keys)
        self.sizes.extend(other.sizes)
        self.etags.extend(other.etags)
        self.markers += other.markers
        self.slash_keys_with_data += other.slash_keys_with_data


def _pages(bucket: str, prefix: str, delimiter: str | None) -> Iterator[ListObjectsV2OutputTypeDef]:
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    kwargs = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    yield from paginator.paginate(**kwargs)  # type: ignore[arg-type]


def _list_one(bucket: str, prefix: str, delimiter: str | None) -> tuple[_Keys, list[str]]:
    """List ``prefix`` (one level with a delimiter, everything without)."""
    found = _Keys()
    subprefixes: list[str] = []
    try:
        for page in _pages(bucket, prefix, delimiter):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    if not item["Size"]:
                        found.markers += 1
                        continue
                    found.slash_keys_with_data += 1
                found.keys.append(key)
                found.sizes.append(int(item["Size"]))
                etag = item.get("ETag")
                found.etags.append(etag.strip('"') if etag else None)
            subprefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    except (ClientError, BotoCoreError) as exc:
        # A source that cannot be listed is bad input (exit code 2), whatever S3 said.
        raise_mapped(exc, "s3", "list", f"s3://{bucket}/{prefix}", refused=SourceError)
    return found, subprefixes


def list_prefix(bucket: str, prefix: str, *, workers: int = 16) -> Listed:
    """List every object under ``s3://bucket/prefix``.

    Args:
        bucket: the bucket.
        prefix: the key prefix, used literally ("" for the whole bucket).
        workers: concurrent ListObjectsV2 chains.

    Returns:
        The rows (``uri``, ``size``, ``etag``) sorted by key, with relative keys as the glob
        subjects. O(keys / 1000) requests, ``workers`` in flight.

    Raises:
        SourceError: the bucket does not exist or may not be listed.
        RetryableError: throttling or a dropped connection.
    """
    workers = max(1, workers)
    found = _Keys()
    level = [prefix]
    depth = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Split while the frontier is narrower than the pool; each round lists one level.
        while level and len(level) < workers and depth < MAX_SPLIT_DEPTH:
            next_level: list[str] = []
            for part, subprefixes in pool.map(lambda p: _list_one(bucket, p, "/"), level):
                found.extend(part)
                next_level.extend(subprefixes)
            level = next_level
            depth += 1
        for part, _ in pool.map(lambda p: _list_one(bucket, p, None), level):
            found.extend(part)
    order = sorted(range(len(found.keys)), key=found.keys.__getitem__)
    keys = [found.keys[i] for i in order]
    skip = len(prefix)
    table = pa.table(
        {
            "uri": pa.array([f"s3://{bucket}/{k}" for k in keys], pa.string()),
            "size": pa.array([found.sizes[i] for i in order], pa.int64()),
            "etag": pa.array([found.etags[i] for i in order], pa.string()),
        }
    )
    notes = (f"{found.markers} folder marker(s) skipped",) if found.markers else ()
    if found.slash_keys_with_data:
        log.warning(
            "s3://%s/%s: %d key(s) ending in '/' hold data and are listed as files",
            bucket, prefix, found.slash_keys_with_data,
        )  # fmt: skip
    return Listed(
        table=table,
        subjects=pa.array([k[skip:] for k in keys], pa.string()),
        noun="keys",
        notes=notes,
    )
