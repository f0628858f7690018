"""Alarms and a dashboard: dead letters, stuck queues, function errors, job executions."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

_PERIOD = Duration.minutes(1)


class Monitoring(Construct):
    """Alarms (exposed as ``alarms`` for the caller to route to SNS/chat) and a dashboard.

    * every dead-letter queue: ApproximateNumberOfMessagesVisible ≥ 1 — a poison group,
      or an undeliverable trigger event, needs a human;
    * every work queue: ApproximateAgeOfOldestMessage ≥ ``oldest_message_seconds`` —
      workers are not keeping up, or not running at all;
    * refused starts ≥ 1: a job file landed and no job started (a re-upload of a spec whose
      ``job_id`` already ran, or a key the starter is not configured for).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        work_queues: Mapping[str, sqs.IQueue],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        oldest_message_seconds: int,
        refused_starts: cloudwatch.IMetric,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, queue in dead_letter_queues.items():
            self.alarms.append(
                queue.metric_approximate_number_of_messages_visible(
                    period=_PERIOD, statistic="Maximum"
                ).create_alarm(
                    self,
                    f"{name}NotEmpty",
                    alarm_description=f"parceler: messages in the {name} dead-letter queue",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for name, queue in work_queues.items():
            self.alarms.append(
                queue.metric_approximate_age_of_oldest_message(
                    period=_PERIOD, statistic="Maximum"
                ).create_alarm(
                    self,
                    f"{name}OldestMessage",
                    alarm_description=(
                        f"parceler: the oldest {name} message waited over "
                        f"{oldest_message_seconds} s"
                    ),
                    threshold=oldest_message_seconds,
                    evaluation_periods=5,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                "RefusedStarts",
                metric=refused_starts,
                alarm_description="parceler: a job file landed but the starter refused it",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Work queue depth (visible / in flight)",
                left=[
                    metric
                    for queue in work_queues.values()
                    for metric in (
                        queue.metric_approximate_number_of_messages_visible(period=_PERIOD),
                        queue.metric_approximate_number_of_messages_not_visible(period=_PERIOD),
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues (visible)",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=_PERIOD)
                    for q in dead_letter_queues.values()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[fn.metric_errors(period=_PERIOD) for fn in functions.values()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration (p90)",
                left=[
                    fn.metric_duration(period=_PERIOD, statistic="p90") for fn in functions.values()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Job executions",
                left=[
                    state_machine.metric_started(period=_PERIOD),
                    state_machine.metric_succeeded(period=_PERIOD),
                    state_machine.metric_failed(period=_PERIOD),
                    state_machine.metric_timed_out(period=_PERIOD),
                ],
                width=24,
            ),
        )
