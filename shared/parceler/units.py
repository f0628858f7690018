"""Human sizes: ``1GB`` (decimal), ``512MiB`` (binary), ``200KB``, ``1_000`` → bytes, and back."""

from __future__ import annotations

import re

from parceler.errors import SpecError

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int) -> int:
    """Parse a human size into bytes. Decimal units are powers of 1000, ``iB`` units of 1024.

    >>> parse_size("1GB"), parse_size("512MiB"), parse_size("1.5k")
    (1000000000, 536870912, 1500)

    Raises:
        SpecError: the text is not a size; the message shows accepted forms.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.match(str(text).replace("_", ""))
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise SpecError(
            f"{text!r} is not a size.",
            "write a number with an optional unit, like 1GB, 512MiB, 200KB or 1048576.",
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n_bytes: float) -> str:
    """Format bytes with a decimal unit and three significant digits: ``1.23 GB``."""
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        # 999.5 would round up to "1e+03" with three significant digits: move up a unit.
        if abs(value) < 999.5:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} PB" if abs(value) < 999.5 else f"{value:.0f} PB"
