"""The job spec: what a user pastes into the Step Functions console or passes to the CLI.

Published as JSON Schema by ``parceler spec-schema``. Every model is frozen and rejects
unknown keys, so a typo in the console fails the execution at once, naming the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from parceler.errors import SpecError
from parceler.models import validation_problems
from parceler.units import parse_size

SPEC_SCHEMA_VERSION = 1
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# The schemes parceler.storage writes (its ACCEPTED_SCHEMES; a unit test keeps them equal).
# Repeated here because this module stays free of boto3, which storage imports.
OUTPUT_SCHEMES = ("s3", "file")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


class _Spec(BaseModel):
    # NaN and Infinity would be stored as JSON null (or fail on AWS): refused everywhere.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _non_finite_at(value: Any, path: str) -> str | None:
    """The path of the first NaN/Infinity inside ``value`` (dicts and lists), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite_at(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


def _size(value: Any) -> Any:
    """Accept human sizes ("1GB", "512MiB") wherever a byte count is expected."""
    return parse_size(value) if isinstance(value, str) else value


class Partitioning(_Spec):
    """How the job's manifest is packed into groups. Give a target, or ``groups``."""

    target_size: int | None = Field(default=None, gt=0, description="bytes per group; '1GB' ok")
    target_records: int | None = Field(default=None, gt=0, description="records per group")
    groups: int | None = Field(default=None, gt=0, description="exactly this many groups")
    max_files: int | None = Field(
        default=None, gt=0, description="at most this many files per group"
    )

    _parse_size = field_validator("target_size", mode="before")(_size)

    @model_validator(mode="after")
    def _one_strategy(self) -> Self:
        if self.groups is not None and (self.target_size or self.target_records):
            raise ValueError(
                "give either 'groups' or a target (target_size/target_records), not both"
            )
        if self.groups is None and not (self.target_size or self.target_records or self.max_files):
            raise ValueError("give 'target_size', 'target_records', 'max_files' or 'groups'")
        return self


class ProcessorSpec(_Spec):
    """The user code run on each group.

    - ``builtin``: ``name`` is one of the built-ins (``wordcount``, ``linecount``,
      ``csv-groupby``, ``parquet-compact``, ``copy``); ``options`` configures it.
    - ``python``: ``function`` is ``module:function``; ``per`` says whether it gets one
      file at a time (``fn(file) -> value``) or the whole group (``fn(files, ctx) -> value``).
    - ``shell``: ``command`` runs once per file, the file on stdin, stdout is its output.
    """

    kind: Literal["builtin", "python", "shell"] = "builtin"
    name: str | None = None
    function: str | None = Field(default=None, pattern=r"^[\w.]+:[\w]+$")
    command: str | None = None
    per: Literal["file", "group"] = "file"
    options: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=600, gt=0)
    version: str = Field(default="1", description="bump to re-run groups already committed")

    @field_validator("options")
    @classmethod
    def _finite_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        where = _non_finite_at(value, "options")
        if where is not None:
            raise ValueError(f"{where} is NaN or Infinity, which JSON cannot carry")
        return value

    @model_validator(mode="after")
    def _target_matches_kind(self) -> Self:
        needed = {"builtin": "name", "python": "function", "shell": "command"}[self.kind]
        if getattr(self, needed) is None:
            raise ValueError(f"a '{self.kind}' processor needs '{needed}'")
        return self


class ReducerSpec(_Spec):
    """Associative merge of values (n:1): a built-in (``sum``, ``concat``) or ``module:function``."""

    kind: Literal["builtin", "python"] = "builtin"
    name: str | None = "sum"
    function: str | None = Field(default=None, pattern=r"^[\w.]+:[\w]+$")

    @model_validator(mode="after")
    def _target_matches_kind(self) -> Self:
        if self.kind == "python" and self.function is None:
            raise ValueError("a 'python' reducer needs 'function' (module:function)")
        return self


class Limits(_Spec):
    """Backpressure and failure tolerance."""

    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "groups of this job in flight at once (default: no per-job limit; the stack's"
            " worker limits apply)"
        ),
    )
    tolerated_failure_percent: float = Field(default=0.0, ge=0, le=100)
    max_attempts: int = Field(default=3, ge=1, le=20)
    recheck_seconds: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description=(
            "how long the job waits for its completion signal before re-checking the ledger"
            " itself (default: 3x the longest predicted group, 60 s to 1 h)"
        ),
    )


class Routing(_Spec):
    """Which queue a group goes to: Lambda for short groups, the container for long ones."""

    throughput_bytes_per_second: int = Field(default=50_000_000, gt=0)
    lambda_max_seconds: float = Field(default=600, gt=0, le=840)

    _parse_size = field_validator("throughput_bytes_per_second", mode="before")(_size)


StageKind = Literal["map", "map_to_n", "map_from_n"]
MAX_PARTITIONS = 10_000  # parceler.shuffle.MAX_PARTITIONS (this module stays free of numpy)


class _JobBody(_Spec):
    """What a job and a pipeline stage share: everything but the job id and the source."""

    kind: StageKind = Field(
        default="map",
        description=(
            "map: each group's files are processed (outputs 1:1, values reduced); map_to_n: "
            "the processor routes pieces to partition keys (ctx.emit; a shell command prints "
            "the names of the files it wrote), one shuffle object per attempt; map_from_n: "
            "the source is a map_to_n result, one group per partition gets its pieces"
        ),
    )
    partitions: int | None = Field(
        default=None, ge=1, le=MAX_PARTITIONS, description="map_to_n: how many partitions"
    )
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    count_records: bool = False
    partitioning: Partitioning = Partitioning(target_size=1_000_000_000)
    processor: ProcessorSpec
    reducer: ReducerSpec | None = None
    output: str | None = Field(
        default=None, description="URI prefix for outputs; default: the work area"
    )
    limits: Limits = Limits()
    routing: Routing = Routing()
    incremental: bool = Field(
        default=True,
        description=(
            "reuse the committed result of any earlier job's group with the same files and"
            " processor identity instead of running it, and plan stable group boundaries"
            " (false: run every group; BFD packing)"
        ),
    )

    @field_validator("output")
    @classmethod
    def _output_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = _SCHEME.match(value)
        scheme = match.group(1).lower() if match else None
        if scheme is not None and scheme not in OUTPUT_SCHEMES:
            raise ValueError(
                f"scheme {scheme!r} cannot be written; use s3://bucket/prefix/ or a local "
                "folder (file:///path or a path)"
            )
        if scheme == "s3" and not value[len("s3://") :].split("/", 1)[0]:
            raise ValueError("an s3:// output needs a bucket: s3://bucket/prefix/")
        if not value.strip():
            raise ValueError("an empty output; leave it out to use the work area")
        return value

    @model_validator(mode="after")
    def _kind_fits(self) -> Self:
        if self.kind == "map_to_n" and self.partitions is None:
            raise ValueError("a map_to_n job needs 'partitions' (how many partitions)")
        if self.kind != "map_to_n" and self.partitions is not None:
            raise ValueError(f"'partitions' is for map_to_n jobs; this one is {self.kind!r}")
        if self.kind != "map" and self.processor.kind == "builtin":
            raise ValueError(
                f"a {self.kind} job runs a 'python' or 'shell' processor; built-ins are maps"
            )
        return self


class JobSpec(_JobBody):
    """One job: source → partitioning → processor → reducer → output."""

    schema_version: Literal[1] = 1  # SPEC_SCHEMA_VERSION
    job_id: str | None = Field(default=None, description="default: the execution name")
    source: str = Field(
        min_length=1,
        description="s3:// prefix, inventory manifest.json, listing, folder, or manifest summary",
    )

    @field_validator("job_id")
    @classmethod
    def _job_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _JOB_ID.match(value):
            raise ValueError("job_id must be 1-80 characters of letters, digits, '-' or '_'")
        return value


MAX_STAGES = 20
"""Stages per pipeline: each adds ~40 history events to the one execution (docs/quotas.md)."""
_STAGE_NAME = r"^[A-Za-z0-9_]{1,32}$"


class StageSpec(_JobBody):
    """One stage of a pipeline: a job whose source defaults to an earlier stage's result."""

    name: str = Field(pattern=_STAGE_NAME, description="the stage's name (its job id's suffix)")
    input: str | None = Field(
        default=None,
        description="the stage whose result manifest is this stage's source (default: the "
        "stage before it, or the pipeline's source for the first)",
    )
    source: str | None = Field(
        default=None, min_length=1, description="a source of its own instead of a stage's result"
    )

    def job_spec(self, source: str, job_id: str) -> JobSpec:
        """This stage as the job it runs."""
        body = self.model_dump(exclude={"name", "input", "source"}, exclude_unset=True)
        return JobSpec.model_validate({**body, "source": source, "job_id": job_id})


class PipelineSpec(_Spec):
    """Stages run one after another in one execution; each stage is a job (docs/pipelines.md)."""

    schema_version: Literal[1] = 1
    pipeline_id: str | None = Field(default=None, description="default: the execution name")
    source: str | None = Field(default=None, min_length=1, description="the first stage's source")
    stages: tuple[StageSpec, ...] = Field(min_length=1, max_length=MAX_STAGES)

    @field_validator("pipeline_id")
    @classmethod
    def _pipeline_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _JOB_ID.match(value):
            raise ValueError("pipeline_id must be 1-80 characters of letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _stages_connect(self) -> Self:
        self.order()  # raises ValueError naming the stage
        return self

    def inputs(self) -> dict[str, str | None]:
        """Each stage's input stage (None: it reads a source URI)."""
        found: dict[str, str | None] = {}
        for position, stage in enumerate(self.stages):
            if stage.input is not None:
                found[stage.name] = stage.input
            elif stage.source is not None:
                found[stage.name] = None
            elif position > 0:
                found[stage.name] = self.stages[position - 1].name
            else:
                found[stage.name] = None
        return found

    def order(self) -> list[StageSpec]:
        """The stages in the order they run: every stage after its input; otherwise as
        written.

        Raises:
            ValueError: a duplicate name, an input naming no stage, a cycle, a first stage
                with no source, or a map_from_n whose input is not a map_to_n stage.
        """
        by_name: dict[str, StageSpec] = {}
        for stage in self.stages:
            if stage.name in by_name:
                raise ValueError(f"stage {stage.name!r}: two stages have this name")
            by_name[stage.name] = stage
        inputs = self.inputs()
        for stage in self.stages:
            wanted = stage.input
            if wanted is not None and wanted not in by_name:
                raise ValueError(
                    f"stage {stage.name!r}: input {wanted!r} names no stage (stages: "
                    f"{', '.join(by_name)})"
                )
            if stage.input is not None and stage.source is not None:
                raise ValueError(f"stage {stage.name!r}: give 'input' or 'source', not both")
            if inputs[stage.name] is None and stage.source is None and self.source is None:
                raise ValueError(
                    f"stage {stage.name!r} reads no stage and has no source: give the "
                    "pipeline (or the stage) a 'source'"
                )
            if stage.kind == "map_from_n":
                feeder = inputs[stage.name]
                if feeder is None or by_name[feeder].kind != "map_to_n":
                    raise ValueError(
                        f"stage {stage.name!r} is map_from_n, so its input must be a map_to_n "
                        f"stage; it reads {feeder or 'a source'!r}"
                    )
        ordered: list[StageSpec] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = " -> ".join([*path[path.index(name) :], name])
                raise ValueError(f"stage {name!r} is in a cycle of inputs: {cycle}")
            state[name] = "visiting"
            feeder = inputs[name]
            if feeder is not None:
                visit(feeder, [*path, name])
            state[name] = "done"
            ordered.append(by_name[name])

        for stage in self.stages:
            visit(stage.name, [])
        return ordered


def is_pipeline(document: dict[str, Any]) -> bool:
    """True for a pipeline spec (it has ``stages``); a job spec otherwise."""
    return isinstance(document, dict) and "stages" in document


JobSpecJson = Annotated[str, "a JSON document holding a JobSpec"]


def parse_spec(document: str | bytes | dict[str, Any]) -> JobSpec:
    """Validate a job spec from JSON text or a dict.

    Raises:
        SpecError: names every invalid field (dotted path) and what it expects.
    """
    return _parse(JobSpec, document, "job spec", "(spec)", "`parceler spec-schema`")


def parse_pipeline(document: str | bytes | dict[str, Any]) -> PipelineSpec:
    """Validate a pipeline spec from JSON text or a dict.

    Raises:
        SpecError: names every invalid field, or the stage whose input is wrong.
    """
    return _parse(
        PipelineSpec, document, "pipeline spec", "(pipeline)", "`parceler spec-schema --pipeline`"
    )


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(
    model: type[_Model], document: str | bytes | dict[str, Any], what: str, root: str, schema: str
) -> _Model:
    try:
        data = json.loads(document) if isinstance(document, str | bytes) else document
    except json.JSONDecodeError as exc:
        raise SpecError(f"the {what} is not valid JSON: {exc}.", "check the JSON syntax.") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, root)
        raise SpecError(
            f"invalid {what}: {problems}.",
            f"fix the named field(s) (a stage is named by its 'name'); {schema} prints the schema.",
        ) from exc


def spec_json_schema(pipeline: bool = False) -> dict[str, Any]:
    """The JSON Schema of :class:`JobSpec` (or :class:`PipelineSpec`), for the console and
    editors."""
    return (PipelineSpec if pipeline else JobSpec).model_json_schema()
