"""Benchmark partition.py: scale (1M, 10M) and side by side with s3manifesto 1.0.0.

    python -m bench.bench_partition scale --n 1000000
    python -m bench.bench_partition scale --n 10000000
    python -m bench.bench_partition compare --n 10000 30000 100000

``scale`` runs in a fresh process per call, so its peak RSS (``resource.getrusage``) is
that of generating the listing plus partitioning it. ``compare`` needs
``pip install s3manifesto==1.0.0`` (bench only, not a project dependency). Results are
recorded in ``bench/results/partition.md``; nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import numpy as np

from bench.listing import TARGET_SIZE, listing
from parceler.partition import Limits, lower_bound, partition


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale(n: int, repeat: int) -> dict[str, Any]:
    """Partition an n-file listing at 1 GB; best of ``repeat`` runs."""
    started = time.perf_counter()
    table = listing(n)
    generate_s = time.perf_counter() - started
    limits = Limits(target_size=TARGET_SIZE)
    times, cpu_times = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = partition(table, limits)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    bound = lower_bound(table, limits)
    regular = np.setdiff1d(np.arange(result.n_groups), result.group_of[result.oversized])
    return {
        "n": n,
        "generate_s": round(generate_s, 2),
        "partition_s": round(min(times), 2),
        "partition_cpu_s": round(min(cpu_times), 2),  # less sensitive to a busy machine
        "groups": result.n_groups,
        "lower_bound": bound,
        "over_bound_pct": round(100 * (result.n_groups - bound) / bound, 4),
        "oversized": len(result.oversized),
        "smallest_fill_pct": round(100 * int(result.size[regular].min()) / TARGET_SIZE, 1),
        "peak_rss_mb": round(_peak_rss_mb()),
    }


def compare(n: int) -> dict[str, Any]:
    """parceler vs s3manifesto.grouper.group_files on the same listing, target 1 GB."""
    from s3manifesto.grouper import group_files
    from s3manifesto.model import FileSpec

    table = listing(n)
    limits = Limits(target_size=TARGET_SIZE)
    started = time.perf_counter()
    result = partition(table, limits)
    ours_s = time.perf_counter() - started
    regular = np.setdiff1d(np.arange(result.n_groups), result.group_of[result.oversized])

    specs = [
        FileSpec(uri=u, value=s)
        for u, s in zip(
            table.column("uri").to_pylist(), table.column("size").to_pylist(), strict=True
        )
    ]
    started = time.perf_counter()
    theirs = group_files(specs, TARGET_SIZE)
    theirs_s = time.perf_counter() - started
    their_regular = [g.value for g in theirs if g.value <= TARGET_SIZE]
    return {
        "n": n,
        "lower_bound": lower_bound(table, limits),
        "parceler_s": round(ours_s, 4),
        "s3manifesto_s": round(theirs_s, 2),
        "speedup": round(theirs_s / ours_s),
        "parceler_groups": result.n_groups,
        "s3manifesto_groups": len(theirs),
        "parceler_smallest_pct": round(100 * int(result.size[regular].min()) / TARGET_SIZE, 2),
        "s3manifesto_smallest_pct": round(100 * min(their_regular) / TARGET_SIZE, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="partition benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    scale_cmd = sub.add_parser("scale")
    scale_cmd.add_argument("--n", type=int, required=True)
    scale_cmd.add_argument("--repeat", type=int, default=1)
    compare_cmd = sub.add_parser("compare")
    compare_cmd.add_argument("--n", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    args = parser.parse_args(argv)
    if args.command == "scale":
        print(json.dumps(scale(args.n, args.repeat)))
    else:
        for n in args.n:
            print(json.dumps(compare(n)), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
