"""A local run's folder on disk: result manifest, value, outputs, final ledger state and logs.

The emulator's buckets and tables vanish when a local run ends, so before it stops the
run copies here everything a user looks at afterwards (``parceler status``, ``report``,
``logs``, and the result manifest as the next run's source)::

    parceler-runs/<job_id>/
        run.json          the ``run --json`` document
        result.json       result manifest (summary; its rows name files under outputs/)
        result.parquet    its data
        value.json        the reducer's value
        outputs/          every file the processors wrote (committed or not)
        ledger.json       the ledger's final job and group items
        logs/worker-N.log each worker's output; ``--- group G attempt A ---`` markers
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.errors import InputError
from parceler.ledger import GroupItem, JobItem

RUNS_FOLDER = "parceler-runs"
# A worker prints these around each message it handles (``parceler.runner``).
START_MARKER = "--- start message {message_id} ---"
END_MARKER = "--- end group {index} attempt {attempt} (job {job_id}): {status} ---"
_END = re.compile(r"^--- end group (\S+) attempt (\S+) \(job (\S+)\): (\S+) ---$")
_START = re.compile(r"^--- start message \S+ ---$")


class RunNotFoundError(InputError):
    """No local run folder for a job id."""


@dataclass(frozen=True, slots=True)
class GroupLog:
    """The log lines a worker printed while it handled one attempt of one group."""

    index: int
    attempt: str
    status: str
    worker_log: str
    lines: list[str]


@dataclass(frozen=True, slots=True)
class RunFolder:
    """The layout of one local run's folder (the one place that knows its file names)."""

    path: Path

    @classmethod
    def default(cls, job_id: str, cwd: Path | None = None) -> RunFolder:
        """``./parceler-runs/<job_id>``, absolute (workers run with their own cwd)."""
        return cls(((cwd or Path.cwd()) / RUNS_FOLDER / job_id).resolve())

    @classmethod
    def find(cls, job_id: str, where: Path | None = None) -> RunFolder:
        """The run folder holding ``job_id``'s saved ledger: ``where`` itself, or
        ``where/<job_id>``, or ``./parceler-runs/<job_id>``.

        Raises:
            RunNotFoundError: none of those holds a saved ledger.
        """
        candidates = (
            [where, where / job_id] if where is not None else [RunFolder.default(job_id).path]
        )
        for candidate in candidates:
            if (candidate / "ledger.json").is_file():
                return cls(candidate.resolve())
        raise RunNotFoundError(
            f"no local run of job {job_id!r} in {', '.join(map(str, candidates))}.",
            "run from the folder you ran the job in, pass --run-dir DIR (the job's --output), "
            "or for a deployed job pass --ledger-table / set PARCELER_LEDGER_TABLE.",
        )

    @property
    def run_document(self) -> Path:
        return self.path / "run.json"

    @property
    def result_summary(self) -> Path:
        return self.path / "result.json"

    @property
    def value(self) -> Path:
        return self.path / "value.json"

    @property
    def outputs(self) -> Path:
        return self.path / "outputs"

    @property
    def ledger(self) -> Path:
        return self.path / "ledger.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def save_ledger(self, table: str, job_id: str) -> None:
        """Save the job's ledger state (its typed job and group items) from ``table``."""
        ledger = Ledger(table)
        job = dataclasses.asdict(ledger.get_job(job_id))
        groups = [dataclasses.asdict(g) for g in ledger.list_groups(job_id)]
        self.path.mkdir(parents=True, exist_ok=True)
        self.ledger.write_text(
            json.dumps({"job": job, "groups": groups}, default=_json_default), encoding="utf-8"
        )

    def load_ledger(self) -> tuple[JobItem, list[GroupItem]]:
        """The job and group items saved by :meth:`save_ledger`, groups in index order."""
        saved = json.loads(self.ledger.read_text(encoding="utf-8"))
        if saved.get("job") is None:
            raise RunNotFoundError(f"{self.ledger} holds no job item.", "run the job again.")
        groups = sorted((_item(GroupItem, g) for g in saved["groups"]), key=lambda g: g.index)
        return _item(JobItem, saved["job"]), groups

    def save_result(self, result_uri: str | None, value_uri: str | None) -> None:
        """Copy the result manifest (its rows already name files under ``outputs/``) and
        the value out of the work area."""
        self.path.mkdir(parents=True, exist_ok=True)
        if value_uri:
            self.value.write_bytes(storage.read_bytes(value_uri))
        if result_uri:
            from parceler.manifest import read_manifest, write_manifest

            manifest = read_manifest(result_uri)
            details = dict(manifest.summary.details)
            if "value_uri" in details:  # the work area's copy vanishes with the emulator
                details["value_uri"] = str(self.value)
            write_manifest(manifest.table, str(self.result_summary), details=details)

    def save_logs_of(self, job_id: str, worker_log_dir: Path) -> None:
        """Copy ``job_id``'s sections of a shared stack's worker logs (``parceler local up``:
        its workers serve every job) into ``logs/``, one file per worker log, markers kept."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for log_file in sorted(worker_log_dir.glob("worker-*.log")):
            kept: list[str] = []
            section: list[str] | None = None
            for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
                if _START.match(line):
                    section = [line]
                    continue
                end = _END.match(line)
                if end is not None and section is not None:
                    if end.group(3) == job_id:
                        kept.extend([*section, line])
                    section = None
                    continue
                if section is not None:
                    section.append(line)
            if kept:
                (self.logs / log_file.name).write_text("\n".join(kept) + "\n", encoding="utf-8")

    def group_logs(self, index: int | None = None) -> Iterator[GroupLog]:
        """Each attempt's log section (of group ``index``, or of every group)."""
        return log_sections(self.logs, index)


def log_sections(
    log_dir: Path, index: int | None = None, job_id: str | None = None
) -> Iterator[GroupLog]:
    """Each attempt's section of the ``worker-*.log`` files in ``log_dir``: of group
    ``index`` (or every group), of job ``job_id`` (or every job: a run folder holds one)."""
    for log_file in sorted(log_dir.glob("worker-*.log")):
        section: list[str] | None = None
        for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if _START.match(line):
                section = []
                continue
            end = _END.match(line)
            if end is not None:
                group = int(end.group(1)) if end.group(1).isdigit() else None
                wanted = group is not None and index in (None, group)
                wanted = wanted and job_id in (None, end.group(3))
                if section is not None and group is not None and wanted:
                    yield GroupLog(group, end.group(2), end.group(4), log_file.name, section)
                section = None
                continue
            if section is not None:
                section.append(line)


def _json_default(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"cannot save {type(value).__name__} in a run folder")


_Item = TypeVar("_Item", JobItem, GroupItem)


def _item(kind: type[_Item], saved: dict[str, Any]) -> _Item:
    """A typed ledger item back from its saved fields (sets were saved as sorted lists)."""
    fields = {f.name: f for f in dataclasses.fields(kind)}
    values: dict[str, Any] = {
        name: frozenset(value) if "frozenset" in str(fields[name].type) else value
        for name, value in saved.items()
        if name in fields
    }
    return kind(**values)
