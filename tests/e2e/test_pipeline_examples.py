"""The pipeline examples, run as a user runs them: ``parceler run <example>/*pipeline*.json
--local`` on generated data, each answer checked against a direct computation.

- ``examples/taxi_pipeline``: select columns → map_to_n by passenger count → map_from_n
  counts, in Python and in shell; both equal the generator's histogram.
- ``examples/sort_pipeline``: sort → range partition → merge; the outputs concatenated in
  partition order are sorted and hold every input record exactly once.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

Run = Callable[..., subprocess.CompletedProcess[str]]
EXAMPLES = ROOT / "examples"


def load_generator(example: str) -> ModuleType:
    """``examples/<example>/generate.py`` as a module."""
    loaded = importlib.util.spec_from_file_location(
        f"{example}_generate", EXAMPLES / example / "generate.py"
    )
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def spec_on(example_spec: Path, source: Path, into: Path) -> Path:
    """A copy of an example's pipeline spec whose source is ``source``; return its path."""
    document = json.loads(example_spec.read_text(encoding="utf-8"))
    document["source"] = str(source)
    path = into / example_spec.name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run_pipeline(parceler_run: Run, spec: Path) -> dict[str, Any]:
    done = parceler_run(str(spec), "--local", "--workers", "2", "--json")
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["status"] == "SUCCEEDED"
    assert all(stage["status"] == "SUCCEEDED" for stage in result["stages"])
    return result


def committed_outputs(stage: dict[str, Any]) -> list[Path]:
    """The files a stage's result manifest lists (committed attempts only)."""
    summary = json.loads(Path(stage["result_uri"]).read_text(encoding="utf-8"))
    return [Path(uri) for uri in pq.read_table(summary["data_uri"]).column("uri").to_pylist()]


def stage_named(result: dict[str, Any], name: str) -> dict[str, Any]:
    stages: list[dict[str, Any]] = [s for s in result["stages"] if s["name"] == name]
    [stage] = stages
    return stage


@pytest.fixture
def taxi(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """40 skewed taxi CSVs and their true passenger-count histogram."""
    truth: Counter[str] = load_generator("taxi").generate(
        tmp_path / "taxi", n_files=40, median_rows=120, seed=14
    )
    return tmp_path / "taxi", dict(truth)


def test_taxi_pipeline_in_python_counts_trips_by_passenger_count(
    tmp_path: Path, parceler_run: Run, taxi: tuple[Path, dict[str, int]]
) -> None:
    data, truth = taxi
    spec = spec_on(EXAMPLES / "taxi_pipeline" / "pipeline.json", data, tmp_path)

    result = run_pipeline(parceler_run, spec)

    assert [(s["name"], s["kind"]) for s in result["stages"]] == [
        ("select", "map"), ("by_passengers", "map_to_n"), ("count", "map_from_n"),
    ]  # fmt: skip
    assert result["result"] == truth
    trips = sum(truth.values())
    assert stage_named(result, "select")["result"] == {"rows": trips}
    assert stage_named(result, "by_passengers")["result"] == {"rows": trips}
    # The shuffle wrote two objects per mapper (data + index), whatever the partitions.
    shuffle = stage_named(result, "by_passengers")
    names = Counter(path.name for path in committed_outputs(shuffle))
    assert names == {"shuffle.data": shuffle["n_groups"], "shuffle.index.json": shuffle["n_groups"]}
    # One merge group per non-empty partition: one per passenger count.
    assert stage_named(result, "count")["n_groups"] == len(truth)


def test_taxi_pipeline_in_shell_counts_trips_by_passenger_count(
    tmp_path: Path, parceler_run: Run, taxi: tuple[Path, dict[str, int]]
) -> None:
    data, truth = taxi
    spec = spec_on(EXAMPLES / "taxi_pipeline" / "shell_pipeline.json", data, tmp_path)

    result = run_pipeline(parceler_run, spec)

    counts: Counter[str] = Counter()
    outputs = committed_outputs(stage_named(result, "count"))
    assert sorted(path.name for path in outputs) == [
        f"part-{p:05d}" for p in sorted(map(int, truth))
    ]
    for path in outputs:
        for line in path.read_text(encoding="utf-8").splitlines():
            passengers, trips = line.split(",")
            counts[passengers] += int(trips)
    assert dict(counts) == truth


def test_sort_pipeline_outputs_every_record_once_in_order(
    tmp_path: Path, parceler_run: Run
) -> None:
    data = tmp_path / "records"
    written = load_generator("sort_pipeline").generate(data, n_files=24, records_per_file=500)
    spec = spec_on(EXAMPLES / "sort_pipeline" / "pipeline.json", data, tmp_path)

    result = run_pipeline(parceler_run, spec)

    outputs = sorted(committed_outputs(stage_named(result, "merge")), key=lambda p: p.name)
    assert len(outputs) > 1  # the sort was really divided
    merged = [line for path in outputs for line in path.read_bytes().splitlines()]
    records = [line for path in sorted(data.iterdir()) for line in path.read_bytes().splitlines()]
    assert len(records) == written
    assert merged == sorted(merged)
    assert Counter(merged) == Counter(records)
    assert result["result"] == {"records": written, "partitions": len(outputs)}
