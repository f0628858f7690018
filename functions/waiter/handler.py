"""Waiter Lambda: {job_id, task_token} → store the token, recount, signal if already done."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.errors import SpecError
from parceler.settings import WaiterSettings
from parceler.waiter import register


@functools.cache
def settings() -> WaiterSettings:
    """Parsed once per execution environment, on first use."""
    return WaiterSettings.from_env()


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict) or "job_id" not in event or "task_token" not in event:
        raise SpecError("the waiter needs an event {'job_id': ..., 'task_token': ...}.")
    return register(str(event["job_id"]), str(event["task_token"]), settings()).to_json()
