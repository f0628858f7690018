"""Include/exclude glob filters, evaluated column-wise on Arrow strings (no Python loop per key).

Semantics (shared by every source):

* A pattern is an :mod:`fnmatch` glob, matched case-sensitively against the whole *subject*:
  ``*`` matches any run of characters **including** ``/`` (so ``*.csv`` matches
  ``a/b/c.csv``), ``?`` one character, ``[abc]`` / ``[!abc]`` a character class.
* The subject is the key relative to the listed root for an S3 prefix or a local folder
  (``s3://b/data/`` + ``2024/x.csv`` → ``2024/x.csv``), the object key for an S3 Inventory
  report, and the full URI for a listing file or a manifest.
* A file is kept if it matches at least one ``include`` pattern (or ``include`` is empty)
  and matches no ``exclude`` pattern: exclude wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


def glob_to_regex(pattern: str) -> str:
    """Translate an fnmatch glob into an anchored RE2 regex (Arrow's regex dialect).

    ``fnmatch.translate`` emits ``\\Z``, which RE2 rejects, hence this small translator.
    It agrees with :func:`fnmatch.fnmatchcase` (the unit tests check it on many keys).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape("["))  # no closing bracket: a literal "["
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            # inside a class only "\\", "[", "]" and "^" mean something to RE2 but not to fnmatch
            escaped = re.sub(r"([\\\[\]^])", r"\\\1", body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
        else:
            out.append(re.escape(char))
    return "(?s)^" + "".join(out) + "$"


def _any_match(subjects: pa.Array, patterns: Sequence[str]) -> pa.BooleanArray:
    regex = "|".join(f"(?:{glob_to_regex(p)})" for p in patterns)
    return pc.match_substring_regex(subjects, pattern=regex)


def glob_mask(
    subjects: pa.Array | pa.ChunkedArray,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> pa.Array | pa.ChunkedArray:
    """Return a boolean mask: True where a subject passes ``include`` and ``exclude``.

    Args:
        subjects: the strings to match (relative keys or URIs), one per file.
        include: keep only subjects matching one of these globs (empty: keep all).
        exclude: drop subjects matching any of these globs (applied after ``include``).

    Returns:
        A boolean array as long as ``subjects``, never null. O(n · pattern length).
    """
    mask = pc.is_valid(subjects)
    if include:
        mask = pc.and_(mask, _any_match(subjects, include).fill_null(False))
    if exclude:
        mask = pc.and_(mask, pc.invert(_any_match(subjects, exclude).fill_null(False)))
    return mask


def describe(include: Sequence[str], exclude: Sequence[str]) -> str:
    """Name the active filters for messages, e.g. ``include=['*.csv'] exclude=['tmp/*']``."""
    parts = []
    if include:
        parts.append(f"include={list(include)!r}")
    if exclude:
        parts.append(f"exclude={list(exclude)!r}")
    return " ".join(parts)
