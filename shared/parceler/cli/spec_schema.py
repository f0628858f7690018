"""``parceler spec-schema``: print the job spec's JSON Schema (for the console and editors)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from parceler.spec import spec_json_schema


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""

    @app.command("spec-schema")
    def spec_schema(
        pipeline: Annotated[
            bool,
            typer.Option("--pipeline", metavar="", help="the pipeline spec's schema (stages)"),
        ] = False,
    ) -> None:
        """Print the JSON Schema of a job spec (or, with --pipeline, of a pipeline spec)."""
        typer.echo(json.dumps(spec_json_schema(pipeline=pipeline), indent=2))
