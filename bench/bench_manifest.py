"""Benchmark manifest write and read (with verify) of a 1M-file listing on a local folder.

Run: ``.venv/bin/python -m bench.bench_manifest --n 1000000 --repeat 3``. Results are
recorded by hand in ``bench/results/manifest.md``; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from parceler.fingerprint import fingerprint
from parceler.manifest import read_manifest, write_manifest

from bench.listing import listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="data files in the manifest")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    args = parser.parse_args()

    table = listing(args.n)
    shuffled = table.take(np.random.default_rng(1).permutation(args.n))
    fingerprint(table)  # warm pyarrow's kernels so the first run is not an outlier
    results: dict[str, list[float]] = {
        "fingerprint (uri order)": [],
        "fingerprint (shuffled)": [],
        "write": [],
        "read + verify": [],
        "read, no verify": [],
    }
    size = 0
    with tempfile.TemporaryDirectory() as folder:
        summary_uri = str(Path(folder) / "manifest.json")
        for _ in range(args.repeat):
            results["fingerprint (uri order)"].append(_time(lambda: fingerprint(table)))
            results["fingerprint (shuffled)"].append(_time(lambda: fingerprint(shuffled)))
            results["write"].append(_time(lambda: write_manifest(table, summary_uri)))
            results["read + verify"].append(_time(lambda: read_manifest(summary_uri)))
            results["read, no verify"].append(
                _time(lambda: read_manifest(summary_uri, verify=False))
            )
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        data_size = (Path(folder) / "manifest.parquet").stat().st_size
    print(f"files: {args.n:,}; runs: {args.repeat}")
    for name, times in results.items():
        print(f"{name:26s} median {statistics.median(times):6.3f} s  (max {max(times):.3f} s)")
    print(f"on disk: {size:,} bytes = {size / args.n:.1f} bytes/file (data {data_size:,})")


def _time(run: object) -> float:
    assert callable(run)
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
