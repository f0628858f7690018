"""Per-job overhead on a warm local stack (``parceler local up``): one-file jobs, timed.

    python -m bench.bench_warm --repeat 5

Starts a stack (its own state folder, 2 workers), then times, per job: a one-file
``linecount`` job from ``StartExecution`` to the execution's end, followed as
``parceler run`` follows it (the job's fixed cost: plan → one group → aggregate); and the
whole ``parceler run --local`` command on the same source (adds the CLI's start-up, the
checks, the run folder). Stops the stack at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="parceler-warm-"))
    (work / "data").mkdir()
    (work / "data" / "one.txt").write_text("one line\n")
    os.environ["PARCELER_LOCAL_STATE_DIR"] = str(work / "state")

    from parceler import aws
    from parceler.aws.ledger import Ledger
    from parceler.execution import follow, start_job
    from parceler.local import warm_stack
    from parceler.spec import parse_spec

    started = time.perf_counter()
    state = warm_stack.start(workers=2)
    up_seconds = time.perf_counter() - started
    try:
        os.environ.update(state.env())
        aws.reset_clients()
        ledger = Ledger(state.ledger_table)
        spec = parse_spec({"source": str(work / "data"), "processor": {"name": "linecount"}})
        job_seconds = []
        for i in range(args.repeat + 1):  # the first job warms moto's interpreter: dropped
            t0 = time.perf_counter()
            arn = start_job(spec, f"warm-{i}", state.state_machine_arn)
            result = follow(arn, f"warm-{i}", ledger, poll_seconds=0.05)
            assert result.status == "SUCCEEDED", result
            job_seconds.append(time.perf_counter() - t0)
        command_seconds = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "parceler", "run", str(work / "data"), "--local",
                 "--processor", "linecount", "--job-id", f"cli-{i}", "--json"],
                cwd=work, check=True, capture_output=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            )  # fmt: skip
            command_seconds.append(time.perf_counter() - t0)
    finally:
        warm_stack.stop()
    print(
        json.dumps(
            {
                "local_up": round(up_seconds, 2),
                "first_job": round(job_seconds[0], 2),
                "job_median": round(statistics.median(job_seconds[1:]), 2),
                "job_min": round(min(job_seconds[1:]), 2),
                "run_command_median": round(statistics.median(command_seconds), 2),
                "run_command_min": round(min(command_seconds), 2),
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
