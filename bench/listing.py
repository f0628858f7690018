"""Deterministic synthetic listings for benchmarks: ``python -m bench.listing --n 1000000 --out X``.

Row ``i`` is ``s3://bench-bucket/data/part-{i:08d}.bin``; its size is lognormal (median
20 MB, sigma 1.5) clipped to [1 KiB, 5 GiB]; ``n_record`` is ``max(1, size // 256)``; the
etag is 32 hex characters derived from ``(seed, i)``. Rows are drawn in blocks of
:data:`BLOCK` with a numpy Generator seeded by ``(seed, block)``, so a listing of n rows
is a prefix of every longer one and can be produced block by block (10M rows never exist
as Python objects). Rows come in uri order, as S3 lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from parceler.models import DATA_FILE_SCHEMA

BLOCK = 1_000_000
MEDIAN_SIZE = 20_000_000
SIGMA = 1.5
MIN_SIZE = 1024
MAX_SIZE = 5 * 2**30
TARGET_SIZE = 1_000_000_000  # the benchmarks' group target: 1 GB
_PREFIX = b"s3://bench-bucket/data/part-"
_SUFFIX = b".bin"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def listing(n: int, *, seed: int = 0) -> pa.Table:
    """The first ``n`` rows of the listing for ``seed``, as one ``DATA_FILE_SCHEMA`` table."""
    return pa.Table.from_batches(list(listing_batches(n, seed=seed)), schema=DATA_FILE_SCHEMA)


def listing_batches(n: int, *, seed: int = 0) -> Iterator[pa.RecordBatch]:
    """The same rows as :func:`listing`, one record batch per block of :data:`BLOCK`."""
    if not 0 <= n <= 10**8:
        raise ValueError("n must be in [0, 100_000_000] (uris have 8 digits)")
    for block, start in enumerate(range(0, n, BLOCK)):
        yield _block(seed, block, start, min(BLOCK, n - start))


def _block(seed: int, block: int, start: int, count: int) -> pa.RecordBatch:
    rng = np.random.default_rng([seed, block])
    raw = rng.lognormal(np.log(MEDIAN_SIZE), SIGMA, BLOCK)[:count]
    size = np.clip(raw, MIN_SIZE, MAX_SIZE).astype(np.int64)
    index = np.arange(start, start + count, dtype=np.int64)
    return pa.RecordBatch.from_arrays(
        [
            _uris(index),
            pa.array(size, pa.int64()),
            pa.array(np.maximum(1, size // 256), pa.int64()),
            _etags(index, seed),
        ],
        schema=DATA_FILE_SCHEMA,
    )


def _fixed_width_strings(chars: npt.NDArray[np.uint8]) -> pa.Array:
    """A string array from an (n, width) byte matrix, without Python objects per row."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    ).cast(pa.string())


def _uris(index: npt.NDArray[np.int64]) -> pa.Array:
    powers = 10 ** np.arange(7, -1, -1, dtype=np.int64)
    digits = ((index[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    n = len(index)
    prefix = np.broadcast_to(np.frombuffer(_PREFIX, dtype=np.uint8), (n, len(_PREFIX)))
    suffix = np.broadcast_to(np.frombuffer(_SUFFIX, dtype=np.uint8), (n, len(_SUFFIX)))
    return _fixed_width_strings(np.hstack([prefix, digits, suffix]))


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _etags(index: npt.NDArray[np.int64], seed: int) -> pa.Array:
    base = index.astype(np.uint64) * np.uint64(2) + np.uint64(seed) * np.uint64(1 << 40)
    words = np.stack([_splitmix64(base), _splitmix64(base + np.uint64(1))], axis=1)
    as_bytes = words.astype(">u8").view(np.uint8).reshape(len(index), 16)
    nibbles = np.empty((len(index), 32), dtype=np.uint8)
    nibbles[:, 0::2] = as_bytes >> 4
    nibbles[:, 1::2] = as_bytes & 0x0F
    return _fixed_width_strings(_HEX[nibbles])


def write(n: int, out: Path, *, seed: int = 0) -> None:
    """Write the listing as Parquet (zstd), CSV or JSONL, chosen by ``out``'s suffix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        with pq.ParquetWriter(out, DATA_FILE_SCHEMA, compression="zstd") as writer:
            for batch in listing_batches(n, seed=seed):
                writer.write_batch(batch)
    elif suffix == ".csv":
        with pacsv.CSVWriter(out, DATA_FILE_SCHEMA) as writer:
            for batch in listing_batches(n, seed=seed):
                writer.write_batch(batch)
    elif suffix in (".jsonl", ".ndjson"):
        with out.open("wb") as sink:
            for batch in listing_batches(n, seed=seed):
                sink.write(_jsonl(batch))
    else:
        raise SystemExit(f"unknown output format {out.suffix!r}: use .parquet, .csv or .jsonl")


def _jsonl(batch: pa.RecordBatch) -> bytes:
    """JSON lines, built column-wise (generated uris and etags need no escaping)."""
    parts = [
        '{"uri": "',
        batch.column("uri"),
        '", "size": ',
        pc.cast(batch.column("size"), pa.string()),
        ', "n_record": ',
        pc.cast(batch.column("n_record"), pa.string()),
        ', "etag": "',
        batch.column("etag"),
        '"}\n',
    ]
    lines = pc.binary_join_element_wise(*parts, "")
    return "".join(lines.to_pylist()).encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, required=True, help="number of files")
    parser.add_argument("--out", type=Path, required=True, help=".parquet, .csv or .jsonl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write(args.n, args.out, seed=args.seed)


if __name__ == "__main__":
    main()
