"""Synthesize the CDK app once per test session (bundling off) for the infra tests.

Tests skip with a message naming what is missing when a ``functions/<role>/`` folder is
absent. Under ``pytest -n`` the first worker synthesizes and the others wait for it. A
missing state machine definition is replaced by a tiny placeholder in a temp dir so
everything else is still checked; the state machine tests then skip.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_INPUT_BUCKET = "parceler-test-input"

#: Non-default values, so a test sees each setting travel from context to template.
TEST_CONTEXT: dict[str, Any] = {
    "parceler:bundle": False,
    "parceler:inputBuckets": [TEST_INPUT_BUCKET],
    "parceler:workerMaxConcurrency": 7,
    "parceler:workerTimeoutSeconds": 600,
    "parceler:maxReceiveCount": 4,
    "parceler:triggerPrefix": "incoming/",
    "parceler:triggerSuffix": "_SUCCESS",
    "parceler:containerMaxTasks": 6,
    "parceler:scratchExpirationDays": 21,
}

_PLACEHOLDER_ASL = {
    "Comment": "infra-test placeholder until shared/parceler/asl/job.asl.json exists",
    "StartAt": "Plan",
    "States": {
        "Plan": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${PlannerFunctionArn}", "Payload.$": "$"},
            "Next": "Aggregate",
        },
        "Aggregate": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${AggregatorFunctionArn}", "Payload.$": "$"},
            "End": True,
        },
    },
}


@dataclass(frozen=True)
class Synth:
    """One synthesized cloud assembly."""

    outdir: Path
    template_path: Path
    template: dict[str, Any]
    validation_plugins: tuple[str, ...]
    definition_file: Path
    definition_is_placeholder: bool

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == type_name
        }


def _synthesize(outdir: Path, asl_dir: Path) -> dict[str, Any]:
    """Synthesize into ``outdir``; return what the tests need besides the files."""
    from infra.app import build_app, main
    from infra.parceler_construct import SourceLayout

    layout = SourceLayout.of_repository()
    placeholder = not layout.definition_file.is_file()
    if placeholder:
        asl = asl_dir / "job.asl.json"
        asl.write_text(json.dumps(_PLACEHOLDER_ASL), encoding="utf-8")
        layout = SourceLayout(root=layout.root, definition_file_override=asl)
        app, _ = build_app(context=TEST_CONTEXT, outdir=str(outdir), layout=layout)
        app.synth()  # cdk-nag runs here: an unacknowledged finding raises.
    else:
        # The entry point `python -m infra.app` runs (cdk.json context, -c parsing, nag).
        argv = ["--output", str(outdir)]
        for key, value in TEST_CONTEXT.items():
            argv += ["-c", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
        app = main(argv)
    return {
        # Deprecated accessor, but the only one jsii exposes to Python for now.
        "validation_plugins": [plugin.name for plugin in app.policy_validation_beta1],
        "definition_file": str(layout.definition_file),
        "definition_is_placeholder": placeholder,
    }


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The synthesized app; under pytest-xdist the workers share one synth (file lock)."""
    from infra.app import STACK_ID
    from infra.parceler_construct import ROLES, SourceLayout

    layout = SourceLayout.of_repository()
    missing_functions = [
        layout.function_dir(role) / "handler.py"
        for role in ROLES
        if not (layout.function_dir(role) / "handler.py").is_file()
    ]
    if missing_functions:
        pytest.skip(
            "infra tests need every Lambda asset folder; missing: "
            + ", ".join(str(p.relative_to(REPO_ROOT)) for p in missing_functions)
        )
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # This run's base temp dir is shared by its workers (and by nothing else).
        shared = tmp_path_factory.getbasetemp().parent / "parceler-infra-synth"
    else:
        shared = tmp_path_factory.mktemp("parceler-infra-synth")
    shared.mkdir(exist_ok=True)
    outdir, info_path = shared / "cdk.out", shared / "synth-info.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not info_path.exists():
            outdir.mkdir(exist_ok=True)
            info = _synthesize(outdir, shared)
            info_path.write_text(json.dumps(info), encoding="utf-8")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    template_path = outdir / f"{STACK_ID}.template.json"
    return Synth(
        outdir=outdir,
        template_path=template_path,
        template=json.loads(template_path.read_text(encoding="utf-8")),
        validation_plugins=tuple(info["validation_plugins"]),
        definition_file=Path(info["definition_file"]),
        definition_is_placeholder=bool(info["definition_is_placeholder"]),
    )
