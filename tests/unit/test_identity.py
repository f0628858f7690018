"""identity.py: what makes a committed group result reusable, and what invalidates it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parceler.identity import group_identity, processor_identity
from parceler.spec import parse_spec


def _spec(**processor: Any) -> Any:
    return parse_spec(
        {
            "source": "/data",
            "processor": {"kind": "builtin", "name": "wordcount", **processor},
        }
    )


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "incr_user_code.py"
    path.write_text("def fn(file):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield path
    sys.modules.pop("incr_user_code", None)


def test_equal_specs_have_equal_identities_and_any_processor_change_differs() -> None:
    base = processor_identity(_spec())
    assert processor_identity(_spec()) == base
    changed = [
        _spec(options={"top": 3}),
        _spec(version="2"),
        _spec(name="linecount"),
        parse_spec(
            {"source": "/data", "processor": {"name": "wordcount"}, "reducer": {"name": "concat"}}
        ),
    ]
    identities = {processor_identity(spec) for spec in changed}
    assert base not in identities and len(identities) == len(changed)
    # The source is not part of it: the files are, through the group fingerprint.
    assert (
        processor_identity(parse_spec({"source": "/x", "processor": {"name": "wordcount"}})) == base
    )


def test_an_edit_of_a_python_processors_module_changes_its_identity(user_module: Path) -> None:
    spec = parse_spec(
        {"source": "/data", "processor": {"kind": "python", "function": "incr_user_code:fn"}}
    )
    before = processor_identity(spec)
    assert processor_identity(spec) == before
    user_module.write_text("def fn(file):\n    return 2\n")

    assert processor_identity(spec) != before


def test_a_user_version_replaces_the_code_hash(user_module: Path) -> None:
    spec = parse_spec(
        {
            "source": "/data",
            "processor": {"kind": "python", "function": "incr_user_code:fn", "version": "7"},
        }
    )
    before = processor_identity(spec)
    user_module.write_text("def fn(file):\n    return 2  # a cosmetic edit\n")

    assert processor_identity(spec) == before


def test_group_identity_separates_fingerprints_and_processors() -> None:
    a, b = "fp1-sha256:aa", "fp1-sha256:bb"
    assert group_identity(a, "p") == group_identity(a, "p")
    assert len({group_identity(a, "p"), group_identity(b, "p"), group_identity(a, "q")}) == 3


def test_a_shuffles_partition_count_and_kind_are_part_of_its_identity() -> None:
    # A cached map_to_n result laid out for 16 partitions must not stand in for 8.
    def shuffle(**fields: Any) -> str:
        shell = {"kind": "shell", "command": "cat"}
        return processor_identity(parse_spec({"source": "/d", "processor": shell, **fields}))

    identities = {
        shuffle(),
        shuffle(kind="map_to_n", partitions=16),
        shuffle(kind="map_to_n", partitions=8),
        shuffle(kind="map_from_n"),
    }
    assert len(identities) == 4
