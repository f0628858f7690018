"""The ``parceler`` command: a thin edge over the library (typer + rich).

Each command lives in its own module with ``register(app)``. Errors from the typed family
are shown as one clear message: bad input exits 2, other parceler errors exit 1, and
neither prints a traceback (set ``PARCELER_DEBUG=1`` to see one).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from parceler.errors import InputError, ParcelerError

app = typer.Typer(
    name="parceler",
    help="Divide-and-conquer batch processing of very many files on AWS serverless.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"parceler {version('parceler')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            metavar="",
            callback=_print_version,
            is_eager=True,
            help="print the version and exit",
        ),
    ] = False,
) -> None:
    """Divide-and-conquer batch processing of very many files on AWS serverless."""


def friendly_errors(command: F) -> F:
    """Turn parceler's typed errors into a message and an exit code (2 for bad input)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ParcelerError as exc:
            if os.environ.get("PARCELER_DEBUG"):
                raise
            kind = "bad input" if isinstance(exc, InputError) else "error"
            # soft_wrap: the terminal wraps, so paths and URIs stay whole for copy and paste.
            err_console.print(
                f"[bold red]parceler: {kind}:[/] {exc.problem}", highlight=False, soft_wrap=True
            )
            if exc.fix:
                err_console.print(f"[bold]fix:[/] {exc.fix}", highlight=False, soft_wrap=True)
            raise typer.Exit(2 if isinstance(exc, InputError) else 1) from None

    return wrapper  # type: ignore[return-value]


COMMAND_MODULES = {
    "plan": "plan",
    "run": "run",
    "redrive": "redrive",
    "worker": "worker",
    "status": "status",
    "report": "report",
    "logs": "logs",
    "cancel": "cancel",
    "spec-schema": "spec_schema",
    "local": "local",
}
"""Each command (or command group) and the module of ``parceler.cli`` that registers it."""


def _register_commands(argv: list[str] | None = None) -> None:
    """Register the command ``argv`` names (its module alone: ``parceler run`` need not
    import the planner's CLI, ~0.1 s), or every command (``--help``, no or unknown name)."""
    import importlib

    named = next((arg for arg in argv or [] if not arg.startswith("-")), None)
    modules = [COMMAND_MODULES[named]] if named in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in modules:
        importlib.import_module(f"parceler.cli.{module}").register(app)


def main() -> None:
    """Console-script entry point."""
    _register_commands(sys.argv[1:])
    try:
        app(prog_name="parceler")
    except SystemExit as done:
        _exit_without_teardown(done.code)
    _exit_without_teardown(0)


def _exit_without_teardown(code: int | str | None) -> NoReturn:
    """Flush and exit, skipping the interpreter's teardown of every module and object.

    After ``parceler run --local``, freeing moto's backends and botocore's models took
    ~0.9 s of a ~7 s command (``bench/results/local.md``). Commands close their files and
    stop their threads and processes before they return; atexit handlers still run.
    """
    if isinstance(code, str):  # sys.exit("message"): print it, exit 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
