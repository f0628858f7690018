"""The warm local stack's S3-event path: new job specs in the work bucket start jobs.

On AWS an upload under the starter's trigger prefix (``specs/…*.job.json``) reaches the
starter Lambda as an EventBridge "Object Created" event. moto fires S3 notifications
*inside* the ``PutObject`` request, which the local emulator serialises
(:mod:`parceler.local.emulator`); the starter reads the spec back and calls
``StartExecution`` on that same server, so a notification-driven start would deadlock. The
substitution (docs/local-aws-facts.md): :class:`SpecWatcher` lists the trigger prefix
every ``interval`` seconds and, for each new object version, invokes the real starter
function (through moto's Lambda ``Invoke``, which the in-process hook runs) with the event
EventBridge would deliver. Only keys under the prefix ending in the suffix are sent, as
the stack's EventBridge rule filters them.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpecObject:
    """One version of an object under the trigger prefix, as a listing shows it."""

    key: str
    etag: str
    size: int
    last_modified: datetime

    @property
    def sequencer(self) -> str:
        """A stand-in for S3's per-key sequencer: later uploads of a key sort later, and a
        re-upload (a new modification time) gets a new one, so it starts a new job."""
        return f"{int(self.last_modified.timestamp() * 1_000_000):016X}"


def object_created_event(bucket: str, obj: SpecObject, region: str) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for ``obj`` (the fields the starter reads)."""
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": obj.key,
                "size": obj.size,
                "etag": obj.etag.strip('"'),
                "sequencer": obj.sequencer,
            },
            "reason": "PutObject",
        },
    }


class SpecWatcher:
    """Invoke the starter function once per new object version under ``prefix``…``suffix``.

    Args:
        bucket: the watched bucket (the local stack's work bucket).
        prefix, suffix: the starter's trigger prefix and suffix.
        starter_function: the starter function's name or ARN.
        region: the region written into the events.
        interval: seconds between listings.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        suffix: str,
        starter_function: str,
        region: str,
        interval: float = 0.25,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.suffix = suffix
        self.starter_function = starter_function
        self.region = region
        self.interval = interval
        self._seen: set[tuple[str, str, datetime]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="parceler-spec-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except (
                Exception
            ):  # a failed listing is retried at the next tick, as EventBridge retries
                log.exception("watching s3://%s/%s", self.bucket, self.prefix)

    def poll(self) -> list[dict[str, Any]]:
        """List the prefix once and invoke the starter for every object version not seen yet.

        Returns:
            The starter's responses (``StartResult.to_json()``, or the handler's error
            document), in listing order.
        """
        responses = []
        for obj in self._list():
            marker = (obj.key, obj.etag, obj.last_modified)
            if marker in self._seen or not obj.key.endswith(self.suffix):
                continue
            self._seen.add(marker)
            responses.append(self._invoke(obj))
        return responses

    def _list(self) -> list[SpecObject]:
        s3 = aws.client("s3")
        found: list[SpecObject] = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            for item in page.get("Contents", []):
                found.append(
                    SpecObject(
                        key=item["Key"],
                        etag=item.get("ETag", ""),
                        size=item.get("Size", 0),
                        last_modified=item["LastModified"],
                    )
                )
        return found

    def _invoke(self, obj: SpecObject) -> dict[str, Any]:
        event = object_created_event(self.bucket, obj, self.region)
        try:
            response = aws.client("lambda").invoke(
                FunctionName=self.starter_function, Payload=json.dumps(event).encode()
            )
        except (ClientError, BotoCoreError):
            log.exception("invoking the starter for s3://%s/%s", self.bucket, obj.key)
            self._seen.discard((obj.key, obj.etag, obj.last_modified))  # retried next tick
            return {"status": "error", "key": obj.key}
        body: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            log.warning(
                "the starter refused s3://%s/%s: %s: %s",
                self.bucket,
                obj.key,
                body.get("errorType"),
                body.get("errorMessage"),
            )
        else:
            log.info("s3://%s/%s: %s", self.bucket, obj.key, body)
        return body
