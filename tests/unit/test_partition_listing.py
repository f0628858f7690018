"""bench/listing.py: the benchmarks' synthetic listing is deterministic and well formed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from bench import listing as bench_listing
from parceler.models import DATA_FILE_SCHEMA


def test_listing_is_deterministic_and_a_prefix_of_longer_ones() -> None:
    small = bench_listing.listing(1_000)
    assert small.schema.equals(DATA_FILE_SCHEMA)
    assert small.equals(bench_listing.listing(1_000))
    assert bench_listing.listing(2_500).slice(0, 1_000).equals(small)
    assert not small.equals(bench_listing.listing(1_000, seed=1))


def test_listing_rows_have_the_documented_shape() -> None:
    table = bench_listing.listing(20_000)
    uris = table.column("uri").to_pylist()
    assert uris[0] == "s3://bench-bucket/data/part-00000000.bin"
    assert uris[12_345] == "s3://bench-bucket/data/part-00012345.bin"
    assert all(re.fullmatch(r"[0-9a-f]{32}", e) for e in table.column("etag").to_pylist())
    assert len(set(table.column("etag").to_pylist())) == 20_000
    size = table.column("size").to_numpy()
    assert size.min() >= 1024 and size.max() <= 5 * 2**30
    assert 15e6 < np.median(size) < 25e6  # median 20 MB
    assert np.array_equal(table.column("n_record").to_numpy(), np.maximum(1, size // 256))


def test_listing_cli_writes_parquet_csv_and_jsonl(tmp_path: Path) -> None:
    for name in ("l.parquet", "l.csv", "l.jsonl"):
        bench_listing.main(["--n", "50", "--out", str(tmp_path / name)])
    assert pq.read_table(tmp_path / "l.parquet").equals(bench_listing.listing(50))
    assert (tmp_path / "l.csv").read_text().count("\n") == 51
    first = (tmp_path / "l.jsonl").read_text().splitlines()[0]
    assert first.startswith('{"uri": "s3://bench-bucket/data/part-00000000.bin", "size": ')
