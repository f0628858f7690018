"""Group identity: what makes a committed group result reusable by a later job.

A group's identity is the hash of its fingerprint (its files' ``uri``, ``size``, ``etag``)
and the **processor identity**: everything else that decides the result —

- the processor: ``kind``, ``name`` / ``function`` / ``command``, ``per``, ``options``,
  ``version``;
- the reducer (a group's value is its files' values reduced): ``kind``, ``name`` /
  ``function``;
- the code: a built-in's is parceler's version; a Python processor or reducer left at the
  default ``version`` ("1") gets the SHA-256 of its module's source file, so an edit of
  that file invalidates its results. Setting ``version`` yourself replaces that hash:
  bump it when the code's behaviour changes (code outside the function's module, data it
  reads) — the module hash cannot see those.

Two groups with the same identity commit equal results (the processor is expected to be
deterministic), so a committed result is reused instead of run (``parceler.planner``).
The spec's ``output`` is not part of it: a reused group's output files stay where the
earlier job wrote them, and the result manifest lists them there (a local run's outputs
default to its own run folder, which would otherwise make every local job different).
Complexity: one hash per group; the module source is read once per spec.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

from parceler import __version__
from parceler.errors import SpecError
from parceler.processors import reducer_of
from parceler.spec import JobSpec

IDENTITY_VERSION = "gi1"
"""Changes if the identity's encoding ever does (every cached result is then unused)."""
DEFAULT_VERSION = "1"


def processor_identity(spec: JobSpec) -> str:
    """The ``sha256:`` hash of everything but the files that decides a group's result."""
    processor = spec.processor
    reducer = reducer_of(spec)
    described: dict[str, Any] = {
        "processor": {
            "kind": processor.kind,
            "name": processor.name,
            "function": processor.function,
            "command": processor.command,
            "per": processor.per,
            "options": processor.options,
            "version": processor.version,
            "code": _code_version(processor.kind, processor.function, processor.version),
        },
        "reducer": None
        if reducer is None
        else {
            "kind": reducer.kind,
            "name": reducer.name,
            "function": reducer.function,
            "code": _code_version(reducer.kind, reducer.function, DEFAULT_VERSION),
        },
    }
    if spec.kind != "map":  # a shuffle's layout depends on its partition count (map: unchanged)
        described["stage"] = {"kind": spec.kind, "partitions": spec.partitions}
    text = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def group_identity(fingerprint: str, processor: str) -> str:
    """A group's identity: its fingerprint and the processor identity, hashed (64 hex)."""
    text = f"{IDENTITY_VERSION}\0{fingerprint}\0{processor}"
    return hashlib.sha256(text.encode()).hexdigest()


def _code_version(kind: str, function: str | None, version: str) -> str:
    """What stands for the code: parceler's version for built-ins and shell commands (the
    command is in the identity itself), the module source's hash for Python code left at
    the default version, and nothing when the user versions the code."""
    if kind != "python":
        return f"parceler-{__version__}"
    if version != DEFAULT_VERSION or function is None:
        return "user-versioned"
    module_name = function.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(
            f"{function}: module {module_name!r} does not import ({exc}).",
            "install the module where the planner runs (a layer on AWS).",
        ) from exc
    try:
        path = inspect.getsourcefile(module)
        if path is None:
            raise OSError(f"no source file for {module_name}")
        source = Path(path).read_bytes()  # the file as it is now (inspect caches lines)
    except (OSError, TypeError):
        # No source shipped (a compiled module): the function's bytecode and constants.
        code = getattr(getattr(module, function.partition(":")[2], None), "__code__", None)
        source = repr((code.co_code, code.co_consts) if code is not None else module_name).encode()
    return "module-sha256:" + hashlib.sha256(source).hexdigest()
