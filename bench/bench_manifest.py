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
import pyarrow as pa

from bench.listing import listing
from parceler.fingerprint import fingerprint
from parceler.manifest import read_manifest, write_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="data files in the manifest")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    args = parser.parse_args()

    table = listing(args.n)
    shuffled = table.take(np.random.default_rng(1).permutation(args.n))
    dated = _dated(table).take(np.random.default_rng(2).permutation(args.n))
    fingerprint(table)  # warm pyarrow's kernels so the first run is not an outlier
    results: dict[str, list[tuple[float, float]]] = {
        "fingerprint (uri order)": [],
        "fingerprint (shuffled)": [],
        "fingerprint (dated, shuf.)": [],
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
            results["fingerprint (dated, shuf.)"].append(_time(lambda: fingerprint(dated)))
            results["write"].append(_time(lambda: write_manifest(table, summary_uri)))
            results["read + verify"].append(_time(lambda: read_manifest(summary_uri)))
            results["read, no verify"].append(
                _time(lambda: read_manifest(summary_uri, verify=False))
            )
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        data_size = (Path(folder) / "manifest.parquet").stat().st_size
    print(f"files: {args.n:,}; runs: {args.repeat}")
    # CPU time of this process too: on a shared machine wall time moves with the load.
    for name, times in results.items():
        wall = [w for w, _ in times]
        cpu = statistics.median(c for _, c in times)
        print(
            f"{name:26s} median {statistics.median(wall):6.3f} s  (max {max(wall):.3f} s)"
            f"  cpu median {cpu:6.3f} s"
        )
    print(f"on disk: {size:,} bytes = {size / args.n:.1f} bytes/file (data {data_size:,})")


def _dated(table: pa.Table) -> pa.Table:
    """The listing with date-partitioned keys, ``.../2024/MM/DD/h-HHHH/f-NNNNNN.gz``.

    Long shared infixes make the 8-byte sort keys of the fingerprint tie, so this measures
    its refinement path rather than the one-key fast case.
    """
    row = np.arange(table.num_rows)
    uris = [
        f"s3://bench-bucket/app/2024/{d // 31 + 1:02d}/{d % 31 + 1:02d}/h-{h:04d}/f-{i:06d}.gz"
        for d, h, i in zip(row % 365, (row // 365) % 10, row // 3650, strict=True)
    ]
    return table.set_column(0, "uri", pa.array(uris, pa.string()))


def _time(run: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    assert callable(run)
    start, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - start, time.process_time() - cpu


if __name__ == "__main__":
    main()
