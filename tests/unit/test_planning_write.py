"""write_plan to a local folder: batches in worker processes, one folder per batch, the index last."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from parceler.errors import InputError, StorageError
from parceler.manifest import read_manifest
from parceler.models import DATA_FILE_SCHEMA
from parceler.partition import Limits
from parceler.planning import GROUPS_PER_BATCH, Plan, plan_files, write_plan

N_GROUPS = GROUPS_PER_BATCH + 300  # two batches, so two processes share the work


def _plan() -> Plan:
    """Two files per group, listed out of uri order (a local folder's walk order)."""
    n = 2 * N_GROUPS
    table = pa.table(
        {
            "uri": [f"file:///data/{(i * 7919) % n:06d}.bin" for i in range(n)],
            "size": [1] * n,
            "n_record": [i % 5 for i in range(n)],
            "etag": [None] * n,
        },
        schema=DATA_FILE_SCHEMA,
    )
    return plan_files(table, Limits(max_files=2))


def plan_records(plan: Plan) -> int:
    return sum(g.n_record or 0 for g in plan.groups())


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _plan()


def test_processes_write_the_same_groups_as_one_process(plan: Plan, tmp_path: Path) -> None:
    seen: list[int] = []
    parallel = write_plan(plan, str(tmp_path / "two"), workers=2, progress=seen.append)
    serial = write_plan(plan, str(tmp_path / "one"), workers=1)
    assert plan.n_groups == N_GROUPS
    assert seen == [GROUPS_PER_BATCH, N_GROUPS]
    assert [s.fingerprint for s in parallel.group_summaries] == [
        s.fingerprint for s in serial.group_summaries
    ]
    assert parallel.index.total_records == serial.index.total_records == plan_records(plan)
    files = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*"))
    folders = [Path("groups"), Path("groups/000"), Path("groups/001")]
    assert [f for f in files if f.suffix == ""] == folders  # no temp files left either
    assert len(files) == len(folders) + 2 * N_GROUPS + 4  # + master and index manifests


def test_every_group_manifest_verifies_and_holds_its_rows_in_uri_order(
    plan: Plan, tmp_path: Path
) -> None:
    written = write_plan(plan, str(tmp_path), workers=2)
    by_group = plan.by_group()
    seen: list[str] = []
    for g, uri in enumerate(written.group_summary_uris):
        loaded = read_manifest(uri)  # verifies counts, totals and the fingerprint
        expected = by_group.slice(int(plan.offsets[g]), int(plan.offsets[g + 1] - plan.offsets[g]))
        assert loaded.table.equals(expected)
        uris = loaded.table.column("uri").to_pylist()
        assert uris == sorted(uris)
        assert loaded.summary.group_index == g
        assert loaded.summary.group_count == N_GROUPS
        assert loaded.summary.parent_fingerprint == written.master.fingerprint
        seen.extend(uris)
    assert sorted(seen) == sorted(plan.table.column("uri").to_pylist())
    index = read_manifest(written.index_uri).table
    assert index.column("uri").to_pylist() == written.group_summary_uris


def test_a_failure_in_a_worker_process_arrives_typed_and_no_index_is_written(
    plan: Plan, tmp_path: Path
) -> None:
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "001").write_text("a file where a folder of groups goes")
    with pytest.raises(StorageError, match=r"groups/001/001000\.parquet") as raised:
        write_plan(plan, str(tmp_path), workers=2)
    assert raised.value.fix == "Choose another path."
    assert not (tmp_path / "plan.json").exists()


def test_errors_keep_problem_and_fix_across_processes() -> None:
    error = pickle.loads(pickle.dumps(InputError("bad listing", "pass a listing")))
    assert (type(error), error.problem, error.fix) == (InputError, "bad listing", "pass a listing")
    assert str(error) == "bad listing Fix: pass a listing"
