"""The AWS seam's clients: one session per environment, one model loader per process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parceler import aws


@pytest.fixture(autouse=True)
def _fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset_clients()
    yield
    aws.reset_clients()  # no later test gets a client made for this one's environment


def test_clients_of_different_services_share_the_parsed_models() -> None:
    s3, sqs = aws.client("s3"), aws.client("sqs")
    assert s3._loader is sqs._loader  # endpoints, partitions: read once, not per client


def test_a_reset_reads_the_environment_again_but_keeps_the_loader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = aws.client("s3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    aws.reset_clients()
    after = aws.client("s3")
    assert after is not before
    assert after.meta.endpoint_url == "http://127.0.0.1:1"
    assert after._loader is before._loader


def test_preloaded_models_are_parsed_in_the_loader_later_clients_use() -> None:
    aws.preload_models(("sqs",))
    loader = aws.client("sqs")._loader
    assert ("load_service_model", "sqs", "service-2") in loader._cache  # parsed before
    assert ("load_service_model", "sqs", "endpoint-rule-set-1") in loader._cache
