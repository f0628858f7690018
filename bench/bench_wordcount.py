"""Word count over many text files: parceler's local mode vs a serial loop vs Lithops localhost.

The project's target (README): word count over 1,000 text files of ~100 KB, local mode
with 2 workers, timed as the whole command, is at most 2x a plain serial Python loop
computing the same counts in the same run, and at least 4x faster than Lithops 3.8's
localhost backend.

What is timed (wall clock, ``time.perf_counter``), after one untimed pass that reads every
file so all three start from a warm page cache:

(a) **serial**: a plain loop in this process: for each file, each line, lower-case and
    ``findall`` with the *same compiled regex* the ``wordcount`` built-in uses
    (``parceler.processors.builtins.wordcount._WORD``), reading UTF-8 with
    ``errors="replace"``. The target's baseline. For comparison, the same loop reading
    blocks of whole lines as the built-in does (one ``findall`` per ~1 MiB) is timed too.
(b) **parceler**: ``parceler run FOLDER --processor wordcount --local --workers 2 --json``
    as a subprocess: the whole command, including the emulator, planning, workers and
    aggregation. Skipped with a note while ``parceler run`` does not exist.
(c) **lithops**: a script run by a Python holding lithops (``--lithops-python``, default
    this one, with ``pip install -e '.[bench]'``) that builds a
    ``FunctionExecutor(backend="localhost", storage="localhost")`` from a config dict (no
    config file, no network) with ``worker_processes`` = ``--workers`` and runs
    ``map_reduce(count, paths, merge)`` with ``runtime`` = that venv's Python (lithops'
    default, ``python`` on PATH, may lack lithops); the built-in's algorithm (see below),
    so the two frameworks run the same per-file code. Timed as the whole
    subprocess, and inside it from executor creation to the reduced result. ``--lithops-chunk``
    files per call (1 is the idiomatic one call per file).

(a'') **serial split**: issue 13's baseline, ``Counter(open(f).read().split())`` file by
    file into one counter (whitespace words, no lower-casing: its counts are not the
    built-in's, so they are not compared).
(d) **parceler, warm** (``--warm``): ``parceler local up --workers N`` once, untimed, in a
    state folder of its own; then the whole ``parceler run FOLDER --processor wordcount
    --local`` command, which finds that stack and runs the job there (no emulator start),
    timed every run (the first run after ``up`` is reported, not dropped), each with
    ``--no-cache`` (a re-run of the same job would reuse the stack's results, counting
    nothing); ``local down`` at the end.

Every variant's counts but (a'')'s must equal the serial loop's, word for word, or the run
fails. Lithops runs the built-in's own per-file code (``candidates`` then ``settle`` per
call, as the built-in does per group) when its Python can import parceler (the default:
this Python, with ``pip install -e '.[bench]'``); otherwise the old regex algorithm.

    python -m bench.wordcount_data --out bench/data/wordcount --files 1000 --size 100KB
    python -m bench.bench_wordcount --data bench/data/wordcount --workers 2
    python -m bench.bench_wordcount --warm --skip-cold --repeat 3 \
        --lithops-chunk 50 --lithops-chunk 250 --lithops-chunk 500
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parceler.processors.builtins.wordcount import _BLOCK_CHARS, _WORD

DEFAULT_LITHOPS_PYTHON = sys.executable  # holds lithops with the bench extra

# Run by the lithops venv's Python. Placeholders are filled with json.dumps values.
_LITHOPS_SCRIPT = r"""
import io, json, re, sys, time
from collections import Counter

import lithops

WORD = re.compile(__PATTERN__)
PATHS = __PATHS__
CHUNK = __CHUNK__
BLOCK = __BLOCK__
WORKERS = __WORKERS__
VERSION = __VERSION__


def count(paths):
    # The wordcount built-in's algorithm: blocks of whole lines, candidates counted, then
    # settled once per call (the built-in settles once per group); the old regex without
    # parceler.
    try:
        from parceler.processors.builtins.wordcount import _SIGMA, candidates, settle
    except ImportError:
        candidates = None
    counts = Counter()
    for path in paths:
        with open(path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
            while block := text.read(BLOCK):
                block += text.readline()
                if candidates is None:
                    counts.update(WORD.findall(block.lower()))
                else:
                    counts.update(candidates(block.lower() if _SIGMA in block else block))
    return dict(counts if candidates is None else settle(counts, lowercase=True))


def merge(results):
    total = Counter()
    for result in results:
        total.update(result)
    return dict(total)


def main():
    config = {
        "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "WARNING"},
        # The runtime must be this venv's Python: the default is "python" on PATH.
        "localhost": {"runtime": sys.executable, "worker_processes": WORKERS, "version": VERSION},
    }
    chunks = [PATHS[i : i + CHUNK] for i in range(0, len(PATHS), CHUNK)]
    started = time.perf_counter()
    executor = lithops.FunctionExecutor(config=config, backend="localhost", storage="localhost")
    executor.map_reduce(count, [(chunk,) for chunk in chunks], merge)
    words = executor.get_result()
    seconds = time.perf_counter() - started
    executor.clean()
    json.dump({"seconds": seconds, "calls": len(chunks), "words": words}, sys.stdout)


if __name__ == "__main__":
    main()
"""


@dataclass
class Variant:
    """One timed variant: its runs (seconds) and its counts, or why it was skipped."""

    name: str
    command: str
    seconds: list[float] = field(default_factory=list)
    inner_seconds: list[float] = field(default_factory=list)
    words: dict[str, int] | None = None
    skipped: str | None = None

    @property
    def best(self) -> float | None:
        return min(self.seconds) if self.seconds else None


def text_files(folder: Path) -> list[Path]:
    """The benchmark's files, sorted (every ``*.txt`` under ``folder``)."""
    files = sorted(folder.rglob("*.txt"))
    if not files:
        raise SystemExit(f"no *.txt files under {folder}: run bench.wordcount_data first")
    return files


def serial_count(files: list[Path]) -> dict[str, int]:
    """The baseline: a plain serial loop, line by line, with the built-in's tokenisation."""
    counts: Counter[str] = Counter()
    for path in files:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
            for line in text:
                counts.update(_WORD.findall(line.lower()))
    return dict(counts)


def serial_split(files: list[Path]) -> dict[str, int]:
    """Issue 13's baseline: ``Counter(open(f).read().split())``, file by file, one counter."""
    counts: Counter[str] = Counter()
    for path in files:
        with path.open() as text:
            counts.update(text.read().split())
    return dict(counts)


def serial_count_blocks(files: list[Path]) -> dict[str, int]:
    """For comparison: the serial loop with the built-in's reading (blocks of whole lines)."""
    counts: Counter[str] = Counter()
    for path in files:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
            while block := text.read(_BLOCK_CHARS):
                block += text.readline()
                counts.update(_WORD.findall(block.lower()))
    return dict(counts)


def _warm(files: list[Path]) -> None:
    for path in files:
        path.read_bytes()


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _find_words(value: Any) -> dict[str, int] | None:
    """The ``words`` mapping of a wordcount value, wherever the JSON output nests it."""
    if isinstance(value, dict):
        if isinstance(value.get("words"), dict) and "total_words" in value:
            return {str(k): int(v) for k, v in value["words"].items()}
        for item in value.values():
            found = _find_words(item)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_words(item)
            if found is not None:
                return found
    return None


def _words_of(document: dict[str, Any]) -> dict[str, int] | None:
    """The word counts of a ``parceler run`` document: inline, or in the run folder's value
    file (``value_uri``; a value over 256 KiB is not inlined in the document)."""
    words = _find_words(document)
    value_uri = document.get("value_uri")
    if words is None and isinstance(value_uri, str) and Path(value_uri).is_file():
        words = _find_words(json.loads(Path(value_uri).read_text(encoding="utf-8")))
    return words


def _parceler_command() -> list[str]:
    return [sys.executable, "-m", "parceler"]


def run_parceler(folder: Path, workers: int, repeat: int, target_size: str | None) -> Variant:
    """(b): the whole ``parceler run ... --local`` command, its counts checked.

    ``--save-result`` writes the run's JSON document with the whole value (the word
    counts), read before the local work area goes away; the timing includes that read.
    """
    extra = [] if target_size is None else ["--target-size", target_size]
    saved = Path(tempfile.mkdtemp(prefix="parceler-wc-")) / "result.json"
    command = [*_parceler_command(), "run", str(folder), "--processor", "wordcount",
               "--local", "--workers", str(workers), *extra, "--save-result", str(saved)]  # fmt: skip
    name = "parceler run --local" + ("" if target_size is None else f" (groups {target_size})")
    variant = Variant(name, " ".join(["parceler", *command[3:-2]]))
    _time_runs(variant, command, repeat, saved)
    return variant


def _time_runs(
    variant: Variant,
    command: list[str],
    repeat: int,
    saved: Path,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Time ``command`` ``repeat`` times into ``variant``, reading each run's saved document
    (its inner seconds, its word counts); returns the last document ({} when a run failed)."""
    document: dict[str, Any] = {}
    for _ in range(repeat):
        seconds, done = _timed(
            lambda: subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        )
        if done.returncode != 0:
            variant.skipped = f"exit {done.returncode}: {done.stderr.strip()[-600:]}"
            return {}
        variant.seconds.append(seconds)
        document = json.loads(saved.read_text())
        inner = document.get("seconds")
        if isinstance(inner, int | float):
            variant.inner_seconds.append(float(inner))
        variant.words = _words_of(document)
        if variant.words is None:
            variant.skipped = f"counts not verified: no value in {saved}"
    return document


def run_parceler_warm(folder: Path, workers: int, repeat: int) -> Variant:
    """(d): ``local up`` once (untimed), then the whole ``parceler run ... --local`` command
    on that stack, every run timed and its counts checked; ``local down`` at the end."""
    state = Path(tempfile.mkdtemp(prefix="parceler-wc-stack-"))
    saved = state / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PARCELER_LOCAL_STATE_DIR"] = str(state / "stack")
    # --no-cache: every run counts every group (a re-run would reuse the stack's results).
    command = [*_parceler_command(), "run", str(folder), "--processor", "wordcount",
               "--local", "--no-cache", "--json", "--save-result", str(saved)]  # fmt: skip
    variant = Variant(
        f"parceler run --local, warm stack ({workers} workers)",
        " ".join(["parceler", *command[3:-2]])
        + f" (after `parceler local up --workers {workers}`)",
    )
    up = subprocess.run([*_parceler_command(), "local", "up", "--workers", str(workers)],
                        capture_output=True, text=True, check=False, env=env)  # fmt: skip
    if up.returncode != 0:
        variant.skipped = f"local up: exit {up.returncode}: {up.stderr.strip()[-600:]}"
        return variant
    try:
        document = _time_runs(variant, command, repeat, saved, env)
        if document.get("groups_skipped"):
            variant.skipped = f"{document['groups_skipped']} group(s) reused, not counted"
    finally:
        subprocess.run([*_parceler_command(), "local", "down"], capture_output=True,
                       check=False, env=env)  # fmt: skip
    return variant


def run_lithops(
    files: list[Path], python: str, workers: int, chunk: int, repeat: int, version: int = 1
) -> Variant:
    """(c): Lithops localhost map_reduce in its own venv, or why it could not run.

    ``version`` picks the localhost backend: 1 (one process per job; what the target names)
    or 2 (Lithops 3.8's default: a fresh interpreter per call).
    """
    variant = Variant(
        f"lithops localhost v{version} (chunk {chunk})",
        f"{python} <script>: FunctionExecutor(backend='localhost', storage='localhost'),"
        f" localhost version {version}, worker_processes={workers},"
        f" map_reduce over {len(files)} files, {chunk} per call",
    )
    if not Path(python).exists():
        variant.skipped = (
            f"{python} not found: pip install -e '.[bench]' (lithops 3.8.0) and pass "
            "--lithops-python with that Python"
        )
        return variant
    script = (
        _LITHOPS_SCRIPT.replace("__PATTERN__", json.dumps(_WORD.pattern))
        .replace("__PATHS__", json.dumps([str(p.resolve()) for p in files]))
        .replace("__CHUNK__", str(chunk))
        .replace("__BLOCK__", str(_BLOCK_CHARS))
        .replace("__WORKERS__", str(workers))
        .replace("__VERSION__", str(version))
    )
    with tempfile.TemporaryDirectory(prefix="bench-lithops-") as tmp:
        path = Path(tmp) / "lithops_wordcount.py"
        path.write_text(script, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        for _ in range(repeat):
            seconds, done = _timed(
                lambda: subprocess.run(
                    [python, str(path)],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=env,
                    cwd=tmp,
                )
            )
            if done.returncode != 0:
                variant.skipped = f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"
                return variant
            out = json.loads(done.stdout)
            variant.seconds.append(seconds)
            variant.inner_seconds.append(float(out["seconds"]))
            variant.words = {str(k): int(v) for k, v in out["words"].items()}
    return variant


def _check(reference: dict[str, int], variant: Variant) -> str:
    if variant.words is None:
        return "-"
    if variant.words == reference:
        return "identical"
    missing = set(reference) ^ set(variant.words)
    differ = sum(1 for w in reference if variant.words.get(w) != reference[w])
    raise SystemExit(
        f"{variant.name}: counts differ from the serial loop ({differ} words differ, "
        f"{len(missing)} only on one side)"
    )


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("bench/data/wordcount"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (best is used)")
    parser.add_argument("--lithops-python", default=DEFAULT_LITHOPS_PYTHON)
    parser.add_argument("--lithops-version", type=int, choices=(1, 2), default=1,
                        help="localhost backend version (the target names version 1)")  # fmt: skip
    parser.add_argument("--lithops-chunk", type=int, action="append",
                        help="files per Lithops call (repeatable; default 1)")  # fmt: skip
    parser.add_argument("--parceler-target-size", action="append",
                        help="also pass --target-size (repeatable; default: none)")  # fmt: skip
    parser.add_argument("--skip-lithops", action="store_true")
    parser.add_argument("--warm", action="store_true",
                        help="also time `parceler run --local` on a `local up` stack")  # fmt: skip
    parser.add_argument("--skip-cold", action="store_true",
                        help="do not time the cold `parceler run --local` (emulator per run)")  # fmt: skip
    parser.add_argument("--json", dest="as_json", action="store_true")
    args = parser.parse_args()

    files = text_files(args.data)
    total_bytes = sum(p.stat().st_size for p in files)
    _warm(files)
    serial = Variant("serial Python loop", "in-process loop, the built-in's regex")
    for _ in range(args.repeat):
        seconds, words = _timed(lambda: serial_count(files))
        serial.seconds.append(seconds)
        serial.words = words
    assert serial.words is not None
    blocks = Variant("serial loop, the built-in's block reading", "in-process loop, 1 MiB blocks")
    for _ in range(args.repeat):
        seconds, blocks.words = _timed(lambda: serial_count_blocks(files))
        blocks.seconds.append(seconds)
    split = Variant("serial split loop (issue 13's baseline)", "Counter(open(f).read().split())")
    for _ in range(args.repeat):
        seconds, _words = _timed(lambda: serial_split(files))
        split.seconds.append(seconds)
    variants = [serial, blocks, split]
    if not args.skip_cold:
        for target in args.parceler_target_size or [None]:
            variants.append(run_parceler(args.data, args.workers, args.repeat, target))
    if args.warm:
        variants.append(run_parceler_warm(args.data, args.workers, args.repeat))
    if not args.skip_lithops:
        for chunk in args.lithops_chunk or [1]:
            variants.append(
                run_lithops(
                    files,
                    args.lithops_python,
                    args.workers,
                    chunk,
                    args.repeat,
                    args.lithops_version,
                )
            )
    checks = {v.name: _check(serial.words, v) for v in variants}
    checks[split.name] = "other tokenizer"
    parceler_best = min((v.best for v in variants[1:] if v.name.startswith("parceler") and v.best),
                        default=None)  # fmt: skip
    summary: dict[str, Any] = {
        "files": len(files),
        "bytes": total_bytes,
        "distinct_words": len(serial.words),
        "total_words": sum(serial.words.values()),
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "variants": [
            {
                "name": v.name,
                "command": v.command,
                "seconds": v.seconds,
                "inner_seconds": v.inner_seconds,
                "counts": checks[v.name],
                "skipped": v.skipped,
                "parceler_vs_this": (
                    None if parceler_best is None or v.best is None else parceler_best / v.best
                ),
            }
            for v in variants
        ],
    }
    if args.as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{len(files)} files, {total_bytes / 1e6:.1f} MB, {summary['total_words']:,} words "
          f"({summary['distinct_words']:,} distinct), {args.workers} workers, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print("| variant | best | runs | inside | counts | note |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        runs = ", ".join(f"{s:.2f}" for s in v.seconds) or "-"
        inner = _fmt(statistics.median(v.inner_seconds)) if v.inner_seconds else "-"
        print(f"| {v.name} | {_fmt(v.best)} | {runs} | {inner} | {checks[v.name]} | "
              f"{v.skipped or ''} |")  # fmt: skip


if __name__ == "__main__":
    main()
