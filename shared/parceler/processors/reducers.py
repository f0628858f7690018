"""Reducers: associative n:1 merges of values, within a group and across groups (a tree).

Built-ins (``ReducerSpec(kind="builtin", name=...)``):

- ``sum``: numbers add; dicts merge key-wise, recursively (a key on one side only is
  kept); lists concatenate. So ``{"words": {"a": 2}}`` + ``{"words": {"a": 1, "b": 1}}`` is
  ``{"words": {"a": 3, "b": 1}}``. Strings, booleans and mismatched shapes are errors.
- ``concat``: list values contribute their items, other values themselves: a flat list.
- ``none``: the value is None (output-only jobs).
- ``kind="python"``: ``module:function`` called as ``fn(values: list) -> value``; it must be
  associative (``fn([fn(a), fn(b)]) == fn(a + b)``) because groups reduce as a tree.

Every reducer skips None values; reducing nothing (or only None) is None.

With **no reducer** (``reducer=None``) values are collected, not merged: a group's value
is the list of its per-file values (the one value of a group processor is a one-item
list), and across groups the lists concatenate (``reduce_values(None, ...)`` is ``concat``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from parceler.errors import ProcessorError, SpecError, ValueOutOfRangeError
from parceler.processors.loading import load_callable, user_error
from parceler.spec import ReducerSpec

BUILTIN_REDUCERS = ("sum", "concat", "none")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def reduce_values(reducer: ReducerSpec | None, values: Sequence[Any]) -> Any:
    """Merge ``values`` with ``reducer`` (None values skipped). Never mutates ``values``.

    Associative for the built-ins (``sum`` over floats up to rounding), so the aggregation
    may reduce any tree of groups. ``reducer=None`` concatenates (see the module doc).

    Raises:
        SpecError: an unknown built-in name, or a python reducer that cannot be loaded.
        ProcessorError: values the reducer cannot merge, a python reducer that raises, or
            a result that is not JSON-serialisable.
    """
    reduction = Reduction(reducer, collect=False)
    for value in values:
        reduction.add(value)
    return reduction.result()


class Reduction:
    """An incremental reduction: :meth:`add` values one at a time, then :meth:`result`.

    ``sum`` folds in place (memory of one accumulated value, O(total size) time, even for
    big word-count dicts); a python reducer is called once, on all values, at the end.

    Args:
        reducer: the reducer, or None.
        collect: with ``reducer=None``, True collects values as list items (a group's
            per-file values); False concatenates list values (group values across groups).
    """

    def __init__(self, reducer: ReducerSpec | None, *, collect: bool) -> None:
        self._reducer = reducer
        self._merge: Callable[[Any, Any], Any] | None = None
        self._function: Callable[..., Any] | None = None
        self._items: list[Any] = []
        self._acc: Any = None
        self._mode: str
        if reducer is None:
            self._mode = "collect" if collect else "concat"
        elif reducer.kind == "python":
            assert reducer.function is not None  # the spec validator guarantees it
            self._function = load_callable(reducer.function, "reducer")
            self._mode = "python"
        elif reducer.name in BUILTIN_REDUCERS:
            self._mode = reducer.name
        else:
            raise SpecError(
                f"unknown reducer {reducer.name!r}.",
                f"use one of {', '.join(BUILTIN_REDUCERS)}, or kind 'python' with "
                "'function': 'module:function'.",
            )

    def add(self, value: Any) -> None:
        """Fold one value in (None is skipped)."""
        if value is None or self._mode == "none":
            return
        if self._mode == "sum":
            self._acc = _owned(value, "") if self._acc is None else _sum_into(self._acc, value, "")
        elif self._mode == "concat":
            if isinstance(value, list):
                self._items.extend(value)
            else:
                self._items.append(value)
        else:  # collect, python
            self._items.append(value)

    def result(self) -> Any:
        """The reduced value, or None when nothing (or only None) was added.

        Raises:
            ValueOutOfRangeError: the value holds NaN, Infinity or an integer beyond int64
                (a sum that overflowed), which JSON cannot carry exactly.
            ProcessorError: a python reducer failed or returned something not JSON.
        """
        if self._mode == "sum":
            return checked_range(self._acc, "reducer 'sum'")
        if self._mode == "none" or not self._items:
            return None
        if self._mode == "python":
            assert self._function is not None and self._reducer is not None
            reference = self._reducer.function
            try:
                value = self._function(list(self._items))
            except Exception as exc:
                raise user_error(exc, f"reducer {reference}", None, user_code=True) from exc
            return checked_range(
                checked_json(value, f"reducer {reference}"), f"reducer {reference}"
            )
        what = "the collected values" if self._mode == "collect" else "reducer 'concat'"
        return checked_range(list(self._items), what)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cannot_add(a: Any, b: Any, path: str) -> ProcessorError:
    at = f" at {path!r}" if path else ""
    return ProcessorError(
        f"reducer 'sum' cannot add {type(a).__name__} and {type(b).__name__}{at}.",
        "return numbers, lists or dicts of them with the same shape, or use 'concat' or a "
        "python reducer.",
    )


# Plain numbers take a fast path in the loops below: word counts merge tens of thousands
# of keys per value, and building each key's error path up front cost more than the adds.
_NUMBER_TYPES = (int, float)


def _path(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _owned(value: Any, path: str) -> Any:
    """A copy of ``value`` the accumulator may mutate, checked to be summable."""
    if isinstance(value, dict):
        return {
            key: item if type(item) in _NUMBER_TYPES else _owned(item, _path(path, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return list(value)
    if value is None or _is_number(value):
        return value
    raise _cannot_add(value, value, path)


def _sum_into(acc: Any, value: Any, path: str) -> Any:
    """Add ``value`` into ``acc`` (mutating dicts and lists of ``acc``) and return the sum."""
    if value is None:
        return acc
    if acc is None:
        return _owned(value, path)
    if isinstance(acc, dict) and isinstance(value, dict):
        for key, item in value.items():
            current = acc.get(key)
            if type(item) in _NUMBER_TYPES and type(current) in _NUMBER_TYPES:
                acc[key] = current + item
            elif current is None:
                acc[key] = item if type(item) in _NUMBER_TYPES else _owned(item, _path(path, key))
            else:
                acc[key] = _sum_into(current, item, _path(path, key))
        return acc
    if isinstance(acc, list) and isinstance(value, list):
        acc.extend(value)
        return acc
    if _is_number(acc) and _is_number(value):
        return acc + value
    raise _cannot_add(acc, value, path)


def checked_json(value: Any, what: str) -> Any:
    """Return ``value`` as the ledger will store it (a JSON round trip), or raise.

    The round trip turns tuples into lists and non-string dict keys into strings now, so
    a value reduces the same in memory as after it was stored.

    Raises:
        ValueOutOfRangeError: ``value`` holds NaN or Infinity (or an int beyond int64).
        ProcessorError: ``value`` is not JSON-serialisable; the message names ``what``
            produced it (the processor and the file).
    """
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValueError):
            checked_range(value, what)  # NaN/Infinity: the typed error, naming the path
        raise ProcessorError(
            f"{what} returned a value that is not JSON-serialisable: {exc}.",
            "return only dicts, lists, strings, finite numbers, booleans and None "
            "(convert numpy/pandas scalars with int()/float()).",
        ) from exc


def checked_range(value: Any, what: str) -> Any:
    """Return ``value`` unless it holds a number JSON cannot carry exactly.

    NaN and Infinity have no JSON form (Python writes a token other parsers refuse, and
    the ledger stored null); integers beyond int64 lose digits in DynamoDB and most JSON
    readers. Both usually mean a sum overflowed. O(size of ``value``).

    Raises:
        ValueOutOfRangeError: naming ``what`` produced it, the path and the number.
    """
    found = _out_of_range(value, "")
    if found is None:
        return value
    path, number = found
    at = f" at {path!r}" if path else ""
    raise ValueOutOfRangeError(
        f"{what} produced {number!r}{at}, which JSON cannot carry exactly (NaN, Infinity or "
        "an integer beyond int64: a sum that overflowed?).",
        "keep values finite and within int64 (scale them, count in larger units), or "
        "reduce with a python reducer that keeps them in range.",
    )


def _out_of_range(value: Any, path: str) -> tuple[str, Any] | None:
    kind = type(value)
    if kind is int:
        return None if INT64_MIN <= value <= INT64_MAX else (path, value)
    if kind is float:
        return None if math.isfinite(value) else (path, value)
    if kind is dict:
        for key, item in value.items():
            # Plain in-range numbers (a word count's values) take the fast path.
            if type(item) is int and INT64_MIN <= item <= INT64_MAX:
                continue
            found = _out_of_range(item, _path(path, key))
            if found is not None:
                return found
    elif kind is list:
        for index, item in enumerate(value):
            found = _out_of_range(item, _path(path, index))
            if found is not None:
                return found
    return None
