"""Shell processors: stdin/stdout streaming, exit status, stderr tail, timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from parceler.errors import ObjectNotFoundError, ProcessorError, SpecError
from parceler.models import DATA_FILE_SCHEMA
from parceler.processors import GroupContext, run_group
from parceler.processors.shell import CREDENTIAL_VARIABLES, STDERR_TAIL_BYTES
from parceler.spec import ProcessorSpec, ReducerSpec
from tests.unit.files import local_files as _files


def _ctx(tmp_path: Path) -> GroupContext:
    return GroupContext("job1", 3, 2, str(tmp_path / "out"))


def _shell(command: str, timeout: float = 60) -> ProcessorSpec:
    return ProcessorSpec(kind="shell", command=command, timeout_seconds=timeout)


def test_each_file_goes_through_the_command_to_its_own_output(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.csv": b"x,1\ny,2\n", "b.csv": b"z,3\n"})
    outcome = run_group(_shell("tr a-z A-Z | cut -d, -f1"), ReducerSpec(), files, _ctx(tmp_path))
    out = tmp_path / "out"
    assert (out / "000000-a.csv").read_bytes() == b"X\nY\n"
    assert (out / "000001-b.csv").read_bytes() == b"Z\n"
    assert outcome.outputs.to_pylist() == [
        {"uri": str(out / "000000-a.csv"), "size": 4, "n_record": None, "etag": None},
        {"uri": str(out / "000001-b.csv"), "size": 2, "n_record": None, "etag": None},
    ]
    assert outcome.value == {"files": 2, "bytes_in": 12, "bytes_out": 6}


def test_command_sees_parceler_environment_and_a_scratch_folder(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.txt": b"hello"})
    command = (
        'cat > scratch && printf "%s %s %s %s" "$PARCELER_JOB_ID" "$PARCELER_GROUP_INDEX" '
        '"$PARCELER_ATTEMPT" "$(cat scratch)"'
    )
    run_group(_shell(command), None, files, _ctx(tmp_path))
    assert (tmp_path / "out" / "000000-a.txt").read_text() == "job1 3 2 hello"


def test_command_gets_no_aws_credentials_of_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.setenv(name, "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    files = _files(tmp_path, {"a.txt": b""})
    run_group(_shell("env"), None, files, _ctx(tmp_path))
    names = {
        line.split("=", 1)[0]
        for line in (tmp_path / "out" / "000000-a.txt").read_text().splitlines()
    }
    assert names & CREDENTIAL_VARIABLES == set()
    assert {"AWS_REGION", "PARCELER_JOB_ID"} <= names
    assert "AWS_ACCESS_KEY_ID" in CREDENTIAL_VARIABLES and "ECS_AGENT_URI" in CREDENTIAL_VARIABLES


def test_command_that_stops_reading_early_succeeds(tmp_path: Path) -> None:
    big = b"line\n" * 500_000  # larger than any pipe buffer
    files = _files(tmp_path, {"big.txt": big})
    outcome = run_group(_shell("head -n 1"), ReducerSpec(), files, _ctx(tmp_path))
    assert (tmp_path / "out" / "000000-big.txt").read_bytes() == b"line\n"
    assert outcome.value["bytes_out"] == 5


def test_nonzero_exit_reports_command_status_and_stderr(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    command = "echo 'first complaint' >&2; echo 'bad input on line 3' >&2; exit 3"
    with pytest.raises(ProcessorError) as caught:
        run_group(_shell(command), None, files, _ctx(tmp_path))
    message = str(caught.value)
    assert "exited with status 3" in message
    assert command in message
    assert str(tmp_path / "in" / "a.txt") in message
    assert "bad input on line 3" in message


def test_stderr_tail_keeps_only_the_last_bytes(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    command = "head -c 100000 /dev/zero | tr '\\0' a >&2; echo THE-END >&2; exit 1"
    with pytest.raises(ProcessorError) as caught:
        run_group(_shell(command), None, files, _ctx(tmp_path))
    message = str(caught.value)
    assert "THE-END" in message
    assert message.count("a" * 100) <= STDERR_TAIL_BYTES // 100
    assert len(message) < STDERR_TAIL_BYTES + 1000


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.txt": b"x"})
    pid_file = tmp_path / "child.pid"
    # a background child with its own stdio: killing only /bin/sh would end the output
    # stream at once but leave the child running
    command = f"sleep 60 </dev/null >/dev/null 2>&1 & echo $! > {pid_file}; wait"
    with pytest.raises(ProcessorError, match=r"timed out after 0\.5s.*killed") as caught:
        run_group(_shell(command, timeout=0.5), None, files, _ctx(tmp_path))
    assert "sleep 60" in str(caught.value)
    child = int(pid_file.read_text())
    for _ in range(100):  # the kill is delivered already; allow the reaper a moment
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child)


def test_unreadable_input_fails_the_file(tmp_path: Path) -> None:
    files = pa.Table.from_pylist(
        [{"uri": str(tmp_path / "missing.txt"), "size": 1, "n_record": None, "etag": None}],
        schema=DATA_FILE_SCHEMA,
    )
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        run_group(_shell("cat"), None, files, _ctx(tmp_path))


def test_shell_per_group_is_refused(tmp_path: Path) -> None:
    spec = ProcessorSpec(kind="shell", command="cat", per="group")
    with pytest.raises(SpecError, match="once per file"):
        run_group(spec, None, _files(tmp_path, {"a": b""}), _ctx(tmp_path))
