"""Listing files (CSV, JSONL, Parquet, gzip) through load_source, and their error messages."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parceler.errors import EmptySourceError, SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources import load_source

ROWS = [
    {"uri": "s3://b/z.csv", "size": 30, "n_record": 3, "etag": "e3"},
    {"uri": "s3://b/a.csv", "size": 10, "n_record": None, "etag": None},
    {"uri": "s3://b/m.json", "size": 20, "n_record": 2, "etag": "e2"},
]
SORTED = sorted(ROWS, key=lambda r: str(r["uri"]))


def _csv(rows: list[dict[str, object]], header: str = "uri,size,n_record,etag") -> str:
    names = header.split(",")
    lines = [header]
    for row in rows:
        lines.append(",".join("" if row.get(n) is None else str(row.get(n)) for n in names))
    return "\n".join(lines) + "\n"


def test_csv_listing(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text(_csv(ROWS))
    out = load_source(str(path))
    assert out.schema == DATA_FILE_SCHEMA
    assert out.to_pylist() == SORTED


def test_csv_columns_in_any_order_extra_ignored_optional_absent(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text("owner,size,uri\nann,10,s3://b/a.csv\nbob,20,s3://b/m.json\n")
    out = load_source(path.as_uri())
    assert out.to_pylist() == [
        {"uri": "s3://b/a.csv", "size": 10, "n_record": None, "etag": None},
        {"uri": "s3://b/m.json", "size": 20, "n_record": None, "etag": None},
    ]


def test_jsonl_and_gzipped_jsonl(tmp_path: Path) -> None:
    text = "".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in ROWS)
    (tmp_path / "files.jsonl").write_text(text)
    (tmp_path / "files.ndjson.gz").write_bytes(gzip.compress(text.encode()))
    assert load_source(str(tmp_path / "files.jsonl")).to_pylist() == SORTED
    assert load_source(str(tmp_path / "files.ndjson.gz")).to_pylist() == SORTED


def test_gzipped_csv(tmp_path: Path) -> None:
    (tmp_path / "files.csv.gz").write_bytes(gzip.compress(_csv(ROWS).encode()))
    assert load_source(str(tmp_path / "files.csv.gz")).to_pylist() == SORTED


def test_parquet_with_narrow_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "uri": pa.array([r["uri"] for r in ROWS], pa.large_string()),
            "size": pa.array([r["size"] for r in ROWS], pa.int32()),
            "n_record": pa.array([r["n_record"] for r in ROWS], pa.float64()),
            "etag": [r["etag"] for r in ROWS],
        }
    )
    pq.write_table(table, tmp_path / "files.parquet")
    out = load_source(str(tmp_path / "files.parquet"))
    assert out.schema == DATA_FILE_SCHEMA
    assert out.to_pylist() == SORTED


def test_include_on_a_listing_matches_the_uri(tmp_path: Path) -> None:
    (tmp_path / "files.csv").write_text(_csv(ROWS))
    out = load_source(str(tmp_path / "files.csv"), include=["s3://b/*.csv"])
    assert out.column("uri").to_pylist() == ["s3://b/a.csv", "s3://b/z.csv"]


def test_csv_bad_size_names_row_and_uri(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text("uri,size\ns3://b/a,1\ns3://b/b,1.5\ns3://b/c,3\ns3://b/d,big\n")
    with pytest.raises(SourceError, match=r"row 2 \(s3://b/b\), row 4 \(s3://b/d\)") as info:
        load_source(str(path))
    assert str(path) in str(info.value)


def test_csv_negative_size(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text("uri,size\ns3://b/a,1\ns3://b/b,-4\n")
    with pytest.raises(SourceError, match=r"negative size in 1 row\(s\): row 2"):
        load_source(str(path))


def test_jsonl_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "files.jsonl"
    path.write_text('{"uri": "s3://b/a", "size": 1}\n{"uri": "s3://b/b", "size": "2"}\nnot json\n')
    with pytest.raises(SourceError, match=r"2 malformed line\(s\): line 2: size='2'.*line 3"):
        load_source(str(path))


def test_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text("uri,bytes\ns3://b/a,1\n")
    with pytest.raises(SourceError, match=r"no column\(s\) \['size'\]; it has \['uri', 'bytes'\]"):
        load_source(str(path))
    jsonl = tmp_path / "files.jsonl"
    jsonl.write_text('{"path": "s3://b/a", "size": 1}\n')
    with pytest.raises(SourceError, match=r"no column\(s\) \['uri'\]"):
        load_source(str(jsonl))


def test_missing_listing_names_the_uri(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(SourceError, match=r"nope\.parquet does not exist"):
        load_source(str(path))


def test_unparseable_listing_names_the_uri(tmp_path: Path) -> None:
    path = tmp_path / "files.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(SourceError, match=r"files\.parquet cannot be parsed"):
        load_source(str(path))
    bad_gz = tmp_path / "files.csv.gz"
    bad_gz.write_bytes(b"plain text")
    with pytest.raises(SourceError, match=r"not valid gzip"):
        load_source(str(bad_gz))


def test_header_only_listing_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text("uri,size\n")
    with pytest.raises(EmptySourceError, match=r"files\.csv holds no data files: 0 rows listed"):
        load_source(str(path))


def test_duplicate_rows_in_a_listing_warn(tmp_path: Path) -> None:
    path = tmp_path / "files.csv"
    path.write_text("uri,size,etag\ns3://b/a,1,x\ns3://b/a,1,x\n")
    with pytest.warns(UserWarning, match="1 duplicate"):
        assert load_source(str(path)).num_rows == 1


@pytest.mark.parametrize("column", ["size", "n_record"])
def test_parquet_numbers_stored_as_text_are_refused_like_jsonl(tmp_path: Path, column: str) -> None:
    numbers = {"size": pa.array([1, 2], pa.int64()), "n_record": pa.array([3, 4], pa.int64())}
    numbers[column] = pa.array(["1", "2"], pa.string())
    table = pa.table({"uri": ["s3://b/a", "s3://b/b"], **numbers})
    pq.write_table(table, tmp_path / "files.parquet")
    with pytest.raises(SourceError, match=f"column '{column}' is stored as text"):
        load_source(str(tmp_path / "files.parquet"))
    # the same listing as JSONL is refused too: one rule for every typed format
    lines = [f'{{"uri": "s3://b/{n}", "size": "1", "n_record": 1}}' for n in "ab"]
    (tmp_path / "files.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match="is not an integer"):
        load_source(str(tmp_path / "files.jsonl"))


def test_a_listing_with_relative_or_http_uris_is_refused_naming_the_row(tmp_path: Path) -> None:
    (tmp_path / "files.csv").write_text("uri,size\ns3://b/a,1\nhttp://h/b,2\ndata/c,3\n")
    with pytest.raises(SourceError, match=r"2 row\(s\): row 2 \(http://h/b\), row 3 \(data/c\)"):
        load_source(str(tmp_path / "files.csv"))
