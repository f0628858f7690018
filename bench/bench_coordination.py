"""Per-group coordination cost of parceler against moto: AWS calls and wall time per group.

Every AWS call except the processor's own work is counted with a botocore ``before-call``
handler on parceler's clients; the processor here (:func:`noop`) makes no AWS call, so
what is counted is exactly the coordination: planning (amortised per group) and the
worker protocol (receive → read group manifest → claim → result manifest → commit →
delete). Run: ``.venv/bin/python -m bench.bench_coordination --groups 200``. Results are
recorded by hand in ``bench/results/coordination.md``; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import time
from collections import Counter
from typing import Any

from parceler import aws
from parceler.aws import ledger
from parceler.aws.ledger import Ledger
from parceler.container_worker import RunnerOptions, run_loop
from parceler.planner import plan_and_send
from parceler.settings import PlannerSettings, WorkerSettings
from parceler.spec import JobSpec


def noop(files: list[Any], ctx: Any) -> int:
    """A processor with no I/O, so only coordination calls are counted."""
    return len(files)


class CallCounter:
    """Counts AWS operations made through parceler's clients, by ``service.Operation``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def attach(self) -> None:
        for service in ("s3", "sqs", "dynamodb"):
            aws.client(service).meta.events.register("before-call", self._count)  # type: ignore[call-overload]

    def _count(self, model: Any, **_kwargs: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def take(self) -> Counter[str]:
        out, self.calls = self.calls, Counter()
        return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto() -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_PORT": str(port),
        }
    )
    aws.reset_clients()
    return server


def _resources() -> PlannerSettings:
    aws.client("s3").create_bucket(Bucket="work")
    aws.client("s3").create_bucket(Bucket="src")
    ledger.create_table("ledger")
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    redrive = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": "3"})
    url = sqs.create_queue(
        QueueName="work", Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive}
    )["QueueUrl"]
    return PlannerSettings(
        ledger_table="ledger",
        work_bucket="work",
        lambda_queue_url=url,
        container_queue_url=url,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=200, help="groups (one file each)")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=1000,
        help="the spec's limits.max_concurrency (below --groups: in-flight slots are used)",
    )
    args = parser.parse_args()
    server = _start_moto()
    try:
        settings = _resources()
        for i in range(args.groups):
            aws.client("s3").put_object(Bucket="src", Key=f"data/f{i:05d}.txt", Body=b"x\n")
        spec = JobSpec.model_validate(
            {
                "source": "s3://src/data/",
                "partitioning": {"max_files": 1},
                "limits": {"max_concurrency": args.max_concurrency},
                "processor": {
                    "kind": "python",
                    "function": "bench.bench_coordination:noop",
                    "per": "group",
                },
            }
        )
        counter = CallCounter()
        counter.attach()
        started = time.perf_counter()
        plan_and_send(spec, "bench", settings)
        plan_seconds = time.perf_counter() - started
        plan_calls = counter.take()

        worker = WorkerSettings(ledger_table="ledger", work_bucket="work")
        options = RunnerOptions(settings.lambda_queue_url, max_groups=args.groups, wait_seconds=1)
        started = time.perf_counter()
        stats = run_loop(worker, options)
        work_seconds = time.perf_counter() - started
        work_calls = counter.take()
        job = Ledger("ledger").get_job("bench")
    finally:
        server.stop()

    n = args.groups
    print(f"groups: {n}; outcomes: {dict(stats.outcomes)}; job remaining: {job.remaining}")
    _report("planning", plan_calls, plan_seconds, n)
    _report("worker", work_calls, work_seconds, n)
    total = (sum(plan_calls.values()) + sum(work_calls.values())) / n
    print(f"\ntotal coordination calls per group (planning + worker): {total:.2f}")


def _report(phase: str, calls: Counter[str], seconds: float, n: int) -> None:
    total = sum(calls.values())
    print(f"\n{phase}: {total} calls = {total / n:.2f} per group; "
          f"{seconds:.2f} s = {1000 * seconds / n:.1f} ms per group")  # fmt: skip
    for name, count in sorted(calls.items()):
        print(f"  {name:36s} {count:6d}  ({count / n:.2f}/group)")


if __name__ == "__main__":
    main()
