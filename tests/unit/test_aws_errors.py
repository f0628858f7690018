"""One error mapping for every adapter: botocore failures become typed errors by code."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from parceler.aws.errors import SERVICES, Service, raise_mapped
from parceler.errors import (
    ExecutionError,
    LedgerError,
    ObjectNotFoundError,
    ParcelerError,
    QueueError,
    RetryableError,
    SourceError,
    StaleReceiptError,
    StorageError,
)


def client_error(code: str, status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": "ignored"}, "ResponseMetadata": {}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "Op")  # type: ignore[arg-type]


def mapped(exc: BaseException, service: Service, **kwargs: object) -> ParcelerError:
    with pytest.raises(ParcelerError) as info:
        raise_mapped(exc, service, "Op", "target", **kwargs)  # type: ignore[arg-type]
    assert info.value.__cause__ is exc
    return info.value


@pytest.mark.parametrize(
    ("service", "code", "status", "error"),
    [
        ("s3", "NoSuchKey", 404, ObjectNotFoundError),
        ("s3", "NoSuchBucket", 404, ObjectNotFoundError),
        ("s3", "", 404, ObjectNotFoundError),  # a HEAD 404 carries no code
        ("s3", "AccessDenied", 403, StorageError),
        ("dynamodb", "ResourceNotFoundException", 400, LedgerError),
        ("dynamodb", "ValidationException", 400, LedgerError),
        ("sqs", "ReceiptHandleIsInvalid", 400, StaleReceiptError),
        ("sqs", "AWS.SimpleQueueService.NonExistentQueue", 400, QueueError),
        ("stepfunctions", "ExecutionAlreadyExists", 400, ExecutionError),
        ("stepfunctions", "InvalidArn", 400, ExecutionError),
    ],
)
def test_codes_map_to_the_services_typed_errors(
    service: Service, code: str, status: int, error: type[ParcelerError]
) -> None:
    raised = mapped(client_error(code, status), service)
    assert type(raised) is error and not raised.retryable
    assert raised.problem.startswith(f"{SERVICES[service].label} Op target: ")


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("SlowDown", 503), ("WhateverNew", 500), ("", 502)],
)
def test_throttling_and_server_errors_are_retryable_everywhere(
    service: Service, code: str, status: int
) -> None:
    assert type(mapped(client_error(code, status), service)) is RetryableError


def test_the_missing_table_names_the_setting_to_fix() -> None:
    raised = mapped(client_error("ResourceNotFoundException"), "dynamodb")
    assert raised.fix is not None and "PARCELER_LEDGER_TABLE" in raised.fix


def test_a_dropped_connection_is_retryable_and_missing_credentials_are_not() -> None:
    dropped = mapped(EndpointConnectionError(endpoint_url="http://x"), "sqs")
    assert type(dropped) is RetryableError
    for service, error in [("s3", StorageError), ("dynamodb", LedgerError), ("sqs", QueueError)]:
        raised = mapped(NoCredentialsError(), service)  # type: ignore[arg-type]
        assert type(raised) is error and raised.fix is not None and "--local" in raised.fix


def test_refused_overrides_only_permanent_outcomes() -> None:
    assert type(mapped(client_error("NoSuchBucket"), "s3", refused=SourceError)) is SourceError
    assert type(mapped(client_error("SlowDown", 503), "s3", refused=SourceError)) is RetryableError


def test_anything_not_from_botocore_passes_through_unchanged() -> None:
    original = KeyError("x")
    with pytest.raises(KeyError) as info:
        raise_mapped(original, "s3", "read")
    assert info.value is original
