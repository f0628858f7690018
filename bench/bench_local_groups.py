"""Per-group coordination of a whole local job: ``parceler run --local`` over many tiny files,
one group each, so the job's time is nearly all coordination (queue, ledger, manifests).

    python -m bench.bench_local_groups --groups 200 --repeat 3 [--compare OTHER_SHARED_DIR]

This checkout's runs pass ``--no-cache`` (the repeats must not reuse each other's results).
``--compare`` runs the same command with ``PYTHONPATH`` set to another checkout's ``shared``
folder (e.g. a worktree of an older commit), alternating with this checkout's in one run so
both see the same machine load. Prints the job's seconds (``seconds`` in ``--json``) and the
seconds per group for each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def _job_seconds(source: Path, groups: int, runs: Path, shared: str | None) -> float:
    env = dict(os.environ)
    if shared:
        env["PYTHONPATH"] = shared
    command = [sys.executable, "-m", "parceler", "run", str(source), "--local", "--json",
               "--processor", "linecount", "--groups", str(groups),
               "--output", str(runs / f"{len(list(runs.iterdir()))}")]  # fmt: skip
    if not shared:
        command.append("--no-cache")  # every group runs: no reuse from the previous repeat
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    result = json.loads(done.stdout)
    if result["status"] != "SUCCEEDED":
        raise SystemExit(f"job ended {result['status']}: {result.get('cause')}")
    return float(result["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", help="another checkout's shared/ folder, run alternately")
    args = parser.parse_args()
    source = Path(tempfile.mkdtemp(prefix="parceler-groups-"))
    for i in range(args.groups):
        (source / f"part-{i:04d}.txt").write_text(f"{i}\n")
    runs = Path(tempfile.mkdtemp(prefix="parceler-group-runs-"))
    variants = {"this checkout": None} | (
        {f"PYTHONPATH={args.compare}": args.compare} if args.compare else {}
    )
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, shared in variants.items():
            seconds[name].append(_job_seconds(source, args.groups, runs, shared))
    print(f"{args.groups} one-file groups, 2 workers, median of {args.repeat} (min-max):")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name}: job {median:.1f} s ({min(values):.1f}-{max(values):.1f}), "
              f"{1000 * median / args.groups:.0f} ms per group")  # fmt: skip


if __name__ == "__main__":
    main()
