"""DynamoDB's attribute-value wire format to Python values and back (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def to_attribute(value: Any) -> dict[str, Any]:
    """Python → DynamoDB attribute value (str, bool, int, float, None, list/dict of those)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in the ledger")


def from_attribute(attr: Mapping[str, Any]) -> Any:
    """DynamoDB attribute value → Python (numbers as int when written without a point)."""
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        text = str(attr["N"])
        number = float(text)
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    if "NULL" in attr:
        return None
    if "M" in attr:
        return {k: from_attribute(v) for k, v in attr["M"].items()}
    if "L" in attr:
        return [from_attribute(v) for v in attr["L"]]
    if "NS" in attr:
        return sorted(int(float(v)) for v in attr["NS"])
    raise TypeError(f"unsupported attribute value {attr!r}")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole DynamoDB item → a dict of Python values."""
    return {k: from_attribute(v) for k, v in item.items()}


def set_clauses(attrs: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """``SET`` clauses for ``attrs`` with placeholder names (every attribute name is aliased).

    Returns:
        ``(names, values, clauses)``; ``status`` is aliased ``#k_status`` so a condition can
        name it.
    """
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for i, (name, value) in enumerate(attrs.items()):
        alias = "#k_status" if name == "status" else f"#k{i}"
        names[alias] = name
        values[f":v{i}"] = to_attribute(value)
        sets.append(f"{alias} = :v{i}")
    return names, values, sets
