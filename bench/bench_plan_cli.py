"""Whole-process ``parceler plan`` on a generated 1M-file listing: wall time and peak RSS.

    python -m bench.bench_plan_cli --n 1000000

Generates the listing (``bench/listing.py``: lognormal sizes, median 20 MB, sigma 1.5,
clipped to [1 KiB, 5 GiB]) as Parquet once, then times two whole ``parceler plan``
processes with ``/usr/bin/time``-style accounting (``os.wait4`` gives the child's peak RSS):
``--dry-run``, and ``--out`` to a local folder (every group manifest written). Before each
``--out`` run the disk is left to settle (``os.sync``, then until creating a small file
takes under 0.1 ms again): creating files on this machine's disk stays 5-15x slower for
minutes after 116,000 files are written and deleted. Each run also times the file-system
floor: creating the same number of files in the same layout with nothing else.
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


def create_probe(folder: Path, n: int = 2000) -> float:
    """Milliseconds per file to create ``n`` small files in ``folder`` (then removed)."""
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for i in range(n):
        (folder / f"{i:05d}.json").write_bytes(b"{}")
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder)
    return elapsed / n * 1000


def settle(scratch: Path, fast_ms: float = 0.1, max_wait: float = 900.0) -> str:
    """Wait until creating a file takes under ``fast_ms`` ms again, or ``max_wait`` s pass.

    On this machine, after 116,000 files are written and deleted, creating files stays
    5-15x slower for minutes (seen with no I/O pressure reported): a run started then
    measures the disk's recovery, not parceler. Returns a note with what was seen.
    """
    os.sync()
    waited = 0.0
    while (probe := create_probe(scratch / "probe")) > fast_ms and waited < max_wait:
        time.sleep(30)
        waited += 30
    return f"creating a file took {probe:.3f} ms after {waited:.0f} s of settling"


def file_system_floor(folder: Path, n_groups: int) -> float:
    """Seconds to create the files of ``n_groups`` groups in the planner's layout, nothing
    else: two files of 2 KB per group, a thousand groups per folder, one process."""
    body = b"x" * 2048
    started = time.perf_counter()
    for g in range(n_groups):
        if g % 1000 == 0:
            (folder / f"{g // 1000:03d}").mkdir(parents=True)
        for suffix in (".parquet", ".json"):
            (folder / f"{g // 1000:03d}" / f"{g:06d}{suffix}").write_bytes(body)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--target-size", default="1GB")
    parser.add_argument("--repeat", type=int, default=1, help="timed --out runs")
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
    for _ in range(args.repeat):
        folder = Path(tempfile.mkdtemp(prefix="parceler-plan-"))
        try:
            before = settle(folder)
            wall, rss, _ = run([*parceler, "--out", str(folder / "plan"), "--json"])
            n_files = sum(1 for _ in (folder / "plan").rglob("*"))
            shutil.rmtree(folder / "plan")
            print(f"--out local folder: {wall:.2f} s wall, peak RSS {rss:.0f} MB, {n_files:,} paths "
                  f"written ({before})")  # fmt: skip
            before = settle(folder)
            floor = file_system_floor(folder / "floor", doc["n_groups"])
            print(f"file-system floor: {floor:.2f} s to create the {2 * doc['n_groups']:,} files "
                  f"alone ({before})")  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
