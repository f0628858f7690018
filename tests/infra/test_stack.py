"""Properties of the synthesized parceler stack (CDK assertions, cdk-nag, cfn-lint)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Capture, Match, Template

from tests.infra.conftest import (
    REPO_ROOT,
    TEST_CONTEXT,
    TEST_INPUT_BUCKET,
    TEST_OUTPUT_LOCATION,
    Synth,
)

pytestmark = pytest.mark.infra

WORKER_TIMEOUT = TEST_CONTEXT["parceler:workerTimeoutSeconds"]
SECURE_TRANSPORT_DENY = Match.object_like(
    {
        "Effect": "Deny",
        "Action": Match.any_value(),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
)


@pytest.fixture(scope="module")
def template(synth: Synth) -> Template:
    return Template.from_json(synth.template)


def _function_by_role(synth: Synth, role: str) -> tuple[str, dict[str, Any]]:
    """The Lambda function whose POWERTOOLS_SERVICE_NAME is ``parceler-<role>``."""
    for logical_id, resource in synth.resources("AWS::Lambda::Function").items():
        env = resource["Properties"].get("Environment", {}).get("Variables", {})
        if env.get("POWERTOOLS_SERVICE_NAME") == f"parceler-{role}":
            return logical_id, resource["Properties"]
    raise AssertionError(f"no function for role {role!r} in the template")


def _getatt_id(value: Any) -> str:
    """The logical id of ``{"Fn::GetAtt": [id, ...]}`` or ``{"Ref": id}``."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise AssertionError(f"not a reference: {value!r}")


def _statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in synth.template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            found += [(logical_id, s) for s in document["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- queues ---------------------------------------------------------------------------


#: SQS's maximum retention, 14 days: a long job's last groups wait that long in the queue.
SQS_MAX_RETENTION_SECONDS = 1_209_600


def test_work_queues_and_their_dlqs_keep_messages_14_days(synth: Synth, template: Template) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"RedrivePolicy": {"maxReceiveCount": TEST_CONTEXT["parceler:maxReceiveCount"]}},
    )
    queues = synth.resources("AWS::SQS::Queue")
    redriven = {k: q for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    assert len(redriven) == 2, "the Lambda queue and the container queue each have a DLQ"
    for queue in redriven.values():
        policy = queue["Properties"]["RedrivePolicy"]
        assert policy["maxReceiveCount"] == TEST_CONTEXT["parceler:maxReceiveCount"]
        assert queue["Properties"]["MessageRetentionPeriod"] == SQS_MAX_RETENTION_SECONDS
        dlq = queues[_getatt_id(policy["deadLetterTargetArn"])]["Properties"]
        assert dlq["MessageRetentionPeriod"] == SQS_MAX_RETENTION_SECONDS
    assert {q["Properties"].get("MessageRetentionPeriod") for q in queues.values()} == {
        SQS_MAX_RETENTION_SECONDS
    }, "every queue, the trigger DLQ too"


def test_every_queue_is_encrypted_and_tls_only(synth: Synth) -> None:
    queues = synth.resources("AWS::SQS::Queue")
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
    tls_only: set[str] = set()
    for policy in synth.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            tls_only |= {_getatt_id(q) for q in policy["Properties"]["Queues"]}
    assert tls_only == set(queues), f"queues without a TLS-only policy: {set(queues) - tls_only}"


def test_lambda_queue_visibility_is_at_least_six_worker_timeouts(synth: Synth) -> None:
    worker_id, worker = _function_by_role(synth, "worker")
    assert worker["Timeout"] == WORKER_TIMEOUT
    mappings = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": worker_id}
    ]
    assert len(mappings) == 1
    queue = synth.resources("AWS::SQS::Queue")[_getatt_id(mappings[0]["EventSourceArn"])]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * worker["Timeout"]


def test_container_queue_visibility_outlasts_any_lambda_group(synth: Synth) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    queue = synth.resources("AWS::SQS::Queue")[_getatt_id(env["PARCELER_CONTAINER_QUEUE_URL"])]
    # Longer than Lambda's 15-minute cap; the runner's heartbeat extends it further.
    assert queue["Properties"]["VisibilityTimeout"] >= 3600
    assert "RedrivePolicy" in queue["Properties"]


# --- event sources ----------------------------------------------------------------------


def test_worker_event_source_reports_partial_failures_with_bounded_concurrency(
    synth: Synth, template: Template
) -> None:
    worker_id, _ = _function_by_role(synth, "worker")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": worker_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": TEST_CONTEXT["parceler:workerMaxConcurrency"]},
            "BatchSize": Match.any_value(),
        },
    )
    batch = Capture()
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"FunctionName": {"Ref": worker_id}, "BatchSize": batch}
    )
    assert 1 <= batch.as_number() <= 5


def test_dead_letter_function_consumes_both_dlqs_with_partial_failures(synth: Synth) -> None:
    dead_letter_id, _ = _function_by_role(synth, "dead_letter")
    queues = synth.resources("AWS::SQS::Queue")
    dlq_ids = {
        _getatt_id(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    sources = {
        _getatt_id(m["Properties"]["EventSourceArn"]): m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": dead_letter_id}
    }
    assert set(sources) == dlq_ids
    for mapping in sources.values():
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    _, dead_letter = _function_by_role(synth, "dead_letter")
    for dlq_id in dlq_ids:
        visibility = queues[dlq_id]["Properties"]["VisibilityTimeout"]
        assert visibility >= 6 * dead_letter["Timeout"], dlq_id


# --- storage --------------------------------------------------------------------------


def test_ledger_table_keys_billing_pitr_ttl_encryption(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ]
            ),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def _work_bucket(synth: Synth) -> tuple[str, dict[str, Any]]:
    buckets = {
        k: b["Properties"]
        for k, b in synth.resources("AWS::S3::Bucket").items()
        if "LoggingConfiguration" in b["Properties"]
    }
    assert len(buckets) == 1, "exactly one bucket (the work bucket) logs its access"
    return next(iter(buckets.items()))


def test_work_bucket_is_private_encrypted_logged_and_expires_scratch(synth: Synth) -> None:
    logical_id, bucket = _work_bucket(synth)
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    log_bucket = _getatt_id(bucket["LoggingConfiguration"]["DestinationBucketName"])
    assert log_bucket in synth.resources("AWS::S3::Bucket") and log_bucket != logical_id
    rules = bucket["LifecycleConfiguration"]["Rules"]
    scratch = [r for r in rules if r.get("Prefix") == "jobs/"]
    assert [r["ExpirationInDays"] for r in scratch] == [
        TEST_CONTEXT["parceler:scratchExpirationDays"]
    ]
    aborts = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in aborts] == [1]
    assert "Prefix" not in aborts[0], "multipart uploads are aborted bucket-wide"


def test_every_bucket_denies_plain_http(synth: Synth, template: Template) -> None:
    tls_only = set()
    for policy in synth.resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            tls_only.add(_getatt_id(policy["Properties"]["Bucket"]))
    assert tls_only == set(synth.resources("AWS::S3::Bucket"))
    work_bucket_id, _ = _work_bucket(synth)
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": work_bucket_id},
            "PolicyDocument": {"Statement": Match.array_with([SECURE_TRANSPORT_DENY])},
        },
    )


def test_work_bucket_sends_events_to_eventbridge(synth: Synth, template: Template) -> None:
    work_bucket_id, _ = _work_bucket(synth)
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": {"Ref": work_bucket_id},
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )


# --- trigger ----------------------------------------------------------------------------


def test_trigger_rule_matches_object_created_under_prefix_and_suffix(
    synth: Synth, template: Template
) -> None:
    work_bucket_id, _ = _work_bucket(synth)
    starter_id, _ = _function_by_role(synth, "starter")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [{"Ref": work_bucket_id}, TEST_INPUT_BUCKET]},
                    "object": {"key": [{"wildcard": "incoming/*_SUCCESS"}]},
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [starter_id, "Arn"]},
                        "DeadLetterConfig": Match.any_value(),
                    }
                )
            ],
        },
    )


def test_key_wildcard_escapes_literal_stars() -> None:
    from infra.triggers import key_wildcard

    assert key_wildcard("jobs/", ".job.json") == "jobs/*.job.json"
    assert key_wildcard("a*b/", "_SUCCESS") == "a\\*b/*_SUCCESS"


# --- functions ------------------------------------------------------------------------


def _settings_models() -> dict[str, type[Any]]:
    from parceler import settings

    return {
        "planner": settings.PlannerSettings,
        "worker": settings.WorkerSettings,
        "aggregator": settings.AggregatorSettings,
        "dead_letter": settings.DeadLetterSettings,
        "starter": settings.StarterSettings,
    }


@pytest.mark.parametrize("role", ["planner", "worker", "aggregator", "dead_letter", "starter"])
def test_function_environment_is_exactly_its_settings_model(synth: Synth, role: str) -> None:
    _, function = _function_by_role(synth, role)
    env = function["Environment"]["Variables"]
    names = {name for name in env if not name.startswith("POWERTOOLS_")}
    assert names == set(_settings_models()[role].env_names())
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Parceler"


def test_starter_is_configured_with_the_rules_buckets_prefix_and_suffix(synth: Synth) -> None:
    work_bucket_id, _ = _work_bucket(synth)
    _, function = _function_by_role(synth, "starter")
    env = function["Environment"]["Variables"]
    assert env["PARCELER_TRIGGER_PREFIX"] == TEST_CONTEXT["parceler:triggerPrefix"]
    assert env["PARCELER_TRIGGER_SUFFIX"] == TEST_CONTEXT["parceler:triggerSuffix"]
    assert _render(env["PARCELER_TRIGGER_BUCKETS"]) == f"<{work_bucket_id}>,{TEST_INPUT_BUCKET}"


@pytest.mark.parametrize("role", ["planner", "worker", "aggregator", "dead_letter", "starter"])
def test_functions_are_python312_traced_with_the_layer(synth: Synth, role: str) -> None:
    _, function = _function_by_role(synth, role)
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "handler.handler"
    assert function["TracingConfig"] == {"Mode": "Active"}
    layers = synth.resources("AWS::Lambda::LayerVersion")
    layer_ids = {_getatt_id(layer) for layer in function["Layers"]}
    assert layer_ids & set(layers), "every function carries the parceler layer"
    for layer_id in layer_ids:
        assert (
            layers[layer_id]["Properties"]["CompatibleArchitectures"] == function["Architectures"]
        )


# --- container workers ------------------------------------------------------------------


def test_container_worker_env_stop_timeout_and_scale_to_zero(synth: Synth) -> None:
    from parceler import settings

    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    env = {item["Name"] for item in container["Environment"]}
    assert env == set(settings.WorkerSettings.env_names()) | {"PARCELER_CONTAINER_QUEUE_URL"}
    assert container["StopTimeout"] == 120
    assert task["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "X86_64"

    (target,) = synth.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] == 0
    assert target["Properties"]["MaxCapacity"] == TEST_CONTEXT["parceler:containerMaxTasks"]
    policies = [
        p["Properties"]["StepScalingPolicyConfiguration"]
        for p in synth.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    adjustments = [s["ScalingAdjustment"] for p in policies for s in p["StepAdjustments"]]
    assert {p["AdjustmentType"] for p in policies} == {"ExactCapacity"}
    assert min(adjustments) == 0, "an empty backlog scales to zero tasks"
    assert max(adjustments) == TEST_CONTEXT["parceler:containerMaxTasks"]


def test_backlog_steps_never_undershoot_the_backlog() -> None:
    from infra.container_workers import backlog_steps

    steps = backlog_steps(6)
    # Interval [lower, next lower) maps to change; the backlog at the interval's top must fit.
    lowers = [s.lower for s in steps[1:]]
    for step, upper in zip(steps[1:], [*lowers[1:], None], strict=True):
        top = (upper - 1) if upper is not None else 10**6
        assert step.change >= min(top, 6), (step.lower, step.change)
    assert steps[0].upper == 0 and steps[0].change == 0
    assert steps[-1].change == 6


def test_container_service_has_no_inbound_access(synth: Synth) -> None:
    for group in synth.resources("AWS::EC2::SecurityGroup").values():
        assert not group["Properties"].get("SecurityGroupIngress")
    assert not synth.resources("AWS::EC2::NatGateway"), "no NAT gateway (cost)"


# --- least privilege ---------------------------------------------------------------------


def test_no_wildcard_service_actions(synth: Synth) -> None:
    for logical_id, statement in _statements(synth):
        for action in _as_list(statement.get("Action", [])):
            assert action != "*" and not action.endswith(":*"), (logical_id, action)


#: The only actions allowed on Resource "*": AWS offers no resource-level permission.
_RESOURCE_STAR_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "ecr:GetAuthorizationToken",
}


def test_resource_star_only_for_actions_without_resource_scoping(synth: Synth) -> None:
    for logical_id, statement in _statements(synth):
        if "*" in _as_list(statement.get("Resource", [])):
            actions = set(_as_list(statement["Action"]))
            assert actions <= _RESOURCE_STAR_ACTIONS, (logical_id, actions)


def test_input_bucket_grants_are_read_only(synth: Synth) -> None:
    found = 0
    for logical_id, statement in _statements(synth):
        if statement["Effect"] != "Allow":
            continue
        if TEST_INPUT_BUCKET not in json.dumps(statement.get("Resource")):
            continue
        found += 1
        for action in _as_list(statement["Action"]):
            verb = action.split(":", 1)[1]
            assert verb.startswith(("Get", "List")), (logical_id, action)
    assert found, "the input bucket is granted to someone"


# --- state machine -------------------------------------------------------------------


def test_state_machine_from_the_asl_file_logged_traced_and_granted(
    synth: Synth, template: Template
) -> None:
    from infra.job_state_machine import definition_placeholders

    planner_id, _ = _function_by_role(synth, "planner")
    aggregator_id, _ = _function_by_role(synth, "aggregator")
    waiter_id, _ = _function_by_role(synth, "waiter")
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert set(props["DefinitionSubstitutions"]) >= definition_placeholders(synth.definition_file)
    logging_config = props["LoggingConfiguration"]
    assert (logging_config["Level"], logging_config["IncludeExecutionData"]) == ("ERROR", False)
    assert props["TracingConfiguration"] == {"Enabled": True}
    role_id = _getatt_id(props["RoleArn"])
    statements = [
        s
        for _, p in synth.resources("AWS::IAM::Policy").items()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    invoked = {
        _getatt_id(r)
        for s in statements
        if "lambda:InvokeFunction" in _as_list(s["Action"])
        for r in _as_list(s["Resource"])
        if isinstance(r, dict) and "Fn::GetAtt" in r
    }
    assert invoked == {planner_id, aggregator_id, waiter_id}
    ledger_actions = {
        a for s in statements for a in _as_list(s["Action"]) if a.startswith("dynamodb:")
    }
    assert ledger_actions == {"dynamodb:UpdateItem"}  # RecordFailure; the waiter does the rest
    # The Distributed Maps: read item files in the work area, run their own child executions.
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert {"s3:GetObject", "states:StartExecution", "states:DescribeExecution",
            "states:StopExecution"} <= actions  # fmt: skip
    assert not any(a.endswith(":*") for a in actions)


# --- monitoring -------------------------------------------------------------------------


def test_alarms_on_every_dlq_and_oldest_message(synth: Synth) -> None:
    alarms = [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]
    queues = synth.resources("AWS::SQS::Queue")
    work = {k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}

    def alarmed(metric: str) -> set[str]:
        return {
            _getatt_id(dim["Value"])
            for a in alarms
            if a.get("MetricName") == metric
            for dim in a.get("Dimensions", [])
        }

    not_empty = {
        _getatt_id(dim["Value"])
        for a in alarms
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible" and a["Threshold"] == 1
        for dim in a.get("Dimensions", [])
    }
    assert not_empty == set(queues) - work, "every DLQ (and only DLQs) alarms when not empty"
    assert alarmed("ApproximateAgeOfOldestMessage") == work
    assert synth.resources("AWS::CloudWatch::Dashboard")


# --- whole-template checks --------------------------------------------------------------


def test_cdk_nag_is_registered_on_the_app(synth: Synth) -> None:
    # The session synth succeeded with it registered: nothing is left unacknowledged.
    assert synth.validation_plugins == ("AwsSolutions",)
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert report["pluginReports"] == []


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from aws_cdk import Stack
    from aws_cdk import aws_sqs as sqs

    from infra.app import register_checks

    app = App(outdir=str(tmp_path_factory.mktemp("nag-negative")))
    sqs.Queue(Stack(app, "Plain"), "NoDlqNoTls")
    register_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def test_cfn_lint_passes(synth: Synth) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert cfn_lint.exists(), f"{cfn_lint} is missing: it is a dev dependency (make install)"
    result = subprocess.run(
        [str(cfn_lint), "--ignore-checks", "W3005", "--", str(synth.template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stack_is_environment_agnostic(synth: Synth) -> None:
    text = json.dumps(synth.template)
    assert "123456789012" not in text
    manifest = json.loads((synth.outdir / "manifest.json").read_text(encoding="utf-8"))
    stack = manifest["artifacts"]["Parceler"]
    assert stack["environment"] == "aws://unknown-account/unknown-region"


# --- layer staging (no synth) -----------------------------------------------------------


def test_layer_requirements_leave_out_what_lambda_does_not_import() -> None:
    from infra.layer import runtime_requirements

    names = {
        r.split(">")[0].split("=")[0].split("[")[0].strip().lower()
        for r in runtime_requirements(REPO_ROOT / "pyproject.toml")
    }
    assert {"pydantic", "pyarrow", "aws-lambda-powertools"} <= names
    assert not names & {"boto3", "moto", "typer", "rich", "aws-cdk-lib"}


def test_prune_removes_flight_and_tests_but_keeps_what_is_imported(tmp_path: Path) -> None:
    from infra.layer import prune

    keep = [
        "pyarrow/lib.cpython-312-x86_64-linux-gnu.so",
        "pyarrow/parquet/core.py",
        "pyarrow/libarrow_s3.so.2600",
        "numpy/_core/multiarray.py",
        "pydantic/main.py",
    ]
    drop = [
        "pyarrow/libarrow_flight.so.2600",
        "pyarrow/_flight.cpython-312-x86_64-linux-gnu.so",
        "pyarrow/include/arrow/api.h",
        "pyarrow/tests/test_io.py",
        "numpy/_core/tests/test_umath.py",
        "bin/f2py",
        "pydantic/__pycache__/main.pyc",
    ]
    for name in keep + drop:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    prune(tmp_path)
    assert [n for n in keep if not (tmp_path / n).exists()] == []
    assert [n for n in drop if (tmp_path / n).exists()] == []


def test_entry_point_defaults_to_cdk_out_and_reads_cdk_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import infra.app

    captured: dict[str, Any] = {}

    def fake_build_app(**kwargs: Any) -> tuple[Any, None]:
        captured.update(kwargs)

        class _App:
            def synth(self) -> None:
                captured["synthesized"] = True

        return _App(), None

    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    monkeypatch.setattr(infra.app, "build_app", fake_build_app)
    # The default is read when main() builds its parser, after the env var is gone.
    infra.app.main(["-c", "parceler:bundle=false"])
    assert captured == {
        "context": {"parceler:bundle": "false"},
        "outdir": "cdk.out",
        "synthesized": True,
    }
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    assert cdk_json["app"] == "python -m infra.app"
    assert infra.app.cdk_json_context()["parceler:bundle"] is True


# --- settings ---------------------------------------------------------------------------


def test_settings_decode_command_line_strings_and_reject_unknown_keys() -> None:
    from infra.settings import ParcelerSettings

    app = App(
        context={
            "parceler:workerMaxConcurrency": "7",
            "parceler:bundle": "false",
            "parceler:triggerPrefix": "2024/",
            "parceler:inputBuckets": "raw-a, raw-b",
        }
    )
    settings = ParcelerSettings.from_context(app.node)
    assert settings.worker_max_concurrency == 7
    assert settings.bundle is False
    assert settings.trigger_prefix == "2024/"
    assert settings.input_buckets == ("raw-a", "raw-b")
    assert settings.max_receive_count == 3 and settings.scratch_expiration_days == 30

    with pytest.raises(ValueError, match="parceler:workerMaxConcurency"):
        ParcelerSettings.from_context(App(context={"parceler:workerMaxConcurency": 5}).node)
    with pytest.raises(ValueError, match="invalid parceler context"):
        ParcelerSettings.from_context(App(context={"parceler:containerCpu": 300}).node)
    with pytest.raises(ValueError, match="parceler's own files"):
        ParcelerSettings.from_context(App(context={"parceler:triggerSuffix": ".json"}).node)


# --- triggers cannot be written; each role gets what its code touches (issue 11) --------


def _render(value: Any) -> str:
    """A policy value as a string, tokens as cdk-nag prints them (``<Id>``, ``<Id.Arn>``)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    raise AssertionError(f"cannot render {value!r}")


def _role_statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role ``role_id``."""
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _function_role(synth: Synth, role: str) -> str:
    _, function = _function_by_role(synth, role)
    return _getatt_id(function["Role"])


def _task_role(synth: Synth) -> str:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    return _getatt_id(task["Properties"]["TaskRoleArn"])


def _allowed(statements: list[dict[str, Any]], service: str) -> dict[str, set[str]]:
    """Allowed ``service`` actions → the rendered resources they are allowed on."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            if action.startswith(f"{service}:"):
                resources = {_render(r) for r in _as_list(statement["Resource"])}
                found.setdefault(action, set()).update(resources)
    return found


def _watched_objects(synth: Synth) -> dict[str, str]:
    """Rendered object-ARN stem of each bucket the trigger watches → its name."""
    work_bucket_id, _ = _work_bucket(synth)
    return {
        f"<{work_bucket_id}.Arn>/": "work bucket",
        f"arn:<AWS::Partition>:s3:::{TEST_INPUT_BUCKET}/": TEST_INPUT_BUCKET,
    }


#: Actions that create or replace an object (or every action, by wildcard).
_OBJECT_WRITES = ("s3:PutObject", "s3:Put*", "s3:*", "*")


def test_no_role_may_write_a_key_the_trigger_watches(synth: Synth) -> None:
    # IAM's "*" matches any characters, "/" too: a write pattern can reach a trigger key only
    # if its literal part (before the first "*") and the trigger prefix are prefix-related.
    trigger_prefix = TEST_CONTEXT["parceler:triggerPrefix"]
    checked = 0
    for logical_id, statement in _statements(synth):
        if statement["Effect"] != "Allow":
            continue
        if not set(_as_list(statement["Action"])) & set(_OBJECT_WRITES):
            continue
        for resource in map(_render, _as_list(statement["Resource"])):
            for stem, bucket in _watched_objects(synth).items():
                if not resource.startswith(stem):
                    continue
                literal = resource[len(stem) :].split("*", 1)[0]
                checked += 1
                assert not (
                    literal.startswith(trigger_prefix) or trigger_prefix.startswith(literal)
                ), f"{logical_id} may write {resource}, which can match trigger keys in {bucket}"
    assert checked >= 3, "planner, aggregator and workers write the work bucket"


def test_trigger_rule_prefix_is_the_configured_one_outside_the_work_area(
    synth: Synth,
) -> None:
    (rule,) = synth.resources("AWS::Events::Rule").values()
    (wildcard,) = rule["Properties"]["EventPattern"]["detail"]["object"]["key"]
    assert wildcard["wildcard"].startswith(TEST_CONTEXT["parceler:triggerPrefix"])
    assert not wildcard["wildcard"].startswith("jobs/")


@pytest.mark.parametrize("role", ["planner", "aggregator", "worker", "container"])
def test_every_role_running_user_code_is_denied_writes_under_the_trigger_prefix(
    synth: Synth, role: str
) -> None:
    role_id = _task_role(synth) if role == "container" else _function_role(synth, role)
    denied = {
        _render(resource)
        for statement in _role_statements(synth, role_id)
        if statement["Effect"] == "Deny" and "s3:PutObject" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    prefix = TEST_CONTEXT["parceler:triggerPrefix"]
    assert denied == {f"{stem}{prefix}*" for stem in _watched_objects(synth)}


@pytest.mark.parametrize("role", ["worker", "container"])
def test_workers_read_inputs_write_only_attempt_folders_and_never_delete(
    synth: Synth, role: str
) -> None:
    role_id = _task_role(synth) if role == "container" else _function_role(synth, role)
    s3_actions = _allowed(_role_statements(synth, role_id), "s3")
    work_objects, input_objects = _watched_objects(synth)
    output = TEST_OUTPUT_LOCATION.removeprefix("s3://")
    assert s3_actions == {
        "s3:ListBucket": {work_objects.removesuffix("/"), input_objects.removesuffix("/")},
        "s3:GetObject": {f"{work_objects}jobs/*", f"{input_objects}*"},
        "s3:PutObject": {
            f"{work_objects}jobs/*/groups/*/attempt-*",
            f"arn:<AWS::Partition>:s3:::{output}*/groups/*/attempt-*",
        },
        "s3:AbortMultipartUpload": {
            f"{work_objects}jobs/*/groups/*/attempt-*",
            f"arn:<AWS::Partition>:s3:::{output}*/groups/*/attempt-*",
        },
    }


def test_worker_attempt_pattern_matches_the_work_area_layout() -> None:
    # The pattern must admit the layout the workers write (docs/INTERNALS.md), and nothing
    # outside an attempt folder: a group manifest or a job result.
    from fnmatch import fnmatchcase

    from infra.access import ATTEMPT_FOLDERS

    pattern = "jobs/" + ATTEMPT_FOLDERS
    from parceler.workarea import JobArea, output_folder

    run = "run-20261202T011447-3f9a1c"
    attempt = JobArea("work", "j1").group(7).attempt(2, run)
    assert fnmatchcase(attempt.folder.removeprefix("s3://work/") + "out.csv", pattern)
    assert fnmatchcase(attempt.result.removeprefix("s3://work/"), pattern)
    output = output_folder("s3://out/x/", "j1", run, 7, 1)
    assert fnmatchcase(output.removeprefix("s3://out/") + "part-1.csv", "x/" + ATTEMPT_FOLDERS)
    assert not fnmatchcase("jobs/j1/groups/000/000007.json", pattern)
    assert not fnmatchcase("jobs/j1/result.json", pattern)


def test_worker_query_pattern_admits_slot_partitions_and_no_other_ledger_partition() -> None:
    from fnmatch import fnmatchcase

    from infra.access import SLOT_PARTITIONS
    from parceler.aws.ledger import counter_key, group_key, job_key, slot_key

    assert fnmatchcase(slot_key("j-1", 3)["pk"]["S"], SLOT_PARTITIONS)
    for other in (job_key("j-1"), group_key("j-1", 7, 4), counter_key("j-1", 2)):
        assert not fnmatchcase(other["pk"]["S"], SLOT_PARTITIONS)


@pytest.mark.parametrize("role", ["worker", "container", "dead_letter"])
def test_group_roles_get_item_level_ledger_calls_and_signal_only_the_job_machine(
    synth: Synth, role: str
) -> None:
    role_id = _task_role(synth) if role == "container" else _function_role(synth, role)
    statements = _role_statements(synth, role_id)
    (table_id,) = synth.resources("AWS::DynamoDB::Table")
    (machine_id,) = synth.resources("AWS::StepFunctions::StateMachine")
    table_arn = {f"<{table_id}.Arn>"}
    item_level = {
        "dynamodb:GetItem": table_arn,
        "dynamodb:UpdateItem": table_arn,
        "dynamodb:ConditionCheckItem": table_arn,
    }
    queries = [
        statement
        for statement in statements
        if statement["Effect"] == "Allow" and "dynamodb:Query" in _as_list(statement["Action"])
    ]
    if role == "dead_letter":
        assert _allowed(statements, "dynamodb") == item_level
        assert queries == []
    else:  # workers take in-flight slots (limits.max_concurrency): Query those partitions only
        assert _allowed(statements, "dynamodb") == {**item_level, "dynamodb:Query": table_arn}
        (query,) = queries
        assert _as_list(query["Action"]) == ["dynamodb:Query"]
        assert query["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["job#*#slots"]}
        }, "a worker may Query only the slot partitions, never a job's groups"
    # No Scan, PutItem, DeleteItem, batch calls or index access in any case.
    assert _allowed(statements, "states") == {
        "states:SendTaskSuccess": {f"<{machine_id}>"},
        "states:SendTaskFailure": {f"<{machine_id}>"},
    }


def test_dead_letter_role_only_reads_the_work_area(synth: Synth) -> None:
    work_objects, _ = _watched_objects(synth)
    statements = _role_statements(synth, _function_role(synth, "dead_letter"))
    assert _allowed(statements, "s3") == {
        "s3:ListBucket": {work_objects.removesuffix("/")},
        "s3:GetObject": {f"{work_objects}jobs/*"},
    }


def test_container_task_role_may_protect_only_its_clusters_tasks(synth: Synth) -> None:
    (cluster_id,) = synth.resources("AWS::ECS::Cluster")
    statements = _role_statements(synth, _task_role(synth))
    task_arn = f"arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/<{cluster_id}>/*"
    assert _allowed(statements, "ecs") == {
        "ecs:UpdateTaskProtection": {task_arn},
        "ecs:GetTaskProtection": {task_arn},
    }


def test_refused_starts_are_counted_from_the_starters_log_and_alarmed(synth: Synth) -> None:
    from parceler.starter import REFUSAL_MARKER

    _, starter = _function_by_role(synth, "starter")
    (metric_filter,) = synth.resources("AWS::Logs::MetricFilter").values()
    props = metric_filter["Properties"]
    assert props["LogGroupName"] == {"Ref": _getatt_id(starter["LoggingConfig"]["LogGroup"])}
    assert props["FilterPattern"] == f'"{REFUSAL_MARKER}"'
    (transform,) = props["MetricTransformations"]
    assert (transform["MetricNamespace"], transform["MetricValue"]) == ("Parceler", "1")
    alarmed = {
        a["Properties"].get("MetricName")
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
    }
    assert transform["MetricName"] in alarmed


def test_state_machine_log_level_setting_turns_logging_up() -> None:
    from aws_cdk import Stack
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_stepfunctions as sfn

    from infra.job_state_machine import JobStateMachine
    from infra.settings import ParcelerSettings

    app = App(context={"parceler:stateMachineLogLevel": "ALL", "parceler:logExecutionData": "true"})
    settings = ParcelerSettings.from_context(app.node)
    stack = Stack(app, "Logs")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    JobStateMachine(
        stack,
        "Machine",
        definition_file=REPO_ROOT / "shared" / "parceler" / "asl" / "job.asl.json",
        planner=lambda_.Function.from_function_attributes(
            stack, "Planner", function_arn=arn, same_environment=True
        ),
        aggregator=lambda_.Function.from_function_attributes(
            stack, "Aggregator", function_arn=arn + "2", same_environment=True
        ),
        waiter=lambda_.Function.from_function_attributes(
            stack, "Waiter", function_arn=arn + "3", same_environment=True
        ),
        ledger=dynamodb.Table.from_table_name(stack, "Ledger", "ledger"),
        work_bucket=s3.Bucket.from_bucket_name(stack, "Work", "work"),
        log_retention=logs.RetentionDays.ONE_DAY,
        log_level=sfn.LogLevel(settings.state_machine_log_level),
        include_execution_data=settings.log_execution_data,
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True})},
    )
    with pytest.raises(ValueError, match="stateMachineLogLevel"):
        ParcelerSettings.from_context(App(context={"parceler:stateMachineLogLevel": "DEBUG"}).node)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"parceler:triggerPrefix": "jobs/"}, "overlaps the work area"),
        ({"parceler:triggerPrefix": "jobs/specs/"}, "overlaps the work area"),
        ({"parceler:triggerPrefix": "j"}, "overlaps the work area"),
        ({"parceler:triggerPrefix": ""}, "triggerPrefix"),
        (
            {"parceler:outputLocations": ["s3://out/specs/results/"]},
            "overlaps the trigger prefix",
        ),
        ({"parceler:outputLocations": ["out/results/"]}, "must look like s3://bucket/prefix/"),
    ],
)
def test_settings_refuse_a_trigger_prefix_that_outputs_could_write(
    context: dict[str, Any], message: str
) -> None:
    from infra.settings import ParcelerSettings

    with pytest.raises(ValueError, match=message):
        ParcelerSettings.from_context(App(context=context).node)
    assert ParcelerSettings().trigger_prefix == "specs/"
