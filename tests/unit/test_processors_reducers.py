"""Reducers: the built-ins' semantics, associativity over any tree, python reducers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parceler.errors import ProcessorError, SpecError, UserCodeError, ValueOutOfRangeError
from parceler.processors import reduce_values
from parceler.spec import ReducerSpec

SUM = ReducerSpec(name="sum")
CONCAT = ReducerSpec(name="concat")
NONE = ReducerSpec(name="none")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sum_adds_numbers_and_merges_dicts_recursively() -> None:
    values = [
        {"total_words": 3, "words": {"a": 2, "b": 1}},
        None,
        {"total_words": 2, "words": {"a": 1, "c": 1}, "files": 1},
    ]
    assert reduce_values(SUM, values) == {
        "total_words": 5,
        "words": {"a": 3, "b": 1, "c": 1},
        "files": 1,
    }
    assert reduce_values(SUM, [1, 2.5, None, 3]) == 6.5
    assert reduce_values(SUM, [[1], [2, 3]]) == [1, 2, 3]


def test_sum_does_not_mutate_its_inputs() -> None:
    first = {"words": {"a": 1}}
    second = {"words": {"a": 2, "b": 1}}
    reduce_values(SUM, [first, second])
    reduce_values(SUM, [first, second])
    assert first == {"words": {"a": 1}}
    assert second == {"words": {"a": 2, "b": 1}}


def test_sum_of_nothing_is_none() -> None:
    assert reduce_values(SUM, []) is None
    assert reduce_values(SUM, [None, None]) is None


@pytest.mark.parametrize(
    "values",
    [[{"a": 1}, 2], [{"a": 1}, {"a": {"b": 1}}], ["x", "y"], [True, 1], [[1], 2]],
)
def test_sum_rejects_values_it_cannot_add(values: list[Any]) -> None:
    with pytest.raises(ProcessorError, match="reducer 'sum' cannot add"):
        reduce_values(SUM, values)


def test_sum_error_names_the_key_path() -> None:
    with pytest.raises(ProcessorError, match=r"'words\.a'"):
        reduce_values(SUM, [{"words": {"a": 1}}, {"words": {"a": "x"}}])


def test_concat_flattens_one_level_and_skips_none() -> None:
    assert reduce_values(CONCAT, [[1, 2], None, 3, [[4]]]) == [1, 2, 3, [4]]
    assert reduce_values(CONCAT, [None]) is None


def test_none_reducer_discards_values() -> None:
    assert reduce_values(NONE, [1, 2]) is None


def test_no_reducer_concatenates_group_lists() -> None:
    assert reduce_values(None, [[{"a": 1}], None, [{"b": 2}, {"c": 3}]]) == [
        {"a": 1},
        {"b": 2},
        {"c": 3},
    ]


def test_unknown_builtin_reducer_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"unknown reducer 'max'.*sum, concat, none"):
        reduce_values(ReducerSpec(name="max"), [1])


def test_python_reducer_is_called_with_the_non_none_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    reducer = ReducerSpec(kind="python", function="custom_processor:merge_line_stats")
    values = [{"lines": 2, "longest": 5}, None, {"lines": 3, "longest": 9}]
    assert reduce_values(reducer, values) == {"lines": 5, "longest": 9}
    assert reduce_values(reducer, [None]) is None


def test_python_reducer_failure_is_retryable_user_code_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad_reducers_mod.py").write_text(
        "def explode(values):\n    raise KeyError('nope')\n\n"
        "def not_json(values):\n    return {1, 2}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bad_reducers_mod", raising=False)
    with pytest.raises(UserCodeError, match=r"reducer bad_reducers_mod:explode failed.*KeyError"):
        reduce_values(ReducerSpec(kind="python", function="bad_reducers_mod:explode"), [1])
    with pytest.raises(ProcessorError, match="not JSON-serialisable"):
        reduce_values(ReducerSpec(kind="python", function="bad_reducers_mod:not_json"), [1])


# -- associativity: any tree of partial reductions gives the same result ----------------------

_leaf = st.integers(min_value=-1000, max_value=1000)
_counter = st.dictionaries(st.sampled_from(list("abcdef")), _leaf, max_size=4)
_value = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"n": _leaf},
        optional={"words": _counter, "nested": st.fixed_dictionaries({}, optional={"x": _counter})},
    ),
)


def _reduce_tree(values: list[Any], splits: list[int]) -> Any:
    """Reduce ``values`` as a tree whose shape ``splits`` chooses (always a valid split)."""
    if len(values) <= 1:
        return reduce_values(SUM, values)
    cut = 1 + (splits[0] % (len(values) - 1)) if splits else len(values) // 2
    rest = splits[1:]
    left = _reduce_tree(values[:cut], rest)
    right = _reduce_tree(values[cut:], rest[::-1])
    return reduce_values(SUM, [left, right])


@given(st.lists(_value, max_size=12), st.lists(st.integers(min_value=0), max_size=8))
def test_sum_over_dicts_is_the_same_for_every_tree_shape(
    values: list[Any], splits: list[int]
) -> None:
    flat = reduce_values(SUM, values)
    assert _reduce_tree(values, splits) == flat
    # and equals the sum computed directly
    non_none = [v for v in values if v is not None]
    if non_none:
        assert flat["n"] == sum(v["n"] for v in non_none)


@given(st.lists(st.one_of(st.none(), st.lists(_leaf, max_size=3), _leaf), max_size=10))
def test_concat_is_the_same_reduced_in_two_halves(values: list[Any]) -> None:
    half = len(values) // 2
    whole = reduce_values(CONCAT, values)
    split = reduce_values(
        CONCAT, [reduce_values(CONCAT, values[:half]), reduce_values(CONCAT, values[half:])]
    )
    assert split == whole


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ([1e308, 1e308], None),  # a float sum that overflows to Infinity
        ([{"total": 2**62}, {"total": 2**62}], "total"),  # beyond int64
        ([{"a": {"b": [1.0]}}, {"a": {"b": [float("nan")]}}], "a.b.1"),
    ],
)
def test_a_sum_that_json_cannot_carry_is_a_typed_error_not_null(
    values: list[Any], path: str | None
) -> None:
    with pytest.raises(ValueOutOfRangeError, match="reducer 'sum' produced") as raised:
        reduce_values(SUM, values)
    assert isinstance(raised.value, ProcessorError)
    if path is not None:
        assert f"at '{path}'" in str(raised.value)


def test_sums_at_the_edge_of_int64_are_kept() -> None:
    assert reduce_values(SUM, [{"n": 2**62}, {"n": 2**62 - 1}]) == {"n": 2**63 - 1}
    assert reduce_values(SUM, [-(2**62), -(2**62)]) == -(2**63)
