"""``parceler run``: run a whole job — locally against the emulator, or on a deployed stack."""

from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parceler import storage
from parceler.aws.ledger import Ledger
from parceler.cli import err_console, friendly_errors
from parceler.errors import SpecError
from parceler.execution import JobResult, follow, read_value, start_job
from parceler.ledger import JobItem
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
        from_file = json.loads(path.read_text(encoding="utf-8") or "{}")
        if isinstance(from_file, dict) and "processor" in from_file:
            given = [processor, shell, reducer, target_size, target_records, groups, max_files,
                     tolerate, *options]  # fmt: skip
            if any(value is not None for value in given):
                raise SpecError(
                    f"{source_or_spec} is a job spec; processor, reducer, partitioning and "
                    "limits come from it, not from options.",
                    "edit the spec file, or pass a source instead of a spec.",
                )
            if job_id is not None:
                from_file["job_id"] = job_id
            if isinstance(from_file.get("source"), str):
                from_file["source"] = _absolute_if_local(from_file["source"])
            return parse_spec(from_file)
    if (processor is None) == (shell is None):
        raise SpecError(
            "a job needs exactly one processor.",
            "give --processor NAME|module:function (e.g. --processor wordcount) or --shell CMD.",
        )
    document: dict[str, Any] = {"source": _absolute_if_local(source_or_spec)}
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


def _absolute_if_local(source: str) -> str:
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
        target_size: Annotated[
            str | None, typer.Option(help="bytes per group: 1GB, 64MB (default 1GB)")
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
            typer.Option("--local", help="run on this machine against the embedded AWS emulator"),
        ] = False,
        workers: Annotated[int, typer.Option(min=1, help="--local: worker processes")] = 2,
        state_machine: Annotated[
            str | None,
            typer.Option(
                help="deployed: the job state machine ARN (default $PARCELER_STATE_MACHINE_ARN)"
            ),
        ] = None,
        ledger_table: Annotated[
            str | None,
            typer.Option(help="deployed: the ledger table (default $PARCELER_LEDGER_TABLE)"),
        ] = None,
        report: Annotated[
            Path | None, typer.Option(help="write the job's HTML report here at the end")
        ] = None,
        timeout: Annotated[
            float | None, typer.Option(help="give up following after SECONDS")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
        save_result: Annotated[
            Path | None, typer.Option(help="also write the --json document to this file")
        ] = None,
    ) -> None:
        """Run a job end to end: plan, process every group, aggregate; print the result."""
        spec = spec_from_arguments(
            source_or_spec, processor=processor, shell=shell, options=option or [], per=per,
            reducer=reducer, target_size=target_size, target_records=target_records,
            groups=groups, max_files=max_files, tolerate=tolerate, job_id=job_id,
            default_groups=4 * workers if local else None,
        )  # fmt: skip
        the_job_id = spec.job_id or new_job_id()
        with ExitStack() as stack:
            if local:
                from parceler.local.session import LocalSession

                with err_console.status("starting the local AWS emulator and workers…"):
                    session = stack.enter_context(LocalSession(workers=workers))
                machine, table = session.stack.state_machine_arn, session.stack.ledger_table
            else:
                machine = state_machine or _required_env(
                    "PARCELER_STATE_MACHINE_ARN", "--state-machine"
                )
                table = ledger_table or _required_env("PARCELER_LEDGER_TABLE", "--ledger-table")
            ledger = Ledger(table)
            arn = start_job(spec, the_job_id, machine)
            result = _follow_with_progress(
                arn, the_job_id, ledger, quiet=as_json, timeout=timeout, enforce_quotas=local
            )
            # Read the whole value while the work area exists (the local one ends with us).
            saved = (
                {**result.to_json(), "result": read_value(result.value_uri, None)}
                if save_result
                else None
            )
            if report is not None:
                job = ledger.get_job(the_job_id)
                report.parent.mkdir(parents=True, exist_ok=True)
                report.write_text(
                    render_html(build_report(job, list(ledger.list_groups(the_job_id))))
                )
        if save_result is not None:
            save_result.parent.mkdir(parents=True, exist_ok=True)
            save_result.write_text(json.dumps(saved, indent=2), encoding="utf-8")
        if as_json:
            typer.echo(json.dumps(result.to_json()))
        else:
            print_result(Console(), result, report)
        if not result.succeeded:
            raise typer.Exit(1)


def _required_env(name: str, option: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SpecError(
            f"no {name} set and no {option} given: which deployed stack should run the job?",
            f"pass {option}, set {name} (see the stack outputs), or run with --local.",
        )
    return value


def _follow_with_progress(
    arn: str,
    job_id: str,
    ledger: Ledger,
    *,
    quiet: bool,
    timeout: float | None,
    enforce_quotas: bool = False,
) -> JobResult:
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"), TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=err_console, disable=quiet, transient=False) as bar:
        task = bar.add_task(f"{job_id}: planning", total=None, failed=0, rate="", eta="—")

        def show(status: str, job: JobItem | None, elapsed: float) -> None:
            if job is None or job.n_groups is None:
                bar.update(task, description=f"{job_id}: planning")
                return
            done = job.n_succeeded + job.n_failed
            rate = done / elapsed if elapsed > 0 else 0.0
            left = job.n_groups - done
            eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else "—"
            phase = "groups" if left > 0 else ("aggregating" if status == "RUNNING" else "done")
            bar.update(task, description=f"{job_id}: {phase}", total=job.n_groups, completed=done,
                       failed=job.n_failed, rate=f"{rate:.1f} groups/s", eta=eta)  # fmt: skip

        return follow(
            arn, job_id, ledger, on_progress=show, timeout_seconds=timeout,
            enforce_quotas=enforce_quotas,
        )  # fmt: skip


def print_result(console: Console, result: JobResult, report: Path | None) -> None:
    """The end-of-job summary table, the reducer's value, and failures."""
    style = "green" if result.succeeded else "red"
    table = Table(title=f"job {result.job_id}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", f"[{style}]{result.status}[/]")
    table.add_row(
        "groups",
        f"{result.groups_succeeded} succeeded, {result.groups_failed} failed of {result.n_groups}",
    )
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("result", result.result_uri or "—")
    if report is not None:
        table.add_row("report", str(report))
    if result.error:
        table.add_row("error", f"{result.error}: {(result.cause or '')[:500]}")
    console.print(table)
    for failure in result.failed_groups[:10]:
        console.print(f"  [red]group {failure.index}[/]: {failure.error}: "
                      f"{(failure.cause or '')[:300]}", highlight=False)  # fmt: skip
    if result.result is not None:
        console.print(value_table(result.result))


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
    text = json.dumps(value, indent=2)
    return text if len(text) < 4000 else text[:4000] + "\n…"
