"""``parceler run``: run a whole job — locally against the emulator, or on a deployed stack."""

from __future__ import annotations

import functools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parceler import aws, storage
from parceler.aws.ledger import Ledger
from parceler.cli import err_console, friendly_errors
from parceler.cli.options import (
    CountRecordsOption,
    ExcludeOption,
    IncludeOption,
    JsonOption,
    LedgerTableOption,
    StateMachineOption,
    TimeoutOption,
)
from parceler.details import FailedGroup
from parceler.errors import SpecError
from parceler.execution import TERMINAL, JobResult, follow, start_job
from parceler.ledger import JobItem
from parceler.local import warm_stack
from parceler.local.run_folder import RUNS_FOLDER, RunFolder
from parceler.local.work_area import LocalWorkArea
from parceler.preflight import check_job
from parceler.report import build_report, render_html
from parceler.spec import JobSpec, parse_spec
from parceler.units import parse_size


def spec_from_arguments(
    source_or_spec: str,
    *,
    processor: str | None,
    shell: str | None,
    options: list[str],
    per: str,
    reducer: str | None,
    target_size: str | None,
    target_records: int | None,
    groups: int | None,
    max_files: int | None,
    tolerate: float | None,
    job_id: str | None,
    default_groups: int | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    count_records: bool = False,
) -> JobSpec:
    """Build the job spec from a spec file, or from a source plus options.

    A ``.json`` argument holding a ``processor`` is a spec file; options then may only add
    ``--job-id`` (the rest lives in the file). Anything else is the source; with no
    partitioning option it is packed into ``default_groups`` groups when given (the local
    mode passes 4 per worker, so no worker idles behind one 1 GB group).

    Raises:
        SpecError: a bad spec file, or options that do not make a spec.
    """
    path = Path(source_or_spec)
    if source_or_spec.endswith(".json") and path.is_file():
        try:
            from_file = json.loads(path.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"{source_or_spec} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}.",
                "fix the JSON syntax (`parceler spec-schema` prints the schema).",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read {source_or_spec}: {exc}.", "check the file.") from None
        if isinstance(from_file, dict) and "processor" in from_file:
            given = [processor, shell, reducer, target_size, target_records, groups, max_files,
                     tolerate, *options, *(include or ()), *(exclude or ())]  # fmt: skip
            if any(value is not None for value in given) or count_records:
                raise SpecError(
                    f"{source_or_spec} is a job spec; processor, reducer, partitioning and "
                    "limits come from it, not from options.",
                    "edit the spec file, or pass a source instead of a spec.",
                )
            if job_id is not None:
                from_file["job_id"] = job_id
            if isinstance(from_file.get("source"), str):
                from_file["source"] = absolute_if_local(from_file["source"])
            return parse_spec(from_file)
    if (processor is None) == (shell is None):
        raise SpecError(
            "a job needs exactly one processor.",
            "give --processor NAME|module:function (e.g. --processor wordcount) or --shell CMD.",
        )
    document: dict[str, Any] = {"source": absolute_if_local(source_or_spec)}
    if include:
        document["include"] = include
    if exclude:
        document["exclude"] = exclude
    if count_records:
        document["count_records"] = True
    if job_id is not None:
        document["job_id"] = job_id
    if shell is not None:
        document["processor"] = {"kind": "shell", "command": shell}
    elif processor is not None and ":" in processor:
        document["processor"] = {"kind": "python", "function": processor, "per": per}
    else:
        document["processor"] = {"kind": "builtin", "name": processor}
    document["processor"]["options"] = _options(options)
    if reducer is not None:
        kind = "python" if ":" in reducer else "builtin"
        document["reducer"] = {"kind": kind, "function" if kind == "python" else "name": reducer}
    partitioning = {
        "target_size": parse_size(target_size) if target_size else None,
        "target_records": target_records,
        "groups": groups,
        "max_files": max_files,
    }
    if any(v is not None for v in partitioning.values()):
        document["partitioning"] = {k: v for k, v in partitioning.items() if v is not None}
    elif default_groups is not None:
        document["partitioning"] = {"groups": default_groups}
    if tolerate is not None:
        document["limits"] = {"tolerated_failure_percent": tolerate}
    return parse_spec(document)


def absolute_if_local(source: str) -> str:
    """A relative local path, made absolute: worker processes must find it from anywhere."""
    if storage.parse_uri(source).scheme == "file" and not source.startswith("file://"):
        return str(Path(source).resolve())
    return source


def _options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SpecError(
                f"--option {pair!r} is not KEY=VALUE.",
                "write e.g. --option column=passenger_count.",
            )
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def new_job_id() -> str:
    """``job-YYYYmmdd-HHMMSS-xxxx``: sortable, unique enough for one user's runs."""
    return f"job-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""

    @app.command("run")
    @friendly_errors
    def run(
        source_or_spec: Annotated[
            str,
            typer.Argument(metavar="SOURCE|SPEC.json", help="what to process, or a job spec file"),
        ],
        processor: Annotated[
            str | None,
            typer.Option(
                help="a built-in (wordcount, linecount, csv-groupby, parquet-compact, copy) or module:function"
            ),
        ] = None,
        shell: Annotated[
            str | None,
            typer.Option(help="a shell command run per file: file on stdin, stdout is the output"),
        ] = None,
        option: Annotated[
            list[str] | None,
            typer.Option(
                "--option", help="processor option KEY=VALUE (repeatable; VALUE may be JSON)"
            ),
        ] = None,
        per: Annotated[str, typer.Option(help="python processors: 'file' or 'group'")] = "file",
        reducer: Annotated[
            str | None,
            typer.Option(help="sum, concat, none, or module:function (default: sum for built-ins)"),
        ] = None,
        include: IncludeOption = None,
        exclude: ExcludeOption = None,
        count_records: CountRecordsOption = False,
        target_size: Annotated[
            str | None,
            typer.Option(
                help="bytes per group: 1GB, 64MB (default: 1GB deployed; --local: 4 groups "
                "per worker)"
            ),
        ] = None,
        target_records: Annotated[int | None, typer.Option(help="records per group")] = None,
        groups: Annotated[int | None, typer.Option(help="exactly N groups")] = None,
        max_files: Annotated[int | None, typer.Option(help="at most N files per group")] = None,
        tolerate: Annotated[
            float | None,
            typer.Option(help="percent of groups that may fail with the job still succeeding"),
        ] = None,
        job_id: Annotated[
            str | None,
            typer.Option(help="the job id (execution name); default job-<time>-<random>"),
        ] = None,
        local: Annotated[
            bool,
            typer.Option(
                "--local", metavar="", help="run on this machine against the embedded AWS emulator"
            ),
        ] = False,
        workers: Annotated[int, typer.Option(min=1, help="--local: worker processes")] = 2,
        output: Annotated[
            Path | None,
            typer.Option(
                help="--local: the run folder (result manifest, value, outputs, ledger, logs); "
                f"default ./{RUNS_FOLDER}/JOB_ID"
            ),
        ] = None,
        state_machine: StateMachineOption = None,
        ledger_table: LedgerTableOption = None,
        report: Annotated[
            Path | None, typer.Option(help="write the job's HTML report here at the end")
        ] = None,
        timeout: TimeoutOption = None,
        as_json: JsonOption = False,
        save_result: Annotated[
            Path | None,
            typer.Option(help="also write the result document (what --json prints) to this file"),
        ] = None,
        no_cache: Annotated[
            bool,
            typer.Option(
                "--no-cache",
                metavar="",
                help="run every group (no reuse of earlier results) and pack with BFD: the "
                "spec's incremental: false",
            ),
        ] = False,
    ) -> None:
        """Run a job end to end: plan, process every group, aggregate; print the result.

        A pipeline spec (a JSON file with "stages") runs its stages in one execution, each
        stage's source the result of the stage before it (docs/pipelines.md).

        With --local the job runs on this machine and everything it leaves is copied to
        the run folder (--output): result.json (a manifest, usable as the next run's
        source), value.json, outputs/, ledger.json and logs/.
        """
        from parceler.cli.pipeline_run import pipeline_document, refuse_job_options, run_pipeline

        pipeline = pipeline_document(source_or_spec)
        if pipeline is not None:
            refuse_job_options(source_or_spec, [processor, shell, reducer, target_size,
                target_records, groups, max_files, tolerate, report, *(option or []),
                *(include or []), *(exclude or []), count_records])  # fmt: skip
            run_pipeline(pipeline, pipeline_id=job_id, local=local, workers=workers,
                         output=output, as_json=as_json, save_result=save_result,
                         timeout=timeout, state_machine=state_machine,
                         ledger_table=ledger_table, no_cache=no_cache)  # fmt: skip
            return
        # A stack `parceler local up` started runs local jobs (its workers, its emulator).
        warm = warm_stack.running_stack() if local else None
        if warm is not None:
            workers = warm.workers
        spec = spec_from_arguments(
            source_or_spec, processor=processor, shell=shell, options=option or [], per=per,
            reducer=reducer, target_size=target_size, target_records=target_records,
            groups=groups, max_files=max_files, tolerate=tolerate, job_id=job_id,
            default_groups=4 * workers if local else None, include=include, exclude=exclude,
            count_records=count_records,
        )  # fmt: skip
        if no_cache:
            spec = spec.model_copy(update={"incremental": False})
        the_job_id = spec.job_id or new_job_id()
        folder: RunFolder | None = None
        # Before the emulator or the execution starts: a mistake costs a fraction of a second.
        # A deployed job's code lives in the Lambda layer or the image, not necessarily here.
        check_job(spec, import_from=Path.cwd(), import_code=local)
        if local:
            folder = RunFolder(output.resolve()) if output else RunFolder.default(the_job_id)
            if spec.output is None:  # outputs straight to disk, not into the emulator
                spec = spec.model_copy(update={"output": str(folder.outputs)})
        try:
            result = _run(spec, the_job_id, folder, workers=workers, quiet=as_json,
                          timeout=timeout, report=report, state_machine=state_machine,
                          ledger_table=ledger_table, warm=warm)  # fmt: skip
        except KeyboardInterrupt:
            if warm is not None:
                err_console.print(
                    f"parceler: stopped following job {the_job_id}; it keeps running on the "
                    "local stack (`parceler local down` stops everything).",
                    highlight=False,
                )
            elif local:
                err_console.print(
                    f"parceler: job {the_job_id} abandoned (Ctrl-C): the local emulator and its "
                    "workers are stopped; nothing more will run.",
                    highlight=False,
                )
            else:
                err_console.print(
                    f"parceler: stopped following job {the_job_id}; it keeps running on the "
                    f"stack. Stop it with `parceler cancel {the_job_id}`.",
                    highlight=False,
                )
            raise typer.Exit(130) from None
        document = result_document(result, folder)
        if write_document(document, folder, save_result, as_json):
            print_result(Console(), result, report, folder)
        if not result.succeeded:
            raise typer.Exit(1)


def write_document(
    document: dict[str, Any], folder: RunFolder | None, save_result: Path | None, as_json: bool
) -> bool:
    """Save the result document (run folder, ``--save-result``) and print it with ``--json``;
    True when the human summary is still to print."""
    text = json.dumps(document, indent=2)
    if folder is not None:
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.run_document.write_text(text, encoding="utf-8")
    if save_result is not None:
        save_result.parent.mkdir(parents=True, exist_ok=True)
        save_result.write_text(text, encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(document))
    return not as_json


@dataclass
class RunTarget:
    """Where a run's execution goes: the state machine, the ledger table, and for a local
    run its session or warm stack."""

    machine: str
    table: str
    check: Callable[[], None] | None = None
    session: Any = None  # a LocalSession (cold local run)
    warm: warm_stack.StackState | None = None
    work_area: LocalWorkArea | None = None


@contextmanager
def run_target(
    label: str, folder: RunFolder | None, *, workers: int, quiet: bool, incremental: bool,
    state_machine: str | None, ledger_table: str | None,
    warm: warm_stack.StackState | None = None,
) -> Iterator[RunTarget]:  # fmt: skip
    """The stack a run uses: a warm local stack, a fresh local session (stopped on exit),
    or a deployed stack."""
    if folder is not None and warm is not None:
        os.environ.update(warm.env())
        aws.reset_clients()
        if not quiet:
            err_console.print(
                f"{label}: on the local stack at {warm.endpoint_url} ({warm.workers} worker(s))",
                highlight=False,
            )
        yield RunTarget(
            warm.state_machine_arn, warm.ledger_table,
            check=functools.partial(warm_stack.check_alive, warm), warm=warm,
        )  # fmt: skip
        return
    if folder is None:
        yield RunTarget(
            state_machine or _required_env("PARCELER_STATE_MACHINE_ARN", "--state-machine"),
            ledger_table or _required_env("PARCELER_LEDGER_TABLE", "--ledger-table"),
        )
        return
    from parceler.local.session import LocalSession

    started = time.monotonic()
    session = LocalSession(workers=workers, log_dir=folder.logs)
    session.fork_workers()  # before the spinner's thread: a fork needs no other thread
    with err_console.status("starting the local AWS emulator and workers…"), ExitStack() as stack:
        stack.enter_context(session)
        moved = stack.pop_all()
    with moved:
        if not err_console.is_terminal and not quiet:
            err_console.print(
                f"{label}: local emulator and {workers} worker(s) started in "
                f"{time.monotonic() - started:.1f} s",
                highlight=False,
            )
        work_area = LocalWorkArea.default()
        if incremental:  # earlier local runs' results, for reuse
            work_area.restore_cache(session.stack)
        yield RunTarget(
            session.stack.state_machine_arn, session.stack.ledger_table,
            session=session, work_area=work_area,
        )  # fmt: skip


def _run(
    spec: JobSpec,
    job_id: str,
    folder: RunFolder | None,
    *,
    workers: int,
    quiet: bool,
    timeout: float | None,
    report: Path | None,
    state_machine: str | None,
    ledger_table: str | None,
    warm: warm_stack.StackState | None = None,
) -> JobResult:
    """Start and follow the job; for a local one, save its run folder before the emulator stops.

    With ``warm`` (a stack ``parceler local up`` started) the job runs there: no emulator
    starts, and the job's sections of the stack's worker logs are copied to the run folder.
    """
    with run_target(
        job_id, folder, workers=workers, quiet=quiet, incremental=spec.incremental,
        state_machine=state_machine, ledger_table=ledger_table, warm=warm,
    ) as target:  # fmt: skip
        ledger = Ledger(target.table)
        arn = start_job(spec, job_id, target.machine)
        # The local emulator answers a poll in milliseconds: poll often, end sooner.
        poll = LOCAL_POLL_SECONDS if folder is not None else DEPLOYED_POLL_SECONDS
        result = _follow_with_progress(
            arn, job_id, ledger, quiet=quiet, timeout=timeout, poll_seconds=poll,
            enforce_quotas=folder is not None, check=target.check,
        )  # fmt: skip
        if folder is not None:  # the emulator's buckets and table end with this block
            save_local_job(folder, target, job_id, result.result_uri, result.value_uri)
        if report is not None:
            job = ledger.get_job(job_id)
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(render_html(build_report(job, list(ledger.list_groups(job_id)))))
    return result


def save_local_job(
    folder: RunFolder,
    target: RunTarget,
    job_id: str,
    result_uri: str | None,
    value_uri: str | None,
    logs: Path | None = None,
) -> None:
    """Copy a local job's ledger, result, value and logs to its run folder (and its results
    to the local work area, for reuse and redrive) before the emulator stops."""
    folder.save_ledger(target.table, job_id)
    folder.save_result(result_uri, value_uri)
    if target.warm is not None:
        folder.save_logs_of(job_id, Path(target.warm.worker_log_dir))
    else:
        if logs is not None:  # a pipeline's stage: its sections of the shared logs
            folder.save_logs_of(job_id, logs)
        assert target.work_area is not None and target.session is not None
        target.work_area.save(target.session.stack, job_id)


def result_document(result: JobResult, folder: RunFolder | None) -> dict[str, Any]:
    """What ``--json`` prints and ``--save-result`` writes: the result, and for a local run
    the run folder's paths in place of the vanished work area's URIs."""
    document = result.to_json()
    if folder is None:
        return document
    document["run_folder"] = str(folder.path)
    document["result_uri"] = str(folder.result_summary) if folder.result_summary.is_file() else None
    document["value_uri"] = str(folder.value) if folder.value.is_file() else None
    document["outputs"] = str(folder.outputs) if folder.outputs.is_dir() else None
    return document


def _required_env(name: str, option: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SpecError(
            f"no {name} set and no {option} given: which deployed stack should run the job?",
            f"pass {option}, set {name} (see the stack outputs), or run with --local.",
        )
    return value


# Without a terminal (CI, `2>log`) the bar cannot redraw: a plain line this often instead.
PLAIN_PROGRESS_SECONDS = 5.0
LOCAL_POLL_SECONDS = 0.1
DEPLOYED_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class _Seen:
    """One poll of a followed job, as the progress display needs it."""

    status: str
    n_groups: int | None
    n_succeeded: int
    n_failed: int
    elapsed: float

    @classmethod
    def of(cls, status: str, job: JobItem | None, elapsed: float) -> _Seen:
        if job is None:
            return cls(status, None, 0, 0, elapsed)
        return cls(status, job.n_groups, job.n_succeeded, job.n_failed, elapsed)


def _follow_with_progress(
    arn: str, job_id: str, ledger: Ledger, *, quiet: bool, timeout: float | None,
    poll_seconds: float, enforce_quotas: bool = False, check: Callable[[], None] | None = None,
) -> JobResult:  # fmt: skip
    """Follow the job with a progress bar (or plain lines); ``check`` runs at every poll and
    raises to stop following (the warm stack's liveness check)."""
    if not quiet and not err_console.is_terminal:
        return _follow_plain(arn, job_id, ledger, timeout=timeout, poll_seconds=poll_seconds,
                             enforce_quotas=enforce_quotas, check=check)  # fmt: skip
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"), TextColumn("elapsed"), TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=err_console, disable=quiet, transient=False) as bar:
        task = bar.add_task(f"{job_id}: planning", total=None, failed=0, rate="", eta="")

        def show(status: str, job: JobItem | None, elapsed: float) -> None:
            if check is not None:
                check()
            seen = _Seen.of(status, job, elapsed)
            if seen.n_groups is None:
                bar.update(task, description=f"{job_id}: planning")
                return
            done = seen.n_succeeded + seen.n_failed
            rate = done / seen.elapsed if seen.elapsed > 0 else 0.0
            left = seen.n_groups - done
            eta = f"ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
            bar.update(task, description=f"{job_id}: {_phase(seen)}", total=seen.n_groups,
                       completed=done, failed=seen.n_failed, rate=f"{rate:.1f} groups/s",
                       eta=eta)  # fmt: skip

        return follow(arn, job_id, ledger, on_progress=show, timeout_seconds=timeout,
                      poll_seconds=poll_seconds, enforce_quotas=enforce_quotas)  # fmt: skip


def _phase(seen: _Seen) -> str:
    if seen.n_groups is None:
        return "planning"
    if seen.n_succeeded + seen.n_failed < seen.n_groups:
        return "groups"
    return "aggregating" if seen.status == "RUNNING" else "done"


def _follow_plain(
    arn: str, job_id: str, ledger: Ledger, *, timeout: float | None, poll_seconds: float,
    enforce_quotas: bool = False, check: Callable[[], None] | None = None,
) -> JobResult:  # fmt: skip
    """Follow with one progress line every few seconds and a last one with the elapsed time."""
    last = [-PLAIN_PROGRESS_SECONDS]

    def line(seen: _Seen) -> str:
        groups = (
            f"{seen.n_succeeded + seen.n_failed}/{seen.n_groups} groups done, "
            f"{seen.n_failed} failed, "
            if seen.n_groups is not None
            else ""
        )
        return f"{job_id}: {_phase(seen)}: {groups}{seen.elapsed:.1f} s elapsed"

    def show(status: str, job: JobItem | None, elapsed: float) -> None:
        if check is not None:
            check()
        seen = _Seen.of(status, job, elapsed)
        if seen.status in TERMINAL:
            err_console.print(line(seen), highlight=False, soft_wrap=True)
        elif seen.elapsed - last[0] >= PLAIN_PROGRESS_SECONDS:
            last[0] = seen.elapsed
            err_console.print(line(seen), highlight=False, soft_wrap=True)

    return follow(arn, job_id, ledger, on_progress=show, timeout_seconds=timeout,
                  poll_seconds=poll_seconds, enforce_quotas=enforce_quotas)  # fmt: skip


def print_result(
    console: Console, result: JobResult, report: Path | None, folder: RunFolder | None = None
) -> None:
    """The end-of-job summary table, failures grouped by error, and the reducer's value."""
    style = "green" if result.succeeded else "red"
    table = Table(title=f"job {result.job_id}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # paths whole, for copy and paste
    table.add_row("status", f"[{style}]{result.status}[/]")
    table.add_row(
        "groups",
        f"{result.groups_succeeded} succeeded, {result.groups_failed} failed of {result.n_groups}",
    )
    table.add_row("time", f"{result.seconds:.1f} s")
    if folder is not None:
        table.add_row("run folder", str(folder.path))
        if folder.result_summary.is_file():
            table.add_row("result", f"{folder.result_summary} (a manifest: the next run's source)")
        if folder.value.is_file():
            table.add_row("value", str(folder.value))
        if folder.outputs.is_dir():
            table.add_row("outputs", str(folder.outputs))
    else:
        table.add_row("result", result.result_uri or "—")
    if report is not None:
        table.add_row("report", str(report))
    if result.error and not result.failed_groups:
        table.add_row("error", f"{result.error}: {(result.cause or '')[:2000]}")
    console.print(table, soft_wrap=True)
    print_failures(console, result.job_id, result.failed_groups, folder)
    if result.succeeded and result.result is not None:
        console.print(value_table(result.result))
        if folder is not None and folder.value.is_file():
            console.print(f"(the whole value: {folder.value})", highlight=False, soft_wrap=True)


@dataclass
class FailureKind:
    """Failed groups that share one error: the first one's cause stands for all."""

    error: str
    summary: str
    cause: str
    groups: list[int] = field(default_factory=list)


def failure_kinds(failed_groups: list[FailedGroup]) -> list[FailureKind]:
    """Group failures by distinct error, most frequent first.

    Two failures are the same error when their error type, the exception type ending
    the traceback and the innermost frame (file and line) agree: the file or value named
    in the message differs from group to group, the code that raised does not. A cause
    without a traceback is its own text.
    """
    kinds: dict[tuple[str, ...], FailureKind] = {}
    for failure in failed_groups:
        error = failure.error or "error"
        cause = failure.cause or ""
        lines = [line.strip() for line in cause.strip().splitlines() if line.strip()]
        summary = (lines[-1] if lines else "").partition(" Fix: ")[0]  # the fix: in the cause
        frames = [line for line in lines if line.startswith('File "')]
        key = (error, summary.partition(":")[0], frames[-1]) if frames else (error, summary)
        kind = kinds.setdefault(key, FailureKind(error, summary, cause))
        kind.groups.append(failure.index)
    return sorted(kinds.values(), key=lambda k: -len(k.groups))


_EXAMPLE_GROUPS = 5
_LOG_TAIL_LINES = 10


def print_failures(
    console: Console, job_id: str, failed_groups: list[FailedGroup], folder: RunFolder | None
) -> None:
    """One block per distinct error: count, example groups, one cause, the log's tail."""
    for kind in failure_kinds(failed_groups):
        examples = ", ".join(map(str, sorted(kind.groups)[:_EXAMPLE_GROUPS]))
        more = " …" if len(kind.groups) > _EXAMPLE_GROUPS else ""
        noun = "group" if len(kind.groups) == 1 else "groups"
        console.print(
            f"[red]{len(kind.groups)} {noun} failed[/] with {kind.error}: {kind.summary}"
            f"  (groups {examples}{more})",
            highlight=False,
            soft_wrap=True,
        )
        console.print(kind.cause, highlight=False, soft_wrap=True, markup=False)
        if folder is not None:
            tail = [line for log in folder.group_logs(kind.groups[0]) for line in log.lines]
            if tail:
                console.print(
                    f"  last lines of group {kind.groups[0]}'s log "
                    f"(`parceler logs {job_id} --group {kind.groups[0]}`):",
                    highlight=False,
                )
                console.print(
                    "\n".join("    " + line for line in tail[-_LOG_TAIL_LINES:]),
                    highlight=False,
                    soft_wrap=True,
                    markup=False,
                )


def value_table(value: Any, limit: int = 25) -> Table | str:
    """Show a reducer value: counts as a table (word counts as their top words), else JSON."""
    if isinstance(value, dict) and isinstance(value.get("words"), dict):
        from parceler.processors.builtins.wordcount import top_words

        table = Table(
            title=f"{value.get('total_words', 0):,} words; the most frequent", title_justify="left"
        )
        table.add_column("word")
        table.add_column("count", justify="right")
        for word, count in top_words(value, limit):
            table.add_row(word, f"{count:,}")
        return table
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(v, int | float) for v in value.values())
    ):
        table = Table(title="result", title_justify="left")
        table.add_column("key")
        table.add_column("value", justify="right")
        for key in sorted(
            value,
            key=lambda k: (
                not str(k).lstrip("-").isdigit(),
                int(k) if str(k).lstrip("-").isdigit() else 0,
                str(k),
            ),
        )[:limit]:
            number = value[key]
            table.add_row(str(key), f"{number:,}" if isinstance(number, int) else f"{number:,.4g}")
        return table
    lines = json.dumps(value, indent=2).splitlines()
    return "\n".join(lines if len(lines) <= limit else [*lines[:limit], "…"])
