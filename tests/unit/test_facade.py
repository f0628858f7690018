"""The public facade: every exported name resolves, and importing parceler stays light."""

from __future__ import annotations

import subprocess
import sys

import parceler


def test_every_exported_name_resolves_to_its_defining_object() -> None:
    from parceler.processors.context import GroupContext
    from parceler.spec import JobSpec

    assert set(parceler.__all__) == set(parceler._EXPORTS)
    for name in parceler.__all__:
        assert getattr(parceler, name) is not None, name
    assert parceler.JobSpec is JobSpec and parceler.GroupContext is GroupContext


def test_importing_parceler_imports_neither_pyarrow_nor_boto3() -> None:
    code = (
        "import sys, parceler; print(sorted(m for m in ('pyarrow', 'boto3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
