"""Reduced values in manifests: one rule for inline versus ``value_uri``, and one reader."""

from __future__ import annotations

import json
from typing import Any

from parceler import storage
from parceler.details import ValueDetails
from parceler.errors import ManifestError

INLINE_VALUE_BYTES = 32_768
"""A value whose JSON is at most this size rides inline in the manifest details."""


def encode(value: Any) -> bytes:
    """The value's JSON: compact, keys sorted (so equal values give equal bytes)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def fits_inline(body: bytes) -> bool:
    """Whether a value of JSON ``body`` rides inline (the one size rule)."""
    return len(body) <= INLINE_VALUE_BYTES


def place(value: Any, uri: str, body: bytes | None = None) -> dict[str, Any]:
    """``{"value": value}`` when small; else write the JSON to ``uri``: ``{"value_uri": uri}``.

    Args:
        value: the value (None rides inline).
        uri: where a big value goes.
        body: ``encode(value)`` if the caller has it already (a big value is slow to encode).

    Returns:
        The fields of a :class:`ValueDetails` (``value`` or ``value_uri``).
    """
    if value is None:
        return {"value": None}
    body = encode(value) if body is None else body
    if fits_inline(body):
        return {"value": value}
    storage.write_bytes(uri, body, content_type="application/json")
    return {"value_uri": uri}


def value_of(details: ValueDetails, where: str) -> Any:
    """A manifest's value: inline ``value``, or the JSON object named by ``value_uri``.

    Raises:
        ManifestError: the object at ``value_uri`` is not JSON.
    """
    if details.value_uri:
        try:
            return json.loads(storage.read_bytes(details.value_uri))
        except ValueError as exc:
            raise ManifestError(f"{where}: value_uri {details.value_uri} is not JSON.") from exc
    return details.value


def read_value(value_uri: str | None, max_bytes: int | None = None) -> Any:
    """The JSON value at ``value_uri``; None when absent or larger than ``max_bytes``."""
    if not value_uri:
        return None
    if max_bytes is not None and storage.object_size(value_uri) > max_bytes:
        return None
    return json.loads(storage.read_bytes(value_uri))
