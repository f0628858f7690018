"""The local mode's work area on disk: what later local commands need from earlier runs.

The emulator's table and bucket vanish when a local run ends. Incremental reuse (a later
``run --local`` skips groups an earlier one committed) and ``redrive --local`` need some of
them back, so every local run saves, before its emulator stops::

    parceler-runs/.workarea/
        cache.jsonl          the ledger's result-cache items (DynamoDB JSON, one per line)
        jobs/<job_id>.jsonl  the job's ledger items (job, shard counters, groups, slices)
        bucket/jobs/<job_id>/...  the job's objects in the work bucket (spec, manifests,
                             group manifests, attempt results, aggregation)

A new session restores the cache items and the attempt folders they point to (so a job
can reuse them: the cost grows with the distinct groups cached, three small files each);
a redrive also restores the job's own items and objects. Processor outputs are not here:
a local run writes them to its run folder (``outputs/``), which the saved result manifests
name, so a reused group's outputs are read from the run folder of the job that made them.
Delete the folder to forget every cached result.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parceler import aws, storage
from parceler.aws.dynamodb_codec import from_attribute
from parceler.aws.ledger import job_key, shard_pk
from parceler.errors import InputError
from parceler.local.resources import LocalStack
from parceler.local.run_folder import RUNS_FOLDER

WORK_AREA_FOLDER = ".workarea"
_THREADS = 8


class WorkAreaNotFoundError(InputError):
    """No saved work area of a job: it was not run locally from here (or before redrive
    existed)."""


@dataclass(frozen=True, slots=True)
class LocalWorkArea:
    """The on-disk copy of the local work area (see the module docstring)."""

    path: Path

    @classmethod
    def default(cls, cwd: Path | None = None) -> LocalWorkArea:
        """``./parceler-runs/.workarea``, absolute."""
        return cls(((cwd or Path.cwd()) / RUNS_FOLDER / WORK_AREA_FOLDER).resolve())

    @property
    def cache_items(self) -> Path:
        return self.path / "cache.jsonl"

    def job_items(self, job_id: str) -> Path:
        return self.path / "jobs" / f"{job_id}.jsonl"

    @property
    def bucket(self) -> Path:
        return self.path / "bucket"

    def has_job(self, job_id: str) -> bool:
        return self.job_items(job_id).is_file()

    # ---- save ------------------------------------------------------------------------------

    def save(self, stack: LocalStack, job_id: str) -> None:
        """Save job ``job_id``'s ledger items and objects and every cache item."""
        ddb = aws.client("dynamodb")
        job = ddb.get_item(TableName=stack.ledger_table, Key=job_key(job_id), ConsistentRead=True)
        if "Item" not in job:
            return
        n_shards = int(from_attribute(job["Item"].get("n_shards", {"N": "1"})) or 1)
        items = [dict(job["Item"])]
        for shard in range(n_shards):
            items.extend(_query(stack.ledger_table, shard_pk(job_id, shard)))
        _write_lines(self.job_items(job_id), items)
        # Merged, not replaced: a session that restored nothing (``--no-cache``) keeps the
        # earlier entries; an entry of this session wins over a saved one.
        cache = {item["pk"]["S"]: item for item in _read_lines(self.cache_items)}
        cache.update({item["pk"]["S"]: item for item in _scan_cache(stack.ledger_table)})
        _write_lines(self.cache_items, list(cache.values()))
        keys = _list(stack.work_bucket, f"jobs/{job_id}/")

        def save_object(key: str) -> None:
            target = self.bucket / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(storage.read_bytes(f"s3://{stack.work_bucket}/{key}"))

        with ThreadPoolExecutor(max_workers=_THREADS) as threads:
            list(threads.map(save_object, keys))

    # ---- restore ---------------------------------------------------------------------------

    def restore_cache(self, stack: LocalStack) -> int:
        """Put every saved cache item whose attempt folder was saved into the emulator, with
        that folder's objects; returns how many."""
        restored = []
        folders: set[Path] = set()
        for item in _read_lines(self.cache_items):
            key = storage.parse_uri(str(item["result_uri"]["S"])).key
            folder = (self.bucket / key).parent
            if folder.is_dir():
                restored.append(item)
                folders.add(folder)
        files = [f for folder in sorted(folders) for f in folder.iterdir() if f.is_file()]
        self._upload(stack, files)
        _put_items(stack.ledger_table, restored)
        return len(restored)

    def restore_job(self, stack: LocalStack, job_id: str) -> None:
        """Put job ``job_id``'s saved ledger items and objects into the emulator.

        Raises:
            WorkAreaNotFoundError: nothing was saved for the job.
        """
        if not self.has_job(job_id):
            raise WorkAreaNotFoundError(
                f"no saved work area of job {job_id!r} in {self.path}.",
                "run redrive --local from the folder the job ran in (or pass --work-area); "
                "a deployed job needs --ledger-table and --state-machine instead.",
            )
        folder = self.bucket / "jobs" / job_id
        files = [f for f in folder.rglob("*") if f.is_file()] if folder.is_dir() else []
        self._upload(stack, files)
        _put_items(stack.ledger_table, _read_lines(self.job_items(job_id)))

    def _upload(self, stack: LocalStack, files: list[Path]) -> None:
        def upload(path: Path) -> None:
            key = path.relative_to(self.bucket).as_posix()
            storage.write_bytes(f"s3://{stack.work_bucket}/{key}", path.read_bytes())

        with ThreadPoolExecutor(max_workers=_THREADS) as threads:
            list(threads.map(upload, files))


def _query(table: str, pk: str) -> list[dict[str, Any]]:
    ddb = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        page = ddb.query(**kwargs)
        items.extend(dict(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _scan_cache(table: str) -> list[dict[str, Any]]:
    ddb = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :cache)",
        "ExpressionAttributeValues": {":cache": {"S": "cache#"}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        page = ddb.scan(**kwargs)
        items.extend(dict(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _put_items(table: str, items: list[dict[str, Any]]) -> None:
    ddb = aws.client("dynamodb")
    for start in range(0, len(items), 25):
        requests: Any = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        while requests:
            response = ddb.batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])


def _list(bucket: str, prefix: str) -> list[str]:
    s3 = aws.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(str(o["Key"]) for o in page.get("Contents", []))
    return keys


def _write_lines(path: Path, items: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    temporary.replace(path)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
