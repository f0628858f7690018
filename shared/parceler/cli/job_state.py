"""Where ``status``, ``report`` and ``logs`` read a job from: the live ledger or a local run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from parceler import aws
from parceler.aws.ledger import Ledger
from parceler.errors import JobNotFoundError
from parceler.ledger import GroupItem, JobItem
from parceler.local import warm_stack
from parceler.local.run_folder import RUNS_FOLDER, RunFolder

RunDirOption = Annotated[
    Path | None,
    typer.Option(
        help=f"a local run's folder (run --output); default ./{RUNS_FOLDER}/JOB when no "
        "ledger table is given or set"
    ),
]


@dataclass(frozen=True, slots=True)
class JobState:
    """A job's ledger items, and the run folder they were read from (None: the live ledger)."""

    job: JobItem
    groups: list[GroupItem]
    folder: RunFolder | None


def read_job_state(job_id: str, ledger_table: str | None, run_dir: Path | None) -> JobState:
    """The live ledger when a table is named (option or ``$PARCELER_LEDGER_TABLE``) and no
    run folder is; else, while a stack ``parceler local up`` started is up, its ledger when
    it holds the job; otherwise the state a local run saved when its emulator stopped.

    Raises:
        RunNotFoundError: no table, and no saved run of ``job_id`` where looked.
        JobNotFoundError: the live ledger has no such job.
        LocalStackError: the local stack's state file names a stack that died.
    """
    table = ledger_table or os.environ.get("PARCELER_LEDGER_TABLE")
    if table and run_dir is None:
        ledger = Ledger(table)
        return JobState(ledger.get_job(job_id), list(ledger.list_groups(job_id)), None)
    warm = warm_stack.running_stack() if run_dir is None else None
    if warm is not None:
        os.environ.update(warm.env())
        aws.reset_clients()
        ledger = Ledger(warm.ledger_table)
        try:
            return JobState(ledger.get_job(job_id), list(ledger.list_groups(job_id)), None)
        except JobNotFoundError:
            pass  # a run from before the stack came up: its run folder
    folder = RunFolder.find(job_id, run_dir)
    job, groups = folder.load_ledger()
    return JobState(job, groups, folder)
