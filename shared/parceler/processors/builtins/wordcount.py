"""``wordcount``: streaming word frequencies of text files.

A word is a run of letters, digits and underscores, with inner apostrophes kept
(``don't``), lower-cased unless ``lowercase`` is false. Text is decoded as UTF-8 (invalid
bytes become U+FFFD) about a million characters at a time, each block ending on a line
break, so memory is the vocabulary plus one block, not the file. Blocks are split into
candidates at whitespace and ASCII punctuation and counted; the distinct candidates are
lower-cased and cut into words once per group (:func:`settle`), the same words the regex
``_WORD`` finds in the lower-cased text.

Group value: ``{"total_words": N, "words": {word: count, ...}}`` (one counter for all the
group's files) — ``sum`` merges groups exactly. ``top`` (default None: keep all) trims a
*group's* ``words`` to its ``top`` most frequent, which makes the job-level counts
approximate; present a top list with :func:`top_words` instead.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parceler.processors.builtins.options import bad_option, reject_unknown
from parceler.processors.context import FileRef, GroupContext

NAME = "wordcount"
_SIGMA = "\u03a3"  # the one character whose lower case depends on its context (Final_Sigma)
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")  # inner ASCII or typographic apostrophe
# ASCII bytes that are neither word characters nor the apostrophe become spaces; every
# other byte (the apostrophe, word characters, UTF-8's non-ASCII bytes) stays.
_WORD_OR_APOSTROPHE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'")
_ASCII_SEPARATORS_TO_SPACE = bytes(
    byte if byte in _WORD_OR_APOSTROPHE or byte >= 0x80 else 0x20 for byte in range(256)
)
# Characters per findall: one call per block instead of per line is ~30% faster on 100 KB
# files (bench/results/wordcount.md), and memory stays bounded on huge files.
_BLOCK_CHARS = 1 << 20


@dataclass(frozen=True, slots=True)
class WordcountOptions:
    """``top``: trim each group's words to this many (None keeps all); ``lowercase``."""

    top: int | None = None
    lowercase: bool = True


def parse_options(options: Mapping[str, Any]) -> WordcountOptions:
    """Validate the options (SpecError on unknown keys or bad types)."""
    reject_unknown(NAME, options, ("top", "lowercase"))
    top = options.get("top")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise bad_option(NAME, "top", top, "a positive integer or null")
    lowercase = options.get("lowercase", True)
    if not isinstance(lowercase, bool):
        raise bad_option(NAME, "lowercase", lowercase, "true or false")
    return WordcountOptions(top=top, lowercase=lowercase)


def count_words(
    files: list[FileRef], ctx: GroupContext, options: WordcountOptions
) -> dict[str, Any]:
    """Count the words of the group's files into one counter, file by file.

    A group processor rather than one value per file merged by ``sum``: merging 30,000-word
    dictionaries file by file cost a third as much as counting them. The deadline is
    checked before each file, as for per-file processors.
    """
    counts: Counter[str] = Counter()
    for file in files:
        ctx.check_deadline(file.uri)
        with file.open() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
            while block := text.read(_BLOCK_CHARS):
                block += text.readline()  # end on a line break: no word is cut in two
                if options.lowercase and _SIGMA in block:
                    block = block.lower()  # Σ's lower case depends on its neighbours
                counts.update(candidates(block))
    words = settle(counts, lowercase=options.lowercase)
    return {"total_words": words.total(), "words": dict(words)}


def candidates(text: str) -> list[str]:
    """Split ``text`` into candidate words: runs of anything but whitespace and ASCII
    punctuation (one C-speed ``translate`` and ``split``; ~2x faster than the regex).

    Every word the regex :data:`_WORD` finds in ``text`` lies inside one candidate, and a
    candidate holds exactly the words the regex finds in it: a match never includes
    whitespace or ASCII punctuation (neither is ``\\w`` nor an apostrophe), so cutting the
    text there changes no match. :func:`settle` turns counted candidates into words.
    """
    return text.encode("utf-8").translate(_ASCII_SEPARATORS_TO_SPACE).decode("utf-8").split()


def settle(candidate_counts: Counter[str], *, lowercase: bool) -> Counter[str]:
    """The words of counted candidates: ``Counter(_WORD.findall(text.lower()))`` of the text
    they came from (without ``.lower()`` unless ``lowercase``). O(distinct candidates).

    Each candidate is lower-cased here, once per distinct key, instead of the whole text:
    lower-casing maps no character to whitespace or ASCII punctuation, so the candidates'
    boundaries are the same, and it is per character except for Greek capital sigma
    (final or not by its neighbours), so text holding Σ is lower-cased whole before it is
    split (``count_words``); lowering is idempotent. ``str.isalnum`` is exactly ``\\w``
    without ``_`` (both are Unicode alphabetic or numeric), so an alphanumeric key is one
    whole word; the rest (apostrophes, ``_``, non-ASCII punctuation or spaces, combining
    marks: a few keys per vocabulary, not per word) go through the regex.
    """
    words: Counter[str] = Counter()
    for candidate, n in candidate_counts.items():
        key = candidate.lower() if lowercase else candidate
        if key.isalnum():
            words[key] += n
        else:
            for word in _WORD.findall(key):
                words[word] += n
    return words


def finish_group(value: Any, options: WordcountOptions) -> Any:
    """Trim the group's ``words`` to the ``top`` most frequent, if configured."""
    if options.top is None or not isinstance(value, dict) or "words" not in value:
        return value
    return {**value, "words": dict(top_words(value, options.top))}


def top_words(value: Mapping[str, Any], n: int) -> list[tuple[str, int]]:
    """The ``n`` most frequent ``(word, count)`` pairs of a wordcount value.

    Ties are broken alphabetically, so the result is deterministic.
    """
    words: Mapping[str, int] = value.get("words") or {}
    ranked = sorted(words.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]
