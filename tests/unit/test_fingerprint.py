"""The fingerprint: order-independent, sensitive to every covered field, injective."""

from __future__ import annotations

import hashlib
import re
from itertools import pairwise

import pyarrow as pa
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from parceler import fingerprint as fp_module
from parceler.fingerprint import PREFIX, canonical_order, fingerprint, fingerprints
from parceler.models import DATA_FILE_SCHEMA

Row = tuple[str, int, str | None]

uris = st.text(min_size=1, max_size=12)
sizes = st.integers(min_value=0, max_value=2**62)
etags = st.one_of(st.none(), st.text(max_size=6))
rows_st = st.lists(st.tuples(uris, sizes, etags), max_size=30)
unique_rows_st = st.lists(st.tuples(uris, sizes, etags), max_size=30, unique_by=lambda r: r[0])


def table(rows: list[Row], n_record: list[int | None] | None = None) -> pa.Table:
    return pa.table(
        {
            "uri": [r[0] for r in rows],
            "size": [r[1] for r in rows],
            "n_record": n_record if n_record is not None else [None] * len(rows),
            "etag": [r[2] for r in rows],
        },
        schema=DATA_FILE_SCHEMA,
    )


def test_format_names_the_version_and_algorithm() -> None:
    value = fingerprint(table([("s3://b/k", 1, "e")]))
    assert value.startswith(PREFIX)
    assert re.fullmatch(r"fp1-sha256:[0-9a-f]{64}", value)


def test_empty_table_has_a_fingerprint_distinct_from_one_file() -> None:
    assert fingerprint(table([])) != fingerprint(table([("a", 0, None)]))


@given(rows_st, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(rows: list[Row], random: object) -> None:
    shuffled = list(rows)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert fingerprint(table(rows)) == fingerprint(table(shuffled))


@given(rows_st)
def test_chunking_does_not_matter(rows: list[Row]) -> None:
    whole = table(rows)
    half = len(rows) // 2
    chunked = pa.concat_tables([whole.slice(0, half), whole.slice(half)])
    assert fingerprint(chunked) == fingerprint(whole)


@given(rows_st, st.lists(st.integers(min_value=0, max_value=30), max_size=6), st.booleans())
def test_fingerprints_of_ranges_equal_fingerprints_of_slices(
    rows: list[Row], cuts: list[int], canonical: bool
) -> None:
    whole = table(rows)
    if canonical and (order := canonical_order(whole)) is not None:
        whole = whole.take(pa.array(order))  # the planner's case: ranges already in order
    offsets = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    expected = [fingerprint(whole.slice(a, b - a)) for a, b in pairwise(offsets)]
    assert fingerprints(whole, offsets) == expected


@pytest.mark.parametrize("offsets", [[0, 3], [1, 0], [-1, 1], [0, 1, 0]])
def test_fingerprints_reject_offsets_outside_the_table(offsets: list[int]) -> None:
    with pytest.raises(ValueError, match="offsets must rise"):
        fingerprints(table([("a", 1, None), ("b", 2, None)]), offsets)


def test_canonical_order_is_none_for_sorted_rows_and_sorts_the_rest() -> None:
    rows: list[Row] = [("b", 1, None), ("a", 2, "x"), ("a", 1, None)]
    order = canonical_order(table(rows))
    assert order is not None and [rows[i] for i in order] == sorted(
        rows, key=lambda r: (r[0], r[1])
    )
    assert canonical_order(table([("a", 2, None), ("b", 1, None)])) is None


@given(unique_rows_st.filter(bool), st.data())
def test_changing_any_uri_size_or_etag_changes_it(rows: list[Row], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(rows) - 1))
    uri, size, etag = rows[i]
    field = data.draw(st.sampled_from(["uri", "size", "etag"]))
    if field == "uri":
        taken = {r[0] for r in rows}
        new: Row = (data.draw(uris.filter(lambda u: u not in taken)), size, etag)
    elif field == "size":
        new = (uri, data.draw(sizes.filter(lambda s: s != size)), etag)
    else:
        new = (uri, size, data.draw(etags.filter(lambda e: e != etag)))
    changed = [*rows[:i], new, *rows[i + 1 :]]
    assert fingerprint(table(changed)) != fingerprint(table(rows))


@given(rows_st, rows_st)
def test_different_row_multisets_differ(a: list[Row], b: list[Row]) -> None:
    def key(r: Row) -> tuple[str, int, bool, str]:
        return (r[0], r[1], r[2] is None, r[2] or "")

    if sorted(a, key=key) != sorted(b, key=key):
        assert fingerprint(table(a)) != fingerprint(table(b))
    else:
        assert fingerprint(table(a)) == fingerprint(table(b))


@given(st.text(min_size=2, max_size=10), st.data())
def test_concatenation_shifts_do_not_collide(joined: str, data: st.DataObject) -> None:
    cut1 = data.draw(st.integers(1, len(joined) - 1))
    cut2 = data.draw(st.integers(1, len(joined) - 1).filter(lambda c: c != cut1))
    one = [(joined[:cut1], 1, None), (joined[cut1:], 1, None)]
    two = [(joined[:cut2], 1, None), (joined[cut2:], 1, None)]
    # "000" cut as ["0", "00"] and ["00", "0"] is the same multiset: equal by design.
    assume(sorted(one) != sorted(two))
    assert fingerprint(table(one)) != fingerprint(table(two))


def test_concatenation_examples() -> None:
    assert fingerprint(table([("ab", 1, "x"), ("c", 1, "x")])) != fingerprint(
        table([("a", 1, "x"), ("bc", 1, "x")])
    )
    # uri and etag bytes cannot trade places either.
    assert fingerprint(table([("ab", 1, "")])) != fingerprint(table([("a", 1, "b")]))


def test_null_etag_differs_from_empty_etag() -> None:
    assert fingerprint(table([("a", 1, None)])) != fingerprint(table([("a", 1, "")]))


def test_duplicate_rows_count() -> None:
    one = fingerprint(table([("a", 1, "e")]))
    assert fingerprint(table([("a", 1, "e"), ("a", 1, "e")])) != one


def test_n_record_and_extra_columns_are_not_covered() -> None:
    rows: list[Row] = [("a", 1, "e"), ("b", 2, None)]
    assert fingerprint(table(rows)) == fingerprint(table(rows, n_record=[10, 20]))
    assert fingerprint(table(rows).append_column("x", pa.array([1, 2]))) == fingerprint(table(rows))


def test_equivalent_types_give_the_same_fingerprint() -> None:
    rows: list[Row] = [("b", 2, None), ("a", 1, "e")]
    narrow = pa.table(
        {
            "uri": pa.array([r[0] for r in rows], pa.large_string()),
            "size": pa.array([r[1] for r in rows], pa.int32()),
            "etag": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    assert fingerprint(narrow) == fingerprint(table(rows))


def test_a_null_etag_slot_carrying_bytes_hashes_like_a_null() -> None:
    # Arrow lets a null slot own bytes in the data buffer; they must not leak into the hash.
    etag = pa.StringArray.from_buffers(
        2,
        pa.py_buffer(bytes([0, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0])),
        pa.py_buffer(b"junx"),
        null_bitmap=pa.py_buffer(bytes([0b10])),
    )
    assert etag.to_pylist() == [None, "x"]
    odd = pa.table({"uri": ["a", "b"], "size": [1, 2], "etag": etag})
    assert fingerprint(odd) == fingerprint(table([("a", 1, None), ("b", 2, "x")]))


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"uri": ["a"], "size": [1]}, "missing"),
        ({"uri": ["a"], "size": ["big"], "etag": [None]}, "size"),
        ({"uri": [None], "size": [1], "etag": [None]}, "null"),
        ({"uri": ["a"], "size": [None], "etag": [None]}, "null"),
    ],
)
def test_bad_tables_are_rejected(columns: dict[str, list[object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fingerprint(pa.table(columns))


# -- the documented encoding, as a slow oracle -----------------------------------------------


def reference(rows: list[Row]) -> str:
    """The version-1 encoding from the module docstring, written out row by row."""

    def key(r: Row) -> tuple[bytes, int, bool, bytes]:
        return (r[0].encode(), r[1], r[2] is not None, (r[2] or "").encode())

    ordered = sorted(rows, key=key)
    uris_b = [r[0].encode() for r in ordered]
    etags_b = [(r[2] or "").encode() for r in ordered]
    le = "little"
    parts = [b"parceler-fingerprint-v1\0", len(rows).to_bytes(8, le)]
    parts += [len(u).to_bytes(8, le) for u in uris_b] + uris_b
    parts += [r[1].to_bytes(8, le, signed=True) for r in ordered]
    parts += [b"\1" if r[2] is not None else b"\0" for r in ordered]
    parts += [len(e).to_bytes(8, le) for e in etags_b] + etags_b
    return "fp1-sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()


# Few letters and a shared head make ties on the 8-byte sort keys, NUL suffixes and uris that
# end inside a key likely: the paths the fast canonical order must get exactly right.
tricky_uris = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(["", "s3://b/", "s3://b/2024/01/", "s3://b/2024/01/15/host-00"]),
    st.text(alphabet="ab\x00é/", max_size=20),
).filter(bool)
tricky_rows_st = st.lists(st.tuples(tricky_uris, st.integers(0, 3), etags), max_size=40)


@pytest.mark.parametrize("rounds", [0, 1, 4])
@given(rows=tricky_rows_st, random=st.randoms(use_true_random=False))
def test_matches_the_documented_encoding_in_any_order(
    rounds: int, rows: list[Row], random: object
) -> None:
    shuffled = list(rows)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        # 0 rounds: ties go straight to the exact sort; more: the 8-byte refinement runs.
        patch.setattr(fp_module, "_REFINE_ROUNDS", rounds)
        assert fingerprint(table(shuffled)) == reference(rows)


def test_pinned_values_do_not_drift() -> None:
    # Summaries already written carry these; a change here breaks their verification.
    rows: list[Row] = [("s3://b/k", 1, "e"), ("a", 0, None), ("a", 0, ""), ("ab", 5, "x")]
    rows.append(("a", 2, "z"))
    assert fingerprint(table(rows)) == (
        "fp1-sha256:6a28140c0b47c5f57c9d1557c48e911e35093e646ff8dcef30939f52084d34a3"
    )
    assert fingerprint(table(rows[:1])) == (
        "fp1-sha256:b3f01a3271516bd19957844e0803e297080969c6096e70833e83dcdc457e70d1"
    )


def test_large_shuffled_table_matches_the_oracle() -> None:
    # Long shared heads, many runs tied after the first keys, a short data buffer tail.
    rows: list[Row] = [
        (f"s3://logs/app/2024/{d % 12:02d}/{d % 28:02d}/host-{d % 7:04d}/f-{d:06d}.gz", d, None)
        for d in range(3000)
    ]
    rows += [("s3://logs/app/2024/01/01/host-0001/f-000001.gz\0", 1, "e"), ("s3://logs/", 0, "")]
    shuffled = rows[1::2] + rows[::2]
    assert fingerprint(table(shuffled)) == reference(rows)
