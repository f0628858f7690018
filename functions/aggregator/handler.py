"""Aggregator Lambda: ``reduce_batch`` (one aggregation Map item) or ``finalize`` (the job)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.aggregator import finalize, reduce_batch
from parceler.errors import SpecError
from parceler.settings import AggregatorSettings


@functools.cache
def settings() -> AggregatorSettings:
    """Parsed once per execution environment, on first use."""
    return AggregatorSettings.from_env()


def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    action = event.get("action") if isinstance(event, dict) else None
    try:
        if action == "reduce_batch":
            return reduce_batch(
                str(event["job_id"]),
                int(event["batch_index"]),
                int(event["first_group"]),
                int(event["n_groups"]),
                settings(),
            )
        if action == "finalize":
            return finalize(str(event["job_id"]), list(event["partials"]), settings()).to_json()
    except KeyError as exc:
        raise SpecError(f"aggregator event for {action!r} lacks {exc}.") from exc
    raise SpecError(
        f"aggregator action {action!r} is not 'reduce_batch' or 'finalize'.",
        "the state machine sends {'action': 'reduce_batch' | 'finalize', ...}.",
    )
