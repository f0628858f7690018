"""``make bench``: the quick benchmarks, one after another (minutes, not hours).

The long ones are run by hand, with the commands in their results files:
``bench.bench_partition compare`` (s3manifesto takes ~20 min at 100k files) and
``bench.bench_partition scale --n 10000000`` (the 10M hierarchical plan) and
``bench.bench_pipeline`` (the taxi pipeline on ~1 GB, 4 min of data generation first).
"""

from __future__ import annotations

import subprocess
import sys

QUICK = [
    ["bench.bench_plan_cli", "--n", "1000000"],
    ["bench.bench_manifest", "--n", "1000000", "--repeat", "3"],
    ["bench.bench_partition", "scale", "--n", "1000000"],
    ["bench.bench_incremental", "--n", "10000"],
    ["bench.bench_coordination", "--groups", "200"],
    ["bench.bench_local", "--repeat", "3"],
    ["bench.bench_wordcount"],
    ["bench.quota_model"],
]


def main() -> int:
    failed = 0
    for module, *args in QUICK:
        print(f"\n=== python -m {module} {' '.join(args)}", flush=True)
        failed += subprocess.call([sys.executable, "-m", module, *args]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
