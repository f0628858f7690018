"""``parceler report`` against a ledger table in moto's DynamoDB, through the real CLI edge."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from parceler.aws import ledger
from parceler.aws.ledger import Ledger
from parceler.cli import report
from parceler.ledger import Claim, NewGroup

TABLE = "report-ledger"
JOB = "job-report"


def _app() -> typer.Typer:
    """The command as the real ``parceler`` app has it (a group, so the name is typed)."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    report.register(app)
    return app


def _table() -> None:
    ledger.create_table(TABLE)


def _run_job(ledger: Ledger) -> None:
    """Five groups: w-1 commits 0 and 2, w-2 commits 1 after a retry and fails 3; 4 is pending."""
    ledger.create_job(JOB, spec_json="{}", run_id="run-20261202T011447-3f9a1c")
    ledger.put_groups(
        JOB,
        [
            NewGroup(
                g,
                f"fp{g}",
                f"s3://w/jobs/{JOB}/groups/{g:06d}/manifest.json",
                1.0,
                "container",
                2,
                1000 * (g + 1),
            )
            for g in range(5)
        ],
    )
    assert ledger.record_plan(JOB, n_groups=5, attrs={})
    t0 = time.time() - 60  # claims take an explicit start; commits stamp the real clock

    def claim(group: int, worker: str, offset: float) -> int:
        got = ledger.claim_group(JOB, group, worker, lease_seconds=0, now=t0 + offset)
        assert isinstance(got, Claim)
        return got.attempt

    assert ledger.commit_group(JOB, 0, claim(0, "w-1", 0), "s3://w/r0.json")
    assert ledger.commit_group(JOB, 2, claim(2, "w-1", 10), "s3://w/r2.json")
    first = claim(1, "w-2", 0)
    assert ledger.record_error(JOB, 1, first, "RetryableError: throttled <slow down>")
    assert ledger.commit_group(JOB, 1, claim(1, "w-2", 5), "s3://w/r1.json")
    claim(3, "w-2", 20)
    assert ledger.fail_group(JOB, 3, "ProcessorError: exit 3", "stderr: <no such file> & more")


class _Classes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[dict[str, str | None]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name in (dict(attrs).get("class") or "").split():
            self.found.setdefault(name, []).append(dict(attrs))


def test_report_reads_the_ledger_and_writes_html_and_png(moto: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _table()
    _run_job(Ledger(TABLE))
    out, png = tmp_path / "out" / "report.html", tmp_path / "report.png"
    result = CliRunner().invoke(
        _app(), ["report", JOB, "--out", str(out), "--png", str(png), "--ledger-table", TABLE]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    parser = _Classes()
    parser.feed(page)
    assert [row["data-worker"] for row in parser.found["worker-row"]] == ["w-1", "w-2"]
    assert sorted(int(str(bar["data-group"])) for bar in parser.found["bar"]) == [0, 1, 2, 3]
    statuses = {str(bar["data-group"]): bar["data-status"] for bar in parser.found["bar"]}
    assert statuses["3"] == "FAILED" and statuses["0"] == "SUCCEEDED"
    assert "ProcessorError: exit 3" in page
    assert "stderr: &lt;no such file&gt; &amp; more" in page
    assert "RetryableError: throttled &lt;slow down&gt;" in page
    assert "1 not started" in page
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_report_takes_the_table_from_the_environment(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _table()
    _run_job(Ledger(TABLE))
    monkeypatch.setenv("PARCELER_LEDGER_TABLE", TABLE)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(_app(), ["report", JOB, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"parceler job <code>{JOB}</code>" in out.read_text(encoding="utf-8")


def test_unknown_job_is_a_clear_error_and_writes_nothing(moto: str, tmp_path: Path) -> None:
    _table()
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        _app(), ["report", "no-such-job", "--out", str(out), "--ledger-table", TABLE]
    )
    assert result.exit_code == 1
    assert "no-such-job" in result.output
    assert not out.exists()
