"""``parceler CMD`` imports and registers CMD's module alone; anything else registers all."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import typer

from parceler.cli import COMMAND_MODULES


def _names(app: typer.Typer) -> set[str]:
    commands = {c.name for c in app.registered_commands}
    groups = {g.name or (g.typer_instance.info.name if g.typer_instance else None)
              for g in app.registered_groups}  # fmt: skip
    return {str(n) for n in commands | groups if n}


def test_each_command_name_leads_to_the_module_that_registers_it() -> None:
    registered: dict[str, str] = {}
    for module in set(COMMAND_MODULES.values()):
        app = typer.Typer()
        importlib.import_module(f"parceler.cli.{module}").register(app)
        registered.update(dict.fromkeys(_names(app), module))

    assert registered == COMMAND_MODULES


def _listed_and_imported(*argv: str) -> tuple[list[str], list[str]]:
    """The commands registered and the command modules imported for ``argv``, in a fresh
    interpreter (imports are per process)."""
    probe = (
        "import json, sys; from parceler import cli; cli._register_commands(sys.argv[1:]); "
        "print(json.dumps(sorted(c.name for c in cli.app.registered_commands))); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('parceler.cli.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True
    )
    listed, imported = done.stdout.splitlines()
    return json.loads(listed), json.loads(imported)


def test_a_named_command_imports_its_module_only() -> None:
    listed, imported = _listed_and_imported("run", "DIR", "--local")

    assert listed == ["run"]
    assert "parceler.cli.plan" not in imported


def test_help_or_an_unknown_name_registers_every_command() -> None:
    for argv in ((), ("--help",), ("no-such-command",)):
        listed, _ = _listed_and_imported(*argv)
        assert set(listed) == set(COMMAND_MODULES) - {"local"}, argv
