"""Test helper: write small local files and return them as a data-file table."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from parceler.models import DATA_FILE_SCHEMA


def local_files(tmp_path: Path, contents: dict[str, bytes]) -> pa.Table:
    """Write ``contents`` under ``tmp_path/in`` and return their rows (no etag, no n_record)."""
    rows = []
    for name, body in contents.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        rows.append({"uri": str(path), "size": len(body), "n_record": None, "etag": None})
    return pa.Table.from_pylist(rows, schema=DATA_FILE_SCHEMA)
