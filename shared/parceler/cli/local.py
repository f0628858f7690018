"""``parceler local up|status|down``: a warm local stack that jobs and AWS clients share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from parceler.cli import err_console, friendly_errors
from parceler.local import warm_stack

local_app = typer.Typer(
    name="local",
    help="A warm local stack (emulator, resources, workers) in the background.",
    no_args_is_help=True,
)

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        help=f"the state folder (default ${warm_stack.STATE_DIR_VARIABLE}, else "
        "$XDG_RUNTIME_DIR/parceler, else ~/.parceler/local)",
    ),
]


def _names(state: warm_stack.StackState) -> str:
    """One ``name  value`` line each, unwrapped: ARNs and URLs stay whole for copy and paste."""
    rows = {
        "endpoint": state.endpoint_url,
        "work bucket": state.work_bucket,
        "job specs": f"s3://{state.work_bucket}/{state.spec_prefix}NAME{state.spec_suffix}",
        "lambda queue": state.lambda_queue_url,
        "container queue": state.container_queue_url,
        "ledger table": state.ledger_table,
        "state machine": state.state_machine_arn,
        "workers": str(state.workers),
        "pid": str(state.pid),
    }
    return "\n".join(f"{name:<16} {value}" for name, value in rows.items())


@local_app.command("up")
@friendly_errors
def up(
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 2,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="the emulator's loopback port (0: a free one)")
    ] = 0,
    state_dir: StateDirOption = None,
) -> None:
    """Start the emulator, the stack's resources and the workers in the background.

    While it is up, `parceler run --local`, `status`, `report` and `logs` use it, and any
    AWS client given its endpoint (e.g. `aws --endpoint-url URL ...`) drives it.
    """
    with err_console.status("starting the local stack…"):
        state = warm_stack.start(workers=workers, port=port, directory=state_dir)
    typer.echo(_names(state))


@local_app.command("status")
@friendly_errors
def status(
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="print one JSON object")
    ] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Is a local stack up? Exit 0 when it answers, 1 when none is up or it died."""
    state = warm_stack.read_state(state_dir)
    health = warm_stack.probe(state) if state is not None else None
    if as_json:
        document: dict[str, object] = {"status": health.status if health else "down"}
        if health is not None and health.reason:
            document["reason"] = health.reason
        if state is not None:
            document.update(state.to_json())
        typer.echo(json.dumps(document))
    elif state is None or health is None:
        typer.echo("no local stack is up (start one with `parceler local up`)")
    elif not health.up:
        err_console.print(
            f"[bold red]the local stack is dead:[/] {health.reason}.\n"
            "[bold]fix:[/] `parceler local down`, then `parceler local up`.",
            highlight=False,
            soft_wrap=True,
        )
    else:
        typer.echo(_names(state))
    if health is None or not health.up:
        raise typer.Exit(1)


@local_app.command("down")
@friendly_errors
def down(state_dir: StateDirOption = None) -> None:
    """Stop the local stack: workers, emulator, daemon; remove its state and temporary files."""
    if warm_stack.stop(state_dir):
        typer.echo("local stack stopped")
    else:
        typer.echo("no local stack was up")


@local_app.command("serve", hidden=True)
@friendly_errors
def serve(
    workers: Annotated[int, typer.Option(min=1)] = 2,
    port: Annotated[int, typer.Option(min=0, max=65535)] = 0,
    state_dir: StateDirOption = None,
) -> None:
    """The daemon `local up` starts (runs in the foreground until SIGTERM)."""
    warm_stack.serve(workers=workers, port=port, directory=state_dir or warm_stack.state_dir())


def register(app: typer.Typer) -> None:
    """Add ``local`` (a command group) to ``app``."""
    app.add_typer(local_app)
