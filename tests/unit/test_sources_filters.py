"""Glob filters: the RE2 translation agrees with fnmatch, and include/exclude semantics hold."""

from __future__ import annotations

import fnmatch

import pyarrow as pa
import pytest

from parceler.sources.filters import describe, glob_mask, glob_to_regex

KEYS = [
    "a.csv",
    "x/a.csv",
    "x/y/b.CSV",
    "data 2024/part-0001.parquet",
    "data+plus/[odd].txt",
    "tmp/a.csv",
    ".hidden",
    "x/.hidden",
    "a^b$c(d).json",
    "back\\slash.txt",
    "ü/ñ.csv",
    "",
]
PATTERNS = [
    "*.csv",
    "*",
    "x/*",
    "?.csv",
    "[ab].csv",
    "[!a].csv",
    "*/[[]odd].txt",
    "data 2024/*",
    "data+plus/*",
    "a^b$c(d).json",
    "back\\slash.txt",
    "*[].txt",
    "[",
    "*.[cC][sS][vV]",
    "ü/*",
    "x/**",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_glob_mask_agrees_with_fnmatchcase(pattern: str) -> None:
    got = glob_mask(pa.array(KEYS), include=[pattern]).to_pylist()
    want = [fnmatch.fnmatchcase(key, pattern) for key in KEYS]
    assert got == want, glob_to_regex(pattern)


def test_exclude_wins_over_include() -> None:
    keys = pa.array(["a.csv", "tmp/b.csv", "c.json"])
    mask = glob_mask(keys, include=["*.csv"], exclude=["tmp/*"])
    assert mask.to_pylist() == [True, False, False]


def test_no_patterns_keep_everything_but_nulls() -> None:
    mask = glob_mask(pa.array(["a", None, "b"]))
    assert mask.to_pylist() == [True, False, True]


def test_several_includes_are_a_union() -> None:
    mask = glob_mask(pa.array(["a.csv", "b.json", "c.txt"]), include=["*.csv", "*.json"])
    assert mask.to_pylist() == [True, True, False]


def test_describe_names_the_filters() -> None:
    assert describe(["*.csv"], ["tmp/*"]) == "include=['*.csv'] exclude=['tmp/*']"
    assert describe([], []) == ""
