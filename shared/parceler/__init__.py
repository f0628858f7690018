"""parceler: divide-and-conquer batch processing of very many files on AWS serverless."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (20 ms) at start-up

__version__ = "0.1.0"

# What users call, by the module that defines it. Imported on first use: the CLI's start-up
# time is measured, and `import parceler` must not pull in pyarrow or boto3.
_EXPORTS = {
    "JobSpec": "parceler.spec",
    "ProcessorSpec": "parceler.spec",
    "ReducerSpec": "parceler.spec",
    "parse_spec": "parceler.spec",
    "DataFile": "parceler.models",
    "ManifestSummary": "parceler.models",
    "DATA_FILE_SCHEMA": "parceler.models",
    "ParcelerError": "parceler.errors",
    "PermanentError": "parceler.errors",
    "RetryableError": "parceler.errors",
    "ProcessorError": "parceler.errors",
    "SpecError": "parceler.errors",
    "GroupContext": "parceler.processors.context",
    "FileRef": "parceler.processors.context",
    "GroupRun": "parceler.processors.context",
    "run_group": "parceler.processors.group",
    "reduce_values": "parceler.processors.reducers",
    "read_manifest": "parceler.manifest",
    "read_summary": "parceler.manifest",
    "write_manifest": "parceler.manifest",
    "load_source": "parceler.sources",
    "Limits": "parceler.partition",
    "plan_files": "parceler.planning",
    "write_plan": "parceler.planning",
    "JobArea": "parceler.workarea",
    "parse_group_uri": "parceler.workarea",
}

__all__ = [
    "DATA_FILE_SCHEMA",
    "DataFile",
    "FileRef",
    "GroupContext",
    "GroupRun",
    "JobArea",
    "JobSpec",
    "Limits",
    "ManifestSummary",
    "ParcelerError",
    "PermanentError",
    "ProcessorError",
    "ProcessorSpec",
    "ReducerSpec",
    "RetryableError",
    "SpecError",
    "load_source",
    "parse_group_uri",
    "parse_spec",
    "plan_files",
    "read_manifest",
    "read_summary",
    "reduce_values",
    "run_group",
    "write_manifest",
    "write_plan",
]

if TYPE_CHECKING:
    from typing import Any

    from parceler.errors import (
        ParcelerError,
        PermanentError,
        ProcessorError,
        RetryableError,
        SpecError,
    )
    from parceler.manifest import read_manifest, read_summary, write_manifest
    from parceler.models import DATA_FILE_SCHEMA, DataFile, ManifestSummary
    from parceler.partition import Limits
    from parceler.planning import plan_files, write_plan
    from parceler.processors.context import FileRef, GroupContext, GroupRun
    from parceler.processors.group import run_group
    from parceler.processors.reducers import reduce_values
    from parceler.sources import load_source
    from parceler.spec import JobSpec, ProcessorSpec, ReducerSpec, parse_spec
    from parceler.workarea import JobArea, parse_group_uri


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'parceler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
