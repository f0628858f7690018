"""``copy``: copy each file, streamed, to ``<dest>/<index>-<basename>`` and list the copies.

Options:
    dest: a URI prefix (``s3://...``, ``file://...`` or a path); default the attempt's
        output folder. With ``dest`` the copies are *outside* the attempt folder, so a
        retried group overwrites the same keys (same names, same content): choose a
        ``dest`` no other job writes to.

Per-file value: ``{"files": 1, "bytes": B}``; ``sum`` merges it. Names are
``<index:06d>-<basename>`` (the file's position in its group), unique within a group;
copies of files from different groups with one ``dest`` can only collide if two groups
hold files with the same basename at the same index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parceler import storage
from parceler.errors import UnsupportedUriError
from parceler.processors.builtins.options import bad_option, reject_unknown
from parceler.processors.context import FileRef, GroupContext, output_name
from parceler.processors.outputs import put_stream

NAME = "copy"


@dataclass(frozen=True, slots=True)
class CopyOptions:
    """``dest``: the destination prefix, or None for the attempt's output folder."""

    dest: str | None = None


def parse_options(options: Mapping[str, Any]) -> CopyOptions:
    """Validate the options (SpecError on unknown keys or an unusable ``dest``)."""
    reject_unknown(NAME, options, ("dest",))
    dest = options.get("dest")
    if dest is None:
        return CopyOptions()
    if not isinstance(dest, str) or not dest:
        raise bad_option(NAME, "dest", dest, "a URI prefix")
    try:
        storage.parse_uri(dest)
    except UnsupportedUriError as exc:
        raise bad_option(NAME, "dest", dest, "an s3:// or file:// URI or a path") from exc
    return CopyOptions(dest=dest)


def copy_file(file: FileRef, ctx: GroupContext, options: CopyOptions) -> dict[str, int]:
    """Stream one file to its destination and record the copy as an output."""
    name = output_name(file)
    uri = ctx.output_uri(name) if options.dest is None else storage.join(options.dest, name)
    with file.open() as source:
        result = put_stream(uri, source)
    ctx.add_output(uri, result.size, file.n_record, result.etag, anywhere=options.dest is not None)
    return {"files": 1, "bytes": result.size}
