"""Pure parts of the job runtime: routing, batches, backoff, messages, ledger values, status."""

from __future__ import annotations

import pytest

from parceler.aws.dynamodb_codec import from_attribute, to_attribute
from parceler.aws.ledger import group_from_item, job_from_item
from parceler.errors import MessageError
from parceler.messages import GroupMessage, encode
from parceler.planner import aggregation_batches, poll_interval, route
from parceler.spec import JobSpec
from parceler.worker import Delivery, retry_delay


def _spec(throughput: int = 100, lambda_max: float = 10) -> JobSpec:
    return JobSpec.model_validate(
        {
            "source": "s3://b/p/",
            "processor": {"name": "linecount"},
            "routing": {
                "throughput_bytes_per_second": throughput,
                "lambda_max_seconds": lambda_max,
            },
        }
    )


def test_route_sends_groups_over_the_lambda_limit_to_the_container() -> None:
    assert route(1000, _spec()) == (10.0, "lambda")  # exactly at the limit stays on Lambda
    assert route(1001, _spec()) == (10.01, "container")


def test_aggregation_batches_cover_every_group_once() -> None:
    batches = aggregation_batches("j", 101, 50)
    assert [(b.first_group, b.n_groups) for b in batches] == [(0, 50), (50, 50), (100, 1)]
    assert [b.batch_index for b in batches] == [0, 1, 2]
    assert aggregation_batches("j", 0) == []


def test_poll_interval_is_a_tenth_of_the_longest_group_within_1_to_60_s() -> None:
    assert poll_interval([]) == 1
    assert poll_interval([0.2, 3.0]) == 1
    assert poll_interval([45.0]) == 5
    assert poll_interval([1.0, 120.0]) == 12
    assert poll_interval([3600.0]) == 60


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(a, 10) for a in (1, 2, 3)] == [10, 20, 40]
    assert retry_delay(30, 10) == 900


def test_group_message_round_trip_and_rejection() -> None:
    message = GroupMessage(summary_uri="s3://w/jobs/j/groups/000001/manifest.json")
    body = encode(message)
    assert body == '{"schema_version":1,"summary_uri":"s3://w/jobs/j/groups/000001/manifest.json"}'
    assert GroupMessage.parse(body) == message
    for bad in ("{}", "not json", '{"schema_version":2,"summary_uri":"s3://x/m.json"}',
                '{"schema_version":1,"summary_uri":"s3://x/m.json","files":[]}'):  # fmt: skip
        with pytest.raises(MessageError):
            GroupMessage.parse(bad)


def test_delivery_delete_only_when_the_group_is_done_with() -> None:
    done = {"succeeded", "failed", "duplicate", "lost"}
    for status in (
        "succeeded",
        "failed",
        "duplicate",
        "lost",
        "busy",
        "retry",
        "rejected",
        "released",
    ):
        assert Delivery(status).delete is (status in done)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", [None, True, 0, -3, 2**40, 1.5, 1712345678.25, "x", {"a": [1, "b", None]}]
)
def test_ledger_values_round_trip(value: object) -> None:
    assert from_attribute(to_attribute(value)) == value


def test_items_parse_from_dynamodb_form() -> None:
    job = job_from_item({"pk": {"S": "job#j"}, "sk": {"S": "job"}, "status": {"S": "RUNNING"},
                             "n_groups": {"N": "3"}, "remaining": {"N": "1"}})  # fmt: skip
    assert (job.job_id, job.n_groups, job.remaining, job.n_succeeded) == ("j", 3, 1, 0)
    group = group_from_item({"pk": {"S": "job#j"}, "sk": {"S": "group#000012"},
                                 "status": {"S": "FAILED"}, "attempt": {"N": "2"}})  # fmt: skip
    assert (group.index, group.attempt, group.terminal) == (12, 2, True)
