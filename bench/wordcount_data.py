"""Generate the word-count benchmark input: N deterministic text files of about S bytes each.

The vocabulary is 30,000 pronounceable pseudo-words (plus a few contractions and
non-ASCII words, so the tokeniser's apostrophe and Unicode rules are exercised) drawn
with Zipf-like frequencies (``p(rank) ∝ 1 / rank**1.1``), as natural text has. Sentences
start with a capital and end with punctuation; lines wrap at about 80 characters. Every
file has its own seed (``[seed, index]``), so file ``i`` is the same bytes whatever ``N``
is, and the same arguments give byte-identical folders.

    python -m bench.wordcount_data --out bench/data/wordcount --files 1000 --size 100KB
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

_ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "br", "ch", "dr", "fl", "gr", "pl", "sh", "st", "th", "tr")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_CODAS = ("", "", "", "n", "r", "s", "t", "l", "nd", "st")
_SPECIAL = ("don't", "it's", "o'clock", "café", "naïve", "über", "year_2024", "rock'n'roll")
VOCABULARY_SIZE = 30_000
ZIPF_EXPONENT = 1.1


def vocabulary(seed: int = 1) -> list[str]:
    """The benchmark's vocabulary, most frequent first (deterministic for ``seed``)."""
    rng = np.random.default_rng(seed)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY_SIZE - len(_SPECIAL):
        n_syllables = int(rng.integers(1, 4))
        word = "".join(
            _ONSETS[rng.integers(len(_ONSETS))]
            + _VOWELS[rng.integers(len(_VOWELS))]
            + _CODAS[rng.integers(len(_CODAS))]
            for _ in range(n_syllables)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    # The special words get mid-table ranks: frequent enough to appear in every file.
    for rank, special in zip(range(40, 40 + 7 * len(_SPECIAL), 7), _SPECIAL, strict=True):
        words.insert(rank, special)
    return words


def _text(rng: np.random.Generator, words: list[str], cdf: np.ndarray, size: int) -> str:
    """About ``size`` bytes of sentences (cut at a line end, so no word is split).

    Words are drawn in bulk by inverse-CDF sampling (one ``searchsorted`` per batch).
    """
    lines: list[str] = []
    line: list[str] = []
    line_len = total = 0
    while total < size:
        picks = np.searchsorted(cdf, rng.random(4096), side="right")
        ends = np.cumsum(rng.integers(4, 18, 600))  # sentence boundaries within the batch
        marks = rng.random(len(ends))
        starts = set((ends[:-1]).tolist()) | {0}
        end_marks = dict(zip(ends.tolist(), marks.tolist(), strict=True))
        for position, index in enumerate(picks.tolist()):
            word = words[index]
            if position in starts:
                word = word.capitalize()
            mark = end_marks.get(position + 1)
            if mark is not None:
                word += "." if mark < 0.8 else ("?" if mark < 0.9 else ",")
            if line_len + len(word) > 80:
                text = " ".join(line)
                lines.append(text)
                total += len(text.encode()) + 1
                line, line_len = [], 0
                if total >= size:
                    break
            line.append(word)
            line_len += len(word) + 1
    return "\n".join(lines) + "\n"


def generate(out: Path, n_files: int = 1000, size: int = 100_000, seed: int = 2024) -> int:
    """Write ``n_files`` text files ``words-NNNNN.txt`` of about ``size`` bytes under ``out``.

    Returns:
        The total bytes written.
    """
    out.mkdir(parents=True, exist_ok=True)
    words = vocabulary()
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    weights = ranks**-ZIPF_EXPONENT
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    total = 0
    for i in range(n_files):
        rng = np.random.default_rng([seed, i])
        data = _text(rng, words, cdf, size).encode()
        (out / f"words-{i:05d}.txt").write_bytes(data)
        total += len(data)
    return total


def _size(text: str) -> int:
    units = {"KB": 1000, "MB": 1_000_000, "B": 1}
    for suffix, factor in units.items():
        if text.upper().endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/data/wordcount"))
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=_size, default=100_000, help="bytes per file: 100KB")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    total = generate(args.out, args.files, args.size, args.seed)
    print(f"wrote {args.files} files ({total / 1e6:.1f} MB) to {args.out}")


if __name__ == "__main__":
    main()
