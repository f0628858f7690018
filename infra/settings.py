"""Deployment settings read from CDK context (``cdk.json`` or ``-c parceler:<key>=<value>``).

Every key lives under the ``parceler:`` prefix, e.g. ``parceler:workerMaxConcurrency``.
Unknown ``parceler:`` keys are an error (a typo must not silently fall back to a default).
No physical resource names are settings: CloudFormation names everything.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Self

from constructs import Node
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.work_bucket import JOBS_PREFIX

CONTEXT_PREFIX = "parceler:"


class ParcelerSettings(BaseModel):
    """The knobs of a parceler deployment, each with the default the stack uses.

    Field names are the context keys without the ``parceler:`` prefix (camelCase, as CDK
    context keys usually are).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # Inputs and triggers.
    input_buckets: tuple[str, ...] = Field(default=(), alias="inputBuckets")
    """Existing buckets parceler reads from (read-only grants) and watches for job files.
    They must have EventBridge notifications turned on (S3 console → Properties →
    Amazon EventBridge → On): parceler cannot change a bucket it does not own."""
    trigger_prefix: str = Field(default="specs/", alias="triggerPrefix", min_length=1)
    trigger_suffix: str = Field(default=".job.json", alias="triggerSuffix", min_length=1)
    """An object whose key starts with the prefix and ends with the suffix starts a job.
    ``.job.json`` (the object is the job spec) or ``_SUCCESS`` (a marker) are typical.
    The prefix is a place no worker can write: it may not overlap the work area
    (``jobs/``) or an output location, and every role that runs user code is denied
    writes under it."""
    output_locations: tuple[str, ...] = Field(default=(), alias="outputLocations")
    """``s3://bucket/prefix/`` URIs a job spec's ``output`` may name. Workers may write
    there only under ``<prefix><job>/groups/<g>/<run>/attempt-<a>/``, as in the work area."""

    # Lambda workers and the event source.
    worker_max_concurrency: int = Field(default=50, alias="workerMaxConcurrency", ge=2, le=1000)
    worker_batch_size: int = Field(default=1, alias="workerBatchSize", ge=1, le=10)
    planner_memory_mb: int = Field(default=1769, alias="plannerMemoryMb", ge=128, le=10240)
    worker_memory_mb: int = Field(default=1769, alias="workerMemoryMb", ge=128, le=10240)
    aggregator_memory_mb: int = Field(default=1769, alias="aggregatorMemoryMb", ge=128, le=10240)
    small_function_memory_mb: int = Field(default=256, alias="smallFunctionMemoryMb", ge=128)
    planner_timeout_seconds: int = Field(default=900, alias="plannerTimeoutSeconds", ge=1, le=900)
    worker_timeout_seconds: int = Field(default=900, alias="workerTimeoutSeconds", ge=1, le=900)
    aggregator_timeout_seconds: int = Field(
        default=900, alias="aggregatorTimeoutSeconds", ge=1, le=900
    )

    # Queues.
    max_receive_count: int = Field(default=3, alias="maxReceiveCount", ge=1, le=1000)
    container_visibility_seconds: int = Field(
        default=3600, alias="containerVisibilitySeconds", ge=60, le=43200
    )
    """The container runner heartbeats (extends the visibility) while a group runs; this is
    how long a crashed task's group stays invisible before another task retries it."""

    # Fargate workers.
    container_max_tasks: int = Field(default=10, alias="containerMaxTasks", ge=1, le=1000)
    container_cpu: int = Field(default=1024, alias="containerCpu")
    container_memory_mb: int = Field(default=4096, alias="containerMemoryMb", ge=512)
    container_stop_timeout_seconds: int = Field(
        default=120, alias="containerStopTimeoutSeconds", ge=2, le=120
    )

    # Ledger.
    ledger_retention_days: int = Field(default=90, alias="ledgerRetentionDays", ge=1)
    """Days after which DynamoDB's TTL may delete a job's ledger items (``expires_at``)."""

    # Work bucket.
    scratch_expiration_days: int = Field(default=30, alias="scratchExpirationDays", ge=0)
    """Days after which objects under ``jobs/`` expire; 0 keeps them forever."""
    versioned: bool = Field(default=False, alias="versioned")

    # Observability.
    log_retention_days: int = Field(default=30, alias="logRetentionDays", ge=1, le=1827)
    access_log_retention_days: int = Field(default=90, alias="accessLogRetentionDays", ge=1)
    oldest_message_alarm_seconds: int = Field(
        default=3600, alias="oldestMessageAlarmSeconds", ge=60
    )
    state_machine_log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = Field(
        default="ERROR", alias="stateMachineLogLevel"
    )
    """Execution history logging. ALL logs every state transition: on a long job that is
    every poll, so ERROR is the default; turn it up to debug a job."""
    log_execution_data: bool = Field(default=False, alias="logExecutionData")
    """Include each state's input and output (up to 256 KiB per event) in the log."""

    # Build.
    bundle: bool = Field(default=True, alias="bundle")
    """Stage the Lambda layer with its pip-installed dependencies (needs pip and a package
    index, never Docker). ``false`` stages ``shared/`` as is: fast, offline, synth-only."""

    @field_validator("container_cpu")
    @classmethod
    def _fargate_cpu(cls, value: int) -> int:
        allowed = (256, 512, 1024, 2048, 4096, 8192, 16384)
        if value not in allowed:
            raise ValueError(f"Fargate CPU units must be one of {allowed}")
        return value

    @field_validator("trigger_suffix")
    @classmethod
    def _not_parcelers_own_files(cls, value: str) -> str:
        # parceler writes these (work area, result manifests in output locations): a suffix
        # matching them would start a job per write wherever a prefix ever overlapped.
        own = ("manifest.json", "plan.json", "result.json", "result-value.json", "spec.json")
        clashes = [name for name in (*own, "manifest.parquet") if name.endswith(value)]
        if clashes:
            raise ValueError(f"suffix {value!r} also matches parceler's own files {clashes}")
        return value

    @field_validator("trigger_prefix")
    @classmethod
    def _not_the_work_area(cls, value: str) -> str:
        # Workers write under jobs/; a trigger there lets a processor's output start a job.
        if value.startswith(JOBS_PREFIX) or JOBS_PREFIX.startswith(value):
            raise ValueError(
                f"trigger prefix {value!r} overlaps the work area {JOBS_PREFIX!r}, where "
                "workers write; use a prefix of its own such as 'specs/'"
            )
        return value

    @field_validator("output_locations")
    @classmethod
    def _s3_folders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for uri in value:
            bucket = uri.removeprefix("s3://").partition("/")[0]
            if not uri.startswith("s3://") or not bucket or "*" in uri or not uri.endswith("/"):
                raise ValueError(f"output location {uri!r} must look like s3://bucket/prefix/")
        return value

    @model_validator(mode="after")
    def _outputs_cannot_trigger(self) -> Self:
        for uri in self.output_locations:
            prefix = uri.removeprefix("s3://").partition("/")[2]
            if prefix.startswith(self.trigger_prefix) or self.trigger_prefix.startswith(prefix):
                raise ValueError(
                    f"output location {uri!r} overlaps the trigger prefix "
                    f"{self.trigger_prefix!r}: an output could start a job"
                )
        return self

    @field_validator("input_buckets", "output_locations", mode="before")
    @classmethod
    def _bucket_list(cls, value: Any) -> Any:
        # `-c parceler:inputBuckets=a,b` arrives as one string.
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @classmethod
    def from_context(cls, node: Node) -> Self:
        """Read every ``parceler:`` context key visible from ``node``.

        Raises:
            ValueError: an unknown key or an invalid value; the message names the key.
        """
        raw: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            value = node.try_get_context(CONTEXT_PREFIX + alias)
            if value is not None:
                raw[alias] = value if field.annotation is str else _decode(value)
        unknown = sorted(
            key
            for key in _all_context_keys(node)
            if key.startswith(CONTEXT_PREFIX) and key[len(CONTEXT_PREFIX) :] not in _aliases(cls)
        )
        if unknown:
            raise ValueError(f"unknown parceler context key(s) {unknown}; known: {_aliases(cls)}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"invalid parceler context settings: {exc}") from exc


def _aliases(model: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _decode(value: Any) -> Any:
    """Context given on the command line is a string: ``"false"``, ``"3"``, ``"[...]"``."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _all_context_keys(node: Node) -> list[str]:
    """Context keys set on the root (app) node; construct-level context is not scanned."""
    keys = node.root.node.get_all_context()
    return list(keys) if isinstance(keys, dict) else []
