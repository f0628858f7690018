"""The quota model's arithmetic on a small case worked by hand."""

from __future__ import annotations

import pytest

from bench import quota_model as model

SMALL = model.Parameters(
    files=10_000, groups=100, group_seconds=36.0, concurrency=10, recheck_seconds=60.0,
    events_per_recheck=8, groups_per_slice=50, writer_cpu_seconds_per_group=0.001,
    writer_threads=10, s3_put_seconds=0.05, api_call_seconds=0.01, writer_concurrency=2,
    groups_per_batch=40, s3_get_seconds=0.02, reducer_threads=4, aggregate_concurrency=3,
    groups_per_shard=30, max_shards=256, list_seconds_per_1000_files=0.1,
    pack_seconds_per_file=1e-5, plan_memory_base_mb=100.0, plan_memory_bytes_per_file=1000.0,
)  # fmt: skip


def test_durations_history_and_payload() -> None:
    assert model.duration_seconds(SMALL) == 100 * 36 / 10 == 360
    # 2 + 4 tasks x 5 + 2 maps x 6 + 5 choices x 2 = 44 fixed; 360 s / 60 s = 6 re-checks x 8
    assert model.parent_history_events(SMALL) == 44 + 48
    assert model.largest_child_events(SMALL) == 7
    assert model.largest_state_bytes(SMALL) == 2048 + 1024


def test_planner_writers_and_reducers() -> None:
    assert model.plan_seconds(SMALL) == pytest.approx(10 * 0.1 + 10_000 * 1e-5)  # 1.1 s
    assert model.plan_memory_mb(SMALL) == pytest.approx(100 + 10.0)
    # 50 x 1 ms CPU + 100 PUTs x 50 ms / 10 threads + (2 + 5 calls) x 10 ms
    assert model.writer_slice_seconds(SMALL) == pytest.approx(0.05 + 0.5 + 0.07)
    assert model.s3_put_rate(SMALL) == pytest.approx(2 * 100 / 0.62)
    assert model.reduce_batch_seconds(SMALL) == pytest.approx(40 * 0.02 / 4)
    assert model.final_reduce_seconds(SMALL) == pytest.approx(3 * 0.02 / 4)
    assert model.s3_get_rate(SMALL) == pytest.approx(3 * 4 / 0.02)


def test_ledger_and_queue() -> None:
    assert model.shards(SMALL) == 4  # ceil(100 / 30)
    assert model.wcu_per_commit(SMALL) == 4  # 2 items x 1 KB x 2 WCU per KB
    assert model.commit_rate(SMALL) == pytest.approx(10 / 36)
    assert model.wcu_per_shard_second(SMALL, 1000.0) == pytest.approx(4 * 1000 / 4)
    assert model.queue_residency_seconds(SMALL) == 360
    assert model.in_flight_messages(SMALL) == 10


def test_a_row_over_its_limit_does_not_fit_and_the_command_says_so() -> None:
    row = model.Row("x", limit=100, value=125, unit="s")
    assert (row.fits, row.margin) == (False, pytest.approx(-0.25))
    assert model.main(["--set", "aggregate_concurrency=20"]) == 1  # 16,000 GET/s > 5,500
    assert model.main([]) == 0
