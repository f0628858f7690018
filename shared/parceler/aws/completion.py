"""Job completion: when every ledger shard of a job is done, wake its waiting execution.

The job state machine's ``WaitForGroups`` task waits on a task token that the waiter stored
on the job item (:meth:`parceler.ledger.Ledger.register_waiter`). Each commit or dead-letter
mark that empties a shard adds it to the job item's ``done_shards`` set; the call that sees
the set complete sends ``SendTaskSuccess``. Several callers may see it complete at once and
all send: Step Functions accepts the first and refuses the rest (``TaskTimedOut``/
``InvalidToken``), which is harmless. A signal that is lost (a crash between the count and
the send, a throttled call) costs at most the task's re-check period: its timeout
re-registers and recounts, and this module sends then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from parceler import aws

log = logging.getLogger(__name__)

_STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


@dataclass(frozen=True, slots=True)
class JobProgress:
    """How many of a job's ledger shards have no group left, and who waits for them."""

    job_id: str
    n_shards: int
    done_shards: int
    task_token: str | None

    @property
    def complete(self) -> bool:
        return self.done_shards >= self.n_shards


def progress_of(job_id: str, job_item: Mapping[str, Any]) -> JobProgress:
    """The progress recorded on a job item (plain Python values, as the ledger decodes)."""
    planned = job_item.get("n_groups") is not None
    return JobProgress(
        job_id=job_id,
        # A job whose plan is not recorded yet cannot be complete.
        n_shards=int(job_item.get("n_shards") or 1) if planned else 1 << 30,
        done_shards=len(job_item.get("done_shards") or ()),
        task_token=job_item.get("wait_token"),
    )


def signal_if_complete(job_id: str, job_item: Mapping[str, Any]) -> bool:
    """Send ``SendTaskSuccess`` if the job item says every shard is done and a waiter is
    registered. Returns whether a signal was accepted."""
    progress = progress_of(job_id, job_item)
    if not progress.complete or not progress.task_token:
        return False
    return send(progress)


def send(progress: JobProgress) -> bool:
    """Wake the waiting execution; False (logged) if the token is stale or the call failed."""
    assert progress.task_token is not None
    try:
        aws.client("stepfunctions").send_task_success(
            taskToken=progress.task_token,
            output=json.dumps({"job_id": progress.job_id, "done_shards": progress.done_shards}),
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _STALE_TOKEN_CODES:
            log.info("job %s: completion already signalled (%s)", progress.job_id, code)
        else:
            log.warning(
                "job %s: completion signal failed (%s); the re-check will", progress.job_id, code
            )
        return False
    except BotoCoreError as exc:
        log.warning(
            "job %s: completion signal failed (%s); the re-check will", progress.job_id, exc
        )
        return False
    log.info("job %s: every group is done; execution signalled", progress.job_id)
    return True
