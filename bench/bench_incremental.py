"""How many groups an incremental re-run re-runs: stable plans against Best Fit Decreasing.

    python -m bench.bench_incremental --n 10000

A group is re-run when its exact set of files (uri, size, etag) — so its fingerprint and
identity — is not a group of the earlier plan. On the listing of ``bench/listing.py``
(10,000 files, lognormal sizes, 1 GB target), each scenario changes the files and plans
again with both packers:

- ``append``: new files whose uris sort after every old one (a new day's prefix);
- ``block``: new files in one contiguous uri range inside the old ones (a new sub-prefix);
- ``scatter``: new files with uris spread uniformly among the old ones (the worst case:
  a group re-runs when any file lands in it);
- ``etag``: one file's content changed, same size; ``resize``: one file's size changed.

Fill is group size / target over groups that are not a single oversized file, on the
base listing. Results are recorded in ``bench/results/incremental.md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from bench.listing import MEDIAN_SIZE, SIGMA, TARGET_SIZE, listing
from parceler.models import DATA_FILE_SCHEMA
from parceler.partition import Limits, Partition, partition, stable_partition

Packer = Callable[[pa.Table, Limits], Partition]
PACKERS: dict[str, Packer] = {"stable": stable_partition, "bfd": partition}
Group = frozenset[tuple[str, int, str]]


def groups_of(table: pa.Table, packer: Packer, limits: Limits) -> list[Group]:
    result = packer(table, limits)
    uris = table.column("uri").to_pylist()
    sizes = table.column("size").to_pylist()
    etags = table.column("etag").to_pylist()
    members: list[list[tuple[str, int, str]]] = [[] for _ in range(result.n_groups)]
    for row, g in enumerate(result.group_of.tolist()):
        members[g].append((uris[row], sizes[row], etags[row] or ""))
    return [frozenset(m) for m in members]


def fill(table: pa.Table, packer: Packer, limits: Limits) -> tuple[int, float, float]:
    result = packer(table, limits)
    lone_over = (result.n_files == 1) & (result.size > TARGET_SIZE)
    fills = result.size[~lone_over] / TARGET_SIZE
    return result.n_groups, float(fills.min()), float(fills.mean())


def new_rows(uris: list[str], seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    size = np.clip(rng.lognormal(np.log(MEDIAN_SIZE), SIGMA, len(uris)), 1024, 5 * 2**30)
    return pa.table(
        {
            "uri": uris,
            "size": size.astype(np.int64),
            "n_record": pa.array(np.maximum(1, size.astype(np.int64) // 256), pa.int64()),
            "etag": [f"new-{i:032x}" for i in range(len(uris))],
        },
        schema=DATA_FILE_SCHEMA,
    )


def scenarios(n: int) -> dict[str, pa.Table]:
    base = listing(n)
    rng = np.random.default_rng(42)
    out: dict[str, pa.Table] = {}
    for share in (0.01, 0.10):
        k = round(n * share)
        tag = f"+{share:.0%}"
        out[f"append {tag}"] = listing(n + k)  # listing(n) is a prefix of listing(n + k)
        at = int(rng.integers(0, n))
        block = [f"s3://bench-bucket/data/part-{at:08d}-new-{j:06d}.bin" for j in range(k)]
        out[f"block {tag}"] = pa.concat_tables([base, new_rows(block, 1)])
        spots = rng.choice(n, size=k, replace=False)
        scatter = [f"s3://bench-bucket/data/part-{i:08d}-new.bin" for i in sorted(spots)]
        out[f"scatter {tag}"] = pa.concat_tables([base, new_rows(scatter, 2)])
    which = int(rng.integers(0, n))
    etags = base.column("etag").to_pylist()
    etags[which] = "changed-content"
    out["etag of 1 file"] = base.set_column(3, "etag", pa.array(etags, pa.string()))
    sizes = base.column("size").to_numpy().copy()
    sizes[which] = int(sizes[which] * 1.1) + 1
    etags_resized = list(etags)
    out["size of 1 file +10%"] = base.set_column(1, "size", pa.array(sizes, pa.int64())).set_column(
        3, "etag", pa.array(etags_resized, pa.string())
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    limits = Limits(target_size=TARGET_SIZE)
    base = listing(args.n)
    print(f"{args.n:,} files, target 1 GB")
    print("| packer | groups | fill min | fill mean | pack time |")
    print("|---|---|---|---|---|")
    for name, packer in PACKERS.items():
        started = time.perf_counter()
        n_groups, low, mean = fill(base, packer, limits)
        took = time.perf_counter() - started
        print(f"| {name} | {n_groups} | {low:.1%} | {mean:.1%} | {took:.2f} s |")
    before = {name: set(groups_of(base, packer, limits)) for name, packer in PACKERS.items()}
    print()
    print("| change | stable: re-run / groups | stable % | BFD: re-run / groups | BFD % |")
    print("|---|---|---|---|---|")
    for label, table in scenarios(args.n).items():
        cells = []
        for name, packer in PACKERS.items():
            after = groups_of(table, packer, limits)
            rerun = sum(1 for g in after if g not in before[name])
            cells += [f"{rerun} / {len(after)}", f"{rerun / len(after):.1%}"]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
