"""Aggregator Lambda: ``reduce_batch`` (one aggregation Map item) or ``finalize`` (the job)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.aggregator import finalize, prepare, reduce_batch
from parceler.errors import SpecError
from parceler.settings import AggregatorSettings


@functools.cache
def settings() -> AggregatorSettings:
    """Parsed once per execution environment, on first use."""
    return AggregatorSettings.from_env()


def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    action = event.get("action") if isinstance(event, dict) else None
    try:
        if action == "prepare":
            return prepare(str(event["job_id"]), settings()).to_json()
        if action == "reduce_batch":
            batch = event["batch"]
            uri = reduce_batch(
                str(event["job_id"]),
                int(batch["batch"]),
                int(batch["first_group"]),
                int(batch["n_groups"]),
                settings(),
            )
            return {"partial_uri": uri}
        if action == "finalize":
            return finalize(str(event["job_id"]), int(event["n_batches"]), settings()).to_json()
    except (KeyError, TypeError) as exc:
        raise SpecError(f"aggregator event for {action!r} lacks {exc}.") from exc
    raise SpecError(
        f"aggregator action {action!r} is not 'prepare', 'reduce_batch' or 'finalize'.",
        "the state machine sends {'action': 'prepare' | 'reduce_batch' | 'finalize', ...}.",
    )
