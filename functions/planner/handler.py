"""Planner Lambda: ``plan`` (spec → plan, counts and URIs), ``write_slice`` (one slice's
group manifests, ledger items and messages; or a redrive slice's messages) or ``redrive``
(reset a finished job's unfinished groups)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.errors import SpecError
from parceler.planner import plan, redrive, write_slice
from parceler.settings import PlannerSettings
from parceler.spec import parse_spec


@functools.cache
def settings() -> PlannerSettings:
    """Parsed once per execution environment, on first use."""
    return PlannerSettings.from_env()


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict) or "job_id" not in event:
        raise SpecError("the planner needs an event {'action': ..., 'job_id': ..., ...}.")
    job_id = str(event["job_id"])  # the execution name: the state machine keys the ledger by it
    action = event.get("action", "plan")
    if action == "write_slice" and "slice" in event:
        number = int(event.get("redrive") or 0)
        n = write_slice(job_id, int(event["slice"]), settings(), redrive=number)
        return {"job_id": job_id, "slice": int(event["slice"]), "n_groups": n}
    if action == "redrive" and "execution" in event:
        return redrive(job_id, str(event["execution"]), settings()).to_json()
    if action != "plan" or "spec" not in event:
        raise SpecError(
            f"planner action {action!r} with keys {sorted(event)} is not understood.",
            "the state machine sends {'action': 'plan', 'job_id', 'spec'}, "
            "{'action': 'write_slice', 'job_id', 'slice', 'redrive'} or "
            "{'action': 'redrive', 'job_id', 'execution'}.",
        )
    spec = parse_spec(event["spec"])
    if spec.job_id is not None and spec.job_id != job_id:
        raise SpecError(
            f"the spec's job_id {spec.job_id!r} differs from the execution name {job_id!r}.",
            "name the execution after the job_id, or leave job_id out of the spec.",
        )
    return plan(spec, job_id, settings()).to_json()
