"""A local session's first one-file job against its second: what the first execution pays once.

    python -m bench.bench_first_job

Starts one :class:`LocalSession` (2 workers), then runs the same one-file ``linecount`` job
twice (``incremental: false``, so the second runs too) and prints both jobs' seconds from
``StartExecution`` to the execution's end.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from parceler.aws.ledger import Ledger
from parceler.execution import follow, start_job
from parceler.local.session import LocalSession
from parceler.spec import parse_spec


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "a.txt").write_text("hello world\n")
        spec = parse_spec(
            {"source": folder, "processor": {"name": "linecount"}, "incremental": False}
        )
        with LocalSession(workers=2) as session:
            time.sleep(1.0)  # the workers' start-up out of the way
            ledger = Ledger(session.stack.ledger_table)
            for name in ("first", "second"):
                started = time.perf_counter()
                arn = start_job(spec, f"bench-{name}", session.stack.state_machine_arn)
                result = follow(arn, f"bench-{name}", ledger, poll_seconds=0.1)
                took = time.perf_counter() - started
                print(f"{name} one-file job: {took:.2f} s ({result.status})")


if __name__ == "__main__":
    main()
