"""Start a job from an S3 "Object Created" event, once per object version, whatever the redelivery.

Two triggers (the object's key decides):

- ``<anything>.job.json``: the object *is* the job spec (or a pipeline spec, with
  ``stages``: docs/pipelines.md; its ``pipeline_id`` plays the part of ``job_id``).
- ``<folder>/_SUCCESS`` (the marker Spark, Hadoop and many exporters write last): the job
  processes ``s3://<bucket>/<folder>/``. Its processor and the rest of the spec come from a
  sibling template ``<folder>/parceler.job.json`` whose ``source`` is replaced by the folder
  (and which excludes the marker and the template). No template → :class:`SpecError` naming
  the key to create: parceler never guesses a processor.

**Only what it is configured for.** A bucket not in ``StarterSettings.trigger_buckets``, or
a key outside ``trigger_prefix``…``trigger_suffix``, is refused with
:class:`UnconfiguredTriggerError` and starts nothing (the stack's rule never delivers one;
a misrouted event or a hand-made invocation might). Any other key name is refused
(:class:`SpecError`).

**Job id.** The spec's ``job_id`` if it has one; otherwise ``<name>-<hash>`` where ``name`` is
the spec file's stem (or the folder's name) and ``hash`` digests bucket, key, ETag and the
event's ``sequencer``. A redelivered event carries the same four values, so it maps to the
same id; a new upload of the key has a new sequencer and starts a new job.

**Once.** The id is the execution name. A second ``StartExecution`` with that name gets
``ExecutionAlreadyExists`` (the first one finished, or its input differs) and is reported as
``duplicate``; while the first one runs with the same input, Step Functions returns that
same execution (its idempotent start), also without a second job.

**Refusals are loud.** A duplicate whose id came from the spec's own ``job_id`` is new work
dropped (a corrected spec re-uploaded, a second folder's marker): it is logged at WARNING
with :data:`REFUSAL_MARKER`, the reason and the fix, and the stack's metric filter counts
those lines (an alarm fires). So is every unconfigured trigger. A redelivered event (same
object version, derived id) is not new work and is logged at INFO.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws, storage
from parceler.aws.errors import error_code, raise_mapped
from parceler.errors import ObjectNotFoundError, SpecError, UnconfiguredTriggerError
from parceler.settings import StarterSettings
from parceler.spec import JobSpec, PipelineSpec, is_pipeline, parse_pipeline, parse_spec

log = logging.getLogger(__name__)

SPEC_SUFFIX = ".job.json"
MARKER = "_SUCCESS"
TEMPLATE = "parceler.job.json"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_NAME_MAX = 80  # Step Functions execution names and spec job ids: 1-80 of [A-Za-z0-9_-]
_HASH_CHARS = 16

#: Every refused start logs this word at WARNING; the stack counts it (metric filter).
REFUSAL_MARKER = "parceler-start-refused"


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """The object an S3 "Object Created" event names (key already URL-decoded)."""

    bucket: str
    key: str
    etag: str
    sequencer: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def trigger(self) -> Literal["spec", "marker"]:
        """Which kind of object this is.

        Raises:
            SpecError: neither a ``*.job.json`` spec nor a ``_SUCCESS`` marker.
        """
        name = PurePosixPath(self.key).name
        if name.endswith(SPEC_SUFFIX) and name != TEMPLATE:
            return "spec"
        if name == MARKER:
            return "marker"
        raise SpecError(
            f"{self.uri} is neither a job spec (*{SPEC_SUFFIX}) nor a {MARKER} marker.",
            f"filter the EventBridge rule on the suffixes {SPEC_SUFFIX!r} and {MARKER!r}.",
        )


@dataclass(frozen=True, slots=True)
class StartResult:
    """What the starter did: ``started`` a new execution or dropped a ``duplicate``."""

    status: Literal["started", "duplicate"]
    job_id: str
    execution_arn: str | None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "job_id": self.job_id, "execution_arn": self.execution_arn}


def parse_event(event: Mapping[str, Any]) -> ObjectCreated:
    """Read the object from an EventBridge S3 event (or one S3 notification record).

    Raises:
        SpecError: not an S3 object-created event, or fields missing.
    """
    try:
        if "detail" in event:
            detail = event["detail"]
            obj, bucket = detail["object"], detail["bucket"]["name"]
        elif event.get("Records"):
            record = event["Records"][0]["s3"]
            obj, bucket = record["object"], record["bucket"]["name"]
        else:
            raise KeyError("detail")
        return ObjectCreated(
            bucket=str(bucket),
            key=unquote_plus(str(obj["key"])),
            etag=str(obj.get("etag") or obj.get("eTag") or ""),
            sequencer=str(obj.get("sequencer") or ""),
        )
    except (KeyError, IndexError, TypeError) as exc:
        raise SpecError(
            f"not an S3 'Object Created' event (missing {exc}).",
            "route only S3 Object Created events (EventBridge) to the starter.",
        ) from exc


def job_id_for(obj: ObjectCreated) -> str:
    """The deterministic job id of an object version: ``<name>-<16 hex digits>``.

    ``name`` is the spec file's name without ``.job.json`` (or the marker's folder name),
    reduced to ``[A-Za-z0-9_-]``; the digest covers bucket, key, ETag and sequencer,
    length-prefixed so that no two different tuples collide by concatenation.
    """
    path = PurePosixPath(obj.key)
    stem = path.parent.name if path.name == MARKER else path.name.removesuffix(SPEC_SUFFIX)
    name = _NAME_CHARS.sub("-", stem).strip("-_") or "job"
    digest = hashlib.sha256()
    for part in (obj.bucket, obj.key, obj.etag.strip('"'), obj.sequencer):
        data = part.encode()
        digest.update(len(data).to_bytes(8, "big") + data)
    suffix = digest.hexdigest()[:_HASH_CHARS]
    return f"{name[: _NAME_MAX - _HASH_CHARS - 1]}-{suffix}"


def spec_for(
    obj: ObjectCreated, read: Callable[[str], bytes] = storage.read_bytes
) -> JobSpec | PipelineSpec:
    """The job (or pipeline) spec an object stands for (see the module docstring).

    Raises:
        SpecError: an invalid spec, or a marker without a ``parceler.job.json`` template.
    """
    if obj.trigger == "spec":
        return _parse(read(obj.uri))
    folder = str(PurePosixPath(obj.key).parent)
    folder_uri = f"s3://{obj.bucket}/" + ("" if folder == "." else folder + "/")
    template_uri = storage.join(folder_uri, TEMPLATE)
    try:
        template = _parse(read(template_uri), source=folder_uri)
    except ObjectNotFoundError as exc:
        raise SpecError(
            f"{obj.uri} marks {folder_uri} done, but no {template_uri} says how to process it.",
            f"write a job spec template (processor, reducer, limits) to {template_uri}; "
            "its source is ignored.",
        ) from exc
    if isinstance(template, PipelineSpec):
        # The folder is the pipeline's source: the stages that read it skip the marker.
        inputs = template.inputs()
        stages = tuple(
            stage.model_copy(update={"exclude": (*stage.exclude, *_NOT_DATA)})
            if inputs[stage.name] is None and stage.source is None
            else stage
            for stage in template.stages
        )
        return template.model_copy(update={"stages": stages})
    exclude = (*template.exclude, *_NOT_DATA)
    return template.model_copy(update={"source": folder_uri, "exclude": exclude})


_NOT_DATA = (MARKER, f"*/{MARKER}", TEMPLATE)


def _parse(body: bytes, source: str | None = None) -> JobSpec | PipelineSpec:
    """A job spec, or a pipeline spec when the document has ``stages``; ``source`` (a
    marker's folder) replaces the document's own."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return parse_spec(body)  # its error names the JSON problem
    if source is not None and isinstance(document, dict):
        document = {**document, "source": source}
    return parse_pipeline(document) if is_pipeline(document) else parse_spec(document)


def check_configured(obj: ObjectCreated, settings: StarterSettings) -> None:
    """Refuse an object outside the starter's trigger configuration.

    Raises:
        UnconfiguredTriggerError: the bucket is not watched, or the key does not start with
            the trigger prefix and end with the trigger suffix.
    """
    prefix, suffix = settings.trigger_prefix, settings.trigger_suffix
    problem = None
    if obj.bucket not in settings.trigger_buckets:
        problem = f"bucket {obj.bucket!r} is not one of {list(settings.trigger_buckets)}"
    # The suffix must follow the prefix, not overlap it (EventBridge's wildcard agrees).
    elif not obj.key.startswith(prefix) or not obj.key[len(prefix) :].endswith(suffix):
        problem = f"key {obj.key!r} does not match {prefix}*{suffix}"
    if problem is None:
        return
    error = UnconfiguredTriggerError(
        f"refused to start a job from {obj.uri}: {problem}.",
        "upload job files to a watched bucket under the trigger prefix and suffix "
        "(parceler:inputBuckets, parceler:triggerPrefix, parceler:triggerSuffix).",
    )
    _log_refusal("unconfigured", obj, None, str(error))
    raise error


def _log_refusal(reason: str, obj: ObjectCreated, job_id: str | None, detail: str) -> None:
    log.warning(
        "%s reason=%s uri=%s job_id=%s: %s", REFUSAL_MARKER, reason, obj.uri, job_id, detail
    )


def start(
    event: Mapping[str, Any],
    settings: StarterSettings,
    read: Callable[[str], bytes] = storage.read_bytes,
) -> StartResult:
    """Start the execution the event asks for, named by its job id; drop duplicates.

    Returns:
        ``started`` with the execution ARN, or ``duplicate`` when an execution of that
        name already exists (logged at WARNING as a refusal when the id is the spec's own
        ``job_id``: that is new work dropped, see the module docstring).

    Raises:
        UnconfiguredTriggerError: a bucket or key outside the configuration.
        SpecError: not a trigger object, or its spec does not validate.
        RetryableError, ExecutionError: Step Functions throttled or refused the start.
    """
    obj = parse_event(event)
    check_configured(obj, settings)
    spec = spec_for(obj, read)
    if isinstance(spec, PipelineSpec):  # a pipeline: its id names the execution
        own_id = spec.pipeline_id
        job_id = own_id or job_id_for(obj)
        document = spec.model_copy(update={"pipeline_id": job_id}).model_dump_json(
            exclude_none=True
        )
    else:
        own_id = spec.job_id
        job_id = own_id or job_id_for(obj)
        document = spec.model_copy(update={"job_id": job_id}).model_dump_json(exclude_none=True)
    try:
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=settings.state_machine_arn, name=job_id, input=document
        )
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and error_code(exc) == "ExecutionAlreadyExists":
            if own_id is None:
                log.info("job %s from %s already started: event redelivered", job_id, obj.uri)
            else:
                _log_refusal(
                    "duplicate",
                    obj,
                    job_id,
                    f"the spec's job_id {job_id!r} has already run, so this upload started "
                    "nothing. Fix: remove job_id from the spec (each upload then starts its "
                    "own job) or give it a new one.",
                )
            return StartResult("duplicate", job_id, None)
        raise_mapped(exc, "stepfunctions", "StartExecution", job_id)
    log.info("job %s started from %s", job_id, obj.uri)
    return StartResult("started", job_id, response["executionArn"])
