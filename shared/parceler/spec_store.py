"""The job spec's one stored copy (``JobArea.spec``): the planner writes it, everyone reads it."""

from __future__ import annotations

import hashlib
import threading

from parceler import storage
from parceler.errors import ManifestError
from parceler.spec import JobSpec, parse_spec
from parceler.workarea import JobArea

_CACHED_SPECS = 64  # a long-lived container worker sees many jobs; a spec is a few kB
_cache: dict[tuple[str, str], JobSpec] = {}
_lock = threading.Lock()


def spec_bytes(spec: JobSpec) -> bytes:
    """The stored form of ``spec`` (what :func:`write_spec` writes and :func:`sha256` hashes)."""
    return spec.model_dump_json(indent=2, exclude_none=True).encode()


def sha256(spec: JobSpec) -> str:
    """The hash of the stored form: ``sha256:<hex>`` (the ledger keeps it, groups cite it)."""
    return "sha256:" + hashlib.sha256(spec_bytes(spec)).hexdigest()


def write_spec(area: JobArea, spec: JobSpec) -> str:
    """Store ``spec`` as the job's one copy; returns its :func:`sha256`."""
    storage.write_bytes(area.spec, spec_bytes(spec), content_type="application/json")
    return sha256(spec)


def read_spec(area: JobArea, expected_sha256: str | None = None) -> JobSpec:
    """The job's spec. With ``expected_sha256`` (a group's), cached per job in this process.

    Raises:
        ManifestError: the stored spec's hash is not ``expected_sha256`` (the spec was
            rewritten after the group was planned).
        ObjectNotFoundError: the job has no stored spec.
        SpecError: the stored spec is invalid.
    """
    key = (area.spec, expected_sha256 or "")
    if expected_sha256 is not None:
        with _lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
    body = storage.read_bytes(area.spec)
    found = "sha256:" + hashlib.sha256(body).hexdigest()
    if expected_sha256 is not None and found != expected_sha256:
        raise ManifestError(
            f"{area.spec} has hash {found}, but the group was planned with {expected_sha256}.",
            "plan the job again under a new job id.",
        )
    spec = parse_spec(body)
    if expected_sha256 is not None:
        with _lock:
            if len(_cache) >= _CACHED_SPECS:
                _cache.clear()
            _cache[key] = spec
    return spec
