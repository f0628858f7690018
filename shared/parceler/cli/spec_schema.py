"""``parceler spec-schema``: print the job spec's JSON Schema (for the console and editors)."""

from __future__ import annotations

import json

import typer

from parceler.spec import spec_json_schema


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""

    @app.command("spec-schema")
    def spec_schema() -> None:
        """Print the JSON Schema of a job spec."""
        typer.echo(json.dumps(spec_json_schema(), indent=2))
