"""Two workers run the same group at once: exactly one attempt commits, its files alone listed."""

from __future__ import annotations

import threading

import pytest

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.aws.queue import receive
from parceler.manifest import read_manifest
from parceler.planner import plan_and_send
from parceler.worker import Delivery, process_message

from . import procs
from .conftest import Resources, group_spec, seed_source


@pytest.mark.parametrize("first_to_finish", [1, 2])
def test_two_workers_on_one_group_commit_exactly_one_attempt(
    resources: Resources, first_to_finish: int
) -> None:
    procs.STARTED.clear()
    procs.GATES.clear()
    seed_source(2)
    plan_and_send(group_spec("gated", files_per_group=2), "job-2w", resources.planner)
    (message,) = receive(resources.lambda_queue_url, wait_seconds=0)
    outcomes: dict[str, Delivery] = {}

    def work(name: str, lease: float) -> None:
        outcomes[name] = process_message(
            message.body, resources.worker, worker_id=name, lease_seconds=lease
        )

    # Worker A's lease is 0 s, as if its heartbeat had stalled past the visibility timeout,
    # so the duplicate delivery to worker B is allowed to start a second attempt.
    a = threading.Thread(target=work, args=("A", 0.0))
    a.start()
    assert procs.STARTED.setdefault(1, threading.Event()).wait(30)
    b = threading.Thread(target=work, args=("B", 600.0))
    b.start()
    assert procs.STARTED.setdefault(2, threading.Event()).wait(30)
    # Both attempts have written their outputs and are running; let them finish in order.
    second_to_finish = 3 - first_to_finish
    procs.GATES.setdefault(first_to_finish, threading.Event()).set()
    (a if first_to_finish == 1 else b).join()
    procs.GATES.setdefault(second_to_finish, threading.Event()).set()
    a.join()
    b.join()

    by_attempt = {o.attempt: o.status for o in outcomes.values()}
    assert by_attempt == {first_to_finish: "succeeded", second_to_finish: "lost"}
    ledger = Ledger(resources.worker.ledger_table)
    group = ledger.get_group("job-2w", 0)
    assert group is not None
    assert (group.status, group.committed_attempt) == ("SUCCEEDED", first_to_finish)
    job = ledger.get_job("job-2w")
    assert (job.remaining, job.n_succeeded, job.n_failed) == (0, 1, 0)

    run = f"s3://parceler-work/jobs/job-2w/groups/000/000000/{job.run_id}"
    folder = f"{run}/attempt-{first_to_finish}/"
    assert group.result_uri == folder + "result.json"
    result = read_manifest(group.result_uri)
    assert sorted(result.table.column("uri").to_pylist()) == [
        folder + "000000.out",
        folder + "000001.out",
    ]
    assert result.summary.details["value"] == [{"attempt": first_to_finish, "files": 2}]
    # The other attempt's files exist, but no committed manifest lists them.
    other = f"{run}/attempt-{second_to_finish}/"
    assert storage.exists(other + "000000.out")
