"""Settings are read once from an environment mapping; a missing variable is named."""

from __future__ import annotations

import pytest

from parceler.errors import SpecError
from parceler.settings import PlannerSettings, StarterSettings, WorkerSettings

ENV = {
    "PARCELER_LEDGER_TABLE": "ledger",
    "PARCELER_WORK_BUCKET": "work",
    "PARCELER_LAMBDA_QUEUE_URL": "http://q/lambda",
    "PARCELER_CONTAINER_QUEUE_URL": "http://q/container",
}


def test_settings_read_their_variables() -> None:
    settings = PlannerSettings.from_env(ENV)
    assert (settings.ledger_table, settings.work_bucket) == ("ledger", "work")
    assert settings.container_queue_url == "http://q/container"
    assert settings.ledger_retention_days == 90  # optional: the default when unset


def test_the_ledger_retention_is_read_and_must_be_positive() -> None:
    env = {**ENV, "PARCELER_LEDGER_RETENTION_DAYS": "7"}
    assert PlannerSettings.from_env(env).ledger_retention_days == 7
    with pytest.raises(SpecError, match="PARCELER_LEDGER_RETENTION_DAYS"):
        PlannerSettings.from_env({**ENV, "PARCELER_LEDGER_RETENTION_DAYS": "0"})


def test_each_role_names_exactly_what_it_reads() -> None:
    assert WorkerSettings.env_names() == {"PARCELER_LEDGER_TABLE", "PARCELER_WORK_BUCKET"}
    assert PlannerSettings.env_names() == {*ENV, "PARCELER_LEDGER_RETENTION_DAYS"}
    assert StarterSettings.env_names() == {
        "PARCELER_STATE_MACHINE_ARN",
        "PARCELER_TRIGGER_BUCKETS",
        "PARCELER_TRIGGER_PREFIX",
        "PARCELER_TRIGGER_SUFFIX",
    }


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(SpecError, match="PARCELER_WORK_BUCKET"):
        WorkerSettings.from_env({"PARCELER_LEDGER_TABLE": "ledger"})
