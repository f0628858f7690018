"""Shared fixtures: one moto server per test process on loopback, reset per test.

A session-scoped server plus a reset per test is ~10x cheaper than ``mock_aws()`` per
test (docs/local-aws-facts.md). Unit tests never touch it; they run with the network off.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from parceler import aws

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto's server on a free loopback port for this test process."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_PORT": str(port),
        }
    )
    aws.reset_clients()
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.reset_clients()


_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "MOTO_PORT",
)


@pytest.fixture
def moto(moto_endpoint: str) -> Iterator[str]:
    """A clean emulated AWS account for one test: the server's state is reset first."""
    import urllib.request

    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    yield moto_endpoint


@pytest.fixture
def bucket(moto: str) -> str:
    """An empty S3 bucket in the emulated account."""
    name = "parceler-test"
    aws.client("s3").create_bucket(Bucket=name)
    return name


# Property tests assert behaviour, never speed: on a loaded 2-core machine a case can take
# longer than hypothesis's default 200 ms deadline without anything being wrong.
hypothesis_settings.register_profile("parceler", deadline=None)
hypothesis_settings.load_profile("parceler")


@pytest.fixture(autouse=True)
def _own_local_stack_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point `parceler local` state at a folder of this test's own, so no test ever runs on
    (or stops) a stack a developer started with `parceler local up`."""
    saved = os.environ.get("PARCELER_LOCAL_STATE_DIR")
    os.environ["PARCELER_LOCAL_STATE_DIR"] = str(tmp_path_factory.mktemp("local-state"))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PARCELER_LOCAL_STATE_DIR", None)
        else:
            os.environ["PARCELER_LOCAL_STATE_DIR"] = saved
