"""Pure parts of the job runtime: routing, batches, backoff, messages, ledger values, status."""

from __future__ import annotations

import pytest

from parceler.aggregator import aggregation_batches
from parceler.aws.completion import progress_of
from parceler.aws.dynamodb_codec import from_attribute, to_attribute
from parceler.aws.ledger import group_from_item, group_key, job_from_item, shards_for
from parceler.errors import MessageError
from parceler.messages import GroupMessage, encode
from parceler.planner import recheck_interval, route
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
    batches = aggregation_batches(101, 50)
    assert [(b["first_group"], b["n_groups"]) for b in batches] == [(0, 50), (50, 50), (100, 1)]
    assert [b["batch"] for b in batches] == [0, 1, 2]
    assert aggregation_batches(0) == []


def test_recheck_is_three_times_the_longest_group_within_a_minute_to_an_hour() -> None:
    assert recheck_interval([]) == 60
    assert recheck_interval([0.2, 3.0]) == 60
    assert recheck_interval([45.0]) == 135
    assert recheck_interval([1.0, 7200.0]) == 3600
    assert recheck_interval([7200.0], override=5) == 5


def test_shards_grow_with_groups_up_to_256_and_spread_consecutive_groups() -> None:
    assert [shards_for(n) for n in (1, 250, 251, 58_052, 580_000)] == [1, 1, 2, 233, 256]
    keys = {group_key("j", g, 4)["pk"]["S"] for g in range(8)}
    assert keys == {"job#j#000", "job#j#001", "job#j#002", "job#j#003"}


def test_progress_is_complete_only_when_every_shard_of_a_recorded_plan_is_done() -> None:
    assert not progress_of("j", {"n_shards": 2, "done_shards": [0]}).complete  # no plan yet
    assert not progress_of("j", {"n_groups": 5, "n_shards": 2, "done_shards": [0]}).complete
    done = progress_of(
        "j", {"n_groups": 5, "n_shards": 2, "done_shards": [0, 1], "wait_token": "t"}
    )
    assert done.complete and done.task_token == "t"


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
    # A delivery replaced by a fresh copy (busy, released) is done with too.
    assert Delivery("busy", requeued=True).delete


@pytest.mark.parametrize(
    "value", [None, True, 0, -3, 2**40, 1.5, 1712345678.25, "x", {"a": [1, "b", None]}]
)
def test_ledger_values_round_trip(value: object) -> None:
    assert from_attribute(to_attribute(value)) == value


def test_items_parse_from_dynamodb_form() -> None:
    job = job_from_item({"pk": {"S": "job#j"}, "sk": {"S": "job"}, "status": {"S": "RUNNING"},
                         "n_groups": {"N": "3"}, "n_shards": {"N": "2"}},
                        [{"remaining": {"N": "1"}, "n_succeeded": {"N": "1"}},
                         {"remaining": {"N": "0"}, "n_failed": {"N": "1"}}])  # fmt: skip
    assert (job.job_id, job.n_groups, job.remaining, job.n_succeeded) == ("j", 3, 1, 1)
    assert (job.n_failed, job.n_shards) == (1, 2)
    group = group_from_item({"pk": {"S": "job#j#001"}, "sk": {"S": "group#000012"},
                                 "status": {"S": "FAILED"}, "attempt": {"N": "2"}})  # fmt: skip
    assert (group.index, group.attempt, group.terminal) == (12, 2, True)
