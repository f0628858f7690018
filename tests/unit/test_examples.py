"""The examples stay runnable: every job and pipeline spec validates, every generator runs,
and each job spec's processor computes the right answer on a small generated sample
(in-process, via ``run_group``: the same code the workers run). The pipelines run end to
end in ``tests/e2e/test_pipeline_examples.py``."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from parceler.processors import GroupContext, check_processor, run_group
from parceler.sources import load_source
from parceler.spec import JobSpec, parse_pipeline, parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TAXI = ("examples/taxi/generate.py", ["--files", "6", "--median-rows", "30"])
SORT = ("examples/sort_pipeline/generate.py", ["--files", "4", "--records", "50"])
# Each example's job.json and the generator (with small arguments) that makes its data.
GENERATORS = {
    "taxi": TAXI,
    "shell_processor": TAXI,
    "custom": TAXI,
    "parquet_compaction": (
        "examples/parquet_compaction/generate.py",
        ["--files", "12", "--median-rows", "40"],
    ),
}
# Each pipeline spec (a file whose name contains "pipeline") and the generator of its data.
PIPELINES = {
    "taxi_pipeline/pipeline.json": TAXI,
    "taxi_pipeline/shell_pipeline.json": TAXI,
    "sort_pipeline/pipeline.json": SORT,
}

# Each generator once: the jobs', and those only a pipeline uses.
EVERY_GENERATOR = {
    **GENERATORS,
    **{name: made for name, made in PIPELINES.items() if made not in GENERATORS.values()},
}


def is_pipeline_file(path: Path) -> bool:
    return "pipeline" in path.name


def spec_of(name: str) -> JobSpec:
    return parse_spec((EXAMPLES / name / "job.json").read_text(encoding="utf-8"))


def generate(name: str, out: Path) -> Path:
    script, args = GENERATORS[name] if name in GENERATORS else PIPELINES[name]
    done = subprocess.run(
        [sys.executable, str(ROOT / script), "--out", str(out), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert any(out.iterdir())
    return out


def run_example(name: str, data: Path, tmp_path: Path) -> tuple[JobSpec, object, list[str]]:
    """Run the example's processor and reducer on all of ``data`` as one group."""
    spec = spec_of(name)
    check_processor(spec.processor, spec.reducer)
    files = load_source(
        str(data), include=spec.include, exclude=spec.exclude, count_records=spec.count_records
    )
    ctx = GroupContext("example", 0, 1, str(tmp_path / "outputs") + "/")
    outcome = run_group(spec.processor, spec.reducer, files, ctx)
    return spec, outcome.value, outcome.outputs.column("uri").to_pylist()


def test_every_example_job_is_covered_here() -> None:
    found = {p.parent.name for p in EXAMPLES.glob("**/job.json")}
    assert found == set(GENERATORS)


def test_every_example_pipeline_is_covered_here() -> None:
    found = {
        p.relative_to(EXAMPLES).as_posix()
        for p in EXAMPLES.glob("**/*.json")
        if is_pipeline_file(p)
    }
    assert found == set(PIPELINES)


@pytest.mark.parametrize(
    "path",
    sorted(EXAMPLES.glob("**/*.json")),
    ids=lambda p: p.relative_to(EXAMPLES).as_posix(),
)
def test_every_example_spec_validates(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if is_pipeline_file(path):
        pipeline = parse_pipeline(text)
        assert pipeline.source is not None
        sources = [pipeline.source, *(s.source for s in pipeline.stages if s.source)]
    else:
        sources = [parse_spec(text).source]
    assert all(source.startswith("build/") for source in sources)  # generated, not committed


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_example_pipeline_stage_loads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The processors are examples.<example>.<module>:function, found from the repository
    # root (the directory the README runs them from).
    monkeypatch.syspath_prepend(str(ROOT))
    for stage in parse_pipeline((EXAMPLES / name).read_text(encoding="utf-8")).order():
        check_processor(stage.processor, stage.reducer, stage.kind)


@pytest.mark.parametrize("name", sorted(EVERY_GENERATOR))
def test_generators_run_deterministically(name: str, tmp_path: Path) -> None:
    first, second = generate(name, tmp_path / "a"), generate(name, tmp_path / "b")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for file in names:
        assert (first / file).read_bytes() == (second / file).read_bytes()


def test_taxi_counts_trips_by_passenger_count(tmp_path: Path) -> None:
    data = generate("taxi", tmp_path / "taxi")
    truth: Counter[str] = Counter()
    for path in data.glob("*.csv"):
        with path.open(newline="") as stream:
            truth.update(row["passenger_count"] for row in csv.DictReader(stream))
    _spec, value, _outputs = run_example("taxi", data, tmp_path)
    assert value == dict(truth)


def test_parquet_compaction_keeps_every_row(tmp_path: Path) -> None:
    data = generate("parquet_compaction", tmp_path / "small")
    rows_in = sum(pq.read_metadata(p).num_rows for p in data.glob("*.parquet"))
    _spec, value, outputs = run_example("parquet_compaction", data, tmp_path)
    assert isinstance(value, dict)
    assert value["files_in"] == 12 and value["rows"] == rows_in
    assert value["files_out"] == len(outputs) == 1  # a 4 MB target holds the whole sample
    assert pq.read_table(outputs[0]).num_rows == rows_in


def test_shell_example_gzips_each_file(tmp_path: Path) -> None:
    data = generate("shell_processor", tmp_path / "taxi")
    inputs = sorted(data.glob("*.csv"))
    _spec, value, outputs = run_example("shell_processor", data, tmp_path)
    assert value == {
        "files": len(inputs),
        "bytes_in": sum(p.stat().st_size for p in inputs),
        "bytes_out": sum(Path(o).stat().st_size for o in outputs),
    }
    assert [gzip.decompress(Path(o).read_bytes()) for o in sorted(outputs)] == [
        p.read_bytes() for p in inputs
    ]


def test_custom_example_counts_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as PYTHONPATH=examples does
    data = generate("custom", tmp_path / "taxi")
    lines = [line for p in data.glob("*.csv") for line in p.read_bytes().splitlines()]
    _spec, value, _outputs = run_example("custom", data, tmp_path)
    assert value == {"lines": len(lines), "longest": max(len(line) for line in lines)}
