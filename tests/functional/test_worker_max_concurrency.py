"""``limits.max_concurrency``: at most that many groups of a job in flight (issue 11)."""

from __future__ import annotations

import json
import threading

from parceler.aws.ledger import Ledger
from parceler.container_worker import RunnerOptions, run_loop
from parceler.messages import ReceivedMessage
from parceler.planner import plan_and_send
from parceler.worker import MIN_DEFER_SECONDS, Delivery, handle_delivery, process_message

from . import procs
from .conftest import Resources, drain, group_spec, seed_source


def _by_group(messages: list[ReceivedMessage]) -> dict[int, ReceivedMessage]:
    return {int(json.loads(m.body)["summary_uri"][-11:-5]): m for m in messages}


def test_a_group_beyond_max_concurrency_is_deferred_until_a_slot_frees(
    resources: Resources,
) -> None:
    procs.GROUP_STARTED.clear()
    procs.GROUP_GATES.clear()
    seed_source(3)
    spec = group_spec("gated_by_group", limits={"max_concurrency": 1})
    plan_and_send(spec, "job-mc", resources.planner)
    messages = _by_group(drain(resources.lambda_queue_url, visibility=120))
    ledger = Ledger(resources.worker.ledger_table)
    box: dict[str, Delivery] = {}

    def first() -> None:
        box["first"] = handle_delivery(
            resources.lambda_queue_url, messages[0], resources.worker, worker_id="A",
            visibility_seconds=30,
        )  # fmt: skip

    running = threading.Thread(target=first)
    running.start()
    assert procs.GROUP_STARTED.setdefault(0, threading.Event()).wait(30)

    deferred = handle_delivery(
        resources.lambda_queue_url, messages[1], resources.worker, worker_id="B",
        visibility_seconds=30,
    )  # fmt: skip

    assert (deferred.status, deferred.requeued, deferred.attempt) == ("deferred", True, None)
    assert deferred.retry_after is not None and deferred.retry_after >= MIN_DEFER_SECONDS
    waiting = ledger.get_group("job-mc", 1)
    assert waiting is not None and (waiting.status, waiting.attempt) == ("PENDING", 0)
    held = [s for s in ledger.slots("job-mc") if s.holder is not None]
    assert [(s.slot, s.group_index) for s in held] == [(0, 0)]
    procs.GROUP_GATES.setdefault(0, threading.Event()).set()
    running.join()
    assert box["first"].status == "succeeded"
    assert [s for s in ledger.slots("job-mc") if s.holder is not None] == []  # released
    # The deferred copy comes back after its delay, not as a receive of the old message.
    assert drain(resources.lambda_queue_url) == []

    procs.GROUP_GATES.setdefault(1, threading.Event()).set()
    again = process_message(messages[1].body, resources.worker, worker_id="B")
    assert (again.status, again.attempt) == ("succeeded", 1)


def test_a_job_with_no_more_groups_than_its_limit_takes_no_slots(resources: Resources) -> None:
    seed_source(3)
    plan_and_send(group_spec(limits={"max_concurrency": 3}), "job-few", resources.planner)
    stats = run_loop(
        resources.worker,
        RunnerOptions(resources.lambda_queue_url, idle_exit=1, wait_seconds=1),
    )
    assert dict(stats.outcomes) == {"succeeded": 3}
    assert Ledger(resources.worker.ledger_table).slots("job-few") == []
