"""Cached boto3 clients that honour ``AWS_ENDPOINT_URL``: every AWS call starts here.

So moto on loopback, another emulator and real AWS are the same code path. boto3 itself
reads ``AWS_ENDPOINT_URL`` (and per-service ``AWS_ENDPOINT_URL_<SERVICE>``) and the region
from the environment.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(
    retries={"max_attempts": 8, "mode": "adaptive"},
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=70,  # above SQS's 20 s long poll and Step Functions' slow calls
)
_lock = threading.Lock()


@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
@overload
def client(service: Literal["lambda", "iam"]) -> Any: ...  # the local mode creates functions
def client(service: str) -> Any:
    """Return the process-wide client for ``service`` (thread-safe, created once).

    Clients are cached per process: call :func:`reset_clients` after changing
    ``AWS_ENDPOINT_URL`` or credentials (tests and the local mode do).
    """
    with _lock:
        return _cached_client(service)


@functools.cache
def _cached_client(service: str) -> Any:
    return _session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@functools.cache
def _session() -> boto3.session.Session:
    """The session every client is made from until :func:`reset_clients`.

    One session, not one per client: a botocore session caches the endpoint rules,
    partitions and credentials its clients share, and its data loader caches the parsed
    service models. A session per client read and parsed them again for each client
    (~40 ms each, the listing of ~400 model folders included), on every Lambda cold start.
    """
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    return boto3.session.Session(botocore_session=core)


@functools.cache
def _loader() -> Any:
    """The process's botocore data loader (the models on disk do not change while it runs,
    so it outlives :func:`reset_clients`)."""
    return botocore.session.get_session().get_component("data_loader")


def preload_models(services: tuple[str, ...]) -> None:
    """Parse the services' models and endpoint rules into the process's loader now, so the
    first client of each costs no parsing (a forked local worker does this while it waits
    for the stack, on the core the emulator's start leaves idle)."""
    loader = _loader()
    for service in services:
        for kind in ("service-2", "endpoint-rule-set-1"):
            loader.load_service_model(service, kind)


def reset_clients() -> None:
    """Forget cached clients (and their session, so credentials are read again) so the
    next call picks up the current environment."""
    with _lock:
        _cached_client.cache_clear()
        _session.cache_clear()
