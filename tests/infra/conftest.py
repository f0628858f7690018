"""Synthesize the CDK app once per test session (bundling off) for the infra tests.

Under ``pytest -n`` the first worker synthesizes and the others wait for it. Nothing is
substituted or skipped: a missing handler or state machine definition fails the synth,
and so every infra test.
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
TEST_OUTPUT_LOCATION = "s3://parceler-test-output/results/"

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
    "parceler:outputLocations": [TEST_OUTPUT_LOCATION],
}


@dataclass(frozen=True)
class Synth:
    """One synthesized cloud assembly."""

    outdir: Path
    template_path: Path
    template: dict[str, Any]
    validation_plugins: tuple[str, ...]
    definition_file: Path

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == type_name
        }


def _synthesize(outdir: Path) -> dict[str, Any]:
    """Synthesize into ``outdir`` through the entry point ``python -m infra.app`` runs
    (cdk.json context, ``-c`` parsing, cdk-nag); return what the tests need besides files."""
    from infra.app import main
    from infra.parceler_construct import SourceLayout

    argv = ["--output", str(outdir)]
    for key, value in TEST_CONTEXT.items():
        argv += ["-c", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    app = main(argv)
    return {
        # Deprecated accessor, but the only one jsii exposes to Python for now.
        "validation_plugins": [plugin.name for plugin in app.policy_validation_beta1],
        "definition_file": str(SourceLayout.of_repository().definition_file),
    }


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The synthesized app; under pytest-xdist the workers share one synth (file lock)."""
    from infra.app import STACK_ID

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
            info = _synthesize(outdir)
            info_path.write_text(json.dumps(info), encoding="utf-8")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    template_path = outdir / f"{STACK_ID}.template.json"
    return Synth(
        outdir=outdir,
        template_path=template_path,
        template=json.loads(template_path.read_text(encoding="utf-8")),
        validation_plugins=tuple(info["validation_plugins"]),
        definition_file=Path(info["definition_file"]),
    )
