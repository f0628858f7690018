"""List a local folder recursively (``os.scandir``) into data-file rows.

* URIs are ``file://`` + the absolute path, percent-encoded only where a character needs
  it (so :func:`parceler.storage.parse_uri` gives the path back exactly).
* ``etag`` is a cheap change token, not a content hash: ``"{mtime_ns}-{size}"``. It is
  stable while a file is untouched and changes when it is rewritten, which is what the
  fingerprint and incremental runs need, without reading any file.
* Symlinked files are listed (with their target's size); symlinked folders are not
  followed (no cycles). Hidden files are listed like any other: exclude them with a glob
  (``exclude=[".*", "*/.*"]``) if needed.
* The glob subject is the path relative to the folder, with ``/`` separators.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa

from parceler import storage
from parceler.errors import SourceError
from parceler.sources.rows import Listed

# Characters a file:// URI may carry as they are (RFC 3986 unreserved, "/" and a few more).
_PLAIN = re.compile(r"^[A-Za-z0-9/._~\-+=,@:]*$")


def file_uri(path: str) -> str:
    """``file://`` URI of an absolute ``path``; encoded only when it must be."""
    return "file://" + (path if _PLAIN.match(path) else quote(path, safe="/"))


def list_folder(root: str, exclude: Sequence[str] = ()) -> Listed:
    """List every regular file under the folder ``root``.

    Args:
        root: the folder.
        exclude: the source's exclude globs; the walk uses them only to pass over what it
            cannot read but the user excluded (the globs themselves are applied later,
            with the include globs, to every source alike): an entry that cannot be
            stat'ed (a symlink loop) whose path is excluded, and an unreadable folder
            whose every path is excluded (a glob ending in ``*`` that matches the folder
            path plus ``/``, such as ``secret/*``).

    Raises:
        SourceError: ``root`` is not a readable folder, or a folder or file under it
            cannot be read (naming it and the glob that would exclude it).
    """
    base = str(Path(root).absolute())
    if not Path(base).is_dir():
        raise SourceError(
            f"Source {root} is not a folder.", "Name an existing folder, a listing or an S3 URI."
        )
    uris: list[str] = []
    keys: list[str] = []
    sizes: list[int] = []
    etags: list[str] = []
    skip = len(base) + 1 if base != os.sep else 1
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    key = entry.path[skip:].replace(os.sep, "/")
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        if not entry.is_file():
                            continue  # sockets, fifos, dangling symlinks
                        stat = entry.stat()
                    except OSError as exc:
                        if _excluded(key, exclude):
                            continue
                        raise _unreadable(root, "file", entry.path, key, exc) from exc
                    uris.append(file_uri(entry.path))
                    keys.append(key)
                    sizes.append(stat.st_size)
                    etags.append(storage.local_etag(stat))
        except OSError as exc:
            if folder == base:
                raise SourceError(
                    f"Source {root} cannot be read ({exc.strerror or exc}).",
                    "Fix its permissions, or name another folder.",
                ) from exc
            key = folder[skip:].replace(os.sep, "/")
            if _folder_excluded(key, exclude):
                continue
            raise _unreadable(root, "folder", folder, key, exc) from exc
    table = pa.table(
        {
            "uri": pa.array(uris, pa.string()),
            "size": pa.array(sizes, pa.int64()),
            "etag": pa.array(etags, pa.string()),
        }
    )
    return Listed(table=table, subjects=pa.array(keys, pa.string()), noun="files")


def _excluded(key: str, exclude: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in exclude)


def _folder_excluded(key: str, exclude: Sequence[str]) -> bool:
    """True if ``exclude`` drops every path under folder ``key``: a glob ``P*`` that matches
    ``key/`` matches ``key/`` followed by anything."""
    return any(p.endswith("*") and fnmatch.fnmatchcase(key + "/", p) for p in exclude)


def _unreadable(root: str, what: str, path: str, key: str, exc: OSError) -> SourceError:
    reason = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ELOOP: "a loop of symbolic links",
    }.get(exc.errno or 0, f"{type(exc).__name__}: {exc.strerror or exc}")
    glob = f"{key}/*" if what == "folder" else key
    return SourceError(
        f"Source {root}: {what} {path} cannot be read ({reason}).",
        f"Fix it (its permissions, or the link), or exclude it with the glob {glob!r} "
        f'(--exclude {glob!r}, or "exclude": [{glob!r}] in a job spec).',
    )
