"""The taxi pipeline (select → map_to_n by passenger count → map_from_n counts) on ~1 GB of
CSV: ``parceler run --local`` vs a single-process pyarrow group-by of the same files.

Untimed first: the data (``examples/taxi/generate.py`` with more and bigger files, into
``--data``, skipped when the folder already holds CSVs), one read of every file so both
sides start from a warm page cache, and a copy of ``examples/taxi_pipeline/pipeline.json``
whose source is the data.

What is timed (wall clock):

(a) **parceler**: ``parceler run <spec copy> --local --workers N --no-cache --json`` as one
    subprocess under ``/usr/bin/time -v`` (the whole command: emulator, three stages,
    workers, aggregation). ``--no-cache``: every group runs (no reuse of an earlier run's
    results). Peak memory two ways: ``/usr/bin/time``'s maximum RSS (the largest single
    process of the tree) and the peak of the whole process tree's summed RSS, sampled from
    ``/proc`` every 0.2 s.
(b) **pyarrow**: in this process, ``pyarrow.csv.read_csv`` of the ``passenger_count``
    column of every file, then ``group_by().aggregate(count)``; with pyarrow's threads
    (its default) and with ``use_threads=False``.

Both must give the same counts (and equal the generator's histogram when this run wrote
the data), or the run fails. Then the intermediate objects the shuffle wrote are counted
(``shuffle.data`` / ``shuffle.index.json`` under the run folder's outputs) against the
map_to_n stage's mappers x partitions (what a file-per-partition shuffle, as s4's, writes).

    python -m bench.bench_pipeline --files 1200 --median-rows 8000   # ~1 GB
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from parceler.shuffle import DATA_NAME, INDEX_NAME

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "taxi_pipeline" / "pipeline.json"
GENERATOR = ROOT / "examples" / "taxi" / "generate.py"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def generate(data: Path, files: int, median_rows: int) -> dict[str, int] | None:
    """Write the data unless ``data`` holds CSVs already; the true histogram if written."""
    if data.is_dir() and any(data.glob("*.csv")):
        return None
    loaded = importlib.util.spec_from_file_location("taxi_generate", GENERATOR)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    truth: Counter[str] = module.generate(data, files, median_rows)
    return dict(truth)


def pyarrow_counts(files: list[Path], threads: bool) -> dict[str, int]:
    """The baseline: passenger_count of every file, one process, grouped and counted."""
    options = pacsv.ConvertOptions(include_columns=["passenger_count"])
    reading = pacsv.ReadOptions(use_threads=threads)
    tables = [pacsv.read_csv(p, read_options=reading, convert_options=options) for p in files]
    counted = (
        pa.concat_tables(tables)
        .group_by("passenger_count")
        .aggregate([("passenger_count", "count")])
    )
    keys = counted.column("passenger_count").to_pylist()
    counts = counted.column("passenger_count_count").to_pylist()
    return {str(k): int(n) for k, n in zip(keys, counts, strict=True)}


class TreeRss:
    """Samples the summed RSS of a process and its descendants from ``/proc``."""

    def __init__(self, root: int, every: float = 0.2) -> None:
        self.root = root
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.sample())

    def sample(self) -> int:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
        total, pending = 0, [self.root]
        while pending:
            pid = pending.pop()
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
            except (OSError, IndexError, ValueError):
                continue
            pending.extend(children.get(pid, []))
        return total


@dataclass
class ParcelerRun:
    seconds: float
    max_rss_bytes: int | None
    tree_rss_bytes: int
    document: dict[str, Any]
    command: str


def run_parceler(spec: Path, runs: Path, workers: int) -> ParcelerRun:
    """(a): the whole command under ``/usr/bin/time -v``, from the repository root (the
    spec's processors are ``examples.taxi_pipeline.taxi_stages:...``)."""
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    parceler = [sys.executable, "-m", "parceler", "run", str(spec), "--local",
                "--workers", str(workers), "--no-cache", "--json",
                "--output", str(runs / "pipeline")]  # fmt: skip
    command = ["/usr/bin/time", "-v", *parceler]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with TreeRss(process.pid) as tree:
        out, err = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"parceler run failed ({process.returncode}):\n{err[-3000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return ParcelerRun(
        seconds=seconds,
        max_rss_bytes=int(found.group(1)) * 1024 if found else None,
        tree_rss_bytes=tree.peak,
        document=json.loads(out.strip().splitlines()[-1]),
        command=" ".join(["parceler", *parceler[3:]]),
    )


def stage_seconds(runs: Path, stages: list[dict[str, Any]]) -> dict[str, float]:
    """Each stage's job time from its ledger (created → last update), from its run folder."""
    found: dict[str, float] = {}
    for stage in stages:
        ledger = runs / stage["job_id"] / "ledger.json"
        if ledger.is_file():
            job = json.loads(ledger.read_text(encoding="utf-8"))["job"]
            found[stage["name"]] = float(job["updated_at"]) - float(job["created_at"])
    return found


def shuffle_objects(outputs: Path) -> dict[str, int]:
    """Files named like the shuffle's objects under ``outputs``, and the (mapper,
    partition) pieces their indexes list."""
    data = list(outputs.rglob(DATA_NAME))
    indexes = list(outputs.rglob(INDEX_NAME))
    pieces = sum(len(json.loads(p.read_text())["ranges"]) for p in indexes)
    return {"data": len(data), "index": len(indexes), "pieces": pieces}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "build" / "bench-pipeline" / "taxi")
    parser.add_argument("--files", type=int, default=1200)
    parser.add_argument("--median-rows", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", dest="as_json", action="store_true")
    args = parser.parse_args()

    data = args.data.resolve()
    truth = generate(data, args.files, args.median_rows)
    files = sorted(data.glob("*.csv"))
    total_bytes = sum(p.stat().st_size for p in files)
    for path in files:  # warm the page cache for both sides
        path.read_bytes()
    build = data.parent
    document = json.loads(SPEC.read_text(encoding="utf-8"))
    document["source"] = str(data)
    spec = build / "pipeline.json"
    spec.write_text(json.dumps(document, indent=2), encoding="utf-8")
    load_before = os.getloadavg()

    ran = run_parceler(spec, build / "runs", args.workers)
    timed: dict[str, float] = {}
    baseline: dict[str, int] = {}
    for threads in (True, False):
        started = time.perf_counter()
        baseline = pyarrow_counts(files, threads)
        timed["pyarrow (threads)" if threads else "pyarrow (use_threads=False)"] = (
            time.perf_counter() - started
        )
    load_after = os.getloadavg()

    result = ran.document["result"]
    if result != baseline:
        raise SystemExit(f"counts differ: parceler {result} vs pyarrow {baseline}")
    if truth is not None and truth != baseline:
        raise SystemExit(f"counts differ from the generator's: {baseline} vs {truth}")
    stages = {stage["name"]: stage for stage in ran.document["stages"]}
    mappers = int(stages["by_passengers"]["n_groups"])
    partitions = int(document["stages"][1]["partitions"])
    objects = shuffle_objects(Path(ran.document["outputs"]))
    summary: dict[str, Any] = {
        "files": len(files),
        "bytes": total_bytes,
        "trips": sum(baseline.values()),
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "parceler": {
            "command": ran.command,
            "seconds": ran.seconds,
            "max_rss_bytes": ran.max_rss_bytes,
            "tree_rss_bytes": ran.tree_rss_bytes,
            "groups": {name: stage["n_groups"] for name, stage in stages.items()},
            "stage_seconds": stage_seconds(build / "runs", ran.document["stages"]),
            "partition_sizes": stages["count"].get("partition_sizes"),
        },
        "pyarrow_seconds": timed,
        "counts": "identical" + (" (and equal the generator's)" if truth is not None else ""),
        "shuffle": {
            **objects,
            "mappers": mappers,
            "partitions": partitions,
            "mappers_x_partitions": mappers * partitions,
        },
    }
    if args.as_json:
        print(json.dumps(summary, indent=2))
        return
    mb = 1e6
    print(f"{len(files)} files, {total_bytes / mb:,.0f} MB, {summary['trips']:,} trips, "
          f"{args.workers} workers, {os.cpu_count()} CPUs, load {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")  # fmt: skip
    print("| variant | wall | peak RSS | counts |")
    print("|---|---|---|---|")
    rss = (
        f"{(ran.max_rss_bytes or 0) / mb:,.0f} MB largest process, "
        f"{ran.tree_rss_bytes / mb:,.0f} MB whole tree"
    )
    print(f"| `{ran.command}` | {ran.seconds:.1f} s | {rss} | {summary['counts']} |")
    for name, seconds in timed.items():
        print(f"| {name}, one process | {seconds:.1f} s | - | identical |")
    per_stage = ", ".join(f"{k} {v:.1f} s" for k, v in summary["parceler"]["stage_seconds"].items())
    print(f"stages (ledger): {per_stage}")
    print(f"groups per stage: {summary['parceler']['groups']}; partition sizes: "
          f"{summary['parceler']['partition_sizes']}")  # fmt: skip
    print(f"shuffle objects: {objects['data']} data + {objects['index']} index = "
          f"{objects['data'] + objects['index']} for {mappers} mappers x {partitions} partitions "
          f"= {mappers * partitions} (file-per-partition); {objects['pieces']} non-empty pieces")  # fmt: skip


if __name__ == "__main__":
    main()
