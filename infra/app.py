"""The CDK app entry point: ``python -m infra.app [-c parceler:key=value ...]`` or ``cdk synth``.

Run directly, it reads the ``context`` of ``cdk.json`` itself (the CDK CLI passes it in
``CDK_CONTEXT_JSON``, which still wins), so ``make synth`` and ``cdk synth`` agree.
cdk-nag's AWS Solutions checks run on every synth; an unacknowledged finding fails it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.parceler_construct import SourceLayout
from infra.stack import ParcelerStack

STACK_ID = "Parceler"
REPO_ROOT = Path(__file__).resolve().parent.parent


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    """The ``context`` object of ``cdk.json`` (empty if the file has none)."""
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context) if isinstance(context, dict) else {}


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    layout: SourceLayout | None = None,
) -> tuple[App, ParcelerStack]:
    """The app with the parceler stack and cdk-nag registered (not yet synthesized).

    Args:
        context: context on top of ``cdk.json``'s (e.g. ``{"parceler:bundle": False}``).
        outdir: the cloud assembly directory (default ``cdk.out`` or ``CDK_OUTDIR``).
        layout: source paths (default: this checkout).
    """
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    stack = ParcelerStack(
        app,
        STACK_ID,
        layout=layout,
        description="parceler: divide-and-conquer batch processing of many files",
    )
    register_checks(app)
    return app, stack


def register_checks(app: App) -> None:
    """Run cdk-nag's AWS Solutions pack at synth (cdk-nag 3: a validation plugin)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def _parse_context(pairs: Sequence[str]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-c expects key=value, got {pair!r}")
        context[key] = value
    return context


def main(argv: Sequence[str] | None = None) -> App:
    """Synthesize the app into ``cdk.out/`` (``--output``, or ``CDK_OUTDIR`` under the CLI)."""
    parser = argparse.ArgumentParser(prog="python -m infra.app", description=__doc__)
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="context value, as with `cdk synth -c` (e.g. -c parceler:bundle=false)",
    )
    parser.add_argument(
        "-o",
        "--output",
        # Outside the CDK CLI, App() would write to a temporary directory: say cdk.out.
        default=os.environ.get("CDK_OUTDIR") or "cdk.out",
        help="cloud assembly directory (default: $CDK_OUTDIR or ./cdk.out)",
    )
    args = parser.parse_args(argv)
    app, _ = build_app(context=_parse_context(args.context), outdir=args.output)
    app.synth()
    return app


if __name__ == "__main__":
    main(sys.argv[1:])
