"""The manifest vocabulary: a data file, a manifest summary, and the rows' Arrow schema.

In memory a set of data files is a :class:`pyarrow.Table` with :data:`DATA_FILE_SCHEMA`
(columnar, so a million files cost tens of megabytes, not a million Python objects);
:class:`DataFile` is the one-file view at boundaries (processors, error messages).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1

# The one schema for data-file rows, in memory and in every manifest data object.
# Explicit, never inferred. A missing etag is null (not ""); a missing n_record is null.
DATA_FILE_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("n_record", pa.int64(), nullable=True),
        pa.field("etag", pa.string(), nullable=True),
    ]
)


class Frozen(BaseModel):
    """Base for every boundary model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DataFile(Frozen):
    """One object to process."""

    uri: str = Field(min_length=1)
    size: int = Field(ge=0)
    n_record: int | None = Field(default=None, ge=0)
    etag: str | None = None


class ManifestSummary(Frozen):
    """The small JSON object that commits a manifest and points at its Parquet data.

    Written after the data object; a reader trusts a manifest only through its summary.
    """

    schema_version: int = SCHEMA_VERSION
    fingerprint: str
    n_files: int = Field(ge=0)
    total_size: int = Field(ge=0)
    total_records: int | None = Field(default=None, ge=0)
    data_uri: str
    parent_fingerprint: str | None = None
    group_index: int | None = Field(default=None, ge=0)
    group_count: int | None = Field(default=None, ge=1)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    details: dict[str, Any] = Field(default_factory=dict)


def empty_table() -> pa.Table:
    """A table of zero data files with the canonical schema."""
    return DATA_FILE_SCHEMA.empty_table()


def validation_problems(exc: ValidationError, root: str) -> str:
    """``field.path: message; ...`` for every error, ``root`` naming the whole document."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors()
    )
