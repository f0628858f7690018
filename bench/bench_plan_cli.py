"""Whole-process ``parceler plan`` on a generated 1M-file listing: wall time and peak RSS.

    python -m bench.bench_plan_cli --n 1000000

Generates the listing (``bench/listing.py``: lognormal sizes, median 20 MB, sigma 1.5,
clipped to [1 KiB, 5 GiB]) as Parquet once, then times two whole ``parceler plan``
processes with ``/usr/bin/time``-style accounting (``os.wait4`` gives the child's peak RSS):
``--dry-run``, and ``--out`` to a local folder (every group manifest written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.listing import listing


def run(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``; return (wall seconds, peak RSS in MB, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with {status}")
    return wall, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--target-size", default="1GB")
    args = parser.parse_args()
    data = Path("bench/data")
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"listing-{args.n}.parquet"
    if not path.exists():
        import pyarrow.parquet as pq

        pq.write_table(listing(args.n), path)
    parceler = [
        sys.executable,
        "-m",
        "parceler",
        "plan",
        str(path),
        "--target-size",
        args.target_size,
    ]
    wall, rss, out = run([*parceler, "--dry-run", "--json"])
    doc = json.loads(out)
    print(f"dry run: {args.n:,} files -> {doc['n_groups']:,} groups (bound {doc['lower_bound']:,}), "
          f"{wall:.2f} s wall, peak RSS {rss:.0f} MB, planner's own timer {doc['seconds']:.2f} s")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="parceler-plan-"))
    try:
        wall, rss, _ = run([*parceler, "--out", str(folder), "--json"])
        n_files = sum(1 for _ in folder.rglob("*"))
        print(
            f"--out local folder: {wall:.2f} s wall, peak RSS {rss:.0f} MB, {n_files:,} paths written"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
