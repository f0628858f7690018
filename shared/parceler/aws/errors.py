"""One mapping from botocore failures to parceler's typed errors, by error code and HTTP status.

Every adapter (S3 storage and listings, the DynamoDB ledger, SQS, Step Functions) calls
:func:`raise_mapped`; what differs between services is a row of :data:`SERVICES`, not code.
The order of the checks:

1. the service's own codes (S3 ``NoSuchKey`` → :class:`ObjectNotFoundError`, DynamoDB
   ``ResourceNotFoundException`` → :class:`LedgerError` naming the table setting, an SQS
   stale receipt handle → :class:`StaleReceiptError`, ...);
2. throttling and server codes (:data:`RETRYABLE_CODES`) and any HTTP 5xx →
   :class:`RetryableError`;
3. the service's HTTP statuses, for responses without a code (an S3 ``HEAD`` 404);
4. anything else → the service's permanent error (``StorageError``, ``LedgerError``, ...).

Missing credentials are permanent (the service's error, with the fix); any other
``BotoCoreError`` (a dropped connection, a read timeout) is retryable. Message text is
never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from parceler.errors import (
    ExecutionError,
    LedgerError,
    ObjectNotFoundError,
    ParcelerError,
    PermanentError,
    QueueError,
    RetryableError,
    StaleReceiptError,
    StorageError,
)

Service = Literal["s3", "dynamodb", "sqs", "stepfunctions"]

# Throttling and server-side codes of the services parceler calls; no code here means a
# permanent refusal in any of them, so one set serves all.
RETRYABLE_CODES = frozenset(
    {
        # shared
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "500",
        "503",
        # S3
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        # DynamoDB
        "ProvisionedThroughputExceededException",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
        # SQS
        "KmsThrottled",
        "KMS.ThrottlingException",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)


@dataclass(frozen=True, slots=True)
class Rule:
    """What one failure becomes: the error type, the problem after ``where:``, the fix."""

    error: type[ParcelerError]
    problem: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceErrors:
    """One service's row: its label in messages and its specific codes and statuses."""

    label: str
    refused: Rule  # any code not mapped otherwise
    codes: Mapping[str, Rule] = field(default_factory=dict)
    statuses: Mapping[int, Rule] = field(default_factory=dict)  # only when there is no code


_OBJECT_MISSING = Rule(
    ObjectNotFoundError,
    "object not found",
    "check the URI (and that the object was written before it is read).",
)
_STALE_RECEIPT = Rule(StaleReceiptError, "the receipt handle is no longer valid")

SERVICES: Mapping[Service, ServiceErrors] = {
    "s3": ServiceErrors(
        label="S3",
        refused=Rule(
            StorageError,
            "S3 refused the request",
            "check the bucket name, its region and this role's permissions.",
        ),
        codes={
            "NoSuchKey": _OBJECT_MISSING,
            "NotFound": _OBJECT_MISSING,
            "404": _OBJECT_MISSING,
            "NoSuchBucket": Rule(
                ObjectNotFoundError, "bucket not found", "check the bucket name in the URI."
            ),
        },
        statuses={404: _OBJECT_MISSING},
    ),
    "dynamodb": ServiceErrors(
        label="ledger",
        refused=Rule(LedgerError, "the table refused the request"),
        codes={
            "ResourceNotFoundException": Rule(
                LedgerError,
                "the table does not exist",
                "check PARCELER_LEDGER_TABLE (or --ledger-table) and the region.",
            )
        },
    ),
    "sqs": ServiceErrors(
        label="SQS",
        refused=Rule(QueueError, "SQS refused the request", "check the queue URL and permissions."),
        codes={
            "ReceiptHandleIsInvalid": _STALE_RECEIPT,
            "InvalidParameterValue": _STALE_RECEIPT,
            "AWS.SimpleQueueService.MessageNotInflight": _STALE_RECEIPT,
            "MessageNotInflight": _STALE_RECEIPT,
        },
    ),
    "stepfunctions": ServiceErrors(
        label="Step Functions",
        refused=Rule(ExecutionError, "Step Functions refused the request"),
        codes={
            "ExecutionAlreadyExists": Rule(
                ExecutionError,
                "an execution (a job) with this name already exists",
                "choose another --job-id, or follow it with `parceler status`.",
            )
        },
    ),
}


def error_code(exc: ClientError) -> str:
    """The service's error code of a ``ClientError`` ("" when it has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def raise_mapped(
    exc: BaseException,
    service: Service,
    action: str,
    target: str | None = None,
    *,
    refused: type[PermanentError] | None = None,
) -> NoReturn:
    """Re-raise a botocore failure as parceler's typed error, chained to the original.

    Args:
        exc: the caught exception; anything not from botocore is re-raised unchanged.
        service: the row of :data:`SERVICES` to apply.
        action: what was being done (``read``, ``GetItem(job)``, ``DeleteMessage``).
        target: what it was done to (a URI, a job id), named in the message.
        refused: raise this type instead of the row's for every permanent outcome (a
            source listing's refusal is bad input, a :class:`SourceError`).

    Raises:
        RetryableError: throttling, HTTP 5xx, a dropped connection or timeout.
        ParcelerError: the row's error for the code (permanent).
    """
    row = SERVICES[service]
    where = f"{row.label} {action}" + ("" if target is None else f" {target}")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        rule = row.codes.get(code)
        if rule is None and (code in RETRYABLE_CODES or status >= 500):
            rule = Rule(RetryableError, "the service is busy or failing")
        if rule is None and not code:
            rule = row.statuses.get(status)
        rule = rule or row.refused
        error = refused if refused is not None and not rule.error.retryable else rule.error
        raise error(f"{where}: {rule.problem} ({code or status}).", rule.fix) from exc
    if isinstance(exc, NoCredentialsError):
        raise (refused or row.refused.error)(
            f"{where}: no AWS credentials found.",
            "configure credentials, or use --local for the embedded emulator.",
        ) from exc
    if isinstance(exc, BotoCoreError):
        raise RetryableError(f"{where}: the connection failed ({type(exc).__name__}).") from exc
    raise exc
