"""The job report: layout from constructed ledger items, and the HTML it renders."""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from parceler.ledger import GroupItem, JobItem
from parceler.report import (
    TIMELINE_LABEL_WIDTH,
    TIMELINE_PLOT_WIDTH,
    UNKNOWN_WORKER,
    MissingExtraError,
    build_report,
    histogram,
    render_html,
    render_png,
)

T0 = 1_700_000_000.0


def job(**fields: Any) -> JobItem:
    return JobItem(
        job_id=fields.pop("job_id", "job-1"),
        status=fields.pop("status", "SUCCEEDED"),
        remaining=0,
        created_at=fields.pop("created_at", T0 - 5),
        **fields,
    )


def group(
    index: int,
    *,
    worker: str | None = "w-a",
    start: float | None = 0.0,
    end: float | None = 10.0,
    status: str = "SUCCEEDED",
    attempt: int = 1,
    size: int = 1000,
    error: str | None = None,
    cause: str | None = None,
    last_error: str | None = None,
    updated: float | None = None,
) -> GroupItem:
    return GroupItem(
        job_id="job-1",
        index=index,
        status=status,
        attempt=attempt,
        committed_attempt=attempt if status == "SUCCEEDED" else None,
        summary_uri=None,
        result_uri=None,
        predicted_seconds=1.0,
        queue="container",
        error=error,
        cause=cause,
        last_error=last_error,
        last_cause=None,
        started_at=None if start is None else T0 + start,
        finished_at=None if end is None else T0 + end,
        lease_until=None,
        size=size,
        worker=worker,
        updated_at=None if updated is None else T0 + updated,
    )


class SvgElements(HTMLParser):
    """Collects the attributes of every element with a class, by class."""

    def __init__(self) -> None:
        super().__init__()
        self.by_class: dict[str, list[dict[str, str]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for name in values.get("class", "").split():
            self.by_class.setdefault(name, []).append(values)


def elements(page: str) -> dict[str, list[dict[str, str]]]:
    parser = SvgElements()
    parser.feed(page)
    return parser.by_class


# ---- build_report ----------------------------------------------------------------------


def test_one_row_per_worker_with_bars_relative_to_the_first_start() -> None:
    groups = [
        group(0, worker="w-b", start=0, end=4),
        group(1, worker="w-a", start=1, end=3),
        group(2, worker="w-b", start=4, end=10),
        group(3, worker="w-a", start=3, end=9),
    ]
    data = build_report(job(), groups)
    assert [row.worker for row in data.rows] == ["w-a", "w-b"]
    a, b = data.rows
    assert [(bar.group, bar.start, bar.end) for bar in a.bars] == [(1, 1.0, 3.0), (3, 3.0, 9.0)]
    assert [(bar.group, bar.start, bar.end) for bar in b.bars] == [(0, 0.0, 4.0), (2, 4.0, 10.0)]
    assert data.origin == T0
    assert data.span_seconds == 10.0
    assert data.queue_delay_seconds == 5.0
    assert (a.busy_seconds, b.busy_seconds) == (8.0, 10.0)
    assert data.imbalance == pytest.approx(10.0 / 9.0)


def test_running_group_ends_at_now_and_unclaimed_groups_have_no_bar() -> None:
    groups = [
        group(0, start=0, end=2),
        group(1, worker="w-b", start=1, end=None, status="RUNNING"),
        group(2, worker=None, start=None, end=None, status="PENDING"),
    ]
    data = build_report(job(status="RUNNING"), groups, now=T0 + 30)
    running = data.rows[1].bars[0]
    assert (running.group, running.open, running.end) == (1, True, 30.0)
    assert data.not_started == 1
    assert data.span_seconds == 30.0
    assert dict(data.status_counts) == {"PENDING": 1, "RUNNING": 1, "SUCCEEDED": 1}


def test_running_group_without_now_ends_at_the_newest_ledger_timestamp() -> None:
    groups = [group(0, start=0, end=2), group(1, start=1, end=None, status="RUNNING", updated=7)]
    data = build_report(job(), groups)
    assert data.rows[0].bars[1].end == 7.0


def test_group_without_worker_lands_in_the_unknown_row() -> None:
    data = build_report(job(), [group(0, worker=None)])
    assert [row.worker for row in data.rows] == [UNKNOWN_WORKER]


def test_failures_list_failed_and_retried_groups_with_their_errors() -> None:
    groups = [
        group(0),
        group(1, status="FAILED", attempt=3, error="ProcessorError", cause="exit 2: no such file"),
        group(2, attempt=2, last_error="RetryableError: throttled"),
    ]
    data = build_report(job(), groups)
    assert [(f.group, f.status, f.attempts, f.error, f.cause) for f in data.failures] == [
        (1, "FAILED", 3, "ProcessorError", "exit 2: no such file"),
        (2, "SUCCEEDED", 2, "RetryableError: throttled", None),
    ]


def test_durations_and_sizes_feed_the_histograms() -> None:
    groups = [group(i, start=0, end=float(i + 1), size=100 * (i + 1)) for i in range(4)]
    data = build_report(job(), groups)
    assert sum(b.count for b in data.duration_bins) == 4
    assert (data.duration_bins[0].low, data.duration_bins[-1].high) == (1.0, 4.0)
    assert (data.size_bins[0].low, data.size_bins[-1].high) == (100.0, 400.0)
    assert data.total_bytes == 1000


def test_histogram_edges_and_counts() -> None:
    bins = histogram([0.0, 1.0, 2.0, 3.0, 4.0], bins=2)
    assert [(b.low, b.high, b.count) for b in bins] == [(0.0, 2.0, 2), (2.0, 4.0, 3)]
    assert histogram([]) == ()
    assert [(b.low, b.high, b.count) for b in histogram([5.0, 5.0, 5.0])] == [(5.0, 5.0, 3)]


def test_empty_job() -> None:
    data = build_report(job(status="PLANNING", n_groups=0), [])
    assert (data.rows, data.failures, data.origin, data.imbalance) == ((), (), None, None)
    assert "No group has started" in render_html(data)


# ---- render_html -----------------------------------------------------------------------


def test_timeline_has_a_row_per_worker_and_bars_placed_by_time() -> None:
    groups = [
        group(0, worker="w-a", start=0, end=5),
        group(1, worker="w-b", start=5, end=10, status="FAILED", error="boom"),
        group(2, worker="w-c", start=2.5, end=7.5),
    ]
    found = elements(render_html(build_report(job(), groups)))
    assert [row["data-worker"] for row in found["worker-row"]] == ["w-a", "w-b", "w-c"]
    bars = {int(bar["data-group"]): bar for bar in found["bar"]}
    half = TIMELINE_PLOT_WIDTH / 2
    assert float(bars[0]["x"]) == pytest.approx(TIMELINE_LABEL_WIDTH)
    assert float(bars[0]["width"]) == pytest.approx(half)
    assert float(bars[1]["x"]) == pytest.approx(TIMELINE_LABEL_WIDTH + half)
    assert float(bars[2]["x"]) == pytest.approx(TIMELINE_LABEL_WIDTH + half / 2)
    assert bars[1]["data-status"] == "FAILED"
    assert bars[0]["fill"] != bars[1]["fill"]  # coloured by status


def test_failure_text_is_listed_and_escaped() -> None:
    nasty = "<script>alert('x')</script> & \"quoted\""
    groups = [
        group(0, status="FAILED", attempt=2, error=nasty, cause="line1\n<b>cause</b>"),
        group(1, worker="<img src=x>"),
    ]
    page = render_html(build_report(job(job_id="j-1"), groups))
    assert "<script>" not in page and "<img src=x>" not in page and "<b>cause" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "&lt;b&gt;cause&lt;/b&gt;" in page
    rows = elements(page)["failures"]
    assert len(rows) == 1


def test_page_is_self_contained() -> None:
    page = render_html(build_report(job(), [group(0), group(1, worker="w-b")]))
    assert page.startswith("<!DOCTYPE html>")
    for external in ("<script", "src=", "href=", "@import", "url("):
        assert external not in page


def test_histogram_bins_rendered_with_counts() -> None:
    groups = [group(i, start=0, end=float(i + 1)) for i in range(9)]
    found = elements(render_html(build_report(job(), groups)))
    counts = [int(b["data-count"]) for b in found["bin"]]
    assert sum(counts) == 9 + 9  # durations, then sizes (all sizes equal: one bin)
    assert counts[-1] == 9


# ---- PNG -------------------------------------------------------------------------------


def test_png_is_written_when_matplotlib_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.png"
    render_png(build_report(job(), [group(0), group(1, worker="w-b", start=2, end=4)]), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(MissingExtraError) as raised:
        render_png(build_report(job(), [group(0)]), tmp_path / "r.png")
    assert "parceler[report]" in str(raised.value.fix)
    assert not (tmp_path / "r.png").exists()
