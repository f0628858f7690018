"""The fixed cost of a local run, phase by phase: what ``parceler run --local`` pays before
and after the work itself.

    python -m bench.bench_local --repeat 3

Phases: importing the local mode; the checks before the emulator starts; ``LocalSession`` start (moto server, the stack's
resources, the state machine, worker processes); a one-file job (plan → one group →
aggregate, so nearly all coordination); saving the run folder; closing (workers stopped,
server down). The whole
``parceler run --local`` command on the same one-file source is timed too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from parceler.execution import follow, start_job
from parceler.aws.ledger import Ledger
from parceler.local.session import LocalSession
from parceler.spec import parse_spec
from parceler.local.run_folder import RunFolder
from parceler.preflight import check_job
t1 = time.perf_counter()
spec = parse_spec({"source": sys.argv[1], "processor": {"name": "linecount"}})
check_job(spec)
t1b = time.perf_counter()
session = LocalSession(workers=2).__enter__()
t2 = time.perf_counter()
arn = start_job(spec, "fixed-cost", session.stack.state_machine_arn)
result = follow(arn, "fixed-cost", Ledger(session.stack.ledger_table), poll_seconds=0.1)
t3 = time.perf_counter()
folder = RunFolder(Path(sys.argv[2]))
folder.save_ledger(session.stack.ledger_table, "fixed-cost")
folder.save_result(result.result_uri, result.value_uri)
t3b = time.perf_counter()
session.close()
t4 = time.perf_counter()
assert result.status == "SUCCEEDED", result
print(json.dumps({"import": t1 - t0, "preflight": t1b - t1, "session_start": t2 - t1b,
                  "one_file_job": t3 - t2, "run_folder": t3b - t3, "close": t4 - t3b}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import json

    folder = Path(tempfile.mkdtemp(prefix="parceler-fixed-"))
    (folder / "one.txt").write_text("one line\n")
    runs = Path(tempfile.mkdtemp(prefix="parceler-runs-"))  # the run folders
    phases: dict[str, list[float]] = {}
    whole: list[float] = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(runs / "in-process")],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        for name, seconds in json.loads(out.strip().splitlines()[-1]).items():
            phases.setdefault(name, []).append(seconds)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "parceler", "run", str(folder), "--processor",
                        "linecount", "--local", "--json", "--output", str(runs / str(len(whole)))],
                       capture_output=True, check=True)  # fmt: skip
        whole.append(time.perf_counter() - started)
    print(f"median of {args.repeat} runs (seconds)")
    for name, values in phases.items():
        print(f"  {name:14s} {statistics.median(values):6.2f}")
    print(
        f"  {'whole command':14s} {statistics.median(whole):6.2f}  (parceler run --local, one file)"
    )


if __name__ == "__main__":
    main()
