"""Python processors: per file, per group, loading errors, user errors, values, outputs."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parceler import storage
from parceler.errors import (
    OutputNameError,
    ProcessorError,
    SourceChangedError,
    SpecError,
    UserCodeError,
    ValueOutOfRangeError,
)
from parceler.models import DATA_FILE_SCHEMA
from parceler.processors import (
    DeadlineExceededError,
    FileRef,
    GroupContext,
    check_processor,
    run_group,
)
from parceler.spec import ProcessorSpec, ReducerSpec
from tests.unit.files import local_files as _files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

USER_MODULE = """
import json

def fail_on_b(file):
    if file.uri.endswith("b.txt"):
        raise ValueError("bad line 3")
    return {"n": 1}

def not_json(file):
    return {"when": object()}

def tuple_keys(file):
    return {1: (1, 2)}

def returns_none(file):
    return None

def infinite(file):
    return {"mean": float("inf")}

def escape(files, ctx):
    ctx.add_output("/elsewhere/x", 1)

def group_boom(files, ctx):
    raise RuntimeError("group broke")

def refuse_b(file):
    if file.uri.endswith("b.txt"):
        from parceler import PermanentError
        raise PermanentError("b.txt is encrypted", "decrypt it first")
    return {"n": 1}

def write_named(files, ctx):
    name = files[0].read_bytes().decode()
    return ctx.write_output(name, b"payload")

def add_dotdot(files, ctx):
    ctx.add_output(ctx.output_prefix.rstrip("/") + "/../attempt-99/x", 1)
"""


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "user_procs.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "user_procs", raising=False)
    yield


def _ctx(tmp_path: Path, deadline: float | None = None) -> GroupContext:
    return GroupContext("job1", 7, 1, str(tmp_path / "out" / "attempt-1"), deadline)


def _python(function: str, per: str = "file") -> ProcessorSpec:
    return ProcessorSpec(kind="python", function=function, per=per)


def test_per_file_processor_with_python_reducer(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"x\nlonger line\n", "b.txt": b"1\n2\n3"})
    outcome = run_group(
        _python("custom_processor:line_stats"),
        ReducerSpec(kind="python", function="custom_processor:merge_line_stats"),
        files,
        _ctx(tmp_path),
    )
    assert outcome.value == {"lines": 5, "longest": 11}
    assert outcome.outputs.num_rows == 0
    assert outcome.outputs.schema.equals(DATA_FILE_SCHEMA)


def test_without_reducer_the_group_value_is_the_list_of_file_values(
    tmp_path: Path, user_code: None
) -> None:
    files = _files(tmp_path, {"a.txt": b"x\n", "b.txt": b"yy\nz\n"})
    outcome = run_group(_python("custom_processor:line_stats"), None, files, _ctx(tmp_path))
    assert outcome.value == [{"lines": 1, "longest": 1}, {"lines": 2, "longest": 2}]


def test_values_are_normalised_as_json_and_none_is_skipped(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    outcome = run_group(_python("user_procs:tuple_keys"), None, files, _ctx(tmp_path))
    assert outcome.value == [{"1": [1, 2]}]
    outcome = run_group(_python("user_procs:returns_none"), None, files, _ctx(tmp_path))
    assert outcome.value is None


def test_group_processor_writes_and_reports_outputs(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"ab\n", "b.txt": b"cd\n"})
    ctx = _ctx(tmp_path)
    outcome = run_group(_python("custom_processor:shout", per="group"), None, files, ctx)
    expected_uri = str(tmp_path / "out" / "attempt-1" / "shout.txt")
    assert outcome.value == [{"files": 2, "output": expected_uri}]
    assert outcome.outputs.to_pylist() == [
        {"uri": expected_uri, "size": 6, "n_record": None, "etag": None}
    ]
    assert Path(expected_uri).read_bytes() == b"AB\nCD\n"
    # the caller's context is not mutated: a second run lists its own outputs only
    again = run_group(_python("custom_processor:shout", per="group"), None, files, ctx)
    assert again.outputs.num_rows == 1


def test_user_exception_is_retryable_and_names_file_type_message_and_traceback(
    tmp_path: Path, user_code: None
) -> None:
    files = _files(tmp_path, {"a.txt": b"x", "b.txt": b"y"})
    with pytest.raises(UserCodeError) as caught:
        run_group(_python("user_procs:fail_on_b"), ReducerSpec(), files, _ctx(tmp_path))
    message = str(caught.value)
    assert "user_procs:fail_on_b" in message
    assert str(tmp_path / "in" / "b.txt") in message
    assert "ValueError: bad line 3" in message
    assert "Traceback" in message and "user_procs.py" in message
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.retryable and "parceler.PermanentError" in str(caught.value)


def test_a_permanent_error_from_user_code_is_a_processor_error_naming_the_file(
    tmp_path: Path, user_code: None
) -> None:
    files = _files(tmp_path, {"a.txt": b"x", "b.txt": b"y"})
    with pytest.raises(ProcessorError) as caught:
        run_group(_python("user_procs:refuse_b"), ReducerSpec(), files, _ctx(tmp_path))
    assert not caught.value.retryable
    assert str(tmp_path / "in" / "b.txt") in caught.value.problem
    assert "b.txt is encrypted" in caught.value.problem
    assert caught.value.fix == "decrypt it first"


def test_group_processor_exception_is_retryable(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    with pytest.raises(UserCodeError, match="RuntimeError: group broke"):
        run_group(_python("user_procs:group_boom", per="group"), None, files, _ctx(tmp_path))


def test_non_json_value_names_the_file(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    with pytest.raises(ProcessorError, match=r"user_procs:not_json on .*a\.txt.*not JSON"):
        run_group(_python("user_procs:not_json"), None, files, _ctx(tmp_path))


def test_output_outside_the_attempt_folder_is_refused(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    with pytest.raises(ProcessorError, match="outside this attempt's output folder"):
        run_group(_python("user_procs:escape", per="group"), None, files, _ctx(tmp_path))


@pytest.mark.parametrize(
    ("function", "pattern"),
    [
        ("no_such_module_xyz:run", r"module 'no_such_module_xyz' is not installed.*PYTHONPATH"),
        ("user_procs:nope", r"user_procs:nope: user_procs\.nope does not exist"),
        ("user_procs:json", r"user_procs:json: user_procs\.json is not callable"),
    ],
)
def test_unloadable_function_is_a_spec_error(
    tmp_path: Path, user_code: None, function: str, pattern: str
) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    with pytest.raises(SpecError, match=pattern):
        run_group(_python(function), None, files, _ctx(tmp_path))
    with pytest.raises(SpecError, match=pattern):
        check_processor(_python(function))


def test_module_with_a_missing_dependency_names_the_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "needs_dep_mod.py").write_text("import not_installed_dep_abc\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SpecError, match="needs 'not_installed_dep_abc'"):
        check_processor(_python("needs_dep_mod:run"))


def test_deadline_in_the_past_stops_before_the_first_file(tmp_path: Path, user_code: None) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    ctx = _ctx(tmp_path, deadline=time.monotonic() - 1)
    with pytest.raises(DeadlineExceededError, match="ran out of time before"):
        run_group(_python("custom_processor:line_stats"), None, files, ctx)
    assert ctx.time_left() is not None and ctx.time_left() < 0  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../attempt-99/forged.txt", "'..' segment"),
        ("a/../../x.txt", "'..' segment"),
        ("sub/..", "'..' segment"),
        ("/etc/x.txt", "absolute path"),
        ("", "is empty"),
        ("./", "ends in '/'"),
        (".", "is empty"),
        ("a\x00b", "NUL"),
    ],
)
def test_output_names_that_leave_the_attempt_folder_are_refused(
    tmp_path: Path, user_code: None, name: str, problem: str
) -> None:
    # The processor reads the output name from its input, so one function covers every name.
    files = _files(tmp_path, {"name.txt": name.encode()})
    with pytest.raises(OutputNameError, match=re.escape(problem)) as caught:
        run_group(_python("user_procs:write_named", per="group"), None, files, _ctx(tmp_path))
    assert isinstance(caught.value, ProcessorError)  # permanent: the worker fails the group
    written = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and p.relative_to(tmp_path).parts[0] not in ("in", "code")
    ]
    assert written == []  # nothing was written, inside the attempt folder or beside it


def test_output_names_are_normalised_inside_the_attempt_folder(
    tmp_path: Path, user_code: None
) -> None:
    files = _files(tmp_path, {"name.txt": b"./by-day//2024.txt"})
    ctx = _ctx(tmp_path)
    outcome = run_group(_python("user_procs:write_named", per="group"), None, files, ctx)
    expected = tmp_path / "out" / "attempt-1" / "by-day" / "2024.txt"
    assert outcome.value == [str(expected)]
    assert outcome.outputs.column("uri").to_pylist() == [str(expected)]
    assert expected.read_bytes() == b"payload"


def test_a_reported_output_under_the_folder_with_dotdot_is_refused(
    tmp_path: Path, user_code: None
) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    with pytest.raises(OutputNameError, match=r"'\.\.' segment"):
        run_group(_python("user_procs:add_dotdot", per="group"), None, files, _ctx(tmp_path))


def test_a_local_input_is_checked_against_its_planned_size_and_change_token(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc\n")
    token = storage.local_etag(path.stat())
    assert FileRef(str(path), 4, etag=token).read_bytes() == b"abc\n"
    # A listing's own etag (an MD5, say) cannot be recomputed locally: only size counts.
    assert FileRef(str(path), 4, etag="9a0364b9e99bb480dd25e1f0284c8555").read_bytes()
    with pytest.raises(SourceChangedError, match="size 5 planned, 4 found"):
        FileRef(str(path), 5).open()
    with pytest.raises(SourceChangedError, match=f"ETag 1-4 planned, {token} found"):
        FileRef(str(path), 4, etag="1-4").read_bytes()


def test_a_non_finite_value_fails_the_group_with_a_typed_error(
    tmp_path: Path, user_code: None
) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    with pytest.raises(ValueOutOfRangeError, match=r"user_procs:infinite on .*a\.txt produced inf"):
        run_group(_python("user_procs:infinite"), None, files, _ctx(tmp_path))
