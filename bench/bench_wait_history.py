"""The execution history and the largest state of whole ``parceler run --local --json``
commands, as the scale design promises them flat: in groups (``--groups 10`` against
``--groups 400`` over 400 tiny files) and in time (two groups whose processor sleeps 1 s
against 30 s).

    python -m bench.bench_wait_history

Prints a Markdown table of the ``state_machine`` figures each command reports (measured
from moto's execution history, the events AWS would count in the parent execution).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def sleep_lines(file: Any) -> dict[str, int]:
    """Count lines after sleeping the seconds the file's name says (``sleep-30-a.txt``)."""
    time.sleep(float(file.basename.split("-")[1]))
    return {"lines": file.read_bytes().count(b"\n")}


def _run(source: Path, *args: str) -> tuple[dict[str, Any], float]:
    command = [sys.executable, "-m", "parceler", "run", str(source), "--local", "--json"]
    command += ["--output", str(source.parent / f"run-{source.name}-{len(args)}"), *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout), seconds


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="parceler-wait-"))
    tiny = root / "tiny"
    tiny.mkdir()
    for i in range(400):
        (tiny / f"part-{i:03d}.txt").write_text(f"{i}\n")
    rows = []
    for groups in (10, 400):
        result, seconds = _run(tiny, "--processor", "linecount", "--groups", str(groups))
        rows.append((f"400 tiny files, `--groups {groups}`", result, seconds))
    for sleep in (1, 30):
        folder = root / f"sleep{sleep}"
        folder.mkdir()
        for name in "ab":
            (folder / f"sleep-{sleep}-{name}.txt").write_text(f"{name}\n")
        processor = "bench.bench_wait_history:sleep_lines"
        result, seconds = _run(folder, "--processor", processor, "--groups", "2")
        rows.append((f"2 groups sleeping {sleep} s", result, seconds))
    print("| job | status | groups | history_events | largest_state_bytes | command s |")
    print("|---|---|---|---|---|---|")
    for label, result, seconds in rows:
        machine = result["state_machine"]
        print(
            f"| {label} | {result['status']} | {result['n_groups']} "
            f"| {machine['history_events']} | {machine['largest_state_bytes']} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
