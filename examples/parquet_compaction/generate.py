"""Generate many small Parquet files: the "small files problem" that parquet-compact fixes.

Each file is a few minutes of readings from a fleet of sensors, as a streaming ingester
would flush them: one small row group per file, all files with one explicit schema (no
inference, so compaction never meets a type mismatch). Row counts are skewed (lognormal)
so the planner has something to balance. Same arguments → byte-identical files.

    python examples/parquet_compaction/generate.py --out build/parquet_small --files 2000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("temperature_c", pa.float64()),
        pa.field("humidity_pct", pa.float32()),
        pa.field("ok", pa.bool_(), nullable=False),
    ]
)
_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_FLUSH_MS = 5 * 60 * 1000  # one file per five minutes of readings


def generate(out: Path, n_files: int = 2000, median_rows: int = 300, seed: int = 7) -> int:
    """Write ``n_files`` small Parquet files under ``out``; return the total row count.

    Args:
        out: folder to write ``part-NNNNNN.parquet`` into (created).
        n_files: how many files.
        median_rows: median rows per file (lognormal, sigma 0.8).
        seed: the generator's seed.

    Returns:
        Rows over all files: a compacted output must hold exactly as many.
    """
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    rows_per_file = np.clip(rng.lognormal(np.log(median_rows), 0.8, n_files), 1, 50 * median_rows)
    devices = np.array([f"sensor-{i:04d}" for i in range(200)])
    total = 0
    for i, n_rows in enumerate(rows_per_file.astype(int)):
        ts = np.sort(rng.integers(0, _FLUSH_MS, n_rows)) + _START_MS + i * _FLUSH_MS
        temperature = np.round(rng.normal(21.0, 4.0, n_rows), 2)
        missing = rng.random(n_rows) < 0.02  # a few dropped readings: nulls, not NaN
        table = pa.table(
            {
                "device_id": rng.choice(devices, n_rows),
                "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
                "temperature_c": pa.array(temperature, pa.float64(), mask=missing),
                "humidity_pct": rng.uniform(20, 80, n_rows).astype(np.float32),
                "ok": rng.random(n_rows) > 0.01,
            },
            schema=SCHEMA,
        )
        pq.write_table(table, out / f"part-{i:06d}.parquet", compression="zstd")
        total += n_rows
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/parquet_small"))
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--median-rows", type=int, default=300)
    args = parser.parse_args()
    rows = generate(args.out, args.files, args.median_rows)
    size = sum(p.stat().st_size for p in args.out.glob("*.parquet"))
    print(f"wrote {args.files} files ({size / 1e6:.1f} MB, {rows:,} rows) to {args.out}")


if __name__ == "__main__":
    main()
