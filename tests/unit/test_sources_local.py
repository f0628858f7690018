"""Local folders: recursive walk, file:// URIs that round-trip, change-token etags, globs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from parceler import storage
from parceler.errors import EmptySourceError, SourceError, UnsupportedUriError
from parceler.sources import load_source
from parceler.sources import local as local_module


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    (root / "x.csv").write_text("h\n1\n")
    (root / "a" / "y.csv").write_text("h\n1\n2\n")
    (root / "a" / "b" / "z 1%.json").write_text("{}")
    (root / ".hidden").write_text("")
    return root


def test_walks_recursively_sorted_with_file_uris(folder: Path) -> None:
    out = load_source(str(folder))
    uris = out.column("uri").to_pylist()
    assert uris == sorted(uris)
    paths = sorted(storage.parse_uri(u).path for u in uris)
    want = sorted(
        str(p)
        for p in [
            folder / ".hidden",
            folder / "x.csv",
            folder / "a/y.csv",
            folder / "a/b/z 1%.json",
        ]
    )
    assert paths == want  # percent-encoding round-trips through storage.parse_uri
    sizes = dict(zip(paths, out.column("size").to_pylist(), strict=True))
    assert sizes[str(folder / "a/y.csv")] == 6


def test_etag_is_mtime_ns_and_size(folder: Path) -> None:
    out = load_source(folder.as_uri(), include=["x.csv"])
    stat = (folder / "x.csv").stat()
    assert out.column("etag").to_pylist() == [f"{stat.st_mtime_ns}-{stat.st_size}"]
    os.utime(folder / "x.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = load_source(folder.as_uri(), include=["x.csv"])
    assert again.column("etag").to_pylist() != out.column("etag").to_pylist()


def test_globs_match_the_relative_path(folder: Path) -> None:
    out = load_source(str(folder), include=["*.csv"], exclude=["a/*"])
    assert [u.rsplit("/", 1)[1] for u in out.column("uri").to_pylist()] == ["x.csv"]
    out = load_source(str(folder), exclude=[".*", "*/.*"])
    assert out.num_rows == 3


def test_symlinked_folders_are_not_followed(folder: Path, tmp_path: Path) -> None:
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "link.csv").symlink_to(folder / "x.csv")
    out = load_source(str(folder))
    names = [u.rsplit("/", 1)[1] for u in out.column("uri").to_pylist()]
    assert "link.csv" in names
    assert out.num_rows == 5


def test_empty_folder_says_what_was_filtered(folder: Path) -> None:
    with pytest.raises(EmptySourceError, match=r"0 of 4 files matched include=\['\*\.parquet'\]"):
        load_source(str(folder), include=["*.parquet"])
    empty = folder / "empty"
    empty.mkdir()
    with pytest.raises(EmptySourceError, match="0 files listed"):
        load_source(str(empty))


def test_missing_path_and_unknown_file_type(folder: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load_source(str(folder / "missing"))
    with pytest.raises(SourceError, match="is a file parceler cannot list from"):
        load_source(str(folder / ".hidden"))


def test_unsupported_scheme() -> None:
    with pytest.raises(UnsupportedUriError, match="gs"):
        load_source("gs://bucket/prefix/")


def test_a_symlink_loop_is_a_source_error_and_excluding_it_works(folder: Path) -> None:
    (folder / "a" / "loop-1").symlink_to(folder / "a" / "loop-2")
    (folder / "a" / "loop-2").symlink_to(folder / "a" / "loop-1")
    with pytest.raises(SourceError, match=r"loop-\d cannot be read \(a loop of symbolic links\)"):
        load_source(str(folder))
    out = load_source(str(folder), exclude=["a/loop-*"])  # the advised fix works
    assert out.num_rows == 4


@pytest.fixture
def unreadable_secret(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``folder/secret`` exists but cannot be listed (permission denied).

    Injected at the OS seam: the tests may run as root, which chmod 000 does not stop.
    """
    secret = folder / "secret"
    secret.mkdir()
    (secret / "s.csv").write_text("h\n1\n")
    real_scandir = os.scandir

    def scandir(path: str) -> Any:
        if Path(path) == secret:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(local_module.os, "scandir", scandir)
    return secret


def test_an_unreadable_folder_names_the_exclude_that_skips_it(unreadable_secret: Path) -> None:
    root = unreadable_secret.parent
    with pytest.raises(SourceError) as raised:
        load_source(str(root))
    assert f"folder {unreadable_secret} cannot be read (permission denied)" in str(raised.value)
    assert "--exclude 'secret/*'" in (raised.value.fix or "")
    # The advised fix works, and so does any exclude that drops everything under it ...
    for exclude in (["secret/*"], ["secret*"], ["*secret*"]):
        assert load_source(str(root), exclude=exclude).num_rows == 4, exclude
    # ... but not one that would keep some of its files: those cannot be listed.
    with pytest.raises(SourceError, match="permission denied"):
        load_source(str(root), exclude=["secret/*.json"])
