"""The job state machine's wait: store the task token, recount the ledger, signal if done.

``WaitForGroups`` invokes this with ``lambda:invoke.waitForTaskToken`` and then waits, with no
polling, until :mod:`parceler.completion` sends ``SendTaskSuccess`` for the token. Called
again after each re-check timeout, it stores the new token and recounts, so a signal lost
before the token was stored, or lost in transit, ends the wait at the next re-check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parceler.aws import completion
from parceler.aws.ledger import Ledger
from parceler.settings import WaiterSettings


@dataclass(frozen=True, slots=True)
class Registration:
    """What one registration found (the task's output goes nowhere; this is for logs)."""

    job_id: str
    n_shards: int
    done_shards: int
    signalled: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "n_shards": self.n_shards,
            "done_shards": self.done_shards,
            "signalled": self.signalled,
        }


def register(job_id: str, task_token: str, settings: WaiterSettings) -> Registration:
    """Store ``task_token`` on job ``job_id``, recount its shards, and signal at once if every
    group is already done (the last commit may have come before the token was stored).

    Raises:
        JobNotFoundError: the job has no ledger item (the plan never recorded it).
        RetryableError: a transient ledger failure (the state machine retries).
    """
    ledger = Ledger(settings.ledger_table)
    ledger.mark_job(job_id, "RUNNING", expected=["PLANNING"])
    progress = ledger.register_waiter(job_id, task_token)
    signalled = progress.complete and completion.send(progress)
    return Registration(job_id, progress.n_shards, progress.done_shards, signalled)
