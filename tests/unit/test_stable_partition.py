"""partition.stable_partition: content-defined group boundaries (the incremental plan)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parceler.models import DATA_FILE_SCHEMA
from parceler.partition import STABLE_MIN_FILL, Limits, partition, stable_partition
from tests.unit.test_partition import assert_valid, groups_by_uri


def _table(sizes: list[int], names: list[int], etags: list[str] | None = None) -> pa.Table:
    return pa.table(
        {
            "uri": [f"s3://b/f-{name:06d}" for name in names],
            "size": np.asarray(sizes, dtype=np.int64),
            "n_record": pa.array([None] * len(sizes), type=pa.int64()),
            "etag": pa.array(etags or [None] * len(sizes), type=pa.string()),
        },
        schema=DATA_FILE_SCHEMA,
    )


def _groups(table: pa.Table, limits: Limits) -> list[list[str]]:
    return groups_by_uri(table, stable_partition(table, limits))


sizes = st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=150)
limits = st.sampled_from(
    [Limits(target_size=1_000), Limits(target_size=250, max_files=7), Limits(max_files=5)]
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(sizes=sizes, limits=limits, seed=st.integers(0, 2**16))
def test_every_file_once_within_limits_and_independent_of_row_order(
    sizes: list[int], limits: Limits, seed: int
) -> None:
    table = _table(sizes, list(range(len(sizes))))
    result = stable_partition(table, limits)
    assert_valid(table, limits, result)
    shuffled = table.take(pa.array(np.random.default_rng(seed).permutation(len(sizes))))
    assert sorted(_groups(shuffled, limits)) == sorted(groups_by_uri(table, result))


@FAST
@given(sizes=sizes, limits=limits, at=st.integers(0, 150), added=st.integers(1, 20))
def test_an_insertion_leaves_every_group_before_it_unchanged(
    sizes: list[int], limits: Limits, at: int, added: int
) -> None:
    """Groups that ended before the inserted uris are the same groups, but the last of them
    (closed because the next old file did not fit, it may take a new one)."""
    names = [2 * i + 2 for i in range(len(sizes))]  # even names; an odd one slots between
    at = min(at, len(sizes))
    table = _table(sizes, names)
    inserted = [f"s3://b/f-{2 * at + 1:06d}-{k}" for k in range(added)]
    extra = pa.table(
        {
            "uri": inserted,
            "size": np.full(added, 50, dtype=np.int64),
            "n_record": pa.array([None] * added, type=pa.int64()),
            "etag": pa.array([None] * added, type=pa.string()),
        },
        schema=DATA_FILE_SCHEMA,
    )
    old = _groups(table, limits)
    new = _groups(pa.concat_tables([table, extra]), limits)

    before = [g for g in old if max(g) < inserted[0]]
    oversized = {f"s3://b/f-{name:06d}" for name, size in zip(names, sizes, strict=True)
                 if limits.target_size is not None and size > limits.target_size}  # fmt: skip
    # The group open at the insertion point (the last to end, oversized files aside) may
    # take new files; every other one must be unchanged.
    regular = [g for g in before if not (len(g) == 1 and g[0] in oversized)]
    still_open = max(regular, key=max, default=None)
    assert all(g in new for g in before if g is not still_open)


@FAST
@given(sizes=sizes, limits=limits, which=st.integers(0, 149))
def test_a_changed_etag_changes_exactly_its_group(
    sizes: list[int], limits: Limits, which: int
) -> None:
    names = list(range(len(sizes)))
    which = which % len(sizes)
    etags = ["v1"] * len(sizes)
    before = stable_partition(_table(sizes, names, etags), limits)
    etags[which] = "v2"
    after = stable_partition(_table(sizes, names, etags), limits)
    assert np.array_equal(before.group_of, after.group_of)


def test_appending_files_changes_only_the_last_groups_where_bfd_reshuffles() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.lognormal(8, 1, 3_000).astype(np.int64).tolist()
    limits = Limits(target_size=int(sum(sizes) / 150))
    old = _groups(_table(sizes, list(range(3_000))), limits)
    grown = sizes + rng.lognormal(8, 1, 30).astype(np.int64).tolist()  # +1% at the end
    new = _groups(_table(grown, list(range(3_030))), limits)

    changed = [g for g in new if g not in old]
    assert len(changed) <= 3, len(changed)
    bfd_old = groups_by_uri(
        _table(sizes, list(range(3_000))), partition(_table(sizes, list(range(3_000))), limits)
    )
    bfd_new = groups_by_uri(
        _table(grown, list(range(3_030))), partition(_table(grown, list(range(3_030))), limits)
    )
    assert len([g for g in bfd_new if g not in bfd_old]) > len(bfd_new) // 2


def test_groups_close_between_the_minimum_fill_and_the_target() -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 100, 5_000).tolist()
    limits = Limits(target_size=5_000)
    result = stable_partition(_table(sizes, list(range(5_000))), limits)
    fill = result.size[:-1] / limits.target_size  # the last group is the remainder
    assert fill.max() <= 1.0
    assert fill.min() >= STABLE_MIN_FILL - 100 / 5_000  # a forced cut: the next file missed
    assert 0.8 < fill.mean() < 0.9


def test_a_group_count_has_no_stable_form_and_falls_back_to_partition() -> None:
    table = _table([5, 4, 3, 2, 1], list(range(5)))
    limits = Limits(groups=2)
    assert np.array_equal(
        stable_partition(table, limits).group_of, partition(table, limits).group_of
    )


def test_the_walks_docstring_example() -> None:
    from parceler.partition import _SCALE, _stable_walk

    shares = [0.30, 0.30, 0.30, 0.20, 0.50, 0.40, 1.0, 0.10]  # a..h; g is oversized
    needs = [[round(share * _SCALE) for share in shares]]
    oversized = [False] * 6 + [True, False]
    boundary = [False, False, True, False, False, True, False, False]  # c and f

    assert _stable_walk(oversized, needs, boundary, None) == [0, 0, 0, 1, 1, 2, 3, 2]
