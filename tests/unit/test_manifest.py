"""Manifest write/read/verify on local files, bad input, and s3manifesto 1.0 interop."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parceler import manifest, storage
from parceler.errors import ManifestError, ManifestNotFoundError
from parceler.fingerprint import fingerprint
from parceler.manifest import (
    read_manifest,
    read_summary,
    summarize,
    write_manifest,
    write_manifests,
)
from parceler.models import DATA_FILE_SCHEMA

FIXTURES = Path(__file__).parent.parent / "fixtures" / "s3manifesto"


def files(n: int = 3, *, records: bool = True) -> pa.Table:
    return pa.table(
        {
            "uri": [f"s3://b/data/{i}.csv" for i in range(n)],
            "size": [100 * (i + 1) for i in range(n)],
            "n_record": [10 * (i + 1) if records else None for i in range(n)],
            "etag": [f"etag{i}" if i % 2 else None for i in range(n)],
        },
        schema=DATA_FILE_SCHEMA,
    )


def test_round_trip(tmp_path: Path) -> None:
    uri = str(tmp_path / "m" / "manifest.json")
    table = files(5)
    written = write_manifest(
        table, uri, parent_fingerprint="fp1-sha256:00", group_index=2, group_count=7,
        details={"job_id": "j1"},
    )  # fmt: skip
    assert written.data_uri == str(tmp_path / "m" / "manifest.parquet")
    assert (written.n_files, written.total_size, written.total_records) == (5, 1500, 150)
    assert written.fingerprint == fingerprint(table)
    loaded = read_manifest(uri)
    assert loaded.summary == written
    assert loaded.table.equals(table)  # row order kept, schema exact
    assert loaded.table.schema == DATA_FILE_SCHEMA
    assert read_summary(uri) == written


def test_data_is_written_before_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[tuple[str, str | None]] = []
    real = storage.write_bytes

    def recording(uri: str, data: bytes, **kwargs: Any) -> None:
        order.append((Path(uri).name, kwargs.get("content_type")))
        real(uri, data, **kwargs)

    monkeypatch.setattr(storage, "write_bytes", recording)
    write_manifest(files(), str(tmp_path / "manifest.json"))
    assert order == [
        ("manifest.parquet", "application/vnd.apache.parquet"),
        ("manifest.json", "application/json"),
    ]


def test_data_write_failure_leaves_no_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(uri: str, data: bytes, **kwargs: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(storage, "write_bytes", broken)
    with pytest.raises(OSError):
        write_manifest(files(), str(tmp_path / "manifest.json"))
    with pytest.raises(ManifestNotFoundError):
        read_manifest(str(tmp_path / "manifest.json"))


def test_write_manifests_equals_write_manifest_of_each_slice(tmp_path: Path) -> None:
    table = files(7, records=True)
    table = table.set_column(2, "n_record", pa.array([1, None, 3, 4, 5, 6, 7], pa.int64()))
    offsets = [0, 2, 2, 5, 7]  # an empty range too
    uris = [str(tmp_path / "many" / f"{i}.json") for i in range(4)]
    written = write_manifests(
        table, offsets, uris, first_group_index=10, group_count=20,
        parent_fingerprint="fp1-sha256:00", details={"job_id": "j"}, in_place=True,
    )  # fmt: skip
    for i, (start, stop) in enumerate(pairwise(offsets)):
        one = write_manifest(
            table.slice(start, stop - start), str(tmp_path / "one" / f"{i}.json"),
            group_index=10 + i, group_count=20, parent_fingerprint="fp1-sha256:00",
            details={"job_id": "j"},
        )  # fmt: skip
        same = {"data_uri": written[i].data_uri, "created_at": written[i].created_at}
        assert written[i] == one.model_copy(update=same)
        assert read_manifest(uris[i]).table.equals(table.slice(start, stop - start))
    assert [w.total_records for w in written] == [None, 0, 12, 13]


def test_write_manifests_rejects_unconformed_tables_and_mismatched_offsets(
    tmp_path: Path,
) -> None:
    uris = [str(tmp_path / "a.json")]
    with pytest.raises(ManifestError, match="not conformed"):
        write_manifests(files(2).select(["uri", "size"]), [0, 2], uris)
    with pytest.raises(ManifestError, match="one more offset"):
        write_manifests(files(2), [0, 1, 2], uris)
    with pytest.raises(ManifestError, match="offsets must rise"):
        write_manifests(files(2), [0, 3], uris)
    assert list(tmp_path.iterdir()) == []


def test_small_and_large_manifests_round_trip_with_their_codecs(tmp_path: Path) -> None:
    for n in (3, manifest._SMALL_TABLE_ROWS):
        uri = str(tmp_path / f"m{n}.json")
        summary = write_manifest(files(n), uri)
        codec = pq.ParquetFile(summary.data_uri).metadata.row_group(0).column(0).compression
        assert codec == ("SNAPPY" if n < manifest._SMALL_TABLE_ROWS else "ZSTD")
        assert read_manifest(uri).table.equals(files(n))


def test_explicit_data_uri_and_summary_uri_rule(tmp_path: Path) -> None:
    data_uri = str(tmp_path / "elsewhere" / "rows.parquet")
    summary = write_manifest(files(), str(tmp_path / "s.json"), data_uri=data_uri)
    assert summary.data_uri == data_uri
    assert read_manifest(str(tmp_path / "s.json")).table.num_rows == 3
    with pytest.raises(ManifestError, match=r"\.json"):
        write_manifest(files(), str(tmp_path / "summary.txt"))


def test_empty_manifest(tmp_path: Path) -> None:
    uri = str(tmp_path / "empty.json")
    summary = write_manifest(DATA_FILE_SCHEMA.empty_table(), uri)
    assert (summary.n_files, summary.total_size, summary.total_records) == (0, 0, 0)
    assert read_manifest(uri).table.num_rows == 0


def test_total_records_unknown_when_any_count_is_missing() -> None:
    table = files(3)
    assert summarize(table)[2] == 60
    partial = table.set_column(2, "n_record", pa.array([1, None, 3], pa.int64()))
    assert summarize(partial)[2] is None


def test_compatible_types_are_cast_and_optional_columns_filled(tmp_path: Path) -> None:
    narrow = pa.table(
        {
            "size": pa.array([5, 6], pa.int32()),
            "uri": pa.array(["s3://b/x", "s3://b/y"], pa.large_string()),
        }
    )
    uri = str(tmp_path / "m.json")
    write_manifest(narrow, uri)
    loaded = read_manifest(uri).table
    assert loaded.schema == DATA_FILE_SCHEMA
    assert loaded.column("etag").null_count == 2
    assert loaded.column("size").to_pylist() == [5, 6]


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({"size": [1]}, "required column 'uri'"),
        ({"uri": ["a"], "size": [1], "colour": ["red"]}, "unknown column"),
        ({"uri": ["a"], "size": ["1"]}, "column 'size' has type string"),
        ({"uri": ["a"], "size": [1.5]}, "column 'size' has type double"),
        ({"uri": ["a"], "size": pa.array([None], pa.int64())}, "'size' has 1 null"),
        ({"uri": ["a"], "size": [None]}, "'size' has type null"),
        ({"uri": ["a"], "size": [-1]}, "negative 'size'"),
        ({"uri": [""], "size": [1]}, "empty 'uri'"),
        ({"uri": ["a"], "size": pa.array([2**63], pa.uint64())}, "does not fit"),
    ],
)
def test_bad_tables_are_rejected_on_write(
    tmp_path: Path, columns: dict[str, Any], problem: str
) -> None:
    uri = str(tmp_path / "m.json")
    with pytest.raises(ManifestError, match=problem) as info:
        write_manifest(pa.table(columns), uri)
    assert uri in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_missing_summary_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ManifestNotFoundError, match=r"nope\.json"):
        read_manifest(str(tmp_path / "nope.json"))
    with pytest.raises(ManifestNotFoundError):
        read_summary(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"PAR1\x00\x01", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"hello": "world"}', "not a parceler manifest summary"),
        (b'{"schema_version": 99, "fingerprint": "x"}', "schema_version 99"),
    ],
)
def test_bad_summaries(tmp_path: Path, body: bytes, problem: str) -> None:
    uri = str(tmp_path / "bad.json")
    Path(uri).write_bytes(body)
    with pytest.raises(ManifestError, match=problem) as info:
        read_manifest(uri)
    assert uri in str(info.value)


def test_summary_field_errors_are_named(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.json")
    write_manifest(files(), uri)
    raw = json.loads(Path(uri).read_text())
    raw["n_files"] = -1
    Path(uri).write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="n_files"):
        read_summary(uri)


def test_missing_or_broken_data(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.json")
    write_manifest(files(), uri)
    data = tmp_path / "m.parquet"
    data.write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="not readable Parquet"):
        read_manifest(uri)
    data.unlink()
    with pytest.raises(ManifestError, match="does not exist") as info:
        read_manifest(uri)
    assert not isinstance(info.value, ManifestNotFoundError)


def test_data_with_wrong_types_is_rejected(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.json")
    write_manifest(files(), uri)
    pq.write_table(pa.table({"uri": ["a"], "size": ["12"]}), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="'size' has type string") as info:
        read_manifest(uri)
    assert "m.parquet" in str(info.value)


def test_verify_names_every_difference(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.json")
    write_manifest(files(3), uri)
    shutil.copy(tmp_path / "m.parquet", tmp_path / "saved.parquet")
    write_manifest(files(2), str(tmp_path / "other.json"), data_uri=str(tmp_path / "m.parquet"))
    with pytest.raises(ManifestError) as info:
        read_manifest(uri)
    message = str(info.value)
    for name in ("n_files", "total_size", "total_records", "fingerprint"):
        assert name in message
    assert "summary says 3, data has 2" in message
    assert read_manifest(uri, verify=False).table.num_rows == 2


def test_verify_catches_a_changed_etag_alone(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.json")
    table = files(3)
    write_manifest(table, uri)
    changed = table.set_column(3, "etag", pa.array(["x", "y", "z"]))
    pq.write_table(changed, tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="fingerprint") as info:
        read_manifest(uri)
    assert "n_files" not in str(info.value)


def test_bench_sized_encoding_is_compact(tmp_path: Path) -> None:
    # Guards the Parquet options (dictionary off, delta encodings): a regression to defaults
    # roughly doubles the bytes per file. Not a timing test.
    n = 20_000
    table = pa.table(
        {
            "uri": [f"s3://bench-bucket/data/part-{i:08d}.bin" for i in range(n)],
            "size": [(i * 7919) % 10**9 for i in range(n)],
            "n_record": [(i * 7919) % 10**9 // 256 for i in range(n)],
            "etag": [f"{(i * 2654435761) % 2**128:032x}" for i in range(n)],
        }
    )
    write_manifest(table, str(tmp_path / "m.json"))
    assert (tmp_path / "m.parquet").stat().st_size / n <= 40


# -- s3manifesto 1.0 ---------------------------------------------------------------------


def s3manifesto_copy(tmp_path: Path, **changes: Any) -> str:
    data = tmp_path / "manifest-data.parquet"
    shutil.copy(FIXTURES / "manifest-data.parquet", data)
    raw = json.loads((FIXTURES / "manifest-summary.json").read_text())
    raw["manifest"] = str(data)
    raw.update(changes)
    summary = tmp_path / "manifest-summary.json"
    summary.write_text(json.dumps(raw, indent=4))
    return str(summary)


def test_reads_an_s3manifesto_manifest(tmp_path: Path) -> None:
    uri = s3manifesto_copy(tmp_path)
    loaded = read_manifest(uri)
    assert loaded.table.schema == DATA_FILE_SCHEMA
    assert loaded.table.column("uri").to_pylist() == [
        f"s3://parceler-test/input/file{i}.json" for i in (1, 2, 3)
    ]
    summary = loaded.summary
    assert (summary.n_files, summary.total_size, summary.total_records) == (3, 6_000_000, 6000)
    assert summary.fingerprint == fingerprint(loaded.table)
    assert summary.data_uri == str(tmp_path / "manifest-data.parquet")
    assert summary.details["job"] == "nightly"
    assert summary.details["source_format"] == "s3manifesto-1.0"
    assert summary.details["s3manifesto"] == {"fingerprint": "0a1d7142e961d08dfc033e1ec2769f55"}
    again = read_summary(uri)
    assert again.model_dump(exclude={"created_at"}) == summary.model_dump(exclude={"created_at"})


def test_s3manifesto_totals_are_verified(tmp_path: Path) -> None:
    uri = s3manifesto_copy(tmp_path, size=5, n_record=7)
    with pytest.raises(ManifestError, match="size: summary says 5") as info:
        read_manifest(uri)
    assert "n_record: summary says 7" in str(info.value)
    assert read_manifest(uri, verify=False).summary.total_size == 6_000_000


def test_s3manifesto_unknown_totals_and_fingerprint_are_accepted(tmp_path: Path) -> None:
    uri = s3manifesto_copy(tmp_path, size=None, n_record=None, fingerprint="anything")
    assert read_manifest(uri).summary.n_files == 3


def test_s3manifesto_all_null_counts_and_missing_sizes(tmp_path: Path) -> None:
    # polars writes a column of Nones as the Null type.
    uri = s3manifesto_copy(tmp_path, n_record=None)
    pq.write_table(
        pa.table({"uri": ["s3://b/a"], "etag": ["e"], "size": [4], "n_record": pa.nulls(1)}),
        tmp_path / "manifest-data.parquet",
    )
    with pytest.raises(ManifestError, match="size: summary says 6000000, data has 4"):
        read_manifest(uri)
    assert read_manifest(uri, verify=False).summary.total_records is None
    pq.write_table(
        pa.table({"uri": ["s3://b/a"], "etag": ["e"], "size": pa.nulls(1, pa.int64())}),
        tmp_path / "manifest-data.parquet",
    )
    with pytest.raises(ManifestError, match="'size' has 1 null"):
        read_manifest(uri, verify=False)


def test_the_s3manifesto_fixture_matches_its_format() -> None:
    raw = json.loads((FIXTURES / "manifest-summary.json").read_text())
    assert set(raw) == {"manifest", "size", "n_record", "fingerprint", "details"}
    assert pq.read_schema(FIXTURES / "manifest-data.parquet").names == [
        "uri", "etag", "size", "n_record",
    ]  # fmt: skip
    assert manifest.S3MANIFESTO_FORMAT == "s3manifesto-1.0"


def test_conformed_fast_path_writes_the_same_manifest_and_refuses_a_foreign_schema(
    tmp_path: Path,
) -> None:
    rows = pa.table(
        {
            "uri": ["s3://b/a", "s3://b/b"],
            "size": [3, 4],
            "n_record": [None, None],
            "etag": ["x", None],
        },
        schema=DATA_FILE_SCHEMA,
    )
    checked = write_manifest(rows, str(tmp_path / "a.json"))
    fast = write_manifest(rows, str(tmp_path / "b.json"), conformed=True)
    assert (fast.fingerprint, fast.n_files, fast.total_size) == (
        checked.fingerprint, checked.n_files, checked.total_size,
    )  # fmt: skip
    assert read_manifest(str(tmp_path / "b.json")).table.equals(rows)
    loose = pa.table({"uri": ["s3://b/a"], "size": pa.array([3], pa.int32())})
    with pytest.raises(ManifestError, match="conformed=True"):
        write_manifest(loose, str(tmp_path / "c.json"), conformed=True)
