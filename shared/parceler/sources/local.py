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

import os
import re
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


def list_folder(root: str) -> Listed:
    """List every regular file under the folder ``root``.

    Raises:
        SourceError: ``root`` is not a readable folder.
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
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    if not entry.is_file():
                        continue  # sockets, fifos, dangling symlinks
                    stat = entry.stat()
                    path = entry.path
                    uris.append(file_uri(path))
                    keys.append(path[skip:].replace(os.sep, "/"))
                    sizes.append(stat.st_size)
                    etags.append(storage.local_etag(stat))
        except PermissionError as exc:
            raise SourceError(
                f"Source {root}: folder {folder} cannot be read (permission denied).",
                "Fix its permissions, or exclude it.",
            ) from exc
    table = pa.table(
        {
            "uri": pa.array(uris, pa.string()),
            "size": pa.array(sizes, pa.int64()),
            "etag": pa.array(etags, pa.string()),
        }
    )
    return Listed(table=table, subjects=pa.array(keys, pa.string()), noun="files")
