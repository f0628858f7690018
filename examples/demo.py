"""``make demo``: the NYC-taxi passenger count, run end to end in the local mode.

1. Generates a deterministic NYC-taxi-like dataset: 300 CSV files with skewed sizes, a
   header row and a passenger-count column, under ``build/taxi``.
2. Runs ``parceler run examples/taxi/job.json --local``: moto's server on loopback, the
   real state machine definition, the real planner and aggregator handlers, and two
   worker processes; ``csv-groupby`` per group, then the ``sum`` reducer across groups.
3. Checks the job's passenger-count table against a direct computation over the files,
   and writes the job report (groups per worker over time) to ``build/demo/report.html``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taxi.generate import generate

DATA = Path("build/taxi")
REPORT = Path("build/demo/report.html")


def main() -> int:
    truth = generate(DATA, n_files=300)
    print(f"generated 300 CSV files ({sum(truth.values()):,} trips) in {DATA}/")
    saved = REPORT.with_name("result.json")
    command = [sys.executable, "-m", "parceler", "run", "examples/taxi/job.json", "--local",
               "--workers", "2", "--report", str(REPORT), "--save-result", str(saved)]  # fmt: skip
    print("$", " ".join(["parceler", *command[3:]]), flush=True)
    if subprocess.call(command) != 0:
        return 1
    result = json.loads(saved.read_text())["result"]
    expected = {key: count for key, count in sorted(truth.items())}
    if result != expected:
        print(f"MISMATCH: job says {result}, the files say {expected}")
        return 1
    print(f"the job's passenger counts equal a direct count over the files; report: {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
