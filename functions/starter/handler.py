"""Starter Lambda: an S3 "Object Created" event → one job execution; duplicates dropped."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parceler.settings import StarterSettings
from parceler.starter import start


@functools.cache
def settings() -> StarterSettings:
    """Parsed once per execution environment, on first use."""
    return StarterSettings.from_env()


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return start(event, settings()).to_json()
