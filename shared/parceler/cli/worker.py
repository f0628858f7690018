"""``parceler worker``: the container worker's long-poll loop (what the Fargate task runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from parceler.cli import err_console, friendly_errors
from parceler.container_worker import RunnerOptions, run
from parceler.settings import WorkerSettings


def register(app: typer.Typer) -> None:
    """Add ``worker`` to ``app``."""

    @app.command("worker")
    @friendly_errors
    def worker(
        queue: Annotated[
            list[str], typer.Option("--queue", help="a work queue URL (repeat to serve several)")
        ],
        processes: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
        max_groups: Annotated[
            int | None, typer.Option(min=1, help="stop after N messages per process")
        ] = None,
        idle_exit: Annotated[
            float | None, typer.Option(min=0, help="stop after SECONDS without a message")
        ] = None,
        wait_seconds: Annotated[int, typer.Option(min=0, max=20, help="long-poll wait")] = 20,
        grace: Annotated[
            float, typer.Option(min=0, help="seconds a group may finish after SIGTERM")
        ] = 25.0,
    ) -> None:
        """Process group messages from the queue(s) until SIGTERM (or --idle-exit / --max-groups).

        Reads PARCELER_LEDGER_TABLE and PARCELER_WORK_BUCKET from the environment.
        """
        settings = WorkerSettings.from_env()
        options = RunnerOptions(
            queue_url=queue[0],
            more_queue_urls=tuple(queue[1:]),
            processes=processes,
            max_groups=max_groups,
            idle_exit=idle_exit,
            wait_seconds=wait_seconds,
            grace_seconds=grace,
        )
        stats = run(settings, options)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "none"
        err_console.print(
            f"parceler worker: {stats.handled} message(s) handled ({counts}); "
            f"{stats.released_on_stop} released on stop.",
            highlight=False,
        )
