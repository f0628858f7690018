"""Row validation, normalisation, duplicates and sorting: the rules every source shares."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from parceler.errors import DuplicateUriError, EmptySourceError, SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources.rows import Listed, finalise, normalise, select


def test_output_is_sorted_and_has_exactly_the_schema() -> None:
    table = pa.table(
        {
            "size": pa.array([2, 1], pa.int32()),
            "uri": pa.array(["s3://b/z", "s3://b/a"], pa.large_string()),
            "extra": ["x", "y"],
            "etag": ['"abc"', ""],
        }
    )
    out = finalise(table, "listing.csv")
    assert out.schema == DATA_FILE_SCHEMA
    assert out.to_pylist() == [
        {"uri": "s3://b/a", "size": 1, "n_record": None, "etag": None},
        {"uri": "s3://b/z", "size": 2, "n_record": None, "etag": "abc"},
    ]


def test_missing_size_column_names_source_and_columns() -> None:
    with pytest.raises(SourceError, match=r"listing\.csv has no column\(s\) \['size'\]") as info:
        normalise(pa.table({"uri": ["s3://b/a"]}), "listing.csv")
    assert info.value.fix is not None


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        (pa.array([1, -5, 3]), r"negative size in 1 row\(s\): row 2 \(s3://b/1\)"),
        (pa.array(["1", "12.5", "x"]), r"not integers in 2 row\(s\): row 2 .*row 3"),
        (pa.array([1.0, 2.5, 3.0]), r"non-integer numbers in 1 row\(s\): row 2"),
        (pa.array([1, None, 3]), r"missing size in 1 row\(s\): row 2"),
        (pa.array([True, False, True]), r"type bool"),
    ],
)
def test_bad_sizes_name_the_rows(sizes: pa.Array, message: str) -> None:
    table = pa.table({"uri": ["s3://b/0", "s3://b/1", "s3://b/2"], "size": sizes})
    with pytest.raises(SourceError, match=message):
        normalise(table, "src")


def test_whole_floats_and_digit_strings_are_accepted() -> None:
    table = pa.table(
        {
            "uri": ["/d/a", "/d/b"],
            "size": [1.0, 2.0],
            "n_record": pa.array([" 7 ", ""], pa.string()),
        }
    )
    out = normalise(table, "src")
    assert out.column("size").to_pylist() == [1, 2]
    assert out.column("n_record").to_pylist() == [7, None]


def test_first_few_offenders_and_a_count_of_the_rest() -> None:
    table = pa.table({"uri": [f"/d/u{i}" for i in range(20)], "size": [-1] * 20})
    with pytest.raises(
        SourceError,
        match=r"negative size in 20 row\(s\): row 1 \(/d/u0\).*row 5 \(/d/u4\) and 15 more",
    ):
        normalise(table, "src")


@pytest.mark.parametrize("uri", [None, ""])
def test_null_or_empty_uri(uri: str | None) -> None:
    table = pa.table({"uri": pa.array(["/d/a", uri], pa.string()), "size": [1, 2]})
    with pytest.raises(SourceError, match=r"null or empty uri in 1 row\(s\): row 2"):
        normalise(table, "src")


def test_negative_or_fractional_n_record() -> None:
    table = pa.table({"uri": ["/d/a", "/d/b"], "size": [1, 2], "n_record": [3, -1]})
    with pytest.raises(SourceError, match=r"negative n_record in 1 row\(s\): row 2 \(/d/b\)"):
        normalise(table, "src")
    table = pa.table({"uri": ["/d/a", "/d/b"], "size": [1, 2], "n_record": [3, 0.5]})
    with pytest.raises(SourceError, match=r"'n_record' holds non-integer"):
        normalise(table, "src")


def test_exact_duplicates_are_kept_once_with_a_warning() -> None:
    table = pa.table(
        {
            "uri": ["/d/b", "/d/a", "/d/b", "/d/b"],
            "size": [2, 1, 2, 2],
            "n_record": pa.array([None, None, 9, None], pa.int64()),
            "etag": ["e", None, "e", '"e"'],
        }
    )
    with pytest.warns(UserWarning, match=r"2 duplicate row\(s\)"):
        out = finalise(table, "src")
    assert out.to_pylist() == [
        {"uri": "/d/a", "size": 1, "n_record": None, "etag": None},
        {"uri": "/d/b", "size": 2, "n_record": 9, "etag": "e"},
    ]


@pytest.mark.parametrize(
    ("sizes", "etags"),
    [([1, 2], ["e", "e"]), ([1, 1], ["e", "f"]), ([1, 1], ["e", None])],
)
def test_conflicting_duplicates_raise(sizes: list[int], etags: list[str | None]) -> None:
    table = pa.table({"uri": ["s3://b/k", "s3://b/k"], "size": sizes, "etag": etags})
    with pytest.raises(DuplicateUriError, match=r"1 uri\(s\) more than once.*s3://b/k"):
        finalise(table, "src")


def test_empty_source_says_what_was_filtered() -> None:
    listed = Listed(
        table=pa.table({"uri": ["s3://b/p/a.json"], "size": [1]}),
        subjects=pa.array(["a.json"]),
        noun="keys",
        notes=("2 folder marker(s) skipped",),
    )
    table, note = select(listed, ["*.csv"], [])
    assert note == "0 of 1 keys matched include=['*.csv']; 2 folder marker(s) skipped"
    with pytest.raises(EmptySourceError, match=r"s3://b/p/ holds no data files: 0 of 1 keys"):
        finalise(table, "s3://b/p/", filtered=note)


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/a.csv",
        "data/a.csv",
        "a.csv",
        "s3://bucket-only",
        "s3:///key",
        "ftp://h/x",
    ],
)
def test_uris_workers_cannot_open_are_refused_at_plan_time_naming_the_row(uri: str) -> None:
    table = pa.table({"uri": ["s3://b/ok.csv", uri], "size": [1, 2]})
    with pytest.raises(
        SourceError, match=rf"workers cannot read in 1 row\(s\): row 2 \({re.escape(uri)}\)"
    ):
        normalise(table, "listing.csv")


def test_readable_uris_are_accepted() -> None:
    uris = ["s3://b/k", "s3://b/folder/", "file:///abs/x", "file://localhost/abs/y", "/abs/z"]
    assert normalise(pa.table({"uri": uris, "size": [1] * 5}), "src").num_rows == 5
