"""The private parts of moto the local mode relies on are still there and still behave.

The in-process Lambda hook replaces ``moto.awslambda.models.LambdaFunction._invoke_lambda``
(private). moto is pinned to 5.2.5 in pyproject.toml; when an upgrade moves or reshapes
that method these tests fail first, with a message that names it.
"""

from __future__ import annotations

import inspect
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from parceler.local import lambda_hook
from parceler.local.emulator import LocalAws

pytestmark = pytest.mark.functional

PINNED = "5.2.5"
HOOKED = lambda_hook.PATCHED_METHOD


def test_moto_is_the_pinned_version() -> None:
    import moto

    assert moto.__version__ == PINNED, (
        f"moto {moto.__version__} is installed but the local Lambda hook was written against "
        f"moto {PINNED} ({HOOKED}); re-check the hook, then update the pin and this test."
    )


def test_the_hooked_private_method_keeps_its_name_and_signature() -> None:
    from moto.awslambda.models import LambdaFunction

    lambda_hook.uninstall()  # inspect moto's own method, not our wrapper
    try:
        method = getattr(LambdaFunction, "_invoke_lambda", None)
        assert method is not None, f"{HOOKED} no longer exists: the local Lambda hook cannot run"
        params = list(inspect.signature(method).parameters.values())
        assert [p.name for p in params] == ["self", "event"], (
            f"{HOOKED} changed signature to {inspect.signature(method)}; "
            "expected (self, event=None)"
        )
        assert params[1].default is None, f"{HOOKED}: 'event' no longer defaults to None"
        returns = str(inspect.signature(method).return_annotation)
        assert "tuple[str, bool, str]" in returns, (
            f"{HOOKED} no longer returns (payload, errored, logs): {returns}"
        )
        invoke_source = inspect.getsource(LambdaFunction.invoke)
        assert "self._invoke_lambda(event=" in invoke_source, (
            f"LambdaFunction.invoke no longer calls {HOOKED}: the hook would never run"
        )
        assert 'x-amz-function-error"] = "Handled"' in invoke_source, (
            "LambdaFunction.invoke no longer reports errored=True as X-Amz-Function-Error"
        )
    finally:
        lambda_hook.install()


def test_step_functions_names_a_lambda_error_by_its_error_type() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as module,
    )

    source = inspect.getsource(module.StateTaskServiceLambda._from_error)
    assert '["errorType"]' in source, (
        "moto's Step Functions no longer takes a Lambda task's error name from the payload's "
        "'errorType': the hook's error payload and the state machine's Catch may disagree"
    )


def test_the_server_pieces_the_emulator_wraps_exist() -> None:
    from moto.moto_server import werkzeug_app

    for name in ("DomainDispatcherApplication", "MotoRequestHandler", "create_backend_app"):
        assert hasattr(werkzeug_app, name), f"moto.moto_server.werkzeug_app.{name} is gone"


# -- the hook, end to end ------------------------------------------------------------------

_HANDLER = """
import os

def handler(event, context):
    if event.get("fail"):
        raise LookupError("no such thing: " + os.environ["GREETING"])
    return {"echo": event, "greeting": os.environ["GREETING"], "name": context.function_name,
            "remaining_ok": context.get_remaining_time_in_millis() > 0}
"""


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws() as emulator:
        yield emulator


@pytest.fixture
def echo_arn(local: LocalAws, tmp_path: Path) -> Iterator[str]:
    local.reset()
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "handler.py").write_text(_HANDLER)
    lambda_hook.install(tmp_path)
    lambda_hook.forget_handlers()
    role = boto3.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "# runs in-process in the local mode\n")
    arn = boto3.client("lambda").create_function(
        FunctionName="echo",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"GREETING": "hello", lambda_hook.ROLE_VARIABLE: "echo"}},
    )["FunctionArn"]
    try:
        yield arn
    finally:
        lambda_hook.install(lambda_hook.default_functions_dir())
        lambda_hook.forget_handlers()


def test_the_hook_runs_the_handler_in_process_with_its_environment(echo_arn: str) -> None:
    response = boto3.client("lambda").invoke(FunctionName="echo", Payload=b'{"n": 1}')

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {
        "echo": {"n": 1},
        "greeting": "hello",
        "name": "echo",
        "remaining_ok": True,
    }


def test_a_handler_exception_is_a_handled_function_error_named_by_its_type(echo_arn: str) -> None:
    response = boto3.client("lambda").invoke(FunctionName="echo", Payload=b'{"fail": true}')

    assert response["FunctionError"] == "Handled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "LookupError"
    assert "no such thing: hello" in error["errorMessage"]


def test_step_functions_catches_the_handler_error_by_its_type(echo_arn: str) -> None:
    sfn = boto3.client("stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": echo_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Catch": [
                    {"ErrorEquals": ["LookupError"], "ResultPath": "$.error", "Next": "Caught"}
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name="contract",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="fails", input='{"fail": true}')

    described = _finished(execution["executionArn"])
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["error"]["Error"] == "LookupError"
    assert "no such thing" in json.loads(output["error"]["Cause"])["errorMessage"]


def _finished(execution_arn: str) -> dict[str, str]:
    client = boto3.client("stepfunctions")
    for _ in range(600):
        described = client.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return dict(described)  # type: ignore[arg-type]
        time.sleep(0.05)
    pytest.fail(f"execution {execution_arn} still RUNNING after 30 s")
