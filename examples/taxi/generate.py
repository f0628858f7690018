"""Generate a deterministic NYC-taxi-like dataset: CSV files with skewed sizes and a header.

Each file is one "day" of trips with the columns of the public yellow-cab CSVs that the
passenger-count example needs. Sizes are skewed (lognormal row counts) so the planner has
something to balance. Same arguments → byte-identical files.

    python examples/taxi/generate.py --out build/taxi --files 300
"""

from __future__ import annotations

import argparse
import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np

HEADER = (
    "vendor_id", "pickup_datetime", "dropoff_datetime", "passenger_count",
    "trip_distance", "payment_type", "fare_amount", "tip_amount", "total_amount",
)  # fmt: skip
# Roughly the shape of real yellow-cab passenger counts: mostly 1, a long tail to 6.
PASSENGER_WEIGHTS = np.array([0.01, 0.70, 0.14, 0.04, 0.02, 0.05, 0.04])


def generate(
    out: Path, n_files: int = 300, median_rows: int = 400, seed: int = 2009
) -> Counter[str]:
    """Write ``n_files`` CSVs under ``out`` and return the true passenger-count histogram.

    Args:
        out: folder to write ``trips-YYYY-DDD.csv`` files into (created).
        n_files: how many files.
        median_rows: median rows per file (lognormal, sigma 1.0, so a few files are 10x bigger).
        seed: the generator's seed.

    Returns:
        ``{passenger_count: trips}`` over all files, computed while writing.
    """
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    truth: Counter[str] = Counter()
    rows_per_file = np.clip(rng.lognormal(np.log(median_rows), 1.0, n_files), 5, 40 * median_rows)
    for day, n_rows in enumerate(rows_per_file.astype(int)):
        passengers = rng.choice(len(PASSENGER_WEIGHTS), size=n_rows, p=PASSENGER_WEIGHTS)
        distance = np.round(rng.gamma(2.0, 1.6, n_rows), 2)
        fare = np.round(2.5 + distance * 2.5, 2)
        tip = np.round(fare * rng.choice([0.0, 0.15, 0.2], n_rows), 2)
        minutes = rng.integers(0, 1440, n_rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(n_rows):
            start = f"2009-{1 + day // 28 % 12:02d}-{1 + day % 28:02d} {minutes[i] // 60:02d}:{minutes[i] % 60:02d}:00"
            writer.writerow(("VTS", start, start, int(passengers[i]), distance[i], "CASH",
                             fare[i], tip[i], round(float(fare[i] + tip[i]), 2)))  # fmt: skip
        truth.update(str(int(p)) for p in passengers)
        (out / f"trips-2009-{day:03d}.csv").write_text(buffer.getvalue())
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/taxi"))
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--median-rows", type=int, default=400)
    args = parser.parse_args()
    truth = generate(args.out, args.files, args.median_rows)
    print(f"wrote {args.files} files to {args.out}: {sum(truth.values()):,} trips")


if __name__ == "__main__":
    main()
