"""What each kind of manifest carries in ``ManifestSummary.details``: one typed model per kind.

``details`` stays a plain dict on the wire (s3manifesto reads and writes it); parceler
produces it with :meth:`Details.to_details` and reads it with :meth:`Details.of`, so a
missing or misspelt field is a :class:`ManifestError` naming it, not a ``KeyError``.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parceler.errors import ManifestError
from parceler.models import ManifestSummary, validation_problems


class Details(BaseModel):
    """Base of the details models: frozen, no unknown fields, parsed from a summary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def of(cls, summary: ManifestSummary, where: str) -> Self:
        """Parse ``summary.details`` as this kind.

        Args:
            where: the manifest's URI, named in the error.

        Raises:
            ManifestError: a field is missing, unknown or of the wrong type (each named).
        """
        try:
            return cls.model_validate(summary.details)
        except ValidationError as exc:
            raise ManifestError(
                f"{where}: details are not those of a {cls.__name__}: "
                f"{validation_problems(exc, 'details')}.",
                "the manifest was not written by this version of parceler; plan the job again.",
            ) from exc

    def to_details(self) -> dict[str, Any]:
        """The wire form: JSON types, ``value`` or ``value_uri`` (never both)."""
        document = self.model_dump(mode="json")
        if "value_uri" in document:
            document.pop("value" if document["value_uri"] is not None else "value_uri")
        return document


class ValueDetails(Details):
    """A reduced value that rides inline (``value``) or is named by ``value_uri``."""

    value: Any = None
    value_uri: str | None = None


class GroupDetails(Details):
    """A group manifest's details (the planner's): what is specific to the group's job.

    The job's spec is in the work area (``JobArea.spec``); ``spec_sha256`` is the hash of
    that object, so a worker can cache the spec per job and tell a replanned job apart.
    ``run_id`` names the run in the attempt folders (``workarea.AttemptArea``).
    """

    job_id: str
    spec_sha256: str
    run_id: str = Field(pattern=r"^run-\d{8}T\d{6}-[0-9a-f]{6}$")
    """The job's run (``workarea.new_run_id``): part of every attempt folder's name."""


class GroupResultDetails(ValueDetails):
    """A committed attempt's result manifest: whose attempt, and the group value."""

    job_id: str
    attempt: int = Field(ge=1)


class FailedGroup(Details):
    """A group that did not commit: as the aggregator lists it and ``parceler status`` shows it."""

    index: int = Field(ge=0)
    status: str
    error: str
    cause: str | None = None
    attempt: int | None = Field(default=None, ge=0)


class PartialDetails(ValueDetails):
    """An aggregation batch's partial manifest: counts, failures and the reduced value."""

    job_id: str
    batch_index: int = Field(ge=0)
    first_group: int = Field(ge=0)
    n_groups: int = Field(ge=0)
    groups_succeeded: int = Field(ge=0)
    groups_failed: int = Field(ge=0)
    failed_groups: list[FailedGroup]
    groups_skipped: int = Field(default=0, ge=0)  # succeeded by reusing an earlier result


class JobResultDetails(ValueDetails):
    """The job result manifest: counts, the failed groups listed, the tolerance applied."""

    job_id: str
    n_groups: int = Field(ge=0)
    groups_succeeded: int = Field(ge=0)
    groups_failed: int = Field(ge=0)
    failed_groups: list[FailedGroup]
    groups_skipped: int = Field(default=0, ge=0)  # of groups_succeeded: results reused
    failures_uri: str | None = None  # every failed group, when more than are listed here
    tolerated_failure_percent: float
