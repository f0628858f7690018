"""partition.py: the worked example, limits validation, modes, and hypothesis properties."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from parceler.errors import SourceError, SpecError
from parceler.models import DATA_FILE_SCHEMA
from parceler.partition import Limits, Partition, lower_bound, partition, super_group_of

# ----------------------------------------------------------------------------- helpers


def make_table(
    sizes: list[int] | np.ndarray,
    records: Sequence[int | None] | np.ndarray | None = None,
    uris: list[str] | None = None,
) -> pa.Table:
    n = len(sizes)
    return pa.table(
        {
            "uri": uris if uris is not None else [f"s3://b/f-{i:06d}" for i in range(n)],
            "size": np.asarray(sizes, dtype=np.int64),
            "n_record": pa.array(
                list(records) if records is not None else [None] * n, type=pa.int64()
            ),
            "etag": pa.array([None] * n, type=pa.string()),
        },
        schema=DATA_FILE_SCHEMA,
    )


def groups_by_uri(table: pa.Table, result: Partition) -> list[list[str]]:
    uris = table.column("uri").to_pylist()
    groups: list[list[str]] = [[] for _ in range(result.n_groups)]
    for uri, g in zip(uris, result.group_of.tolist(), strict=True):
        groups[g].append(uri)
    return [sorted(g) for g in groups]


def assert_valid(table: pa.Table, limits: Limits, result: Partition) -> None:
    """Every row in exactly one group; totals right; no limit broken but by a lone oversize."""
    n = table.num_rows
    assert result.group_of.shape == (n,)
    if n:
        assert result.group_of.min() >= 0
        assert result.group_of.max() == result.n_groups - 1
    sizes = table.column("size").to_numpy()
    assert np.array_equal(result.n_files, np.bincount(result.group_of, minlength=result.n_groups))
    assert result.n_files.min(initial=1) >= 1  # no empty group
    assert np.array_equal(
        result.size,
        np.bincount(result.group_of, weights=sizes, minlength=result.n_groups).astype(np.int64),
    )
    alone = set(result.group_of[result.oversized].tolist())
    assert len(alone) == len(result.oversized)  # one oversized file per group
    assert all(result.n_files[g] == 1 for g in alone)
    regular = np.array([g not in alone for g in range(result.n_groups)], dtype=bool)
    # An oversized file is over the size target or the record target, whichever is set.
    over = np.zeros(len(result.oversized), dtype=bool)
    if limits.target_size is not None:
        assert (result.size[regular] <= limits.target_size).all()
        over |= sizes[result.oversized] > limits.target_size
    if limits.target_records is not None:
        records = table.column("n_record").fill_null(0).to_numpy()
        over |= records[result.oversized] > limits.target_records
    assert over.all()
    if limits.target_records is not None:
        assert result.n_record is not None
        assert (result.n_record[regular] <= limits.target_records).all()
    if limits.max_files is not None:
        assert (result.n_files <= limits.max_files).all()
    if limits.target_size is None and limits.target_records is None:
        assert len(result.oversized) == 0


# ----------------------------------------------------------------------------- worked example


def test_worked_example_from_the_module_docstring() -> None:
    table = make_table([70, 60, 40, 30, 20, 150], uris=list("abcdef"))
    limits = Limits(target_size=100)

    result = partition(table, limits)

    assert groups_by_uri(table, result) == [["f"], ["a"], ["b", "e"], ["c", "d"]]
    assert result.oversized.tolist() == [5]
    assert result.size.tolist() == [150, 70, 80, 70]
    assert result.n_files.tolist() == [1, 1, 2, 2]
    assert result.n_record is None  # no row has n_record
    assert lower_bound(table, limits) == 4 == result.n_groups


def test_rows_by_group_lists_each_groups_rows() -> None:
    table = make_table([70, 60, 40, 30, 20, 150], uris=list("abcdef"))
    result = partition(table, Limits(target_size=100))
    rows, offsets = result.rows_by_group()
    assert [rows[offsets[g] : offsets[g + 1]].tolist() for g in range(4)] == [
        [5],
        [0],
        [1, 4],
        [2, 3],
    ]


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "no limit"),
        ({"target_size": 0}, "target_size=0 must be positive"),
        ({"target_size": -5}, "target_size=-5 must be positive"),
        ({"target_records": 0}, "target_records=0"),
        ({"max_files": 0}, "max_files=0"),
        ({"groups": 0}, "groups=0"),
        ({"groups": 4, "target_size": 100}, "both 'groups' and a target"),
        ({"groups": 4, "target_records": 100}, "both 'groups' and a target"),
        ({"target_size": 1.5}, "not a whole number"),
        ({"target_size": True}, "not a whole number"),
    ],
)
def test_invalid_limits_name_the_problem_and_the_fix(
    kwargs: dict[str, object], needle: str
) -> None:
    with pytest.raises(SpecError) as info:
        Limits(**kwargs)  # type: ignore[arg-type]
    assert needle in info.value.problem
    assert info.value.fix


def test_target_records_without_record_counts_is_a_spec_error() -> None:
    table = make_table([10, 20], records=[5, None])
    with pytest.raises(SpecError, match="no n_record") as info:
        partition(table, Limits(target_records=10))
    assert "count" in (info.value.fix or "")


def test_groups_times_max_files_too_small_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="do not fit"):
        partition(make_table([1] * 10), Limits(groups=3, max_files=3))


def test_negative_size_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="negative"):
        partition(make_table([10, -1]), Limits(target_size=100))


def test_table_without_size_column_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="'size'"):
        partition(pa.table({"uri": ["a"]}), Limits(target_size=100))


# ----------------------------------------------------------------------------- modes


def test_empty_table_has_no_groups() -> None:
    result = partition(make_table([]), Limits(target_size=100))
    assert result.n_groups == 0
    assert len(result.group_of) == 0 and len(result.oversized) == 0
    assert lower_bound(make_table([]), Limits(target_size=100)) == 0


def test_file_exactly_at_target_is_not_oversized() -> None:
    result = partition(make_table([100, 101, 100]), Limits(target_size=100))
    assert result.oversized.tolist() == [1]
    assert result.n_groups == 3


def test_record_target_packs_by_records_and_flags_record_oversized() -> None:
    table = make_table([1, 1, 1, 1, 1], records=[6, 5, 4, 12, 5])
    limits = Limits(target_records=10)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.oversized.tolist() == [3]
    assert result.n_record is not None
    assert result.n_record.tolist() == [12, 10, 10]  # {12} oversized, {6, 4}, {5, 5}
    assert result.n_groups == lower_bound(table, limits) == 1 + 2


def test_both_targets_are_respected_at_once() -> None:
    # Sizes pack into 1 group of 100, records force 2 groups.
    table = make_table([25, 25, 25, 25], records=[60, 50, 40, 30])
    limits = Limits(target_size=100, target_records=100)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.n_groups == 2 == lower_bound(table, limits)


def test_max_files_that_binds_costs_groups_but_stays_within_10_percent() -> None:
    # Known weakness: BFD sorts tiny files last, and when max_files binds they need
    # groups of their own (~6% over this bound, which ignores the interaction).
    sizes = lognormal_sizes(20_000, 3)
    table = make_table(sizes)
    limits = Limits(target_size=1_000_000_000, max_files=64)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.n_groups <= lower_bound(table, limits) * 1.10


def test_max_files_caps_each_bfd_group() -> None:
    table = make_table([1] * 10)
    limits = Limits(target_size=100, max_files=3)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.n_groups == 4 == lower_bound(table, limits)


def test_max_files_alone_deals_balanced_groups() -> None:
    table = make_table([90, 80, 10, 10, 5, 5, 1])
    limits = Limits(max_files=3)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.n_groups == 3 == lower_bound(table, limits)
    assert result.size.tolist() == [90, 86, 25]  # LPT: 90 | 80+5+1 | 10+10+5 (full)


def test_groups_mode_gives_exactly_n_groups_of_near_equal_size() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 1000, 500)
    table = make_table(sizes)
    result = partition(table, Limits(groups=7))
    assert_valid(table, Limits(groups=7), result)
    assert result.n_groups == 7
    # LPT: the spread is at most one file (here far less, as files are small).
    assert result.size.max() - result.size.min() <= sizes.max()
    assert result.size.max() - result.size.min() < 0.01 * result.size.mean()


def test_groups_mode_with_fewer_files_than_groups_gives_one_group_per_file() -> None:
    result = partition(make_table([5, 3]), Limits(groups=10))
    assert result.n_groups == 2
    assert result.group_of.tolist() == [0, 1]


def test_groups_are_numbered_by_their_largest_file() -> None:
    table = make_table([5, 700, 40, 300, 950, 10, 2000])
    result = partition(table, Limits(target_size=1000))
    sizes = table.column("size").to_numpy()
    largest = [sizes[result.group_of == g].max() for g in range(result.n_groups)]
    assert largest == sorted(largest, reverse=True)
    assert result.group_of[6] == 0  # the oversized 2000 is the largest file


def test_tail_balancing_lifts_the_smallest_group_without_adding_groups() -> None:
    # BFD alone: 9 groups of 100 (50+50) and one sliver of 4 (1+1+1+1).
    sizes = [50] * 18 + [1] * 4
    table = make_table(sizes)
    limits = Limits(target_size=100)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.n_groups == 10 == lower_bound(table, limits)
    assert result.size.min() >= 50  # not a sliver of 4


# ----------------------------------------------------------------------------- properties

files = st.lists(st.tuples(st.integers(0, 260), st.integers(0, 40)), min_size=0, max_size=120)


@st.composite
def target_limits(draw: st.DrawFn) -> Limits:
    """A size target, a record target, or both; max_files sometimes."""
    which = draw(st.sampled_from(["size", "records", "both"]))
    return Limits(
        target_size=draw(st.integers(1, 200)) if which != "records" else None,
        target_records=draw(st.integers(1, 60)) if which != "size" else None,
        max_files=draw(st.one_of(st.none(), st.integers(1, 8))),
    )


any_limits = st.one_of(
    target_limits(),
    st.builds(Limits, groups=st.integers(1, 12)),
    st.builds(Limits, max_files=st.integers(1, 8)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=files, limits=any_limits, seed=st.integers(0, 2**32 - 1))
def test_every_file_in_one_group_within_limits_and_order_independent(
    rows: list[tuple[int, int]], limits: Limits, seed: int
) -> None:
    sizes = [s for s, _ in rows]
    records = [r for _, r in rows]
    table = make_table(sizes, records)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    assert result.n_groups >= lower_bound(table, limits)
    if limits.groups is not None:
        assert result.n_groups == min(limits.groups, len(rows))

    permutation = np.random.default_rng(seed).permutation(len(rows))
    shuffled = table.take(pa.array(permutation, type=pa.int64()))
    again = partition(shuffled, limits)
    uris = table.column("uri").to_pylist()
    assert dict(zip(uris, result.group_of.tolist(), strict=True)) == dict(
        zip(shuffled.column("uri").to_pylist(), again.group_of.tolist(), strict=True)
    )
    assert np.array_equal(partition(table, limits).group_of, result.group_of)


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), max_size=150), target=st.integers(1, 150))
def test_size_only_count_is_at_most_twice_the_bound_on_any_input(
    sizes: list[int], target: int
) -> None:
    # Any-fit packing: two groups never fit in one, so regular groups <= 2 * ceil(S / T).
    # (Tail balancing keeps the count.) Realistic inputs do far better: see the next tests.
    table = make_table(sizes)
    limits = Limits(target_size=target)
    result = partition(table, limits)
    n_over = len(result.oversized)
    regular_bound = lower_bound(table, limits) - n_over
    assert result.n_groups - n_over <= 2 * regular_bound


# Shrinking a 20k-file case is slow and tells nothing a seed does not.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def lognormal_sizes(n: int, seed: int) -> np.ndarray:
    """Realistic sizes: lognormal, median 20 MB, sigma 1.5, clipped to [1 KiB, 5 GiB]."""
    raw = np.random.default_rng(seed).lognormal(np.log(20e6), 1.5, n)
    return np.clip(raw, 1024, 5 * 2**30).astype(np.int64)


@settings(max_examples=8, deadline=None, phases=NO_SHRINK)
@given(n=st.integers(5_000, 40_000), seed=st.integers(0, 2**32 - 1))
def test_count_is_within_0_2_percent_of_the_bound_on_lognormal_sizes(n: int, seed: int) -> None:
    sizes = lognormal_sizes(n, seed)
    table = make_table(sizes, records=np.maximum(1, sizes // 256))
    limits = Limits(target_size=1_000_000_000)
    result = partition(table, limits)
    bound = lower_bound(table, limits)
    assert bound == len(result.oversized) + math.ceil(
        int(sizes[sizes <= 1_000_000_000].sum()) / 1_000_000_000
    )
    # 0.2 % of the bound, and at least one group: at ~300 groups 0.2 % is less than one.
    assert result.n_groups <= max(bound * 1.002, bound + 1)
    regular = np.setdiff1d(np.arange(result.n_groups), result.group_of[result.oversized])
    # No slivers: the smallest regular group is more than half full.
    assert result.size[regular].min() > 500_000_000


@settings(max_examples=5, deadline=None, phases=NO_SHRINK)
@given(n=st.integers(5_000, 20_000), seed=st.integers(0, 2**32 - 1))
def test_two_targets_stay_close_to_the_bound_on_lognormal_sizes(n: int, seed: int) -> None:
    sizes = lognormal_sizes(n, seed)
    # Records loosely follow size (100-400 bytes per record), so either target can bind.
    per = np.random.default_rng(seed + 1).integers(100, 400, n)
    table = make_table(sizes, records=np.maximum(1, sizes // per))
    limits = Limits(target_size=1_000_000_000, target_records=5_000_000, max_files=200)
    result = partition(table, limits)
    assert_valid(table, limits, result)
    # Two-dimensional packing is harder and the bound ignores how the two dimensions
    # interact; we measure ~3.5% over it here and test for 5%.
    assert result.n_groups <= lower_bound(table, limits) * 1.05


# ----------------------------------------------------------------------------- hierarchical


def test_hierarchical_plan_is_valid_deterministic_and_near_the_bound() -> None:
    sizes = lognormal_sizes(20_000, 3)
    table = make_table(sizes)
    limits = Limits(target_size=1_000_000_000)
    result = partition(table, limits, super_group_rows=4_000)
    assert_valid(table, limits, result)
    # One extra tail group per super-group at most (5 super-groups).
    assert result.n_groups <= lower_bound(table, limits) + 5
    assert result.n_groups > lower_bound(table, limits)  # it did split (flat: exact bound)

    capped = Limits(target_size=1_000_000_000, max_files=64)
    assert_valid(table, capped, partition(table, capped, super_group_rows=4_000))

    permutation = np.random.default_rng(0).permutation(table.num_rows)
    shuffled = table.take(pa.array(permutation))
    again = partition(shuffled, limits, super_group_rows=4_000)
    assert np.array_equal(again.group_of, result.group_of[permutation])


def test_hierarchical_super_groups_are_a_fixed_hash_of_the_uri() -> None:
    uris = pa.array(["s3://b/a", "s3://b/b", "", "s3://bench-bucket/data/part-00000042.bin"])
    first = super_group_of(uris, 1_000_003)
    assert first.tolist() == super_group_of(uris.slice(0), 1_000_003).tolist()
    # Chunking and slicing do not change a uri's super-group.
    chunked = pa.chunked_array([uris.slice(0, 1), uris.slice(1)])
    assert super_group_of(chunked, 1_000_003).tolist() == first.tolist()
    assert super_group_of(uris.slice(2), 1_000_003).tolist() == first[2:].tolist()
    # Golden values: a change here silently changes every hierarchical plan.
    assert first.tolist() == GOLDEN_SUPER_GROUPS


GOLDEN_SUPER_GROUPS = [523607, 502386, 4995, 540745]


def reference_super_group(uri: str, n_super: int) -> int:
    """The documented hash, one uri at a time in plain Python."""
    mask = 2**64 - 1
    data = uri.encode()
    h = (
        sum(b * pow(0x100000001B3, len(data) - 1 - i, 2**64) for i, b in enumerate(data))
        + len(data)
    ) & mask
    h = (h + 0x9E3779B97F4A7C15) & mask
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & mask
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & mask
    return (h ^ (h >> 31)) % n_super


@settings(max_examples=100, deadline=None)
@given(uris=st.lists(st.text(max_size=80), min_size=1, max_size=20), n_super=st.integers(1, 10**9))
def test_super_group_hash_matches_the_documented_formula(uris: list[str], n_super: int) -> None:
    got = super_group_of(pa.array(uris, type=pa.string()), n_super).tolist()
    assert got == [reference_super_group(u, n_super) for u in uris]
