"""load_source dispatch for .json sources: a manifest summary is a source; other JSON is not."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from parceler.errors import SourceError
from parceler.manifest import write_manifest
from parceler.models import DATA_FILE_SCHEMA
from parceler.sources import load_source


def test_a_manifest_summary_is_a_source(tmp_path: Path) -> None:
    rows = [
        {"uri": "s3://b/z", "size": 2, "n_record": 5, "etag": "e"},
        {"uri": "s3://b/a", "size": 1, "n_record": None, "etag": None},
    ]
    summary = tmp_path / "result.json"
    write_manifest(pa.Table.from_pylist(rows, schema=DATA_FILE_SCHEMA), str(summary))
    out = load_source(str(summary), exclude=["*/z"])
    assert out.to_pylist() == [rows[1]]


def test_other_json_is_refused_naming_the_source(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(SourceError, match=r"settings\.json is neither an S3 Inventory"):
        load_source(str(path))
    path.write_text("{not json")
    with pytest.raises(SourceError, match=r"settings\.json is not valid JSON"):
        load_source(str(path))


def test_a_missing_json_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"manifest\.json does not exist"):
        load_source(str(tmp_path / "manifest.json"))
