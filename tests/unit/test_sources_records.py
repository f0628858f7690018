"""--count-records: Parquet from the footer alone, text by streamed newline counts."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parceler import storage
from parceler.errors import SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources import load_source
from parceler.sources import records as records_module
from parceler.sources.records import count_lines, count_records, parquet_rows


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record every ranged read; forbid whole-object reads (a footer read must not need one)."""
    seen: list[tuple[int, int]] = []
    real = storage.read_range

    def read_range(uri: str, start: int, length: int) -> bytes:
        seen.append((start, length))
        return real(uri, start, length)

    def whole(*_args: Any, **_kwargs: Any) -> bytes:
        raise AssertionError("the whole object was read")

    monkeypatch.setattr(storage, "read_range", read_range)
    monkeypatch.setattr(storage, "read_bytes", whole)
    return seen


def test_parquet_rows_reads_only_the_tail(tmp_path: Path, reads: list[tuple[int, int]]) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"x": pa.array(range(300_000), pa.int64())}), path)
    size = path.stat().st_size
    assert size > 4 * records_module.TAIL_BYTES
    assert parquet_rows(str(path), size) == 300_000
    assert reads == [(size - records_module.TAIL_BYTES, records_module.TAIL_BYTES)]


def test_parquet_with_a_footer_longer_than_the_tail_read(
    tmp_path: Path, reads: list[tuple[int, int]]
) -> None:
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({f"column_{i:04d}": [i] * 7 for i in range(1500)}), path)
    size = path.stat().st_size
    footer = pq.read_metadata(path).serialized_size
    assert footer + 8 > records_module.TAIL_BYTES
    assert parquet_rows(str(path), size) == 7
    assert len(reads) == 2
    assert reads[1] == (size - 8 - footer, footer)


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"x" * 100)
    with pytest.raises(SourceError, match="Parquet magic"):
        parquet_rows(str(path), 100)


@pytest.mark.parametrize(
    ("body", "lines"),
    [(b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\n\nb\n", 3), (b"x" * (3 << 20) + b"\n", 1)],
)
def test_count_lines(tmp_path: Path, body: bytes, lines: int) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(body)
    assert count_lines(str(path)) == lines
    gz = tmp_path / "f.txt.gz"
    gz.write_bytes(gzip.compress(body))
    assert count_lines(str(gz), gzipped=True) == lines


def test_load_source_counts_each_type(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    pq.write_table(pa.table({"x": [1, 2, 3, 4]}), root / "a.parquet")
    (root / "b.csv").write_text("id,name\n1,x\n2,y\n")
    (root / "c.csv.gz").write_bytes(gzip.compress(b"id\n1\n2\n3\n"))
    (root / "d.jsonl").write_text('{"a": 1}\n{"a": 2}')
    (root / "e.csv").write_text("")
    (root / "f.bin").write_bytes(b"\x00\n\n")
    with pytest.warns(UserWarning, match=r"1 file\(s\) of unknown type keep n_record null"):
        out = load_source(str(root), count_records=True, workers=3)
    assert out.schema == DATA_FILE_SCHEMA
    counts = {row["uri"].rsplit("/", 1)[1]: row["n_record"] for row in out.to_pylist()}
    assert counts == {
        "a.parquet": 4,
        "b.csv": 2,
        "c.csv.gz": 3,
        "d.jsonl": 2,
        "e.csv": 0,
        "f.bin": None,
    }


def test_known_counts_are_not_recounted(tmp_path: Path) -> None:
    data = tmp_path / "a.csv"
    data.write_text("h\n1\n2\n")
    table = pa.Table.from_pylist(
        [
            {"uri": data.as_uri(), "size": 6, "n_record": 99, "etag": None},
            {"uri": str(data), "size": 6, "n_record": None, "etag": None},
        ],
        schema=DATA_FILE_SCHEMA,
    )
    assert count_records(table).column("n_record").to_pylist() == [99, 2]


def test_a_vanished_file_names_its_uri(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(
        [{"uri": str(tmp_path / "gone.csv"), "size": 6, "n_record": None, "etag": None}],
        schema=DATA_FILE_SCHEMA,
    )
    with pytest.raises(SourceError, match=r"gone\.csv does not exist"):
        count_records(table)
