"""Human sizes parse to bytes (decimal and binary units) and bad text is a typed error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parceler.errors import SpecError
from parceler.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GB", 1_000_000_000),
        ("512MiB", 512 * 2**20),
        ("200KB", 200_000),
        ("200kb", 200_000),
        ("1.5 GiB", int(1.5 * 2**30)),
        ("1048576", 1_048_576),
        ("1_000", 1000),
        (42, 42),
    ],
)
def test_parse_size_accepts_human_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "1 parsec", "-1GB", "1e9", "one"])
def test_parse_size_rejects_garbage_naming_the_fix(text: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_size(text)
    assert repr(text) in str(raised.value)
    assert raised.value.fix is not None and "512MiB" in raised.value.fix


@given(st.integers(min_value=0, max_value=10**15))
def test_format_size_round_trips_within_three_significant_digits(n: int) -> None:
    text = format_size(n).replace(" ", "")
    assert abs(parse_size(text) - n) <= max(1, n * 0.006)
