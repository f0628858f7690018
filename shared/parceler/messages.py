"""The queue's vocabulary: the group message (its payload and encoding) and a received message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, ValidationError

from parceler.errors import MessageError
from parceler.models import Frozen


class GroupMessage(Frozen):
    """The whole SQS payload of one group: its manifest summary URI (never a file list)."""

    schema_version: Literal[1] = 1
    summary_uri: str = Field(min_length=1, pattern=r"\.json$")

    @classmethod
    def parse(cls, body: str) -> GroupMessage:
        """Parse a message body.

        Raises:
            MessageError: the body is not a valid ``GroupMessage``.
        """
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise MessageError(
                f"not a parceler group message: {body[:200]!r} ({exc.error_count()} error(s)).",
                "send {'schema_version': 1, 'summary_uri': 's3://…/manifest.json'}.",
            ) from exc


def encode(message: GroupMessage) -> str:
    """The JSON body of a message (compact, stable key order)."""
    return json.dumps(message.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One received message: its body, the handle that deletes it, and how often it came."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int
