"""``parceler plan``: build a manifest from a source, pack it into groups, print or write the plan."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from parceler.cli import err_console, friendly_errors
from parceler.cli.options import CountRecordsOption, ExcludeOption, IncludeOption
from parceler.errors import SpecError
from parceler.partition import Limits
from parceler.planning import (
    Plan,
    PlanSummaryStats,
    WrittenPlan,
    plan_files,
    plan_stats,
    write_plan,
)
from parceler.sources import load_source
from parceler.units import format_size, parse_size


def limits_from_options(
    target_size: str | None, target_records: int | None, groups: int | None, max_files: int | None
) -> Limits:
    """Validate the partitioning options; with none given the target is 1 GB per group.

    Raises:
        SpecError: the options contradict each other or a value is not positive.
    """
    if groups is not None and (target_size or target_records):
        raise SpecError(
            "--groups packs into exactly N groups and cannot be combined with a target.",
            "use either --groups N or --target-size/--target-records.",
        )
    size = parse_size(target_size) if target_size is not None else None
    for name, value in (("--target-size", size), ("--target-records", target_records),
                        ("--groups", groups), ("--max-files", max_files)):  # fmt: skip
        if value is not None and value <= 0:
            raise SpecError(f"{name} must be positive, got {value}.", f"give {name} a value > 0.")
    if size is None and target_records is None and groups is None and max_files is None:
        size = 1_000_000_000
    return Limits(
        target_size=size, target_records=target_records, max_files=max_files, groups=groups
    )


def register(app: typer.Typer) -> None:
    """Add ``plan`` to ``app``."""

    @app.command("plan")
    @friendly_errors
    def plan(
        source: Annotated[
            str,
            typer.Argument(
                help="s3://bucket/prefix/, an S3 Inventory manifest.json, a listing (.csv/.jsonl/.parquet), a local folder, or a manifest summary"
            ),
        ],
        target_size: Annotated[
            str | None, typer.Option(help="bytes per group: 1GB, 512MiB, 200KB (default 1GB)")
        ] = None,
        target_records: Annotated[
            int | None, typer.Option(help="records per group (needs n_record; see --count-records)")
        ] = None,
        groups: Annotated[
            int | None, typer.Option(help="exactly N groups of near-equal size")
        ] = None,
        max_files: Annotated[int | None, typer.Option(help="at most N files per group")] = None,
        include: IncludeOption = None,
        exclude: ExcludeOption = None,
        count_records: CountRecordsOption = False,
        out: Annotated[
            str | None, typer.Option(help="write group manifests and the plan index under this URI")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", metavar="", help="plan and print, write nothing")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", metavar="", help="print one JSON object")
        ] = False,
        stable: Annotated[
            bool,
            typer.Option(
                "--stable",
                metavar="",
                help="content-defined groups, as an incremental job plans them (default BFD)",
            ),
        ] = False,
    ) -> None:
        """Pack SOURCE into balanced groups (Best Fit Decreasing, or with --stable the
        content-defined groups of an incremental job) and print the plan."""
        limits = limits_from_options(target_size, target_records, groups, max_files)
        started = time.perf_counter()
        with err_console.status("listing the source…", spinner="dots") as status:
            table = load_source(source, include=include or (), exclude=exclude or (),
                                count_records=count_records)  # fmt: skip
            status.update(f"packing {table.num_rows:,} files…")
            the_plan = plan_files(table, limits, stable=stable)
            written = None
            if out and not dry_run:
                n_groups = the_plan.n_groups
                status.update(f"writing {n_groups:,} group manifests to {out}…")
                written = write_plan(
                    the_plan,
                    out,
                    progress=lambda done: status.update(
                        f"writing group manifests to {out}: {done:,} of {n_groups:,}…"
                    ),
                )
        stats = plan_stats(the_plan)
        elapsed = time.perf_counter() - started
        if as_json:
            typer.echo(json.dumps(plan_json(the_plan, stats, written, elapsed)))
        else:
            print_plan(Console(), source, stats, written, elapsed, dry_run=dry_run)


def plan_json(
    plan: Plan, stats: PlanSummaryStats, written: WrittenPlan | None, elapsed: float
) -> dict[str, Any]:
    """The ``--json`` document (documented in the README)."""
    groups = []
    for group in plan.groups():
        item: dict[str, Any] = {"index": group.index, "n_files": group.n_files, "size": group.size,
                                "n_record": group.n_record}  # fmt: skip
        if written is not None:
            item["summary_uri"] = written.group_summary_uris[group.index]
        groups.append(item)
    return {
        "n_files": stats.n_files,
        "total_size": stats.total_size,
        "total_records": stats.total_records,
        "n_groups": stats.n_groups,
        "lower_bound": stats.lower_bound,
        "fill": {
            "basis": stats.fill_basis,
            "min": stats.fill_min,
            "mean": stats.fill_mean,
            "max": stats.fill_max,
        },
        "oversized": stats.oversized,
        "index_uri": written.index_uri if written else None,
        "seconds": round(elapsed, 3),
        "groups": groups,
    }


def print_plan(
    console: Console, source: str, stats: PlanSummaryStats, written: WrittenPlan | None,
    elapsed: float, *, dry_run: bool,
) -> None:  # fmt: skip
    """The human plan table."""
    table = Table(title=f"plan of {source}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("files", f"{stats.n_files:,}")
    table.add_row("total size", format_size(stats.total_size))
    table.add_row(
        "total records", "—" if stats.total_records is None else f"{stats.total_records:,}"
    )
    table.add_row("groups", f"{stats.n_groups:,}")
    if stats.lower_bound is not None:
        table.add_row("lower bound", f"{stats.lower_bound:,}")
    fills = f"{stats.fill_min:.1%} / {stats.fill_mean:.1%} / {stats.fill_max:.1%}"
    basis = stats.fill_basis + (", oversized files apart" if stats.oversized else "")
    table.add_row(f"fill min/mean/max ({basis})", fills)
    table.add_row("oversized files", f"{len(stats.oversized):,}")
    table.add_row("planned in", f"{elapsed:.2f} s")
    if written is not None:
        table.add_row("written", written.index_uri)
    else:
        table.add_row("written", "no (dry run)" if dry_run else "no (give --out URI to write)")
    console.print(table)
    for uri in stats.oversized[:5]:
        console.print(f"  oversized: {uri}", highlight=False)
    if len(stats.oversized) > 5:
        console.print(f"  … and {len(stats.oversized) - 5:,} more oversized files")
