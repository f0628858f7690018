"""``make demo``: generate the NYC-taxi-like sample and run parceler on it.

Generates a deterministic dataset (a few hundred skewed CSV files with a header and a
passenger-count column) under ``build/demo/taxi`` and plans it into balanced groups,
writing every group manifest and the plan index under ``build/demo/plan``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taxi.generate import generate

BUILD = Path("build/demo")


def main() -> int:
    data = BUILD / "taxi"
    truth = generate(data, n_files=300)
    print(
        f"generated {len(list(data.iterdir()))} CSV files ({sum(truth.values()):,} trips) in {data}"
    )
    parceler = [sys.executable, "-m", "parceler"]
    return subprocess.call(
        [*parceler, "plan", str(data), "--target-size", "1MB", "--out", str(BUILD / "plan")]
    )


if __name__ == "__main__":
    sys.exit(main())
