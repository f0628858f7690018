"""Generate deterministic random records for the distributed sort: text files of
``key,id,payload`` lines in random order.

``key`` is 16 lowercase hex digits (uniform, so string order is numeric order and the
sort's range partitions come out even); ``id`` numbers the records, so every record is
distinct; ``payload`` pads a record to ~100 bytes, as in TeraSort. Same arguments →
byte-identical files.

    python examples/sort_pipeline/generate.py --out build/sort --files 40
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

PAYLOAD_BYTES = 64
_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", np.uint8
)


def generate(out: Path, n_files: int = 40, records_per_file: int = 2_000, seed: int = 1987) -> int:
    """Write ``n_files`` files of ``records_per_file`` records under ``out``; return the
    number of records written.

    Args:
        out: folder to write ``records-NNNN.txt`` into (created).
        n_files: how many files.
        records_per_file: records in each file.
        seed: the generator's seed.
    """
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for number in range(n_files):
        keys = rng.integers(0, 1 << 64, size=records_per_file, dtype=np.uint64)
        payload = _ALPHABET[rng.integers(0, len(_ALPHABET), (records_per_file, PAYLOAD_BYTES))]
        first = number * records_per_file
        lines = [
            f"{int(key):016x},{first + i:010d},{row.tobytes().decode()}\n"
            for i, (key, row) in enumerate(zip(keys, payload, strict=True))
        ]
        (out / f"records-{number:04d}.txt").write_text("".join(lines), encoding="ascii")
    return n_files * records_per_file


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/sort"))
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--records", type=int, default=2_000, help="records per file")
    args = parser.parse_args()
    written = generate(args.out, args.files, args.records)
    print(f"wrote {args.files} files to {args.out}: {written:,} records")


if __name__ == "__main__":
    main()
