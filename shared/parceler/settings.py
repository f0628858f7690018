"""Deployment settings, parsed once from the environment at the edge (handlers, CLI).

Nothing below a handler reads ``os.environ``: handlers call ``XSettings.from_env()`` and
pass the model down. The CDK stack sets exactly the variables each model reads (a test
checks that), named by the field's ``alias``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from parceler.errors import SpecError
from parceler.ledger import DEFAULT_RETENTION_DAYS


class _EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the settings from ``environ`` (default: the process environment).

        Raises:
            SpecError: a variable is missing or malformed; the message names it.
        """
        env = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(env))
        except ValidationError as exc:
            missing = [str(err["loc"][0]) for err in exc.errors()]
            raise SpecError(
                f"{cls.__name__}: environment variable(s) missing or invalid: {missing}.",
                "set them (the CDK stack does; the local mode does too).",
            ) from exc

    @classmethod
    def env_names(cls) -> frozenset[str]:
        """The environment variable names this model reads."""
        return frozenset(f.alias or name for name, f in cls.model_fields.items())


class LedgerSettings(_EnvSettings):
    """What every role needs: where job and group state lives."""

    ledger_table: str = Field(alias="PARCELER_LEDGER_TABLE", min_length=1)


class WorkAreaSettings(LedgerSettings):
    """Roles that read and write group manifests and outputs."""

    work_bucket: str = Field(alias="PARCELER_WORK_BUCKET", min_length=1)


class PlannerSettings(WorkAreaSettings):
    """The planner sends one message per group to the queue its duration routes it to.

    It also creates the job's and groups' ledger items, which the table's TTL may delete
    ``ledger_retention_days`` after their creation (default 90).
    """

    lambda_queue_url: str = Field(alias="PARCELER_LAMBDA_QUEUE_URL", min_length=1)
    container_queue_url: str = Field(alias="PARCELER_CONTAINER_QUEUE_URL", min_length=1)
    ledger_retention_days: int = Field(
        default=DEFAULT_RETENTION_DAYS, alias="PARCELER_LEDGER_RETENTION_DAYS", ge=1
    )


class WorkerSettings(WorkAreaSettings):
    """A worker claims, processes and commits groups."""


class AggregatorSettings(WorkAreaSettings):
    """The aggregator reduces committed group results into the job result."""


class WaiterSettings(LedgerSettings):
    """The waiter stores the job state machine's task token and signals a finished job."""


class DeadLetterSettings(LedgerSettings):
    """The DLQ handler marks dead-lettered groups FAILED, or sends a message whose group is
    still leased back to the group's work queue."""

    lambda_queue_url: str = Field(alias="PARCELER_LAMBDA_QUEUE_URL", min_length=1)
    container_queue_url: str = Field(alias="PARCELER_CONTAINER_QUEUE_URL", min_length=1)


class StarterSettings(_EnvSettings):
    """The S3-event starter names each execution from its job id, so duplicates collapse.

    It starts jobs only for the buckets and the key prefix/suffix the stack's trigger rule
    watches; anything else is refused (the rule should never deliver it).
    """

    state_machine_arn: str = Field(alias="PARCELER_STATE_MACHINE_ARN", min_length=1)
    trigger_buckets: tuple[str, ...] = Field(alias="PARCELER_TRIGGER_BUCKETS", min_length=1)
    """Comma-separated bucket names."""
    trigger_prefix: str = Field(alias="PARCELER_TRIGGER_PREFIX", min_length=1)
    trigger_suffix: str = Field(alias="PARCELER_TRIGGER_SUFFIX", min_length=1)

    @field_validator("trigger_buckets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value
