"""The word-count built-in's tokenizer per byte: the old regex ``findall`` vs ``candidates``.

    python -m bench.wordcount_data --out bench/data/wordcount --files 1000 --size 100KB
    python -m bench.bench_tokenizer --data bench/data/wordcount --files 200 --repeat 5

Both variants count the same files' text (already in memory) into one ``Counter`` per group, as ``count_words`` does: the old one
with ``Counter.update(_WORD.findall(text.lower()))``, the new one with
``Counter.update(candidates(text))`` (the text lower-cased first only when it holds Σ) and
one ``settle(..., lowercase=True)`` at the end. Runs alternate (old, new, old, new, …) so a load change on a
shared machine hits both; the best run of each is reported, and the counts must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from parceler.processors.builtins.wordcount import _SIGMA, _WORD, candidates, settle


def old(texts: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_WORD.findall(text.lower()))
    return counts


def new(texts: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(candidates(text.lower() if _SIGMA in text else text))
    return settle(counts, lowercase=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("bench/data/wordcount"))
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = sorted(p for p in args.data.iterdir() if p.is_file())[: args.files]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    n_bytes = sum(p.stat().st_size for p in paths)
    best = {"old": float("inf"), "new": float("inf")}
    results = {}
    for _ in range(args.repeat):
        for name, count in (("old", old), ("new", new)):
            started = time.perf_counter()
            results[name] = count(texts)
            best[name] = min(best[name], time.perf_counter() - started)
    if results["old"] != results["new"]:
        raise SystemExit("the counts differ: the new tokenizer is wrong")
    print(
        json.dumps(
            {
                "files": len(paths),
                "bytes": n_bytes,
                "old_seconds": round(best["old"], 3),
                "new_seconds": round(best["new"], 3),
                "old_ns_per_byte": round(best["old"] / n_bytes * 1e9, 2),
                "new_ns_per_byte": round(best["new"] / n_bytes * 1e9, 2),
                "speed_up": round(best["old"] / best["new"], 2),
                "words": results["new"].total(),
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
