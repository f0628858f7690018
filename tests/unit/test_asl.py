"""The job state machine definition: well formed, every failure recorded, inside moto's subset."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parceler import state_machine
from parceler.errors import SpecError

LOCAL = {
    "PlannerFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:planner",
    "AggregatorFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:aggregator",
    "WaiterFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:waiter",
    "LedgerTableName": "ledger",
}
ASL_VALIDATOR = "asl-validator@4.0.0"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def asl() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(state_machine.definition(LOCAL))
    return document


def _scopes(
    machine: dict[str, Any], enclosing: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every (States-owning machine, the Map state enclosing it) pair, outermost first."""
    yield machine, enclosing
    for state in machine["States"].values():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _scopes(state[key], state)
        for branch in state.get("Branches", []):
            yield from _scopes(branch, state)


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state[k] for k in ("Next", "Default") if k in state]
    targets += [c["Next"] for c in state.get("Choices", [])]
    targets += [c["Next"] for c in state.get("Catch", [])]
    return targets


def test_the_template_has_exactly_the_four_placeholders() -> None:
    assert state_machine.placeholders() == {
        "PlannerFunctionArn",
        "AggregatorFunctionArn",
        "WaiterFunctionArn",
        "LedgerTableName",
    }
    assert state_machine.placeholders() == state_machine.PLACEHOLDERS


def test_substitution_fills_every_placeholder(asl: dict[str, Any]) -> None:
    text = json.dumps(asl)
    assert "${" not in text
    assert asl["States"]["Plan"]["Parameters"]["FunctionName"] == LOCAL["PlannerFunctionArn"]
    assert asl["States"]["RecordFailure"]["Parameters"]["TableName"] == "ledger"


def test_substitution_rejects_missing_and_unknown_names() -> None:
    with pytest.raises(SpecError, match="missing \\['LedgerTableName'\\]"):
        state_machine.definition({k: v for k, v in LOCAL.items() if k != "LedgerTableName"})
    with pytest.raises(SpecError, match="unknown \\['Typo'\\]"):
        state_machine.definition({**LOCAL, "Typo": "x"})


def test_substituted_values_are_json_escaped() -> None:
    text = state_machine.definition({**LOCAL, "LedgerTableName": 'a"b'})
    assert json.loads(text)["States"]["RecordFailure"]["Parameters"]["TableName"] == 'a"b'


def test_every_transition_target_exists_and_every_state_is_reachable(asl: dict[str, Any]) -> None:
    for machine, _ in _scopes(asl):
        states = machine["States"]
        assert machine["StartAt"] in states
        reachable, frontier = set(), [machine["StartAt"]]
        while frontier:
            name = frontier.pop()
            if name in reachable:
                continue
            reachable.add(name)
            for target in _targets(states[name]):
                assert target in states, f"{name} -> {target}: no such state"
                frontier.append(target)
        assert reachable == set(states), f"unreachable: {set(states) - reachable}"


def test_every_task_has_a_catch_all_that_records_the_failure(asl: dict[str, Any]) -> None:
    def catches_all(state: dict[str, Any] | None) -> bool:
        return state is not None and any(
            "States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])
        )

    for machine, enclosing in _scopes(asl):
        for name, state in machine["States"].items():
            if state["Type"] in ("Task", "Map", "Parallel"):
                assert catches_all(state) or catches_all(enclosing), (
                    f"{name} has no States.ALL Catch"
                )
    top = asl["States"]
    for name, state in top.items():
        if state["Type"] in ("Task", "Map") and name not in (
            "RecordFailure",
            "Redrive",
            "StartPipeline",
        ):
            assert state["Catch"][-1]["Next"] == "RecordFailure", name
    # A refused redrive (the job still runs) must not mark the job FAILED: it fails only
    # the redrive's own execution.
    assert top["Redrive"]["Catch"][-1]["Next"] == "FailedInStates"
    # Nor a refused pipeline spec: no stage job exists yet.
    assert top["StartPipeline"]["Catch"][-1]["Next"] == "FailedInStates"
    assert top["RecordFailure"]["Resource"] == "arn:aws:states:::dynamodb:updateItem"
    assert top["RecordFailure"]["Next"] == "FailedInStates"
    assert {c["Next"] for c in top["FailedInStates"]["Choices"]} == {"StateFailed"}
    assert top["FailedInStates"]["Default"] == "JobFailed"
    assert top["JobFailed"]["Type"] == top["StateFailed"]["Type"] == "Fail"


def test_the_flow_matches_the_internals_contract(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert asl["StartAt"] == "Start"
    assert states["Start"]["Choices"] == [
        {"Variable": "$.stages", "IsPresent": True, "Next": "StartPipeline"},
        {
            "And": [
                {"Variable": "$.redrive", "IsPresent": True},
                {"Variable": "$.pipeline", "IsPresent": True},
            ],
            "Next": "RedriveStage",
        },
        {"Variable": "$.redrive", "IsPresent": True, "Next": "RedriveJob"},
    ]
    assert states["RedriveStage"]["Parameters"] == {
        "job_id.$": "$.redrive",
        "pipeline.$": "$.pipeline",
    }
    assert states["Start"]["Default"] == "NewJob"
    assert states["NewJob"]["Parameters"] == {
        "job_id.$": "$$.Execution.Name",
        "spec.$": "$",
        "pipeline": None,
    }
    plan = states["Plan"]
    assert plan["Resource"] == "arn:aws:states:::lambda:invoke"
    assert plan["Parameters"]["Payload"] == {
        "action": "plan",
        "job_id.$": "$.job_id",
        "spec.$": "$.spec",
        "pipeline.$": "$.pipeline",
    }
    # A small plan's one slice is written by the Plan task itself: no slice is left for
    # WriteGroups (planner.plan), and the fan-out is skipped.
    assert plan["Next"] == "SlicesToWrite"
    assert states["SlicesToWrite"]["Choices"] == [
        {"Variable": "$.plan.n_slices", "NumericEquals": 0, "Next": "WaitForGroups"}
    ]
    assert states["SlicesToWrite"]["Default"] == "WriteGroups"
    # A redrive: the job named by the input, the execution's own name only names the redrive.
    assert states["RedriveJob"]["Parameters"] == {"job_id.$": "$.redrive", "pipeline": None}
    redrive = states["Redrive"]
    assert redrive["Parameters"]["Payload"] == {
        "action": "redrive",
        "job_id.$": "$.job_id",
        "execution.$": "$$.Execution.Name",
        "pipeline.$": "$.pipeline",
    }
    assert redrive["ResultSelector"] == plan["ResultSelector"]
    assert [c["Next"] for c in states["WhatToRedrive"]["Choices"]] == [
        "NothingToRedrive",
        "WaitForGroups",
    ]
    assert states["WhatToRedrive"]["Default"] == "WriteGroups"
    # After Plan or Redrive every state takes the job id from the state, not the name.
    for name in ("WaitForGroups", "PrepareAggregation", "FinalReduce"):
        assert states[name]["Parameters"]["Payload"]["job_id.$"] == "$.job_id", name
    for name in ("WriteGroups", "ReduceBatches"):
        assert states[name]["ItemSelector"]["job_id.$"] == "$$.Map.Item.Value.job_id", name
    write = states["WriteGroups"]["ItemProcessor"]["States"]["WriteSlice"]
    assert write["Parameters"]["Payload"]["action"] == "write_slice"
    assert states["WriteGroups"]["Next"] == "WaitForGroups"
    wait = states["WaitForGroups"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert wait["Next"] == "PrepareAggregation"
    reduce_batch = states["ReduceBatches"]["ItemProcessor"]["States"]["ReduceBatch"]
    assert reduce_batch["Parameters"]["Payload"]["action"] == "reduce_batch"
    assert states["PrepareAggregation"]["Parameters"]["Payload"]["action"] == "prepare"
    # A job of one batch is reduced by PrepareAggregation itself: the fan-out is skipped.
    assert states["PrepareAggregation"]["ResultSelector"]["reduced.$"] == "$.Payload.reduced"
    assert states["PrepareAggregation"]["Next"] == "BatchesToReduce"
    assert states["BatchesToReduce"]["Choices"] == [
        {"Variable": "$.aggregation.reduced", "BooleanEquals": True, "Next": "FinalReduce"}
    ]
    assert states["BatchesToReduce"]["Default"] == "ReduceBatches"
    assert states["ReduceBatches"]["Next"] == "FinalReduce"
    assert states["FinalReduce"]["Parameters"]["Payload"]["action"] == "finalize"
    assert states["WithinTolerance"]["Choices"][0]["Next"] == "JobOrStage"
    assert states["WithinTolerance"]["Default"] == "TooManyGroupsFailed"
    # A pipeline (docs/pipelines.md): StartPipeline dispatches the first stage to Plan;
    # a stage that succeeds goes to NextStage, which dispatches the next or ends.
    assert states["StartPipeline"]["Parameters"]["Payload"]["action"] == "start_pipeline"
    assert states["StartPipeline"]["Next"] == states["NextStage"]["Next"] == "StageOrEnd"
    assert states["StageOrEnd"]["Default"] == "Plan"
    assert states["StageOrEnd"]["Choices"][0]["Next"] == "PipelineSucceeded"
    assert states["JobOrStage"]["Choices"] == [
        {"Variable": "$.pipeline", "IsNull": False, "Next": "NextStage"}
    ]
    assert states["JobOrStage"]["Default"] == "JobSucceeded"
    assert states["NextStage"]["Parameters"]["Payload"] == {
        "action": "next_stage",
        "pipeline.$": "$.pipeline",
    }
    assert asl["TimeoutSeconds"] > 0


def test_waiting_is_a_callback_whose_timeout_rechecks_instead_of_failing(
    asl: dict[str, Any],
) -> None:
    """History does not grow with the job's duration: no Wait state polls the ledger; the
    callback's timeout (the re-check period the plan chose) loops back to register again."""
    states = asl["States"]
    assert all(state["Type"] != "Wait" for state in states.values())
    wait = states["WaitForGroups"]
    assert wait["TimeoutSecondsPath"] == "$.recheck.seconds"
    assert states["Plan"]["ResultSelector"]["recheck"] == {"seconds.$": "$.Payload.recheck_seconds"}
    timeout, everything = wait["Catch"]
    assert timeout == {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "Recheck"}
    # The period doubles until it reaches an hour, then stays: events grow with the log of
    # the job's duration, then hourly.
    recheck, lengthen = states["Recheck"], states["LengthenRecheck"]
    assert recheck["Choices"] == [
        {"Variable": "$.recheck.seconds", "NumericGreaterThanEquals": 3600, "Next": "WaitForGroups"}
    ]
    assert recheck["Default"] == "LengthenRecheck"
    assert lengthen["Parameters"] == {
        "seconds.$": "States.MathAdd($.recheck.seconds, $.recheck.seconds)"
    }
    assert (lengthen["ResultPath"], lengthen["Next"]) == ("$.recheck", "WaitForGroups")
    assert everything["ErrorEquals"] == ["States.ALL"]
    assert all("States.Timeout" not in r["ErrorEquals"] for r in wait.get("Retry", []))


def test_no_state_carries_a_list_that_grows_with_the_job(asl: dict[str, Any]) -> None:
    """Fan-outs read their items from S3 (Distributed Map + ItemReader), their results are
    discarded, and every Lambda result is cut down to counts and URIs by a selector."""
    states = asl["States"]
    for name in ("WriteGroups", "ReduceBatches"):
        fan_out = states[name]
        assert fan_out["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
        assert fan_out["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        assert "ItemsPath" not in fan_out
        assert fan_out["ResultPath"] is None
        (child,) = fan_out["ItemProcessor"]["States"].values()
        assert child["OutputPath"] is None and child["ResultPath"] is None
    for name in ("Plan", "Redrive", "PrepareAggregation", "FinalReduce"):
        assert "ResultSelector" in states[name], name
    assert set(states["FinalReduce"]["ResultSelector"]) == {
        "status.$", "within_tolerance.$", "n_groups.$", "groups_succeeded.$",
        "groups_failed.$", "groups_skipped.$", "result_uri.$", "value_uri.$", "failures_uri.$",
    }  # fmt: skip


def test_only_features_moto_executes(asl: dict[str, Any]) -> None:
    text = json.dumps(asl)
    # ResultWriter is out too: moto evaluates its parameters against the results, not the
    # state input (docs/local-aws-facts.md).
    for unsupported in ("ItemBatcher", "JSONata", "ToleratedFailurePercentage", "ResultWriter"):
        assert unsupported not in text, f"{unsupported} is outside moto's Step Functions subset"
    for machine, _ in _scopes(asl):
        for state in machine["States"].values():
            if state["Type"] == "Map":
                assert state["ItemReader"]["ReaderConfig"]["InputType"] in ("JSON", "CSV")
                assert state["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "STANDARD"


def test_the_definition_file_is_packaged() -> None:
    path = state_machine.definition_path()
    assert path.name == "job.asl.json" and path.is_file()


def test_asl_validator_accepts_the_definition(tmp_path: Path) -> None:
    """Validates with the npm ``asl-validator`` that ``make`` installs into ``.venv/npm``.

    Outside ``make`` (no such folder) it falls back to the npm cache, never the network.
    """
    target = tmp_path / "job.asl.json"
    target.write_text(state_machine.definition(LOCAL))
    installed = REPO / ".venv" / "npm" / "node_modules" / ".bin" / "asl-validator"
    if installed.exists():
        command = [str(installed), "--json-path", str(target), "--silent"]
    else:
        npx = shutil.which("npx")
        if npx is None:
            pytest.skip("neither .venv/npm (make install) nor npx is there")
        command = [npx, "--offline", "--yes", ASL_VALIDATOR, "--json-path", str(target), "--silent"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 and "ENOTCACHED" in result.stderr + result.stdout:
        pytest.skip(f"{ASL_VALIDATOR} is not installed: run `make install`")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_catch_that_names_its_own_state_is_refused_as_moto_runs_it_differently() -> None:
    looping = {
        "StartAt": "Outer",
        "States": {
            "Outer": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Wait",
                    "States": {
                        "Wait": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Wait"}],
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }

    with pytest.raises(SpecError, match="'Wait' names 'Wait' itself") as raised:
        state_machine.check_runs_alike(looping)
    assert "Pass state" in (raised.value.fix or "")
